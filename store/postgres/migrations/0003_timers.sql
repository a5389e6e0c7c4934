-- Durable timers (platform/timer). Times are Unix nanoseconds. next_at is when the timer is
-- next due (fire_at, then the retry time after a failed delivery) and NULL once it is done;
-- the index on it serves the service's window refills. Done rows are kept for the retention
-- period so that scheduling the same id again is recognised as a duplicate.
CREATE TABLE timers (
    id         TEXT PRIMARY KEY,
    handler    TEXT NOT NULL,
    fire_at    BIGINT NOT NULL,
    payload    BYTEA NOT NULL,
    next_at    BIGINT,
    attempts   INTEGER NOT NULL DEFAULT 0,
    last_error TEXT NOT NULL DEFAULT '',
    done_at    BIGINT
);

CREATE INDEX timers_next_at ON timers (next_at, id);
CREATE INDEX timers_done_at ON timers (done_at);
