-- API tokens name a person: `anyops token create --name NAME --role ROLE` stores the token's
-- SHA-256 here, never the token, and audit events record the name.
CREATE TABLE api_tokens (
	name       TEXT PRIMARY KEY CHECK (name <> ''),
	role       TEXT NOT NULL CHECK (role IN ('viewer', 'operator', 'admin')),
	digest     TEXT NOT NULL UNIQUE CHECK (length(digest) = 64),
	created_by TEXT NOT NULL DEFAULT '',
	created_at {{TIMESTAMP}} NOT NULL,
	updated_at {{TIMESTAMP}} NOT NULL
);
