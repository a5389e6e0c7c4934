// Package lock is fincore's lease-based lock with fencing tokens (DESIGN.md requirement F4).
//
// A holder acquires a named lock for a time to live (TTL) and keeps it by renewing before the
// TTL runs out; if it cannot, the lease expires and another holder may take it over. Every
// grant carries a fencing token strictly greater than every token granted for that name
// before, whoever held it. A lease can always be lost without its holder noticing in time (a
// process paused by the scheduler, a garbage collection, a stopped VM): the token is what makes
// that harmless. Storage that a lock guards records the highest token it has seen and refuses
// writes that carry a lower one, so a deposed holder can never write once its successor has
// (the ledger does this: ledger.Store.AcquireWriter).
//
// The lock's state lives in a [Backend]: PostgreSQL and SQLite tables (store/postgres,
// store/sqlite) or a JetStream key-value bucket (platform/lock/natskv). All are held to the
// same behaviour by platform/lock/locktest. A [Locker] on a backend hands out [Lease]s, which
// renew themselves and close [Lease.Lost] when they could not be renewed in time.
//
// Limits: names are 1 to [NameMax] bytes of letters, digits, '_', '-' and '.'; holders are 1
// to [HolderMax] bytes without control characters; TTLs are between [MinTTL] and [MaxTTL].
package lock

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"
	"unicode"
)

// Errors.
var (
	// ErrHeld is returned by TryAcquire when another holder's lease is current.
	ErrHeld = errors.New("lock: held by another holder")
	// ErrNotHeld is returned by Renew and Release for a lease that is no longer current: it
	// expired and another grant (a takeover) superseded it, or it was released.
	ErrNotHeld = errors.New("lock: lease is no longer held")
	// ErrLost is returned by a Lease's methods once its Lost channel is closed.
	ErrLost = errors.New("lock: lease lost")
)

// Limits.
const (
	NameMax   = 128
	HolderMax = 256
	// MinTTL bounds how short a lease may be: shorter leases would expire between two
	// renewals on a busy machine.
	MinTTL = 100 * time.Millisecond
	// MaxTTL bounds how long a dead holder can keep others waiting.
	MaxTTL = time.Hour
)

// Grant is the result of a successful acquisition.
type Grant struct {
	// Token is the fencing token: greater than every token granted for the name before.
	Token uint64
	// Previous is the holder of the lease this grant replaced without its being released:
	// another holder whose lease had expired (a takeover), or the same holder (a restarted
	// process reclaiming its own lease). It is "" when the lock was free.
	Previous string
}

// Backend stores the state of named locks. Implementations must make each method atomic with
// respect to every other call on the same name, from any process.
type Backend interface {
	// TryAcquire grants name to holder for ttl if the lock is free (never held, or released),
	// its lease has expired, or holder already holds it (a restarted holder reclaims its
	// lease at once; the new token still fences the old incarnation). Otherwise it returns
	// ErrHeld.
	TryAcquire(ctx context.Context, name, holder string, ttl time.Duration) (Grant, error)
	// Renew extends the lease granted with token to ttl from now. It returns ErrNotHeld if
	// that lease is no longer current. Renewing a lease that expired but that nobody took
	// over succeeds: no later token exists, so nothing it guards can have moved on.
	Renew(ctx context.Context, name, holder string, token uint64, ttl time.Duration) error
	// Release frees the lock at once if the lease granted with token is current, keeping the
	// token counter, and returns ErrNotHeld otherwise.
	Release(ctx context.Context, name, holder string, token uint64) error
}

// Provider is implemented by storage handles (such as a ledger store) whose database also
// holds a lock table: it returns that database's Backend.
type Provider interface {
	Locks() Backend
}

// Observer is told about a Locker's leases (for metrics). Its methods must not block.
type Observer interface {
	// Acquired: a lease was granted; takeover is true when it replaced an unreleased lease.
	Acquired(name string, token uint64, takeover bool)
	// Lost: a lease could not be renewed in time, or was found superseded.
	Lost(name string, token uint64)
	// Released: a lease was released by its holder.
	Released(name string, token uint64)
}

