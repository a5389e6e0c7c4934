package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/fincore/fincore/platform/timer"
)

// TimerStore is platform/timer's storage on SQLite (table timers, migration 0003).
type TimerStore struct {
	db                                *DB
	insert, due, done, fail, cancelSt *sql.Stmt
	// insertMany holds multi-row inserts that skip existing ids, by rows per statement
	// (insertChunks).
	insertMany map[int]*sql.Stmt
}

var _ timer.Store = (*TimerStore)(nil)

// Timers returns the timer store of d, with its statements prepared.
func (d *DB) Timers() (*TimerStore, error) {
	s := &TimerStore{db: d, insertMany: map[int]*sql.Stmt{}}
	for _, n := range insertChunks {
		q := `INSERT INTO timers (id, handler, fire_at, payload, next_at) VALUES ` +
			strings.Repeat("(?,?,?,?,?),", n-1) + "(?,?,?,?,?) ON CONFLICT (id) DO NOTHING"
		var err error
		if s.insertMany[n], err = d.write.Prepare(q); err != nil {
			return nil, fmt.Errorf("prepare timer insert: %w", err)
		}
	}
	for _, p := range []struct {
		db *sql.DB
		st **sql.Stmt
		q  string
	}{
		{d.write, &s.insert, `INSERT INTO timers (id, handler, fire_at, payload, next_at)
			VALUES (?, ?, ?, ?, ?) ON CONFLICT (id) DO NOTHING`},
		{d.read, &s.due, `SELECT ` + timerCols + ` FROM timers
			WHERE next_at >= ? AND next_at < ? ORDER BY next_at, id LIMIT ?`},
		{d.write, &s.done, `UPDATE timers SET next_at = NULL, done_at = ?
			WHERE id = ? AND fire_at = ? AND next_at IS NOT NULL`},
		{d.write, &s.fail, `UPDATE timers SET attempts = ?, last_error = ?, next_at = ?
			WHERE id = ? AND fire_at = ? AND next_at IS NOT NULL`},
		{d.write, &s.cancelSt, `DELETE FROM timers WHERE id = ? AND next_at IS NOT NULL`},
	} {
		var err error
		if *p.st, err = p.db.Prepare(p.q); err != nil {
			return nil, fmt.Errorf("prepare timer statement: %w", err)
		}
	}
	return s, nil
}

// Timers returns the timer store of the database the ledger store lives in.
func (o ownedLedger) Timers() timer.Store { return o.timers }

const timerCols = `id, handler, fire_at, payload, next_at, attempts, last_error, done_at`

func nonNil(b []byte) []byte {
	if b == nil {
		return []byte{}
	}
	return b
}

// Schedule inserts t unless its id exists; see timer.Store.
func (s *TimerStore) Schedule(ctx context.Context, t timer.Timer) (bool, error) {
	// A timer cancelled between the insert and the read is gone: try again, a bounded
	// number of times.
	for range 3 {
		res, err := s.insert.ExecContext(ctx, t.ID, t.Handler, t.FireAt.UnixNano(), nonNil(t.Payload), t.FireAt.UnixNano())
		if err != nil {
			return false, err
		}
		if n, err := res.RowsAffected(); err != nil {
			return false, err
		} else if n == 1 {
			return true, nil
		}
		r, ok, err := s.get(ctx, s.db.write, t.ID)
		if err != nil {
			return false, err
		}
		if !ok {
			continue
		}
		if !timer.SameContent(r.Timer, t) {
			return false, timer.ErrConflict
		}
		return false, nil
	}
	return false, fmt.Errorf("schedule timer %s: cancelled concurrently, three times", t.ID)
}

// ScheduleMany inserts the timers of ts whose ids do not exist yet, in one transaction.
func (s *TimerStore) ScheduleMany(ctx context.Context, ts []timer.Timer) (int, error) {
	if len(ts) == 0 {
		return 0, nil
	}
	tx, err := s.db.write.BeginTx(ctx, nil)
	if err != nil {
		return 0, err
	}
	defer tx.Rollback()
	n, err := s.insertRows(ctx, tx, ts)
	if err != nil {
		return 0, err
	}
	return n, tx.Commit()
}

