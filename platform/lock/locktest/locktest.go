// Package locktest is the conformance suite of lock backends: every lock.Backend (PostgreSQL,
// SQLite, JetStream KV, memory) must pass Run.
//
// Timing assertions are one-sided so that a slow machine cannot fail them: "not before the
// TTL" is checked against a start time taken before the grant, and "eventually" waits up to
// half a minute. Where a stall of the test process itself could make an outcome legitimate,
// the test checks the safety property that still must hold (the deposed lease is no longer
// Valid) and skips.
package locktest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fincore/fincore/platform/lock"
)

// Factory creates fresh lock storage for one test and returns a function that opens a handle
// on it. Each handle stands for one process; handles of one Factory call share the storage.
type Factory func(t testing.TB) (open func() lock.Backend)

// eventually bounds every wait for something that must happen.
const eventually = 30 * time.Second

// Run runs the suite.
func Run(t *testing.T, f Factory) {
	tests := []struct {
		name string
		fn   func(t *testing.T, open func() lock.Backend)
	}{
		{"MutualExclusion", testMutualExclusion},
		{"ConcurrentAcquire", testConcurrentAcquire},
		{"ExpiresAfterTTL", testExpiresAfterTTL},
		{"RenewKeepsLease", testRenewKeepsLease},
		{"ReleaseLetsNextIn", testReleaseLetsNextIn},
		{"StaleHolderRefused", testStaleHolderRefused},
		{"SameHolderReclaims", testSameHolderReclaims},
		{"LeaseAcquireWaitsForRelease", testLeaseAcquireWaits},
		{"LeaseLostWhenNotRenewed", testLeaseLostWhenNotRenewed},
		{"LeaseLostWhenSuperseded", testLeaseLostWhenSuperseded},
		{"LeaseRenewsItself", testLeaseRenewsItself},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tc.fn(t, f(t))
		})
	}
}

// Name returns a lock name no other test uses.
func Name(t testing.TB) string {
	var b [4]byte
	if _, err := rand.Read(b[:]); err != nil {
		t.Fatal(err)
	}
	n := strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' {
			return r
		}
		return '_'
	}, t.Name())
	if len(n) > 100 {
		n = n[len(n)-100:]
	}
	return n + "." + hex.EncodeToString(b[:])
}

