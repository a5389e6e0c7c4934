package obs_test

import (
	"log/slog"
	"testing"
	"time"

	"github.com/fincore/fincore/platform/lock"
	"github.com/fincore/fincore/platform/obs"
)

// TestLockMetrics: a grant sets the held gauge and the token, a reclaim counts as a takeover,
// a loss clears the gauge and counts, and a release clears the gauge.
func TestLockMetrics(t *testing.T) {
	ctx := t.Context()
	m := obs.New()
	if _, ok := scrapeRegistry(t, m)["fincore_lock_held"]; ok {
		t.Fatal("lock metrics registered before a Locker asked for them")
	}
	if m.LockObserver() != m.LockObserver() {
		t.Fatal("LockObserver returned two observers")
	}
	backend := lock.NewMemory()
	l := lock.New(backend, lock.Options{Observer: m.LockObserver(), Logger: slog.New(slog.DiscardHandler)})
	get := func(name string) float64 {
		t.Helper()
		fams := scrapeRegistry(t, m)
		f, ok := fams[name]
		if !ok {
			t.Fatalf("%s missing", name)
		}
		mt := f.GetMetric()[0]
		if lbl := mt.GetLabel(); len(lbl) != 1 || lbl[0].GetName() != "lock" || lbl[0].GetValue() != "ledger.writer" {
			t.Fatalf("%s labels %v", name, lbl)
		}
		if c := mt.GetCounter(); c != nil {
			return c.GetValue()
		}
		return mt.GetGauge().GetValue()
	}

	a, err := l.TryAcquire(ctx, "ledger.writer", "A", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if get("fincore_lock_held") != 1 || get("fincore_lock_token") != float64(a.Token()) ||
		get("fincore_lock_acquisitions_total") != 1 || get("fincore_lock_takeovers_total") != 0 {
		t.Fatal("after the first grant: wrong metrics")
	}
	// The same holder restarted takes its lease back: a takeover, and the old lease is lost.
	b, err := l.TryAcquire(ctx, "ledger.writer", "A", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if get("fincore_lock_takeovers_total") != 1 || get("fincore_lock_token") != float64(b.Token()) {
		t.Fatal("after the reclaim: wrong metrics")
	}
	if err := a.Renew(ctx); err == nil {
		t.Fatal("superseded lease renewed")
	}
	if get("fincore_lock_lost_total") != 1 || get("fincore_lock_held") != 0 {
		t.Fatalf("after the loss: held %v lost %v", get("fincore_lock_held"), get("fincore_lock_lost_total"))
	}
	c, err := l.TryAcquire(ctx, "ledger.writer", "A", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Release(ctx); err != nil {
		t.Fatal(err)
	}
	if get("fincore_lock_held") != 0 || get("fincore_lock_acquisitions_total") != 3 {
		t.Fatal("after the release: wrong metrics")
	}
}
