package lock

import (
	"context"
	"errors"
	"sync"
	"time"
)

// Lease is one grant of a lock. It renews itself (unless Options.RenewEvery is negative) and
// closes Lost when it could not be renewed before its deadline or found itself superseded.
// Its methods are safe for concurrent use.
//
// The deadline is measured by this process's monotonic clock from the start of the last
// successful grant or renewal, so it always falls before the backend could grant the lock to
// anyone else: a holder that trusts Valid never overlaps its successor unless clocks run at
// different rates or the backend's wall clock steps. Fencing tokens cover those cases.
type Lease struct {
	l      *Locker
	name   string
	holder string
	ttl    time.Duration
	token  uint64

	mu       sync.Mutex
	deadline time.Time
	ended    bool // lost or released
	lost     chan struct{}

	stop     chan struct{}
	stopOnce sync.Once
	done     chan struct{}
}

func newLease(l *Locker, name, holder string, ttl time.Duration, token uint64, start time.Time) *Lease {
	x := &Lease{
		l: l, name: name, holder: holder, ttl: ttl, token: token,
		deadline: start.Add(ttl),
		lost:     make(chan struct{}),
		stop:     make(chan struct{}),
		done:     make(chan struct{}),
	}
	go x.run()
	return x
}

// Token is the lease's fencing token.
func (x *Lease) Token() uint64 { return x.token }

// Name is the lock's name.
func (x *Lease) Name() string { return x.name }

// Lost is closed once the lease is lost: not renewed before its deadline, or superseded by
// another grant. It is not closed by Release.
func (x *Lease) Lost() <-chan struct{} { return x.lost }

// Valid reports whether the lease is still held by this process's clock: neither lost nor
// released, and its deadline not passed. Check it right before acting under the lock; the
// storage the lock guards must still check the token, since the check and the act are not
// atomic.
func (x *Lease) Valid() bool {
	x.mu.Lock()
	defer x.mu.Unlock()
	return !x.ended && time.Now().Before(x.deadline)
}

// Renew extends the lease to its TTL from now. It returns ErrLost if the lease is already
// lost (which includes a deadline that passed before the call), and ErrNotHeld (closing Lost)
// if the backend has granted the lock to someone else.
func (x *Lease) Renew(ctx context.Context) error {
	start := time.Now()
	x.mu.Lock()
	if x.ended {
		x.mu.Unlock()
		return ErrLost
	}
	if !start.Before(x.deadline) {
		x.mu.Unlock()
		x.markLost("not renewed before its deadline")
		return ErrLost
	}
	x.mu.Unlock()
	err := x.l.b.Renew(ctx, x.name, x.holder, x.token, x.ttl)
	if errors.Is(err, ErrNotHeld) {
		x.markLost("superseded by another grant")
		return err
	}
	if err != nil {
		return err
	}
	x.mu.Lock()
	defer x.mu.Unlock()
	if x.ended {
		return ErrLost
	}
	if d := start.Add(x.ttl); d.After(x.deadline) {
		x.deadline = d
	}
	return nil
}

// Release stops renewing and frees the lock so that the next holder gets it at once. It
// returns ErrNotHeld if the lease had already been superseded. Release is idempotent in
// effect: releasing again returns ErrNotHeld.
func (x *Lease) Release(ctx context.Context) error {
	x.stopOnce.Do(func() { close(x.stop) })
	<-x.done
	x.mu.Lock()
	x.ended = true
	x.mu.Unlock()
	err := x.l.b.Release(ctx, x.name, x.holder, x.token)
	if err == nil {
		if o := x.l.opts.Observer; o != nil {
			o.Released(x.name, x.token)
		}
		x.l.log.Info("lock released", "lock", x.name, "token", x.token)
	}
	return err
}

func (x *Lease) markLost(why string) {
	x.mu.Lock()
	if x.ended {
		x.mu.Unlock()
		return
	}
	x.ended = true
	x.mu.Unlock()
	if o := x.l.opts.Observer; o != nil {
		o.Lost(x.name, x.token)
	}
	x.l.log.Warn("lock lost", "lock", x.name, "token", x.token, "why", why)
	close(x.lost) // last: whoever waits on Lost sees the observer already told
}

// run watches the deadline and renews the lease.
func (x *Lease) run() {
	defer close(x.done)
	every := x.l.opts.RenewEvery
	auto := every >= 0
	if every == 0 {
		every = x.ttl / 3
	}
	nextRenew := time.Now().Add(every)
	for {
		x.mu.Lock()
		deadline, ended := x.deadline, x.ended
		x.mu.Unlock()
		if ended {
			return
		}
		now := time.Now()
		if !now.Before(deadline) {
			x.markLost("not renewed before its deadline")
			return
		}
		wake := deadline
		if auto && nextRenew.Before(wake) {
			wake = nextRenew
		}
		t := time.NewTimer(wake.Sub(now))
		select {
		case <-x.stop:
			t.Stop()
			return
		case <-x.lost:
			t.Stop()
			return
		case <-t.C:
		}
		if !auto || time.Now().Before(nextRenew) {
			continue
		}
		// A renewal that ends after the deadline is of no use.
		ctx, cancel := context.WithDeadline(context.Background(), deadline)
		err := x.Renew(ctx)
		cancel()
		switch {
		case err == nil:
			nextRenew = time.Now().Add(every)
		case errors.Is(err, ErrNotHeld), errors.Is(err, ErrLost):
			return
		default:
			x.l.log.Warn("lock: renew failed; retrying", "lock", x.name, "token", x.token, "err", err)
			nextRenew = time.Now().Add(min(every, max(x.ttl/10, 10*time.Millisecond)))
		}
	}
}
