-- Risk engine (package risk). Times are Unix nanoseconds.
-- Rule set versions are immutable; risk_ruleset_heads says which are active and shadow.
CREATE TABLE risk_rulesets (
    name       TEXT NOT NULL,
    version    INTEGER NOT NULL,
    source     BYTEA NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (name, version)
);

CREATE TABLE risk_ruleset_heads (
    name       TEXT PRIMARY KEY,
    latest     INTEGER NOT NULL,
    active     INTEGER NOT NULL DEFAULT 0,
    shadow     INTEGER NOT NULL DEFAULT 0,
    updated_at BIGINT NOT NULL
);

CREATE TABLE risk_list_items (
    list     TEXT NOT NULL,
    item     TEXT NOT NULL,
    added_at BIGINT NOT NULL,
    PRIMARY KEY (list, item)
);

-- The event stream, in arrival order (seq): replayed into the feature state at start and by
-- backtests. An event id is logged once.
CREATE TABLE risk_events (
    seq         BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    id          TEXT NOT NULL UNIQUE,
    type        TEXT NOT NULL,
    ts          BIGINT NOT NULL,
    body        BYTEA NOT NULL,
    label       TEXT NOT NULL DEFAULT '',
    received_at BIGINT NOT NULL
);

CREATE INDEX risk_events_ts ON risk_events (ts);

-- Every decision, active and shadow, with what it saw (features, models, rule hits).
CREATE TABLE risk_decisions (
    seq        BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    event_id   TEXT NOT NULL,
    ruleset    TEXT NOT NULL,
    version    INTEGER NOT NULL,
    shadow     BOOLEAN NOT NULL,
    decision   TEXT NOT NULL,
    score      INTEGER NOT NULL,
    body       BYTEA NOT NULL,
    decided_at BIGINT NOT NULL
);

CREATE INDEX risk_decisions_event ON risk_decisions (event_id);

-- The newest snapshot of the feature state; it covers the events up to seq.
CREATE TABLE risk_snapshots (
    id         INTEGER PRIMARY KEY CHECK (id = 1),
    seq        BIGINT NOT NULL,
    data       BYTEA NOT NULL,
    created_at BIGINT NOT NULL
);
