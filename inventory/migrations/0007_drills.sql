-- Drills (docs/drills.md): one row per run, numbered: drill n runs as workflow drill/<n> on the
-- cluster drill-<n> (or on live, for a scenario that works on the demo fleet). claimed_speed
-- is the cloudsim speed the drill needs now (0 once it no longer runs); holds_clock marks the
-- one running drill whose faults are playing: its claim is the speed, whatever the others
-- claim (they are building), and no other drill arms until it lets go. report is the drill's
-- report as JSON once it has one.
CREATE TABLE drills (
	id            {{AUTO_ID}},
	scenario      TEXT NOT NULL CHECK (scenario <> ''),
	source        TEXT NOT NULL,
	cluster       TEXT NOT NULL CHECK (cluster <> ''),
	workflow_id   TEXT NOT NULL DEFAULT '',
	run_id        TEXT NOT NULL DEFAULT '',
	state         TEXT NOT NULL CHECK (state IN ('running', 'completed', 'failed', 'canceled')),
	speed         DOUBLE PRECISION NOT NULL CHECK (speed > 0),
	claimed_speed DOUBLE PRECISION NOT NULL DEFAULT 0 CHECK (claimed_speed >= 0),
	holds_clock   BOOLEAN NOT NULL DEFAULT FALSE,
	requested_by  TEXT NOT NULL DEFAULT '',
	report        TEXT NOT NULL DEFAULT '',
	error         TEXT NOT NULL DEFAULT '',
	finished_at   {{TIMESTAMP}},
	created_at    {{TIMESTAMP}} NOT NULL,
	updated_at    {{TIMESTAMP}} NOT NULL
);
CREATE INDEX drills_state ON drills (state);
CREATE UNIQUE INDEX drills_one_clock ON drills (holds_clock) WHERE holds_clock;
-- The cloudsim events a drill collected as it ran (cloudsim keeps only its last 10000), each
-- as cloudsim's JSON, once per sequence number.
CREATE TABLE drill_events (
	drill_id BIGINT NOT NULL REFERENCES drills (id) ON DELETE CASCADE,
	seq      BIGINT NOT NULL CHECK (seq > 0),
	event    TEXT NOT NULL,
	PRIMARY KEY (drill_id, seq)
);
-- The speed a cluster's simulated time runs at (a drill's cluster): the alarm intake and the
-- NFS watches scale the timing of what they start for the cluster by it. None: production
-- timing (or the intake's own speed).
CREATE TABLE cluster_time_scales (
	cluster    TEXT PRIMARY KEY REFERENCES clusters (name) ON DELETE CASCADE,
	time_scale DOUBLE PRECISION NOT NULL CHECK (time_scale > 0),
	updated_at {{TIMESTAMP}} NOT NULL
);