// insertRows inserts timers in tx, skipping existing ids, in multi-row statements; the
// ledger's Commit uses it for the expiry timers of its pending transfers.
func (s *TimerStore) insertRows(ctx context.Context, tx *sql.Tx, ts []timer.Timer) (int, error) {
	args := make([]any, 0, 5*min(len(ts), insertChunks[0]))
	inserted := 0
	for len(ts) > 0 {
		n := chunkRows(len(ts))
		args = args[:0]
		for _, t := range ts[:n] {
			at := t.FireAt.UnixNano()
			args = append(args, t.ID, t.Handler, at, nonNil(t.Payload), at)
		}
		res, err := tx.StmtContext(ctx, s.insertMany[n]).ExecContext(ctx, args...)
		if err != nil {
			return inserted, fmt.Errorf("insert timers: %w", err)
		}
		k, err := res.RowsAffected()
		if err != nil {
			return inserted, err
		}
		inserted += int(k)
		ts = ts[n:]
	}
	return inserted, nil
}

// Cancel deletes the pending timer id.
func (s *TimerStore) Cancel(ctx context.Context, id string) (bool, error) {
	res, err := s.cancelSt.ExecContext(ctx, id)
	if err != nil {
		return false, err
	}
	n, err := res.RowsAffected()
	return n == 1, err
}

// Due returns pending timers with from <= next_at < to, by next_at then id.
func (s *TimerStore) Due(ctx context.Context, from, to time.Time, limit int) ([]timer.Record, error) {
	if limit <= 0 {
		return nil, nil
	}
	rows, err := s.due.QueryContext(ctx, from.UnixNano(), to.UnixNano(), limit)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []timer.Record
	for rows.Next() {
		r, err := scanTimer(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

// Done marks the pending timers named by keys done, in one transaction.
func (s *TimerStore) Done(ctx context.Context, keys []timer.Key, at time.Time) error {
	if len(keys) == 0 {
		return nil
	}
	tx, err := s.db.write.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	st := tx.StmtContext(ctx, s.done)
	for _, k := range keys {
		if _, err := st.ExecContext(ctx, at.UnixNano(), k.ID, k.FireAt.UnixNano()); err != nil {
			return fmt.Errorf("mark timer %s done: %w", k.ID, err)
		}
	}
	return tx.Commit()
}

// Fail records a failed delivery of the pending timer k.
func (s *TimerStore) Fail(ctx context.Context, k timer.Key, attempts int, lastErr string, next time.Time) error {
	_, err := s.fail.ExecContext(ctx, attempts, lastErr, next.UnixNano(), k.ID, k.FireAt.UnixNano())
	return err
}

// Get returns the timer id, pending or done.
func (s *TimerStore) Get(ctx context.Context, id string) (timer.Record, bool, error) {
	return s.get(ctx, s.db.read, id)
}

func (s *TimerStore) get(ctx context.Context, db *sql.DB, id string) (timer.Record, bool, error) {
	r, err := scanTimer(db.QueryRowContext(ctx, `SELECT `+timerCols+` FROM timers WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return timer.Record{}, false, nil
	}
	return r, err == nil, err
}

// Backlog counts the pending timers and finds the earliest next_at, from the index on it.
func (s *TimerStore) Backlog(ctx context.Context) (timer.Backlog, error) {
	var b timer.Backlog
	var earliest sql.NullInt64
	err := s.db.read.QueryRowContext(ctx, `SELECT count(*), min(next_at) FROM timers WHERE next_at IS NOT NULL`).Scan(&b.Pending, &earliest)
	if earliest.Valid {
		b.Earliest = time.Unix(0, earliest.Int64).UTC()
	}
	return b, err
}

// Purge deletes up to limit timers done before doneBefore.
func (s *TimerStore) Purge(ctx context.Context, doneBefore time.Time, limit int) (int, error) {
	if limit <= 0 {
		return 0, nil
	}
	res, err := s.db.write.ExecContext(ctx, `DELETE FROM timers WHERE id IN
		(SELECT id FROM timers WHERE done_at < ? ORDER BY done_at LIMIT ?)`, doneBefore.UnixNano(), limit)
	if err != nil {
		return 0, err
	}
	n, err := res.RowsAffected()
	return int(n), err
}

func scanTimer(r scanner) (timer.Record, error) {
	var rec timer.Record
	var fireAt int64
	var nextAt, doneAt sql.NullInt64
	if err := r.Scan(&rec.ID, &rec.Handler, &fireAt, &rec.Payload, &nextAt, &rec.Attempts, &rec.LastError, &doneAt); err != nil {
		return rec, err
	}
	rec.FireAt = time.Unix(0, fireAt).UTC()
	if nextAt.Valid {
		rec.NextAt = time.Unix(0, nextAt.Int64).UTC()
	}
	if doneAt.Valid {
		rec.DoneAt = time.Unix(0, doneAt.Int64).UTC()
	}
	return rec, nil
}
