package sqlite

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/fincore/fincore/risk"
)

// RiskStore is the risk engine's storage on SQLite (migration 0007).
type RiskStore struct {
	db *DB
}

var _ risk.Store = (*RiskStore)(nil)

// Risk returns the risk store of d.
func (d *DB) Risk() *RiskStore { return &RiskStore{db: d} }

// PutRuleSet stores source as the next version of name, unless it equals the newest.
func (s *RiskStore) PutRuleSet(ctx context.Context, name string, source []byte, at time.Time) (int, bool, error) {
	tx, err := s.db.write.BeginTx(ctx, nil)
	if err != nil {
		return 0, false, err
	}
	defer tx.Rollback()
	var latest int
	err = tx.QueryRowContext(ctx, `SELECT latest FROM risk_ruleset_heads WHERE name = ?`, name).Scan(&latest)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return 0, false, err
	}
	if latest > 0 {
		var prev []byte
		if err := tx.QueryRowContext(ctx, `SELECT source FROM risk_rulesets WHERE name = ? AND version = ?`, name, latest).Scan(&prev); err != nil {
			return 0, false, err
		}
		if bytes.Equal(prev, source) {
			return latest, false, nil
		}
	}
	v := latest + 1
	if _, err := tx.ExecContext(ctx, `INSERT INTO risk_rulesets (name, version, source, created_at) VALUES (?, ?, ?, ?)`,
		name, v, source, at.UnixNano()); err != nil {
		return 0, false, err
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO risk_ruleset_heads (name, latest, updated_at) VALUES (?, ?, ?)
		ON CONFLICT (name) DO UPDATE SET latest = excluded.latest, updated_at = excluded.updated_at`, name, v, at.UnixNano()); err != nil {
		return 0, false, err
	}
	return v, true, tx.Commit()
}

// RuleSetSource returns one stored version.
func (s *RiskStore) RuleSetSource(ctx context.Context, name string, version int) ([]byte, bool, error) {
	var src []byte
	err := s.db.read.QueryRowContext(ctx, `SELECT source FROM risk_rulesets WHERE name = ? AND version = ?`, name, version).Scan(&src)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, false, nil
	}
	return src, err == nil, err
}

// SetHead records the active and shadow versions of h.Name.
func (s *RiskStore) SetHead(ctx context.Context, h risk.Head) error {
	res, err := s.db.write.ExecContext(ctx, `UPDATE risk_ruleset_heads SET active = ?, shadow = ?, updated_at = ? WHERE name = ?`,
		h.Active, h.Shadow, h.Updated.UnixNano(), h.Name)
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n != 1 {
		return fmt.Errorf("rule set %s is not stored", h.Name)
	}
	return nil
}

// Heads returns every rule set's versions, by name.
func (s *RiskStore) Heads(ctx context.Context) ([]risk.Head, error) {
	rows, err := s.db.read.QueryContext(ctx, `SELECT name, latest, active, shadow, updated_at FROM risk_ruleset_heads ORDER BY name`)
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
	return s.listExec(ctx, `INSERT INTO risk_list_items (list, item, added_at) VALUES (?, ?, ?) ON CONFLICT (list, item) DO NOTHING`,
		list, items, at.UnixNano())
}

// RemoveListItems removes items from list.
func (s *RiskStore) RemoveListItems(ctx context.Context, list string, items []string) (int, error) {
	return s.listExec(ctx, `DELETE FROM risk_list_items WHERE list = ? AND item = ?`, list, items)
}

func (s *RiskStore) listExec(ctx context.Context, q, list string, items []string, extra ...any) (int, error) {
	tx, err := s.db.write.BeginTx(ctx, nil)
	if err != nil {
		return 0, err
	}
	defer tx.Rollback()
	st, err := tx.PrepareContext(ctx, q)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, it := range items {
		res, err := st.ExecContext(ctx, append([]any{list, it}, extra...)...)
		if err != nil {
			return 0, err
		}
		k, _ := res.RowsAffected()
		n += int(k)
	}
	return n, tx.Commit()
}

// ListItems returns every item of every list.
func (s *RiskStore) ListItems(ctx context.Context) (map[string][]string, error) {
	rows, err := s.db.read.QueryContext(ctx, `SELECT list, item FROM risk_list_items ORDER BY list, item`)
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

// AppendLog writes events (skipping logged ids) and decisions in one transaction, many rows
// per INSERT statement (a statement per row cost more than the rows themselves), with
// statements prepared once (parsing them for every batch was a fifth of the inserts' CPU
// time in fincore bench risk).
func (s *RiskStore) AppendLog(ctx context.Context, events []risk.LoggedEvent, decisions []risk.LoggedDecision) error {
	if len(events) == 0 && len(decisions) == 0 {
		return nil
	}
	st, err := s.db.riskLog.get(s.db.write)
	if err != nil {
		return err
	}
	tx, err := s.db.write.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	args := make([]any, 0, min(max(len(events)*6, len(decisions)*8), logChunks[0]*8))
	for len(events) > 0 {
		n := logChunk(len(events))
		args = args[:0]
		for i := range events[:n] {
			e := &events[i]
			args = append(args, e.ID, e.Type, e.Time.UnixNano(), []byte(e.Body), e.Label, e.Received.UnixNano())
		}
		if _, err := tx.StmtContext(ctx, st.events[n]).ExecContext(ctx, args...); err != nil {
			return fmt.Errorf("log events: %w", err)
		}
		events = events[n:]
	}
	for len(decisions) > 0 {
		n := logChunk(len(decisions))
		args = args[:0]
		for i := range decisions[:n] {
			d := &decisions[i]
			args = append(args, d.EventID, d.RuleSet, d.Version, d.Shadow, d.Decision, d.Score, []byte(d.Body), d.At.UnixNano(), d.EventID)
		}
		if _, err := tx.StmtContext(ctx, st.decisions[n]).ExecContext(ctx, args...); err != nil {
			return fmt.Errorf("log decisions: %w", err)
		}
		decisions = decisions[n:]
	}
	return tx.Commit()
}

// logChunks are the rows per INSERT statement of the log, largest first: powers of two, so
// that a batch of any size takes few statements (at most 9 parameters a row: far below
// SQLite's limit of 32,766).
var logChunks = []int{256, 128, 64, 32, 16, 8, 4, 2, 1}

// logChunk is the rows of the next insert when left rows remain.
func logChunk(left int) int {
	for _, c := range logChunks {
		if left >= c {
			return c
		}
	}
	return 1
}

// riskLogStmts are the log's insert statements, by rows per statement, prepared on the
// writer connection when first needed and kept for the life of the database.
type riskLogStmts struct {
	once              sync.Once
	err               error
	events, decisions map[int]*sql.Stmt
}

func (r *riskLogStmts) get(write *sql.DB) (*riskLogStmts, error) {
	r.once.Do(func() {
		r.events, r.decisions = map[int]*sql.Stmt{}, map[int]*sql.Stmt{}
		for _, n := range logChunks {
			q := `INSERT INTO risk_events (id, type, ts, body, label, received_at) VALUES ` + rowsSQL(6, n) + ` ON CONFLICT (id) DO NOTHING`
			if r.events[n], r.err = write.Prepare(q); r.err != nil {
				return
			}
			// event_seq: the logged event's seq, looked up by id (NULL if it is not logged).
			row := "(?,?,?,?,?,?,?,?,(SELECT seq FROM risk_events WHERE id = ?))"
			q = `INSERT INTO risk_decisions (event_id, ruleset, version, shadow, decision, score, body, decided_at, event_seq) VALUES ` +
				strings.Repeat(row+",", n-1) + row
			if r.decisions[n], r.err = write.Prepare(q); r.err != nil {
				return
			}
		}
	})
	return r, r.err
}

// rowsSQL is (?, ?, ...), ... : rows groups of cols parameters.
func rowsSQL(cols, rows int) string {
	row := "(" + strings.Repeat("?,", cols-1) + "?)"
	return strings.Repeat(row+",", rows-1) + row
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
	rows, err := s.db.read.QueryContext(ctx, `SELECT `+riskEventCols+` FROM risk_events WHERE seq > ? AND ts >= ? ORDER BY seq LIMIT ?`,
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
	e, err := scanRiskEvent(s.db.read.QueryRowContext(ctx, `SELECT `+riskEventCols+` FROM risk_events ORDER BY seq DESC LIMIT 1`))
	if errors.Is(err, sql.ErrNoRows) {
		return e, false, nil
	}
	return e, err == nil, err
}

// Decisions returns the logged decisions of the event ids: through the event's seq, or by id
// for decisions logged without their event (migration 0012).
func (s *RiskStore) Decisions(ctx context.Context, eventIDs []string) ([]risk.LoggedDecision, error) {
	var out []risk.LoggedDecision
	for _, id := range eventIDs {
		rows, err := s.db.read.QueryContext(ctx, `SELECT event_id, ruleset, version, shadow, decision, score, body, decided_at
			FROM risk_decisions WHERE event_seq = (SELECT seq FROM risk_events WHERE id = ?1)
				OR (event_seq IS NULL AND event_id = ?1)
			ORDER BY seq`, id)
		if err != nil {
			return nil, err
		}
		for rows.Next() {
			var d risk.LoggedDecision
			var at int64
			var body []byte
			if err := rows.Scan(&d.EventID, &d.RuleSet, &d.Version, &d.Shadow, &d.Decision, &d.Score, &body, &at); err != nil {
				rows.Close()
				return nil, err
			}
			d.Body, d.At = body, time.Unix(0, at).UTC()
			out = append(out, d)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// SaveSnapshot replaces the snapshot.
func (s *RiskStore) SaveSnapshot(ctx context.Context, seq int64, data []byte, at time.Time) error {
	_, err := s.db.write.ExecContext(ctx, `INSERT INTO risk_snapshots (id, seq, data, created_at) VALUES (1, ?, ?, ?)
		ON CONFLICT (id) DO UPDATE SET seq = excluded.seq, data = excluded.data, created_at = excluded.created_at`, seq, data, at.UnixNano())
	return err
}

// LoadSnapshot returns the snapshot.
func (s *RiskStore) LoadSnapshot(ctx context.Context) (int64, []byte, bool, error) {
	var seq int64
	var data []byte
	err := s.db.read.QueryRowContext(ctx, `SELECT seq, data FROM risk_snapshots WHERE id = 1`).Scan(&seq, &data)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, nil, false, nil
	}
	return seq, data, err == nil, err
}

// Risk returns the risk store of the database the ledger store lives in.
func (o ownedLedger) Risk() risk.Store { return o.db.Risk() }
