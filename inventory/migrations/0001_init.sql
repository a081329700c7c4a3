-- The inventory's first schema. One text for PostgreSQL and SQLite: {{AUTO_ID}} and
-- {{TIMESTAMP}} are the only per-dialect substitutions (see migrate.go). Enum CHECK lists
-- mirror the closed sets of the root package; schema_test.go fails if they drift apart.
-- Statements end with a semicolon at the end of a line; migrate.go splits on that.

CREATE TABLE zones (
	name       TEXT PRIMARY KEY,
	region     TEXT NOT NULL DEFAULT '',
	created_at {{TIMESTAMP}} NOT NULL,
	updated_at {{TIMESTAMP}} NOT NULL,
	CHECK (name <> '')
);

CREATE TABLE releases (
	name       TEXT PRIMARY KEY,
	notes      TEXT NOT NULL DEFAULT '',
	created_at {{TIMESTAMP}} NOT NULL,
	updated_at {{TIMESTAMP}} NOT NULL,
	CHECK (name <> '')
);

CREATE TABLE clusters (
	name       TEXT PRIMARY KEY,
	zone       TEXT NOT NULL REFERENCES zones (name),
	state      TEXT NOT NULL CHECK (state IN ('building', 'live', 'standby', 'retired')),
	release    TEXT REFERENCES releases (name),
	created_at {{TIMESTAMP}} NOT NULL,
	updated_at {{TIMESTAMP}} NOT NULL,
	CHECK (name <> '')
);
CREATE INDEX clusters_zone ON clusters (zone);

CREATE TABLE servers (
	name           TEXT PRIMARY KEY,
	instance_id    TEXT UNIQUE,
	role           TEXT NOT NULL CHECK (role IN ('file', 'backup', 'web', 'console', 'task')),
	zone           TEXT NOT NULL REFERENCES zones (name),
	cluster        TEXT NOT NULL REFERENCES clusters (name),
	state          TEXT NOT NULL CHECK (state IN ('pending', 'running', 'impaired', 'stopping', 'stopped', 'terminated')),
	instance_type  TEXT NOT NULL DEFAULT '',
	private_ip     TEXT NOT NULL DEFAULT '',
	sandboxd_url   TEXT NOT NULL DEFAULT '',
	impaired_since {{TIMESTAMP}},
	created_at     {{TIMESTAMP}} NOT NULL,
	updated_at     {{TIMESTAMP}} NOT NULL,
	CHECK (name <> '')
);
CREATE INDEX servers_zone ON servers (zone);
CREATE INDEX servers_cluster ON servers (cluster);

CREATE TABLE volumes (
	volume_id   TEXT PRIMARY KEY,
	kind        TEXT NOT NULL CHECK (kind IN ('home', 'logs', 'dropbox', 'boot')),
	criticality TEXT NOT NULL CHECK (criticality IN ('critical', 'deferrable')),
	size_gib    INTEGER NOT NULL CHECK (size_gib >= 0),
	zone        TEXT NOT NULL REFERENCES zones (name),
	cluster     TEXT REFERENCES clusters (name),
	state       TEXT NOT NULL CHECK (state IN ('creating', 'available', 'in-use', 'deleting', 'deleted', 'error')),
	server      TEXT REFERENCES servers (name),
	device      TEXT NOT NULL DEFAULT '',
	raid_group  TEXT NOT NULL DEFAULT '',
	created_at  {{TIMESTAMP}} NOT NULL,
	updated_at  {{TIMESTAMP}} NOT NULL,
	CHECK (volume_id <> ''),
	CHECK (server IS NULL OR device <> '')
);
CREATE INDEX volumes_zone ON volumes (zone);
CREATE INDEX volumes_cluster ON volumes (cluster);
CREATE INDEX volumes_server ON volumes (server);

CREATE TABLE replicas (
	name                 TEXT PRIMARY KEY,
	cluster              TEXT NOT NULL REFERENCES clusters (name),
	primary_server       TEXT NOT NULL REFERENCES servers (name),
	secondary_server     TEXT NOT NULL REFERENCES servers (name),
	primary_volume       TEXT NOT NULL REFERENCES volumes (volume_id),
	secondary_volume     TEXT NOT NULL REFERENCES volumes (volume_id),
	connection_state     TEXT NOT NULL DEFAULT '',
	primary_disk_state   TEXT NOT NULL DEFAULT '',
	secondary_disk_state TEXT NOT NULL DEFAULT '',
	sync_percent         DOUBLE PRECISION NOT NULL DEFAULT 0 CHECK (sync_percent >= 0 AND sync_percent <= 100),
	state                TEXT NOT NULL CHECK (state IN ('uptodate', 'syncing', 'disconnected', 'unknown')),
	created_at           {{TIMESTAMP}} NOT NULL,
	updated_at           {{TIMESTAMP}} NOT NULL,
	CHECK (name <> ''),
	CHECK (primary_server <> secondary_server),
	CHECK (primary_volume <> secondary_volume)
);
CREATE INDEX replicas_cluster ON replicas (cluster);

