package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/fincore/fincore/platform/timer"
)

// TimerStore is platform/timer's storage on PostgreSQL (table timers, migration 0003).
type TimerStore struct {
	db *DB
}

var _ timer.Store = (*TimerStore)(nil)

// Timers returns the timer store of d.
func (d *DB) Timers() *TimerStore { return &TimerStore{db: d} }

// Timers returns the timer store of the database the ledger store lives in.
func (o ownedLedger) Timers() timer.Store { return o.db.Timers() }

const timerCols = `id, handler, fire_at, payload, next_at, attempts, last_error, done_at`

// Schedule inserts t unless its id exists; see timer.Store.
func (s *TimerStore) Schedule(ctx context.Context, t timer.Timer) (bool, error) {
	payload := nonNil(t.Payload)
	// A timer cancelled between the insert and the read is gone: try again, a bounded
	// number of times.
	for range 3 {
		tag, err := s.db.pool.Exec(ctx, `INSERT INTO timers (id, handler, fire_at, payload, next_at)
			VALUES ($1, $2, $3, $4, $3) ON CONFLICT (id) DO NOTHING`,
			t.ID, t.Handler, t.FireAt.UnixNano(), payload)
		if err != nil {
			return false, err
		}
		if tag.RowsAffected() == 1 {
			return true, nil
		}
		r, ok, err := s.Get(ctx, t.ID)
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

// sqlInsertTimers inserts timers from one array per column, skipping existing ids.
const sqlInsertTimers = `INSERT INTO timers (id, handler, fire_at, payload, next_at)
	SELECT id, handler, fire_at, payload, fire_at
	FROM unnest($1::text[], $2::text[], $3::bigint[], $4::bytea[]) AS t(id, handler, fire_at, payload)
	ON CONFLICT (id) DO NOTHING`

// timerArrays is sqlInsertTimers' arguments.
func timerArrays(ts []timer.Timer) []any {
	ids, handlers := make([]string, len(ts)), make([]string, len(ts))
	fires, payloads := make([]int64, len(ts)), make([][]byte, len(ts))
	for i, t := range ts {
		ids[i], handlers[i], fires[i], payloads[i] = t.ID, t.Handler, t.FireAt.UnixNano(), nonNil(t.Payload)
	}
	return []any{ids, handlers, fires, payloads}
}

// scheduleManyChunk bounds the timers one statement of ScheduleMany sends.
const scheduleManyChunk = 10_000

// ScheduleMany inserts the timers of ts whose ids do not exist yet, in one transaction.
func (s *TimerStore) ScheduleMany(ctx context.Context, ts []timer.Timer) (int, error) {
	if len(ts) == 0 {
		return 0, nil
	}
	tx, err := s.db.pool.Begin(ctx)
	if err != nil {
		return 0, err
	}
	defer tx.Rollback(ctx)
	inserted := 0
	for len(ts) > 0 {
		n := min(len(ts), scheduleManyChunk)
		tag, err := tx.Exec(ctx, sqlInsertTimers, timerArrays(ts[:n])...)
		if err != nil {
			return 0, fmt.Errorf("insert timers: %w", err)
		}
		inserted += int(tag.RowsAffected())
		ts = ts[n:]
	}
	return inserted, tx.Commit(ctx)
}

// Cancel deletes the pending timer id.
func (s *TimerStore) Cancel(ctx context.Context, id string) (bool, error) {
	tag, err := s.db.pool.Exec(ctx, `DELETE FROM timers WHERE id = $1 AND next_at IS NOT NULL`, id)
	if err != nil {
		return false, err
	}
	return tag.RowsAffected() == 1, nil
}

// Due returns pending timers with from <= next_at < to, by next_at then id.
func (s *TimerStore) Due(ctx context.Context, from, to time.Time, limit int) ([]timer.Record, error) {
	if limit <= 0 {
		return nil, nil
	}
	rows, err := s.db.pool.Query(ctx, `SELECT `+timerCols+` FROM timers
		WHERE next_at >= $1 AND next_at < $2 ORDER BY next_at, id LIMIT $3`, from.UnixNano(), to.UnixNano(), limit)
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

// Done marks the pending timers named by keys done, in one statement.
func (s *TimerStore) Done(ctx context.Context, keys []timer.Key, at time.Time) error {
	if len(keys) == 0 {
		return nil
	}
	ids := make([]string, len(keys))
	fires := make([]int64, len(keys))
	for i, k := range keys {
		ids[i], fires[i] = k.ID, k.FireAt.UnixNano()
	}
	_, err := s.db.pool.Exec(ctx, `UPDATE timers AS t SET next_at = NULL, done_at = $1
		FROM (SELECT unnest($2::text[]) AS id, unnest($3::bigint[]) AS fire_at) AS d
		WHERE t.id = d.id AND t.fire_at = d.fire_at AND t.next_at IS NOT NULL`, at.UnixNano(), ids, fires)
	return err
}

// Fail records a failed delivery of the pending timer k.
func (s *TimerStore) Fail(ctx context.Context, k timer.Key, attempts int, lastErr string, next time.Time) error {
	_, err := s.db.pool.Exec(ctx, `UPDATE timers SET attempts = $1, last_error = $2, next_at = $3
		WHERE id = $4 AND fire_at = $5 AND next_at IS NOT NULL`, attempts, lastErr, next.UnixNano(), k.ID, k.FireAt.UnixNano())
	return err
}

// Get returns the timer id, pending or done.
func (s *TimerStore) Get(ctx context.Context, id string) (timer.Record, bool, error) {
	r, err := scanTimer(s.db.pool.QueryRow(ctx, `SELECT `+timerCols+` FROM timers WHERE id = $1`, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return timer.Record{}, false, nil
	}
	return r, err == nil, err
}

// Backlog counts the pending timers and finds the earliest next_at, from the index on it.
func (s *TimerStore) Backlog(ctx context.Context) (timer.Backlog, error) {
	var b timer.Backlog
	var earliest *int64
	err := s.db.pool.QueryRow(ctx, `SELECT count(*), min(next_at) FROM timers WHERE next_at IS NOT NULL`).Scan(&b.Pending, &earliest)
	if earliest != nil {
		b.Earliest = time.Unix(0, *earliest).UTC()
	}
	return b, err
}

// Purge deletes up to limit timers done before doneBefore.
func (s *TimerStore) Purge(ctx context.Context, doneBefore time.Time, limit int) (int, error) {
	if limit <= 0 {
		return 0, nil
	}
	tag, err := s.db.pool.Exec(ctx, `DELETE FROM timers WHERE id IN
		(SELECT id FROM timers WHERE done_at < $1 ORDER BY done_at LIMIT $2)`, doneBefore.UnixNano(), limit)
	if err != nil {
		return 0, err
	}
	return int(tag.RowsAffected()), nil
}

func scanTimer(r pgx.Row) (timer.Record, error) {
	var rec timer.Record
	var fireAt int64
	var nextAt, doneAt *int64
	var attempts int32
	if err := r.Scan(&rec.ID, &rec.Handler, &fireAt, &rec.Payload, &nextAt, &attempts, &rec.LastError, &doneAt); err != nil {
		return rec, err
	}
	rec.Attempts = int(attempts)
	rec.FireAt = time.Unix(0, fireAt).UTC()
	if nextAt != nil {
		rec.NextAt = time.Unix(0, *nextAt).UTC()
	}
	if doneAt != nil {
		rec.DoneAt = time.Unix(0, *doneAt).UTC()
	}
	return rec, nil
}
