-- Idempotency keys (platform/idem). Times are Unix nanoseconds. A row is in flight while
-- owner is not empty (status 0, no response yet); then it holds the stored response: status,
-- the replayed headers as a JSON object, and the body. The index on expires_at serves the
-- purge of expired keys.
CREATE TABLE idempotency_keys (
    scope        TEXT NOT NULL,
    idem_key     TEXT NOT NULL,
    fingerprint  BYTEA NOT NULL,
    owner        TEXT NOT NULL,
    status       INTEGER NOT NULL DEFAULT 0,
    header       TEXT NOT NULL DEFAULT '{}',
    body         BYTEA NOT NULL DEFAULT '',
    created_at   BIGINT NOT NULL,
    locked_until BIGINT NOT NULL,
    expires_at   BIGINT NOT NULL,
    PRIMARY KEY (scope, idem_key)
);

CREATE INDEX idempotency_keys_expires_at ON idempotency_keys (expires_at);
