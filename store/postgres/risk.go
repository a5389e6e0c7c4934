package postgres

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/fincore/fincore/risk"
)

// RiskStore is the risk engine's storage on PostgreSQL (migration 0007).
type RiskStore struct {
	db *DB
}

var _ risk.Store = (*RiskStore)(nil)

// Risk returns the risk store of d.
func (d *DB) Risk() *RiskStore { return &RiskStore{db: d} }

// PutRuleSet stores source as the next version of name, unless it equals the newest.
func (s *RiskStore) PutRuleSet(ctx context.Context, name string, source []byte, at time.Time) (int, bool, error) {
	var v int
	var created bool
	err := pgx.BeginFunc(ctx, s.db.pool, func(tx pgx.Tx) error {
		// Serialise versions of one name: the head row is created first, then locked.
		if _, err := tx.Exec(ctx, `INSERT INTO risk_ruleset_heads (name, latest, updated_at) VALUES ($1, 0, $2)
			ON CONFLICT (name) DO NOTHING`, name, at.UnixNano()); err != nil {
			return err
		}
		var latest int
		if err := tx.QueryRow(ctx, `SELECT latest FROM risk_ruleset_heads WHERE name = $1 FOR UPDATE`, name).Scan(&latest); err != nil {
			return err
		}
		if latest > 0 {
			var prev []byte
			if err := tx.QueryRow(ctx, `SELECT source FROM risk_rulesets WHERE name = $1 AND version = $2`, name, latest).Scan(&prev); err != nil {
				return err
			}
			if bytes.Equal(prev, source) {
				v = latest
				return nil
			}
		}
		v, created = latest+1, true
		if _, err := tx.Exec(ctx, `INSERT INTO risk_rulesets (name, version, source, created_at) VALUES ($1, $2, $3, $4)`,
			name, v, source, at.UnixNano()); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, `UPDATE risk_ruleset_heads SET latest = $2, updated_at = $3 WHERE name = $1`, name, v, at.UnixNano())
		return err
	})
	if err != nil {
		return 0, false, err
	}
	return v, created, nil
}

// RuleSetSource returns one stored version.
func (s *RiskStore) RuleSetSource(ctx context.Context, name string, version int) ([]byte, bool, error) {
	var src []byte
	err := s.db.pool.QueryRow(ctx, `SELECT source FROM risk_rulesets WHERE name = $1 AND version = $2`, name, version).Scan(&src)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, false, nil
	}
	return src, err == nil, err
}

// SetHead records the active and shadow versions of h.Name.
func (s *RiskStore) SetHead(ctx context.Context, h risk.Head) error {
	tag, err := s.db.pool.Exec(ctx, `UPDATE risk_ruleset_heads SET active = $1, shadow = $2, updated_at = $3 WHERE name = $4 AND latest > 0`,
		h.Active, h.Shadow, h.Updated.UnixNano(), h.Name)
	if err != nil {
		return err
	}
	if tag.RowsAffected() != 1 {
		return fmt.Errorf("rule set %s is not stored", h.Name)
	}
	return nil
}

