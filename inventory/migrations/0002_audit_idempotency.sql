-- An activity that records an audit event and is retried after its reply was lost must not
-- record it twice: it passes an idempotency key, unique when set.
ALTER TABLE audit_events ADD COLUMN idempotency_key TEXT;
CREATE UNIQUE INDEX audit_events_idempotency_key ON audit_events (idempotency_key);
