-- Idempotency keys (platform/idem). Times are Unix nanoseconds. A row is in flight while
-- owner is not empty (status 0, no response yet); then it holds the stored response: status,
-- the replayed headers as a JSON object, and the body. The index on expires_at serves the
-- purge of expired keys.
CREATE TABLE idempotency_keys (
    scope        TEXT NOT NULL,
    idem_key     TEXT NOT NULL,
    fingerprint  BLOB NOT NULL,
    owner        TEXT NOT NULL,
    status       INTEGER NOT NULL DEFAULT 0,
    header       TEXT NOT NULL DEFAULT '{}',
    body         BLOB NOT NULL DEFAULT x'',
    created_at   INTEGER NOT NULL,
    locked_until INTEGER NOT NULL,
    expires_at   INTEGER NOT NULL,
    PRIMARY KEY (scope, idem_key)
);

CREATE INDEX idempotency_keys_expires_at ON idempotency_keys (expires_at);
