-- One incident per fault. An incident's workflow_id is the business key of the workflow that
-- recovers from its fault (failover/<server>); it is unique among open incidents, so alarms
-- about one fault arriving together (CloudWatch, Alertmanager, our probe, SNS redeliveries)
-- find one incident. run_id is the run the incident started or joined.
ALTER TABLE incidents ADD COLUMN run_id TEXT NOT NULL DEFAULT '';
CREATE UNIQUE INDEX incidents_open_workflow ON incidents (workflow_id) WHERE state = 'open' AND workflow_id <> '';
CREATE INDEX incidents_server ON incidents (server);
-- A timeline event names its source (sns, alertmanager, probe, a workflow) and, for an alarm,
-- the delivery's id at that source, unique per incident: a delivery seen again (SNS delivers at
-- least once) is recorded as a redelivery, never as a second alarm.
ALTER TABLE incident_events ADD COLUMN source TEXT NOT NULL DEFAULT '';
ALTER TABLE incident_events ADD COLUMN delivery_id TEXT NOT NULL DEFAULT '';
CREATE UNIQUE INDEX incident_events_delivery ON incident_events (incident_id, source, delivery_id) WHERE delivery_id <> '' AND kind IN ('alarm', 'alarm-resolved');
