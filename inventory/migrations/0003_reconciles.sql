-- A reconcile of the inventory with the cloud (FleetSync) applies one picture of the cloud in
-- one transaction. This row remembers the newest picture applied: its generation (when the
-- cloud was described, Unix nanoseconds) and what applying it did (JSON). An older picture is
-- refused, so it never overwrites a newer one; the same picture again (a retry whose reply
-- was lost) gets the first result back and records nothing twice.
CREATE TABLE reconciles (
	name       TEXT PRIMARY KEY,
	generation BIGINT NOT NULL,
	result     TEXT NOT NULL,
	applied_at {{TIMESTAMP}} NOT NULL
);