// Heads returns every rule set's versions, by name.
func (s *RiskStore) Heads(ctx context.Context) ([]risk.Head, error) {
	rows, err := s.db.pool.Query(ctx, `SELECT name, latest, active, shadow, updated_at FROM risk_ruleset_heads WHERE latest > 0 ORDER BY name`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []risk.Head
	for rows.Next() {
		var h risk.Head
		var at int64
		if err := rows.Scan(&h.Name, &h.Latest, &h.Active, &h.Shadow, &at); err != nil {
			return nil, err
		}
		h.Updated = time.Unix(0, at).UTC()
		out = append(out, h)
	}
	return out, rows.Err()
}

// AddListItems adds items to list.
func (s *RiskStore) AddListItems(ctx context.Context, list string, items []string, at time.Time) (int, error) {
	tag, err := s.db.pool.Exec(ctx, `INSERT INTO risk_list_items (list, item, added_at)
		SELECT $1, x, $3 FROM unnest($2::text[]) AS x ON CONFLICT (list, item) DO NOTHING`, list, items, at.UnixNano())
	if err != nil {
		return 0, err
	}
	return int(tag.RowsAffected()), nil
}

// RemoveListItems removes items from list.
func (s *RiskStore) RemoveListItems(ctx context.Context, list string, items []string) (int, error) {
	tag, err := s.db.pool.Exec(ctx, `DELETE FROM risk_list_items WHERE list = $1 AND item = ANY($2::text[])`, list, items)
	if err != nil {
		return 0, err
	}
	return int(tag.RowsAffected()), nil
}

// ListItems returns every item of every list.
func (s *RiskStore) ListItems(ctx context.Context) (map[string][]string, error) {
	rows, err := s.db.pool.Query(ctx, `SELECT list, item FROM risk_list_items ORDER BY list, item`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[string][]string{}
	for rows.Next() {
		var l, it string
		if err := rows.Scan(&l, &it); err != nil {
			return nil, err
		}
		out[l] = append(out[l], it)
	}
	return out, rows.Err()
}

// AppendLog writes events (skipping logged ids) and decisions in one transaction: one
// statement per table, the rows passed as arrays and unnested in order (a statement per row
// cost the server several times more than the rows themselves).
func (s *RiskStore) AppendLog(ctx context.Context, events []risk.LoggedEvent, decisions []risk.LoggedDecision) error {
	if len(events) == 0 && len(decisions) == 0 {
		return nil
	}
	var b pgx.Batch
	if len(events) > 0 {
		ids, types, labels := make([]string, len(events)), make([]string, len(events)), make([]string, len(events))
		ts, received := make([]int64, len(events)), make([]int64, len(events))
		bodies := make([][]byte, len(events))
		for i := range events {
			e := &events[i]
			ids[i], types[i], labels[i], ts[i], received[i], bodies[i] = e.ID, e.Type, e.Label, e.Time.UnixNano(), e.Received.UnixNano(), e.Body
		}
		// Rows are inserted (and numbered) in array order; a repeated id, logged before or
		// earlier in the arrays, is skipped.
		b.Queue(`INSERT INTO risk_events (id, type, ts, body, label, received_at)
			SELECT id, type, ts, body, label, received_at
			FROM unnest($1::text[], $2::text[], $3::bigint[], $4::bytea[], $5::text[], $6::bigint[])
				WITH ORDINALITY AS r (id, type, ts, body, label, received_at, n)
			ORDER BY n
			ON CONFLICT (id) DO NOTHING`, ids, types, ts, bodies, labels, received)
	}
	if len(decisions) > 0 {
		ids, sets, outcomes := make([]string, len(decisions)), make([]string, len(decisions)), make([]string, len(decisions))
		versions, scores := make([]int32, len(decisions)), make([]int32, len(decisions))
		shadows := make([]bool, len(decisions))
		at := make([]int64, len(decisions))
		bodies := make([][]byte, len(decisions))
		for i := range decisions {
			d := &decisions[i]
			ids[i], sets[i], outcomes[i], versions[i], scores[i] = d.EventID, d.RuleSet, d.Decision, int32(d.Version), int32(d.Score)
			shadows[i], at[i], bodies[i] = d.Shadow, d.At.UnixNano(), d.Body
		}
		// event_seq: the logged event's seq (NULL if it is not logged; migration 0012).
		b.Queue(`INSERT INTO risk_decisions (event_id, ruleset, version, shadow, decision, score, body, decided_at, event_seq)
			SELECT r.event_id, r.ruleset, r.version, r.shadow, r.decision, r.score, r.body, r.decided_at, e.seq
			FROM unnest($1::text[], $2::text[], $3::int[], $4::bool[], $5::text[], $6::int[], $7::bytea[], $8::bigint[])
				WITH ORDINALITY AS r (event_id, ruleset, version, shadow, decision, score, body, decided_at, n)
			LEFT JOIN risk_events e ON e.id = r.event_id
			ORDER BY r.n`, ids, sets, versions, shadows, outcomes, scores, bodies, at)
	}
	return pgx.BeginFunc(ctx, s.db.pool, func(tx pgx.Tx) error {
		return tx.SendBatch(ctx, &b).Close()
	})
}

const riskEventCols = `seq, id, type, ts, body, label, received_at`

func scanRiskEvent(sc interface{ Scan(...any) error }) (risk.LoggedEvent, error) {
	var e risk.LoggedEvent
	var ts, rec int64
	var body []byte
	if err := sc.Scan(&e.Seq, &e.ID, &e.Type, &ts, &body, &e.Label, &rec); err != nil {
		return e, err
	}
	e.Time, e.Received, e.Body = time.Unix(0, ts).UTC(), time.Unix(0, rec).UTC(), body
	return e, nil
}

// Events returns logged events after afterSeq at or after from, by seq.
func (s *RiskStore) Events(ctx context.Context, afterSeq int64, from time.Time, limit int) ([]risk.LoggedEvent, error) {
	rows, err := s.db.pool.Query(ctx, `SELECT `+riskEventCols+` FROM risk_events WHERE seq > $1 AND ts >= $2 ORDER BY seq LIMIT $3`,
		afterSeq, from.UnixNano(), limit)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []risk.LoggedEvent
	for rows.Next() {
		e, err := scanRiskEvent(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, e)
	}
	return out, rows.Err()
}

// LastEvent returns the event with the highest seq.
func (s *RiskStore) LastEvent(ctx context.Context) (risk.LoggedEvent, bool, error) {
	e, err := scanRiskEvent(s.db.pool.QueryRow(ctx, `SELECT `+riskEventCols+` FROM risk_events ORDER BY seq DESC LIMIT 1`))
	if errors.Is(err, pgx.ErrNoRows) {
		return e, false, nil
	}
	return e, err == nil, err
}

// Decisions returns the logged decisions of the event ids: through the events' seq, or by id
// for decisions logged without their event (migration 0012).
func (s *RiskStore) Decisions(ctx context.Context, eventIDs []string) ([]risk.LoggedDecision, error) {
	// Two branches rather than one OR, which the planner answered with a scan of the table.
	rows, err := s.db.pool.Query(ctx, `SELECT event_id, ruleset, version, shadow, decision, score, body, decided_at FROM (
			SELECT d.seq, d.event_id, d.ruleset, d.version, d.shadow, d.decision, d.score, d.body, d.decided_at
			FROM risk_events e JOIN risk_decisions d ON d.event_seq = e.seq WHERE e.id = ANY($1::text[])
			UNION ALL
			SELECT seq, event_id, ruleset, version, shadow, decision, score, body, decided_at
			FROM risk_decisions WHERE event_seq IS NULL AND event_id = ANY($1::text[])
		) AS d ORDER BY seq`, eventIDs)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []risk.LoggedDecision
	for rows.Next() {
		var d risk.LoggedDecision
		var at int64
		var body []byte
		if err := rows.Scan(&d.EventID, &d.RuleSet, &d.Version, &d.Shadow, &d.Decision, &d.Score, &body, &at); err != nil {
			return nil, err
		}
		d.Body, d.At = body, time.Unix(0, at).UTC()
		out = append(out, d)
	}
	return out, rows.Err()
}

// SaveSnapshot replaces the snapshot.
func (s *RiskStore) SaveSnapshot(ctx context.Context, seq int64, data []byte, at time.Time) error {
	_, err := s.db.pool.Exec(ctx, `INSERT INTO risk_snapshots (id, seq, data, created_at) VALUES (1, $1, $2, $3)
		ON CONFLICT (id) DO UPDATE SET seq = excluded.seq, data = excluded.data, created_at = excluded.created_at`, seq, data, at.UnixNano())
	return err
}

// LoadSnapshot returns the snapshot.
func (s *RiskStore) LoadSnapshot(ctx context.Context) (int64, []byte, bool, error) {
	var seq int64
	var data []byte
	err := s.db.pool.QueryRow(ctx, `SELECT seq, data FROM risk_snapshots WHERE id = 1`).Scan(&seq, &data)
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, nil, false, nil
	}
	return seq, data, err == nil, err
}

// Risk returns the risk store of the database the ledger store lives in.
func (o ownedLedger) Risk() risk.Store { return o.db.Risk() }
