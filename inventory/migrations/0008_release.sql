-- What a release needs to know of volumes beyond the fleet's tags: the classification an
-- operator gave a volume the fleet does not know (an extra volume attached by hand), which the
-- release's plan requires before it moves anything, and the rates measured from each volume's
-- snapshots, which the plan's time estimates use.
CREATE TABLE volume_classifications (
	volume_id     TEXT PRIMARY KEY,
	kind          TEXT NOT NULL CHECK (kind IN ('home', 'logs', 'dropbox', 'boot')),
	criticality   TEXT NOT NULL CHECK (criticality IN ('critical', 'deferrable')),
	classified_by TEXT NOT NULL,
	reason        TEXT NOT NULL DEFAULT '',
	created_at    {{TIMESTAMP}} NOT NULL,
	updated_at    {{TIMESTAMP}} NOT NULL,
	CHECK (volume_id <> ''),
	CHECK (classified_by <> '')
);

CREATE TABLE volume_rates (
	volume_id          TEXT PRIMARY KEY,
	snapshot_bytes_sec DOUBLE PRECISION NOT NULL DEFAULT 0 CHECK (snapshot_bytes_sec >= 0),
	change_bytes_sec   DOUBLE PRECISION NOT NULL DEFAULT 0 CHECK (change_bytes_sec >= 0),
	snapshots          INTEGER NOT NULL DEFAULT 0 CHECK (snapshots >= 0),
	last_snapshot_id   TEXT NOT NULL DEFAULT '',
	last_snapshot_at   {{TIMESTAMP}},
	last_full_bytes    BIGINT NOT NULL DEFAULT 0 CHECK (last_full_bytes >= 0),
	created_at         {{TIMESTAMP}} NOT NULL,
	updated_at         {{TIMESTAMP}} NOT NULL,
	CHECK (volume_id <> '')
);
