-- API keys and the audit log (platform/auth). Times are Unix nanoseconds. A key's token is
-- never stored, only its SHA-256 (hash); scopes are space-separated; tenant_id is '' when the
-- key has none; revoked_at is NULL while the key is active.
CREATE TABLE api_keys (
    id         TEXT PRIMARY KEY,
    hash       BLOB NOT NULL,
    name       TEXT NOT NULL,
    scopes     TEXT NOT NULL,
    tenant_id  TEXT NOT NULL DEFAULT '',
    created_at INTEGER NOT NULL,
    created_by TEXT NOT NULL,
    revoked_at INTEGER
);

CREATE INDEX api_keys_created ON api_keys (created_at, id);

-- The audit log is append-only: the triggers refuse every UPDATE and DELETE. before_json and
-- after_json are JSON text, NULL when there was no object.
CREATE TABLE audit_log (
    seq        INTEGER PRIMARY KEY AUTOINCREMENT,
    at         INTEGER NOT NULL,
    actor      TEXT NOT NULL,
    action     TEXT NOT NULL,
    target     TEXT NOT NULL,
    before_json TEXT,
    after_json  TEXT,
    request_id TEXT NOT NULL DEFAULT ''
);

CREATE INDEX audit_log_actor ON audit_log (actor, seq);
CREATE INDEX audit_log_action ON audit_log (action, seq);

CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log
BEGIN
    SELECT RAISE(ABORT, 'audit_log is append-only');
END;

CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log
BEGIN
    SELECT RAISE(ABORT, 'audit_log is append-only');
END;