CREATE TABLE incidents (
	id          {{AUTO_ID}},
	title       TEXT NOT NULL CHECK (title <> ''),
	state       TEXT NOT NULL CHECK (state IN ('open', 'resolved')),
	cluster     TEXT REFERENCES clusters (name),
	server      TEXT REFERENCES servers (name),
	workflow_id TEXT NOT NULL DEFAULT '',
	opened_at   {{TIMESTAMP}} NOT NULL,
	resolved_at {{TIMESTAMP}},
	created_at  {{TIMESTAMP}} NOT NULL,
	updated_at  {{TIMESTAMP}} NOT NULL
);

CREATE TABLE incident_events (
	id          {{AUTO_ID}},
	incident_id BIGINT NOT NULL REFERENCES incidents (id) ON DELETE CASCADE,
	kind        TEXT NOT NULL CHECK (kind <> ''),
	message     TEXT NOT NULL DEFAULT '',
	at          {{TIMESTAMP}} NOT NULL,
	created_at  {{TIMESTAMP}} NOT NULL,
	updated_at  {{TIMESTAMP}} NOT NULL
);
CREATE INDEX incident_events_incident ON incident_events (incident_id, at);

CREATE TABLE audit_events (
	id         {{AUTO_ID}},
	actor      TEXT NOT NULL CHECK (actor <> ''),
	action     TEXT NOT NULL CHECK (action <> ''),
	subject    TEXT NOT NULL DEFAULT '',
	summary    TEXT NOT NULL DEFAULT '{}',
	created_at {{TIMESTAMP}} NOT NULL,
	updated_at {{TIMESTAMP}} NOT NULL
);

CREATE TABLE images (
	id         {{AUTO_ID}},
	name       TEXT NOT NULL CHECK (name <> ''),
	version    TEXT NOT NULL CHECK (version <> ''),
	created_at {{TIMESTAMP}} NOT NULL,
	updated_at {{TIMESTAMP}} NOT NULL,
	UNIQUE (name, version)
);

-- counters hands out numbers that are never reused, even after the row that took one is
-- deleted: a Unix uid that came back would give a new user a deleted user's files.
CREATE TABLE counters (
	name       TEXT PRIMARY KEY,
	value      BIGINT NOT NULL,
	created_at {{TIMESTAMP}} NOT NULL,
	updated_at {{TIMESTAMP}} NOT NULL
);
INSERT INTO counters (name, value, created_at, updated_at) VALUES ('user_uid', 99999, CURRENT_TIMESTAMP, CURRENT_TIMESTAMP);

CREATE TABLE users (
	name       TEXT PRIMARY KEY,
	uid        INTEGER NOT NULL UNIQUE CHECK (uid >= 100000),
	plan       TEXT NOT NULL CHECK (plan IN ('anonymous', 'free', 'paid', 'tarpit')),
	anonymous  BOOLEAN NOT NULL DEFAULT FALSE,
	image_id   BIGINT REFERENCES images (id),
	created_at {{TIMESTAMP}} NOT NULL,
	updated_at {{TIMESTAMP}} NOT NULL
);

CREATE TABLE sandboxes (
	id         TEXT PRIMARY KEY,
	username   TEXT NOT NULL REFERENCES users (name),
	server     TEXT NOT NULL REFERENCES servers (name),
	image_id   BIGINT REFERENCES images (id),
	state      TEXT NOT NULL CHECK (state IN ('starting', 'running', 'ended', 'lost')),
	console_id TEXT NOT NULL DEFAULT '',
	ended_at   {{TIMESTAMP}},
	created_at {{TIMESTAMP}} NOT NULL,
	updated_at {{TIMESTAMP}} NOT NULL,
	CHECK (id <> '')
);
CREATE INDEX sandboxes_username ON sandboxes (username);

CREATE TABLE consoles (
	id          TEXT PRIMARY KEY,
	username    TEXT NOT NULL REFERENCES users (name),
	server      TEXT REFERENCES servers (name),
	sandbox_id  TEXT REFERENCES sandboxes (id),
	state       TEXT NOT NULL CHECK (state IN ('open', 'closed', 'lost')),
	workflow_id TEXT NOT NULL DEFAULT '',
	expires_at  {{TIMESTAMP}},
	created_at  {{TIMESTAMP}} NOT NULL,
	updated_at  {{TIMESTAMP}} NOT NULL,
	CHECK (id <> '')
);
CREATE INDEX consoles_username ON consoles (username);
CREATE INDEX consoles_state ON consoles (state);
