-- Decisions are found through their event's position in the event log (risk_events.seq, an
-- integer that grows with the log) instead of a second index on the event id: event ids are
-- often random, and every logged decision then wrote a leaf page of that index of its own
-- (BENCHMARKS.md, "the decision log"). event_seq is set when the decision is logged after its
-- event (as the engine logs them); a decision logged without its event keeps NULL and is
-- found by id through a partial index that holds only those.
ALTER TABLE risk_decisions ADD COLUMN event_seq BIGINT;

UPDATE risk_decisions SET event_seq = (SELECT seq FROM risk_events WHERE risk_events.id = risk_decisions.event_id);

DROP INDEX risk_decisions_event;

CREATE INDEX risk_decisions_event_seq ON risk_decisions (event_seq);

CREATE INDEX risk_decisions_unlogged ON risk_decisions (event_id) WHERE event_seq IS NULL;
