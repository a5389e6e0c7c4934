-- The transactional outbox (platform/outbox): events written in the same transaction as the
-- records they announce, published to the bus in seq order by the relay. AUTOINCREMENT makes
-- seq strictly increasing and never reused, even after the newest rows are pruned. Times are
-- Unix nanoseconds; published_at is NULL until the relay has published the row.
CREATE TABLE outbox (
    seq          INTEGER PRIMARY KEY AUTOINCREMENT,
    subject      TEXT NOT NULL,
    msg_id       TEXT NOT NULL UNIQUE,
    payload      BLOB NOT NULL,
    created_at   INTEGER NOT NULL,
    published_at INTEGER
);
-- The relay's queue: unpublished rows in seq order.
CREATE INDEX outbox_unpublished ON outbox (seq) WHERE published_at IS NULL;
-- Pruning: published rows by age.
CREATE INDEX outbox_published ON outbox (published_at) WHERE published_at IS NOT NULL;
