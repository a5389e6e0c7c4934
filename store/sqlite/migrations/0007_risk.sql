-- Risk engine (package risk). Times are Unix nanoseconds.
-- Rule set versions are immutable; risk_ruleset_heads says which are active and shadow.
CREATE TABLE risk_rulesets (
    name       TEXT NOT NULL,
    version    INTEGER NOT NULL,
    source     BLOB NOT NULL,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (name, version)
);

CREATE TABLE risk_ruleset_heads (
    name       TEXT PRIMARY KEY,
    latest     INTEGER NOT NULL,
    active     INTEGER NOT NULL DEFAULT 0,
    shadow     INTEGER NOT NULL DEFAULT 0,
    updated_at INTEGER NOT NULL
);

CREATE TABLE risk_list_items (
    list     TEXT NOT NULL,
    item     TEXT NOT NULL,
    added_at INTEGER NOT NULL,
    PRIMARY KEY (list, item)
);

-- The event stream, in arrival order (seq): replayed into the feature state at start and by
-- backtests. An event id is logged once.
CREATE TABLE risk_events (
    seq         INTEGER PRIMARY KEY,
    id          TEXT NOT NULL UNIQUE,
    type        TEXT NOT NULL,
    ts          INTEGER NOT NULL,
    body        BLOB NOT NULL,
    label       TEXT NOT NULL DEFAULT '',
    received_at INTEGER NOT NULL
);

CREATE INDEX risk_events_ts ON risk_events (ts);

-- Every decision, active and shadow, with what it saw (features, models, rule hits).
CREATE TABLE risk_decisions (
    seq        INTEGER PRIMARY KEY,
    event_id   TEXT NOT NULL,
    ruleset    TEXT NOT NULL,
    version    INTEGER NOT NULL,
    shadow     INTEGER NOT NULL,
    decision   TEXT NOT NULL,
    score      INTEGER NOT NULL,
    body       BLOB NOT NULL,
    decided_at INTEGER NOT NULL
);

CREATE INDEX risk_decisions_event ON risk_decisions (event_id);

-- The newest snapshot of the feature state; it covers the events up to seq.
CREATE TABLE risk_snapshots (
    id         INTEGER PRIMARY KEY CHECK (id = 1),
    seq        INTEGER NOT NULL,
    data       BLOB NOT NULL,
    created_at INTEGER NOT NULL
);
