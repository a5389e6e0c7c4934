-- The ledger: accounts, and the journal of transfer records. Accounts hold no balances:
-- each journal row carries both accounts' balances just after it, so an account's balances
-- are those of its latest row (see ledger.Batch).
CREATE TABLE accounts (
    id        TEXT PRIMARY KEY,
    currency  TEXT NOT NULL,
    code      TEXT NOT NULL,
    flags     INTEGER NOT NULL,
    metadata  TEXT NOT NULL,
    timestamp INTEGER NOT NULL,
    req_hash  BLOB NOT NULL
) WITHOUT ROWID;

-- One row per journal record; timestamp is the ledger's strictly increasing clock, so rows
-- append at the end of the table. Each row carries both accounts' balances just after it,
-- which makes balance-as-of a single index look-up.
CREATE TABLE transfers (
    timestamp         INTEGER PRIMARY KEY,
    id                TEXT NOT NULL UNIQUE,
    debit_account_id  TEXT NOT NULL,
    credit_account_id TEXT NOT NULL,
    amount            INTEGER NOT NULL,
    currency          TEXT NOT NULL,
    code              TEXT NOT NULL,
    pending           INTEGER NOT NULL,
    pending_id        TEXT NOT NULL,
    timeout_seconds   INTEGER NOT NULL,
    expires_at        INTEGER NOT NULL,
    status            TEXT NOT NULL,
    metadata          TEXT NOT NULL,
    pending_delta     INTEGER NOT NULL,
    posted_delta      INTEGER NOT NULL,
    dr_debits_pending  INTEGER NOT NULL,
    dr_debits_posted   INTEGER NOT NULL,
    dr_credits_pending INTEGER NOT NULL,
    dr_credits_posted  INTEGER NOT NULL,
    cr_debits_pending  INTEGER NOT NULL,
    cr_debits_posted   INTEGER NOT NULL,
    cr_credits_pending INTEGER NOT NULL,
    cr_credits_posted  INTEGER NOT NULL,
    req_hash          BLOB NOT NULL,
    hash              BLOB NOT NULL
);
CREATE INDEX transfers_debit ON transfers (debit_account_id, timestamp);
CREATE INDEX transfers_credit ON transfers (credit_account_id, timestamp);
CREATE INDEX transfers_expiry ON transfers (expires_at) WHERE status = 'pending' AND expires_at > 0;

-- The writer's fencing token and the last timestamp it used.
CREATE TABLE ledger_writer (
    id             INTEGER PRIMARY KEY CHECK (id = 1),
    token          INTEGER NOT NULL,
    last_timestamp INTEGER NOT NULL
);
INSERT INTO ledger_writer (id, token, last_timestamp) VALUES (1, 0, 0);
