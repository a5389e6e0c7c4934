-- The ledger: accounts, and the journal of transfer records. Same tables and columns as the
-- SQLite schema. Accounts hold no balances: each journal row carries both accounts' balances
-- just after it, so an account's balances are those of its latest row (see ledger.Batch).
-- Ids use the "C" collation so that they compare and sort bytewise, as in SQLite (and faster
-- than a linguistic collation).
CREATE TABLE accounts (
    id        TEXT COLLATE "C" PRIMARY KEY,
    currency  TEXT NOT NULL,
    code      TEXT NOT NULL,
    flags     BIGINT NOT NULL,
    metadata  TEXT NOT NULL,
    timestamp BIGINT NOT NULL,
    req_hash  BYTEA NOT NULL
);

-- One row per journal record; timestamp is the ledger's strictly increasing clock, so rows
-- append at the end of the table. Each row carries both accounts' balances just after it,
-- which makes balance-as-of a single index look-up.
CREATE TABLE transfers (
    timestamp          BIGINT PRIMARY KEY,
    id                 TEXT COLLATE "C" NOT NULL UNIQUE,
    debit_account_id   TEXT COLLATE "C" NOT NULL,
    credit_account_id  TEXT COLLATE "C" NOT NULL,
    amount             BIGINT NOT NULL,
    currency           TEXT NOT NULL,
    code               TEXT NOT NULL,
    pending            BIGINT NOT NULL,
    pending_id         TEXT COLLATE "C" NOT NULL,
    timeout_seconds    BIGINT NOT NULL,
    expires_at         BIGINT NOT NULL,
    status             TEXT NOT NULL,
    metadata           TEXT NOT NULL,
    pending_delta      BIGINT NOT NULL,
    posted_delta       BIGINT NOT NULL,
    dr_debits_pending  BIGINT NOT NULL,
    dr_debits_posted   BIGINT NOT NULL,
    dr_credits_pending BIGINT NOT NULL,
    dr_credits_posted  BIGINT NOT NULL,
    cr_debits_pending  BIGINT NOT NULL,
    cr_debits_posted   BIGINT NOT NULL,
    cr_credits_pending BIGINT NOT NULL,
    cr_credits_posted  BIGINT NOT NULL,
    req_hash           BYTEA NOT NULL,
    hash               BYTEA NOT NULL
);
CREATE INDEX transfers_debit ON transfers (debit_account_id, timestamp);
CREATE INDEX transfers_credit ON transfers (credit_account_id, timestamp);
CREATE INDEX transfers_expiry ON transfers (expires_at) WHERE status = 'pending' AND expires_at > 0;

-- The writer's fencing token and the last timestamp it used.
CREATE TABLE ledger_writer (
    id             BIGINT PRIMARY KEY CHECK (id = 1),
    token          BIGINT NOT NULL,
    last_timestamp BIGINT NOT NULL
);
INSERT INTO ledger_writer (id, token, last_timestamp) VALUES (1, 0, 0);
