-- API keys and the audit log (platform/auth). Times are Unix nanoseconds. A key's token is
-- never stored, only its SHA-256 (hash); scopes are space-separated; tenant_id is '' when the
-- key has none; revoked_at is NULL while the key is active.
CREATE TABLE api_keys (
    id         TEXT PRIMARY KEY,
    hash       BYTEA NOT NULL,
    name       TEXT NOT NULL,
    scopes     TEXT NOT NULL,
    tenant_id  TEXT NOT NULL DEFAULT '',
    created_at BIGINT NOT NULL,
    created_by TEXT NOT NULL,
    revoked_at BIGINT
);

CREATE INDEX api_keys_created ON api_keys (created_at, id);

-- The audit log is append-only: the trigger refuses every UPDATE and DELETE (TRUNCATE needs
-- the table owner's privilege and is refused by a second trigger). before_json and after_json
-- are JSON text (not jsonb, which would reorder keys), NULL when there was no object.
CREATE TABLE audit_log (
    seq        BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at         BIGINT NOT NULL,
    actor      TEXT NOT NULL,
    action     TEXT NOT NULL,
    target     TEXT NOT NULL,
    before_json TEXT,
    after_json  TEXT,
    request_id TEXT NOT NULL DEFAULT ''
);

CREATE INDEX audit_log_actor ON audit_log (actor, seq);
CREATE INDEX audit_log_action ON audit_log (action, seq);

CREATE FUNCTION audit_log_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit_log is append-only';
END;
$$;

CREATE TRIGGER audit_log_no_change BEFORE UPDATE OR DELETE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION audit_log_append_only();

CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log
    FOR EACH STATEMENT EXECUTE FUNCTION audit_log_append_only();
