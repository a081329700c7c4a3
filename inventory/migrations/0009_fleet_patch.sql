-- Fleet patches (FleetPatch, patch/<advisory>): one rollout per advisory and one row per
-- target server with what was found before and after (JSON), what was restarted and when;
-- drained servers (out of rotation while their service restarts: a console host admits no
-- new console); hosted web apps and their owners (custom domains whose keys a flaw like
-- Heartbleed may have exposed); the platform's certificates, the old ones kept for
-- revocation; pending ACME HTTP-01 challenges the API answers; and the notices outbox.

CREATE TABLE patch_rollouts (
	advisory        TEXT PRIMARY KEY,
	workflow_id     TEXT NOT NULL,
	run_id          TEXT NOT NULL DEFAULT '',
	state           TEXT NOT NULL CHECK (state IN ('running', 'awaiting-approval', 'completed', 'stopped', 'aborted')),
	spec            TEXT NOT NULL,
	errors          INTEGER NOT NULL DEFAULT 0,
	max_errors      INTEGER NOT NULL DEFAULT 0,
	stop_reason     TEXT NOT NULL DEFAULT '',
	requested_by    TEXT NOT NULL DEFAULT '',
	started_at      {{TIMESTAMP}} NOT NULL,
	finished_at     {{TIMESTAMP}},
	created_at      {{TIMESTAMP}} NOT NULL,
	updated_at      {{TIMESTAMP}} NOT NULL,
	CHECK (advisory <> '')
);

CREATE TABLE patch_servers (
	advisory    TEXT NOT NULL REFERENCES patch_rollouts (advisory),
	server      TEXT NOT NULL REFERENCES servers (name),
	role        TEXT NOT NULL CHECK (role IN ('file', 'backup', 'web', 'console', 'task')),
	seq         INTEGER NOT NULL,
	canary      BOOLEAN NOT NULL DEFAULT FALSE,
	outcome     TEXT NOT NULL CHECK (outcome IN ('pending', 'running', 'patched', 'already-fixed', 'failed', 'unreachable', 'not-started', 'blocked')),
	before_check TEXT,
	after_check  TEXT,
	restarted   TEXT NOT NULL DEFAULT '',
	message     TEXT NOT NULL DEFAULT '',
	started_at  {{TIMESTAMP}},
	finished_at {{TIMESTAMP}},
	created_at  {{TIMESTAMP}} NOT NULL,
	updated_at  {{TIMESTAMP}} NOT NULL,
	PRIMARY KEY (advisory, server)
);

CREATE TABLE server_drains (
	server     TEXT PRIMARY KEY REFERENCES servers (name),
	reason     TEXT NOT NULL,
	drained_by TEXT NOT NULL DEFAULT '',
	created_at {{TIMESTAMP}} NOT NULL,
	updated_at {{TIMESTAMP}} NOT NULL
);

CREATE TABLE web_apps (
	name          TEXT PRIMARY KEY,
	owner         TEXT NOT NULL,
	owner_email   TEXT NOT NULL,
	domain        TEXT NOT NULL UNIQUE,
	custom_domain BOOLEAN NOT NULL DEFAULT FALSE,
	server        TEXT NOT NULL REFERENCES servers (name),
	created_at    {{TIMESTAMP}} NOT NULL,
	updated_at    {{TIMESTAMP}} NOT NULL,
	CHECK (name <> '' AND owner <> '' AND domain <> '')
);
CREATE INDEX web_apps_server ON web_apps (server);

CREATE TABLE certificates (
	id            {{AUTO_ID}},
	name          TEXT NOT NULL,
	domain        TEXT NOT NULL,
	state         TEXT NOT NULL CHECK (state IN ('issuing', 'active', 'retired', 'revoked')),
	rotation_key  TEXT UNIQUE,
	key_pem       TEXT NOT NULL,
	csr_pem       TEXT NOT NULL,
	cert_pem      TEXT NOT NULL DEFAULT '',
	serial        TEXT NOT NULL DEFAULT '',
	not_after     {{TIMESTAMP}},
	replaced_by   BIGINT REFERENCES certificates (id),
	revoke_reason TEXT NOT NULL DEFAULT '',
	revoked_at    {{TIMESTAMP}},
	created_at    {{TIMESTAMP}} NOT NULL,
	updated_at    {{TIMESTAMP}} NOT NULL
);
CREATE UNIQUE INDEX certificates_one_active ON certificates (name) WHERE state = 'active';

CREATE TABLE acme_challenges (
	token      TEXT PRIMARY KEY,
	key_auth   TEXT NOT NULL,
	domain     TEXT NOT NULL,
	created_at {{TIMESTAMP}} NOT NULL,
	updated_at {{TIMESTAMP}} NOT NULL
);

CREATE TABLE notices (
	id              {{AUTO_ID}},
	idempotency_key TEXT NOT NULL UNIQUE,
	advisory        TEXT NOT NULL,
	owner           TEXT NOT NULL,
	email           TEXT NOT NULL,
	subject         TEXT NOT NULL,
	body            TEXT NOT NULL,
	message_id      TEXT NOT NULL UNIQUE,
	claimed_by      TEXT NOT NULL DEFAULT '',
	claimed_until   {{TIMESTAMP}},
	attempts        INTEGER NOT NULL DEFAULT 0,
	sent_at         {{TIMESTAMP}},
	last_error      TEXT NOT NULL DEFAULT '',
	created_at      {{TIMESTAMP}} NOT NULL,
	updated_at      {{TIMESTAMP}} NOT NULL
);
CREATE INDEX notices_advisory ON notices (advisory);
