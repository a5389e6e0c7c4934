// Package timer is fincore's durable timer service (DESIGN.md requirement F2): one-shot
// timers with an ID, a fire time and a payload, delivered to a named in-process handler or
// published to a bus subject.
//
// Guarantees:
//   - A timer never fires before its FireAt (by the service's clock).
//   - Delivery is at-least-once: a timer is marked done in the Store only after its handler
//     returned nil (or the bus accepted the message), so a crash between the two delivers it
//     again. Handlers must be idempotent; Timer.ID is the natural de-duplication key.
//   - A failing delivery is retried with exponential backoff until it succeeds: the n-th
//     failure waits min(BackoffBase·2^(n-1), BackoffMax). Every failure is recorded in the
//     Store (attempt count, last error, next attempt time).
//   - Timers survive restarts: those that came due while no service ran fire as soon as
//     Start loads them, oldest first.
//   - Schedule is idempotent by ID: the same ID with the same content is a no-op; the same
//     ID with a different content is ErrConflict.
//
// Memory is bounded however many timers are pending: the service keeps only a window of the
// near future in memory — timers due before its horizon, at most Config.WindowMax of them,
// in a min-heap by due time — and refills it from the Store's index on the next due time as
// time advances. Completions are written in groups (one transaction per group of up to
// Config.DoneBatchMax timers).
//
// One Service should run per Store at a time: two would both deliver every timer (which is
// allowed by at-least-once, but wasteful). Electing one needs a lock (requirement F4).
package timer

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
)

// Limits on a timer's fields.
const (
	// MaxIDBytes bounds Timer.ID.
	MaxIDBytes = 200
	// MaxHandlerBytes bounds Timer.Handler, including a BusPrefix.
	MaxHandlerBytes = 200
	// MaxPayloadBytes bounds Timer.Payload: 64 KiB.
	MaxPayloadBytes = 64 << 10
	// MaxErrorBytes bounds the last error recorded for a failed delivery.
	MaxErrorBytes = 1000
)

// BusPrefix marks a handler that publishes to a bus subject: a timer whose Handler is
// "bus:ledger.pending.expire" is published to subject "ledger.pending.expire" with message
// id "timer:<ID>:<FireAt in Unix nanoseconds>", so that re-sends are de-duplicated.
const BusPrefix = "bus:"

// Timer is a one-shot timer.
type Timer struct {
	// ID identifies the timer; scheduling the same ID again is idempotent.
	ID string
	// Handler names a handler registered with Service.Register, or a bus subject after
	// BusPrefix.
	Handler string
	// FireAt is the earliest time the timer fires.
	FireAt time.Time
	// Payload is passed to the handler unchanged.
	Payload []byte
}

// Validate checks a timer's fields against the limits above.
func (t Timer) Validate() error {
	switch {
	case t.ID == "":
		return errors.New("timer: empty id")
	case len(t.ID) > MaxIDBytes:
		return fmt.Errorf("timer: id of %d bytes exceeds %d", len(t.ID), MaxIDBytes)
	case t.Handler == "" || t.Handler == BusPrefix:
		return fmt.Errorf("timer %s: empty handler", t.ID)
	case len(t.Handler) > MaxHandlerBytes:
		return fmt.Errorf("timer %s: handler of %d bytes exceeds %d", t.ID, len(t.Handler), MaxHandlerBytes)
	case t.FireAt.IsZero():
		return fmt.Errorf("timer %s: zero fire time", t.ID)
	case t.FireAt.Year() < 1970 || t.FireAt.Year() > 2200:
		return fmt.Errorf("timer %s: fire time %s out of range 1970..2200", t.ID, t.FireAt)
	case len(t.Payload) > MaxPayloadBytes:
		return fmt.Errorf("timer %s: payload of %d bytes exceeds %d", t.ID, len(t.Payload), MaxPayloadBytes)
	}
	return nil
}

// Subject returns the bus subject of a bus handler, and whether Handler is one.
func (t Timer) Subject() (string, bool) {
	return strings.CutPrefix(t.Handler, BusPrefix)
}

// HandlerFunc handles a fired timer. Returning an error schedules a retry.
type HandlerFunc func(ctx context.Context, t Timer) error

// Publisher publishes a message with a de-duplication id; platform/bus.Bus satisfies it.
type Publisher interface {
	Publish(ctx context.Context, subject, msgID string, data []byte) error
}

// Observer is told about every delivery attempt, for metrics (platform/obs.Metrics is one).
// It is called on the delivering worker right after the attempt, so it must be fast and must
// not block.
type Observer interface {
	TimerDelivered(d Delivery)
}

// Delivery is one delivery attempt of a timer.
type Delivery struct {
	// Handler is the timer's Handler (a registered name, or BusPrefix and a subject).
	Handler string
	// Attempt is 1 for the first delivery, 2 for the first retry, and so on.
	Attempt int
	// Lateness is when the attempt started minus when it was due: the timer's FireAt for the
	// first attempt, the retry time for a retry. A timer that came due while no service ran
	// is as late as the downtime.
	Lateness time.Duration
	// Err is the handler's (or the bus's) error, nil on success.
	Err error
}

// Clock tells the time and waits for it. Tests inject a fake clock; the default is the
// system clock.
type Clock interface {
	Now() time.Time
	// After returns a channel that receives once d has elapsed on this clock.
	After(d time.Duration) <-chan time.Time
}

// SystemClock is the real clock.
type SystemClock struct{}

// Now returns time.Now().
func (SystemClock) Now() time.Time { return time.Now() }

// After returns time.After(d).
func (SystemClock) After(d time.Duration) <-chan time.Time { return time.After(d) }