func ctxFor(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 2*eventually)
	t.Cleanup(cancel)
	return ctx
}

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// acquireEventually retries TryAcquire until it succeeds or the wait runs out.
func acquireEventually(t testing.TB, b lock.Backend, name, holder string, ttl time.Duration) lock.Grant {
	t.Helper()
	ctx := ctxFor(t)
	end := time.Now().Add(eventually)
	for {
		g, err := b.TryAcquire(ctx, name, holder, ttl)
		if err == nil {
			return g
		}
		if !errors.Is(err, lock.ErrHeld) {
			t.Fatalf("TryAcquire(%s): %v", holder, err)
		}
		if time.Now().After(end) {
			t.Fatalf("%s did not get the lock within %s", holder, eventually)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func mustAcquire(t testing.TB, b lock.Backend, name, holder string, ttl time.Duration) lock.Grant {
	t.Helper()
	g, err := b.TryAcquire(ctxFor(t), name, holder, ttl)
	if err != nil {
		t.Fatalf("TryAcquire(%s): %v", holder, err)
	}
	if g.Token == 0 {
		t.Fatalf("TryAcquire(%s) granted token 0", holder)
	}
	return g
}

func wantHeld(t testing.TB, b lock.Backend, name, holder string) {
	t.Helper()
	if g, err := b.TryAcquire(ctxFor(t), name, holder, time.Minute); !errors.Is(err, lock.ErrHeld) {
		t.Fatalf("TryAcquire(%s) while another holds the lock = %+v, %v; want ErrHeld", holder, g, err)
	}
}

func testMutualExclusion(t *testing.T, open func() lock.Backend) {
	a, b := open(), open()
	name := Name(t)
	ga := mustAcquire(t, a, name, "A", time.Minute)
	if ga.Previous != "" {
		t.Errorf("first grant's Previous = %q, want \"\"", ga.Previous)
	}
	wantHeld(t, b, name, "B")
	wantHeld(t, a, name, "B")
	// Another name is another lock.
	mustAcquire(t, b, Name(t), "B", time.Minute)
	wantHeld(t, b, name, "C")
}

func testConcurrentAcquire(t *testing.T, open func() lock.Backend) {
	const n = 8
	name := Name(t)
	ctx := ctxFor(t)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var winners []string
	for i := range n {
		b := open()
		wg.Go(func() {
			holder := fmt.Sprintf("H%d", i)
			_, err := b.TryAcquire(ctx, name, holder, time.Minute)
			switch {
			case err == nil:
				mu.Lock()
				winners = append(winners, holder)
				mu.Unlock()
			case !errors.Is(err, lock.ErrHeld):
				t.Errorf("TryAcquire(%s): %v", holder, err)
			}
		})
	}
	wg.Wait()
	if len(winners) != 1 {
		t.Fatalf("%d concurrent holders got the lock: %v; want exactly 1", len(winners), winners)
	}
}

func testExpiresAfterTTL(t *testing.T, open func() lock.Backend) {
	const ttl = time.Second
	a, b := open(), open()
	name := Name(t)
	start := time.Now()
	ga := mustAcquire(t, a, name, "A", ttl)
	gb := acquireEventually(t, b, name, "B", ttl)
	if waited := time.Since(start); waited < ttl {
		t.Fatalf("B took the lock %s after A acquired it, before A's TTL of %s", waited, ttl)
	}
	if gb.Token <= ga.Token {
		t.Fatalf("takeover token %d is not above the previous token %d", gb.Token, ga.Token)
	}
	if gb.Previous != "A" {
		t.Fatalf("takeover's Previous = %q, want A", gb.Previous)
	}
}

func testRenewKeepsLease(t *testing.T, open func() lock.Backend) {
	const ttl = time.Second
	ctx := ctxFor(t)
	a, b := open(), open()
	name := Name(t)
	lastRenew := time.Now()
	ga := mustAcquire(t, a, name, "A", ttl)
	// Renew well within the TTL for three TTLs: B must never get in.
	for end := time.Now().Add(3 * ttl); time.Now().Before(end); {
		time.Sleep(ttl / 5)
		start := time.Now()
		if err := a.Renew(ctx, name, "A", ga.Token, ttl); err != nil {
			t.Fatalf("Renew: %v", err)
		}
		lastRenew = start
		if g, err := b.TryAcquire(ctx, name, "B", ttl); err == nil {
			if gap := time.Since(lastRenew); gap >= ttl {
				t.Skipf("the test stalled %s between a renewal and a try; the takeover was legitimate", gap)
			}
			t.Fatalf("B took a lease renewed %s ago (TTL %s): %+v", time.Since(lastRenew), ttl, g)
		} else if !errors.Is(err, lock.ErrHeld) {
			t.Fatal(err)
		}
	}
	// The token is the grant's: renewing did not change it.
	if err := a.Renew(ctx, name, "A", ga.Token, time.Minute); err != nil {
		t.Fatalf("Renew with the grant's token after renewals: %v", err)
	}
	wantHeld(t, b, name, "B")
}

func testReleaseLetsNextIn(t *testing.T, open func() lock.Backend) {
	ctx := ctxFor(t)
	a, b := open(), open()
	name := Name(t)
	var last uint64
	for i := range 4 {
		h, hb := "A", a
		if i%2 == 1 {
			h, hb = "B", b
		}
		// A long TTL: the next holder gets in only because of the release.
		g := mustAcquire(t, hb, name, h, time.Hour)
		if g.Token <= last {
			t.Fatalf("grant %d token %d is not above the previous %d", i, g.Token, last)
		}
		if g.Previous != "" {
			t.Fatalf("grant after a release: Previous = %q, want \"\"", g.Previous)
		}
		last = g.Token
		if err := hb.Release(ctx, name, h, g.Token); err != nil {
			t.Fatalf("Release: %v", err)
		}
		if err := hb.Release(ctx, name, h, g.Token); !errors.Is(err, lock.ErrNotHeld) {
			t.Fatalf("second Release = %v, want ErrNotHeld", err)
		}
		if err := hb.Renew(ctx, name, h, g.Token, time.Hour); !errors.Is(err, lock.ErrNotHeld) {
			t.Fatalf("Renew after Release = %v, want ErrNotHeld", err)
		}
	}
}

func testStaleHolderRefused(t *testing.T, open func() lock.Backend) {
	const ttl = 300 * time.Millisecond
	ctx := ctxFor(t)
	a, b, c := open(), open(), open()
	name := Name(t)
	ga := mustAcquire(t, a, name, "A", ttl)
	// A stops renewing (as a paused process would); B takes over with a long lease.
	gb := acquireEventually(t, b, name, "B", time.Hour)
	if gb.Token <= ga.Token {
		t.Fatalf("takeover token %d is not above %d", gb.Token, ga.Token)
	}
	if err := a.Renew(ctx, name, "A", ga.Token, ttl); !errors.Is(err, lock.ErrNotHeld) {
		t.Fatalf("stale holder's Renew = %v, want ErrNotHeld", err)
	}
	if err := a.Release(ctx, name, "A", ga.Token); !errors.Is(err, lock.ErrNotHeld) {
		t.Fatalf("stale holder's Release = %v, want ErrNotHeld", err)
	}
	// Neither touched B's lease.
	if err := b.Renew(ctx, name, "B", gb.Token, time.Hour); err != nil {
		t.Fatalf("B's Renew after the stale holder's attempts: %v", err)
	}
	wantHeld(t, c, name, "C")
	wantHeld(t, a, name, "A")
}

func testSameHolderReclaims(t *testing.T, open func() lock.Backend) {
	ctx := ctxFor(t)
	a, a2, b := open(), open(), open()
	name := Name(t)
	g1 := mustAcquire(t, a, name, "A", time.Hour)
	// A restarted process with the same holder id gets the lock at once, under a new token.
	g2 := mustAcquire(t, a2, name, "A", time.Hour)
	if g2.Token <= g1.Token {
		t.Fatalf("reclaim token %d is not above %d", g2.Token, g1.Token)
	}
	if g2.Previous != "A" {
		t.Fatalf("reclaim's Previous = %q, want A", g2.Previous)
	}
	if err := a.Renew(ctx, name, "A", g1.Token, time.Hour); !errors.Is(err, lock.ErrNotHeld) {
		t.Fatalf("old incarnation's Renew = %v, want ErrNotHeld", err)
	}
	wantHeld(t, b, name, "B")
}

func testLeaseAcquireWaits(t *testing.T, open func() lock.Backend) {
	ctx := ctxFor(t)
	la := lock.New(open(), lock.Options{Logger: quiet()})
	lb := lock.New(open(), lock.Options{Logger: quiet(), Poll: 20 * time.Millisecond})
	name := Name(t)
	a, err := la.TryAcquire(ctx, name, "A", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := lb.TryAcquire(ctx, name, "B", time.Hour); !errors.Is(err, lock.ErrHeld) {
		t.Fatalf("TryAcquire while held = %v, want ErrHeld", err)
	}
	got := make(chan *lock.Lease, 1)
	go func() {
		b, err := lb.Acquire(ctx, name, "B", time.Hour)
		if err != nil {
			t.Errorf("Acquire: %v", err)
		}
		got <- b
	}()
	select {
	case b := <-got:
		t.Fatalf("Acquire returned %v while A held an hour-long lease", b)
	case <-time.After(300 * time.Millisecond):
	}
	if err := a.Release(ctx); err != nil {
		t.Fatal(err)
	}
	select {
	case b := <-got:
		if b == nil {
			t.FailNow()
		}
		if b.Token() <= a.Token() {
			t.Fatalf("token %d after release is not above %d", b.Token(), a.Token())
		}
		if !b.Valid() {
			t.Fatal("new lease not valid")
		}
		b.Release(ctx)
	case <-time.After(eventually):
		t.Fatal("Acquire did not return after the lock was released")
	}
	if a.Valid() {
		t.Fatal("released lease still valid")
	}
}

func testLeaseLostWhenNotRenewed(t *testing.T, open func() lock.Backend) {
	const ttl = 300 * time.Millisecond
	ctx := ctxFor(t)
	obs := &countingObserver{}
	l := lock.New(open(), lock.Options{Logger: quiet(), RenewEvery: -1, Observer: obs})
	name := Name(t)
	start := time.Now()
	a, err := l.TryAcquire(ctx, name, "A", ttl)
	if err != nil {
		t.Fatal(err)
	}
	select {
	case <-a.Lost():
		if d := time.Since(start); d < ttl {
			t.Fatalf("Lost closed %s after the grant, before the TTL of %s", d, ttl)
		}
	case <-time.After(eventually):
		t.Fatal("a lease that was not renewed was never lost")
	}
	if a.Valid() {
		t.Fatal("lost lease still valid")
	}
	if err := a.Renew(ctx); !errors.Is(err, lock.ErrLost) {
		t.Fatalf("Renew of a lost lease = %v, want ErrLost", err)
	}
	if got := obs.get(); got != "acquired:1 takeovers:0 lost:1 released:0" {
		t.Fatalf("observer saw %s", got)
	}
}

func testLeaseLostWhenSuperseded(t *testing.T, open func() lock.Backend) {
	ctx := ctxFor(t)
	l := lock.New(open(), lock.Options{Logger: quiet(), RenewEvery: 20 * time.Millisecond})
	name := Name(t)
	a, err := l.TryAcquire(ctx, name, "A", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	// The same holder reclaims from another handle: the old lease's next renewal finds it
	// superseded, long before its hour is up.
	mustAcquire(t, open(), name, "A", time.Hour)
	select {
	case <-a.Lost():
	case <-time.After(eventually):
		t.Fatal("a superseded lease was never lost")
	}
	if a.Valid() {
		t.Fatal("superseded lease still valid")
	}
	if err := a.Release(ctx); !errors.Is(err, lock.ErrNotHeld) {
		t.Fatalf("Release of a superseded lease = %v, want ErrNotHeld", err)
	}
}

func testLeaseRenewsItself(t *testing.T, open func() lock.Backend) {
	const ttl = 600 * time.Millisecond
	ctx := ctxFor(t)
	obs := &countingObserver{}
	l := lock.New(open(), lock.Options{Logger: quiet(), Observer: obs})
	b := open()
	name := Name(t)
	a, err := l.TryAcquire(ctx, name, "A", ttl)
	if err != nil {
		t.Fatal(err)
	}
	for end := time.Now().Add(4 * ttl); time.Now().Before(end); {
		time.Sleep(ttl / 6)
		g, err := b.TryAcquire(ctx, name, "B", ttl)
		if err == nil {
			// Only a stall of this process longer than the lease can explain it; then the
			// lease must know it is no longer valid.
			if a.Valid() {
				t.Fatalf("B got token %d while A's lease (token %d) is still valid", g.Token, a.Token())
			}
			t.Skip("the process stalled past the lease; the takeover was legitimate")
		}
		if !errors.Is(err, lock.ErrHeld) {
			t.Fatal(err)
		}
	}
	if !a.Valid() {
		select {
		case <-a.Lost():
			t.Skip("the process stalled past the lease and lost it")
		default:
		}
		t.Fatal("lease not valid after renewing itself")
	}
	if err := a.Release(ctx); err != nil {
		t.Fatal(err)
	}
	g := mustAcquire(t, b, name, "B", ttl)
	if g.Token <= a.Token() {
		t.Fatalf("token %d is not above %d", g.Token, a.Token())
	}
	if got := obs.get(); got != "acquired:1 takeovers:0 lost:0 released:1" {
		t.Fatalf("observer saw %s", got)
	}
}

type countingObserver struct {
	mu                                  sync.Mutex
	acquired, takeovers, lost, released int
}

func (o *countingObserver) Acquired(_ string, _ uint64, takeover bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.acquired++
	if takeover {
		o.takeovers++
	}
}

func (o *countingObserver) Lost(string, uint64) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.lost++
}

func (o *countingObserver) Released(string, uint64) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.released++
}

func (o *countingObserver) get() string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return fmt.Sprintf("acquired:%d takeovers:%d lost:%d released:%d", o.acquired, o.takeovers, o.lost, o.released)
}
