package timer

import (
	"context"
	"errors"
	"time"
)

// ErrConflict is returned by Schedule when a timer with the same ID exists with a different
// handler, fire time or payload.
var ErrConflict = errors.New("timer: id already scheduled with different content")

// Record is a timer as stored, with its delivery state.
type Record struct {
	Timer
	// NextAt is when the timer is next due: FireAt until an attempt fails, then the retry
	// time. It is zero once the timer is done.
	NextAt time.Time
	// Attempts counts failed deliveries.
	Attempts int
	// LastError is the last failed delivery's error, at most MaxErrorBytes bytes.
	LastError string
	// DoneAt is when the handler succeeded; zero while the timer is pending.
	DoneAt time.Time
}

// Pending reports whether the timer has not yet been delivered successfully.
func (r Record) Pending() bool { return r.DoneAt.IsZero() }

// Backlog describes the pending timers of a Store.
type Backlog struct {
	// Pending counts the timers not yet delivered successfully.
	Pending int64
	// Earliest is the earliest NextAt among them, zero if there are none.
	Earliest time.Time
}

// Key names one scheduling of a timer: its ID and fire time. A timer cancelled and scheduled
// again under the same ID with another fire time is a different key, so a late result for the
// old one never completes the new one.
type Key struct {
	ID     string
	FireAt time.Time
}

// Store keeps timers durably. Implementations: store/sqlite and store/postgres, held to the
// same behaviour by store/storetest.TestTimerStore. Times are stored with nanosecond
// precision.
type Store interface {
	// Schedule inserts t as pending, due at t.FireAt, unless a timer with its ID exists.
	// It reports whether it inserted. An existing timer (pending or done) with the same
	// handler, fire time and payload is left alone (false, nil); one with different content
	// gives ErrConflict.
	Schedule(ctx context.Context, t Timer) (bool, error)
	// ScheduleMany inserts, in one transaction, every timer of ts whose ID does not exist
	// yet, as pending and due at its FireAt, and returns how many it inserted. An existing
	// ID is left alone whatever its content (no ErrConflict): it is for callers that make
	// their IDs unique, such as bulk loads. Storage adapters whose domain transactions
	// schedule timers (a ledger commit) write them the same way. The caller validates ts.
	ScheduleMany(ctx context.Context, ts []Timer) (int, error)
	// Cancel deletes the pending timer with this ID and reports whether there was one. A
	// done timer is left alone (false).
	Cancel(ctx context.Context, id string) (bool, error)
	// Due returns up to limit pending timers with from <= NextAt < to, ordered by NextAt
	// then ID.
	Due(ctx context.Context, from, to time.Time, limit int) ([]Record, error)
	// Done marks the pending timers named by keys as done at the given time, in one
	// transaction. Keys that name no pending timer are ignored.
	Done(ctx context.Context, keys []Key, at time.Time) error
	// Fail records a failed delivery of the pending timer named by k: attempts, the error and
	// the time of the next attempt. It is a no-op if k names no pending timer.
	Fail(ctx context.Context, k Key, attempts int, lastErr string, next time.Time) error
	// Get returns the timer with this ID, pending or done.
	Get(ctx context.Context, id string) (Record, bool, error)
	// Backlog counts the pending timers and finds the earliest NextAt among them. It may
	// read the whole index of pending timers, so it is for occasional use (a metrics scrape).
	Backlog(ctx context.Context) (Backlog, error)
	// Purge deletes up to limit done timers that were done before the given time and
	// returns how many it deleted. After a purge, the ID may be scheduled again.
	Purge(ctx context.Context, doneBefore time.Time, limit int) (int, error)
}

// Provider is implemented by storage handles (such as a ledger store) that also hold timers:
// it returns the timer store of the same database.
type Provider interface {
	Timers() Store
}

// SameContent reports whether a and b have the same handler, fire time and payload: the
// comparison Store.Schedule makes for an existing ID.
func SameContent(a, b Timer) bool {
	return a.Handler == b.Handler && a.FireAt.UnixNano() == b.FireAt.UnixNano() && string(a.Payload) == string(b.Payload)
}
