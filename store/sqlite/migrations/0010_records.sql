-- Records of other modules (payments, refunds, loans, ...) written by the ledger's writer in
-- the same transaction as their transfers (ledger.Record). Times are Unix nanoseconds.
CREATE TABLE module_records (
    kind       TEXT    NOT NULL,
    id         TEXT    NOT NULL,
    version    INTEGER NOT NULL,
    owner      TEXT    NOT NULL,
    status     TEXT    NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    data       BLOB    NOT NULL,
    PRIMARY KEY (kind, id)
) WITHOUT ROWID;
CREATE INDEX module_records_created ON module_records (kind, created_at, id);
CREATE INDEX module_records_owner ON module_records (kind, owner, created_at, id);
CREATE INDEX module_records_status ON module_records (kind, status, created_at, id);
