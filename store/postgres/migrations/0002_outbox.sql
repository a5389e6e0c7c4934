-- The transactional outbox (platform/outbox): events written in the same transaction as the
-- records they announce, published to the bus in seq order by the relay. seq comes from an
-- identity sequence drawn inside the ledger's commit, after its fencing update has locked the
-- writer row, so commits (and their seq ranges) are serialised: seq increases in commit order.
-- Times are Unix nanoseconds; published_at is NULL until the relay has published the row.
CREATE TABLE outbox (
    seq          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    subject      TEXT NOT NULL,
    msg_id       TEXT NOT NULL UNIQUE,
    payload      BYTEA NOT NULL,
    created_at   BIGINT NOT NULL,
    published_at BIGINT
);
-- The relay's queue: unpublished rows in seq order.
CREATE INDEX outbox_unpublished ON outbox (seq) WHERE published_at IS NULL;
-- Pruning: published rows by age.
CREATE INDEX outbox_published ON outbox (published_at) WHERE published_at IS NOT NULL;