// Options configure a Locker. Zero values take the defaults.
type Options struct {
	// RenewEvery is how often a lease renews itself. Zero means a third of the lease's TTL;
	// a negative value turns automatic renewal off (the holder calls Renew itself).
	RenewEvery time.Duration
	// Poll is how often Acquire tries again while the lock is held. Zero means a tenth of
	// the TTL, between 20 ms and 1 s.
	Poll     time.Duration
	Observer Observer
	Logger   *slog.Logger
}

// Locker hands out leases on the locks of one backend. It is safe for concurrent use.
type Locker struct {
	b    Backend
	opts Options
	log  *slog.Logger
}

// New returns a Locker on b.
func New(b Backend, opts Options) *Locker {
	log := opts.Logger
	if log == nil {
		log = slog.Default()
	}
	return &Locker{b: b, opts: opts, log: log.With("component", "lock")}
}

// TryAcquire takes the lock if it can at once, and returns ErrHeld if another holder's lease
// is current.
func (l *Locker) TryAcquire(ctx context.Context, name, holder string, ttl time.Duration) (*Lease, error) {
	if err := Validate(name, holder, ttl); err != nil {
		return nil, err
	}
	start := time.Now()
	g, err := l.b.TryAcquire(ctx, name, holder, ttl)
	if err != nil {
		return nil, err
	}
	if g.Token == 0 {
		return nil, fmt.Errorf("lock: backend granted %q token 0", name)
	}
	if o := l.opts.Observer; o != nil {
		o.Acquired(name, g.Token, g.Previous != "")
	}
	attrs := []any{"lock", name, "holder", holder, "token", g.Token, "ttl", ttl}
	if g.Previous != "" {
		attrs = append(attrs, "previous_holder", g.Previous)
	}
	l.log.Info("lock acquired", attrs...)
	return newLease(l, name, holder, ttl, g.Token, start), nil
}

// Acquire blocks until it holds the lock or ctx ends. While another holder's lease is current
// it tries again every Options.Poll; backend errors are logged and retried with backoff (up to
// five seconds), so a standby survives its storage restarting.
func (l *Locker) Acquire(ctx context.Context, name, holder string, ttl time.Duration) (*Lease, error) {
	if err := Validate(name, holder, ttl); err != nil {
		return nil, err
	}
	poll := l.opts.Poll
	if poll <= 0 {
		poll = min(max(ttl/10, 20*time.Millisecond), time.Second)
	}
	backoff := poll
	for {
		lease, err := l.TryAcquire(ctx, name, holder, ttl)
		if err == nil {
			return lease, nil
		}
		wait := poll
		if !errors.Is(err, ErrHeld) {
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			l.log.Warn("lock: acquire", "lock", name, "err", err, "retry_in", backoff)
			wait, backoff = backoff, min(2*backoff, 5*time.Second)
		} else {
			backoff = poll
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, ctx.Err()
		case <-t.C:
		}
	}
}

// Validate checks a lock name, a holder and a TTL against the limits.
func Validate(name, holder string, ttl time.Duration) error {
	if name == "" || len(name) > NameMax {
		return fmt.Errorf("lock: name must be 1 to %d bytes", NameMax)
	}
	for _, r := range name {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_' || r == '-' || r == '.') {
			return fmt.Errorf("lock: name %q may hold only letters, digits, '_', '-' and '.'", name)
		}
	}
	if holder == "" || len(holder) > HolderMax {
		return fmt.Errorf("lock: holder must be 1 to %d bytes", HolderMax)
	}
	for _, r := range holder {
		if unicode.IsControl(r) || r == unicode.ReplacementChar {
			return fmt.Errorf("lock: holder %q holds a control character or invalid UTF-8", holder)
		}
	}
	if ttl < MinTTL || ttl > MaxTTL {
		return fmt.Errorf("lock: ttl %s is outside [%s, %s]", ttl, MinTTL, MaxTTL)
	}
	return nil
}
