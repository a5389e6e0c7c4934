-- Locks with fencing tokens (platform/lock). One row per lock name. token counts the lock's
-- grants and is kept when the lock is released (holder ''), so a lock's tokens only grow.
-- expires_at and acquired_at are Unix nanoseconds by the clock of the one process that uses
-- the database (embedded mode: the data directory's lock keeps others out). Leases left by a
-- process that died are released when the next one opens the database.
CREATE TABLE locks (
    name        TEXT PRIMARY KEY,
    holder      TEXT NOT NULL,
    token       INTEGER NOT NULL,
    expires_at  INTEGER NOT NULL,
    acquired_at INTEGER NOT NULL
);

-- The highest lock token a ledger writer has been started under (0: none yet). The ledger
-- refuses to start a writer under a token that is not above it, and starting one increments
-- the writer token that every commit checks, so a writer whose lease was taken over is fenced.
ALTER TABLE ledger_writer ADD COLUMN lease_token INTEGER NOT NULL DEFAULT 0;
