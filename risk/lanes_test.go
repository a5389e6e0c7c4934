package risk_test

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/fincore/fincore/risk"
	"github.com/fincore/fincore/store/sqlite"
)

// TestLanesAgreeWithSeparateStates runs the same random event stream through an engine whose
// lanes share window states and one that keeps a state per feature, and compares every
// feature of every decision: through late events, a new rule set version that adds features
// to existing lanes (back-filled in lanes of their own) and drops others, and a restart from a snapshot.
func TestLanesAgreeWithSeparateStates(t *testing.T) {
	v1 := `features:
  - {name: n_1h, on: [payment], key: user_id, agg: count, window: 1h}
  - {name: amt_1h, on: [payment], key: user_id, agg: sum, field: amount, window: 1h}
  - {name: max_1h, on: [payment], key: user_id, agg: max, field: amount, window: 1h}
  - {name: min_1h, on: [payment], key: user_id, agg: min, field: amount, window: 1h}
  - {name: avg_1h, on: [payment], key: user_id, agg: avg, field: amount, window: 1h}
  - {name: dev_1h, on: [payment], key: user_id, agg: distinct, field: device_id, window: 1h}
  - {name: big_n_1h, on: [payment], key: user_id, agg: count, window: 1h, where: "event.amount > 500"}
  - {name: big_amt_1h, on: [payment], key: user_id, agg: sum, field: amount, window: 1h, where: "event.amount > 500"}
  - {name: all_n_10m, on: ["*"], key: user_id, agg: count, window: 10m}
  - {name: all_dev_10m, on: ["*"], key: user_id, agg: distinct, field: device_id, window: 10m}
  - {name: n_7d, on: [payment], key: user_id, agg: count, window: 7d}
  - {name: amt_7d, on: [payment], key: user_id, agg: sum, field: amount, window: 7d}
  - {name: d_users_1h, on: [payment, login], key: device_id, agg: distinct, field: user_id, window: 1h}
  - {name: d_n_1h, on: [login, payment], key: device_id, agg: count, window: 1h}
rules:
  - {id: R1, when: features.n_1h > 3, score: 10, reason: r1}
decision: {review_at: 40, reject_at: 80}
`
	// v2 adds features to existing lanes and drops some.
	v2 := v1 + ""
	v2 = replaceOnce(v2, "  - {name: min_1h, on: [payment], key: user_id, agg: min, field: amount, window: 1h}\n",
		"  - {name: min2_1h, on: [payment], key: user_id, agg: min, field: fee, window: 1h}\n  - {name: fee_1h, on: [payment], key: user_id, agg: sum, field: fee, window: 1h}\n"+
			"  - {name: cnt2, on: [payment], key: device_id, agg: sum, field: amount, window: 1h}\n")
	v2 = replaceOnce(v2, "  - {name: avg_1h, on: [payment], key: user_id, agg: avg, field: amount, window: 1h}\n", "")

	ctx := context.Background()
	var dbs []interface{ Close() error }
	defer func() {
		for _, db := range dbs {
			db.Close()
		}
	}()
	open := func(dir string, share bool) *risk.Engine {
		risk.SetShareLanes(share)
		defer risk.SetShareLanes(true)
		db, err := sqlite.Open(dir)
		if err != nil {
			t.Fatal(err)
		}
		dbs = append(dbs, db)
		e, err := risk.Open(ctx, db.Risk(), risk.Config{Logger: slog.New(slog.DiscardHandler), SnapshotEvery: -1})
		if err != nil {
			t.Fatal(err)
		}
		return e
	}
	put := func(e *risk.Engine, share bool, src string, v int) {
		risk.SetShareLanes(share)
		defer risk.SetShareLanes(true)
		if _, err := e.PutRuleSet(ctx, "pay", []byte(src)); err != nil {
			t.Fatal(err)
		}
		if _, err := e.Activate(ctx, "pay", v, 0); err != nil {
			t.Fatal(err)
		}
	}
	dirA, dirB := t.TempDir(), t.TempDir()
	a, b := open(dirA, true), open(dirB, false)
	put(a, true, v1, 1)
	put(b, false, v1, 1)

	r := rand.New(rand.NewPCG(9, 10))
	start := time.Date(2026, 12, 4, 10, 0, 0, 0, time.UTC)
	now := start
	shared := 0
	run := func(from, to int) {
		for i := from; i < to; i++ {
			now = now.Add(time.Duration(r.IntN(90)) * time.Second)
			at := now
			if r.IntN(12) == 0 {
				at = at.Add(-time.Duration(r.IntN(7200)) * time.Second) // late, sometimes too late
			}
			typ := []string{"payment", "payment", "payment", "login", "refund"}[r.IntN(5)]
			// New users and devices keep appearing, so that each phase has new key values
			// (shared states) and old ones (states created before a new version).
			fields := fmt.Sprintf(`,"user_id":"u%d","device_id":"d%d","amount":%d`, r.IntN(4+i/100), r.IntN(3+i/200), r.IntN(1000))
			if r.IntN(3) > 0 {
				fields += fmt.Sprintf(`,"fee":%d`, r.IntN(30))
			}
			if r.IntN(15) == 0 {
				fields = fmt.Sprintf(`,"user_id":"u%d","amount":"n/a"`, r.IntN(6)) // no device, amount not a number
			}
			raw := fmt.Sprintf(`{"type":%q,"id":"e%d","timestamp":%q%s}`, typ, i, at.Format(time.RFC3339), fields)
			var got [2]*risk.Decision
			for k, e := range []*risk.Engine{a, b} {
				ev, err := risk.ParseEvent([]byte(raw))
				if err != nil {
					t.Fatal(err)
				}
				d, err := e.Decide(ctx, "pay", ev)
				if err != nil {
					t.Fatal(err)
				}
				got[k] = d
			}
			if fmt.Sprint(got[0].Features) != fmt.Sprint(got[1].Features) || got[0].Score != got[1].Score {
				t.Fatalf("event %d %s:\nshared   %v\nseparate %v", i, raw, got[0].Features, got[1].Features)
			}
		}
		shared += risk.SharedSlots(a)
	}
	run(0, 400)
	put(a, true, v2, 2)
	put(b, false, v2, 2)
	run(400, 800)
	// A restart: snapshots hold one state per feature; new key values share again.
	for _, e := range []*risk.Engine{a, b} {
		if err := e.Close(); err != nil {
			t.Fatal(err)
		}
	}
	for _, db := range dbs {
		db.Close()
	}
	dbs = nil
	a, b = open(dirA, true), open(dirB, false)
	defer a.Close()
	defer b.Close()
	run(800, 1200)
	if shared == 0 {
		t.Fatal("no state was shared: the test compares nothing")
	}
	checkCounts(t, a)
}

func replaceOnce(s, old, new string) string {
	for i := 0; i+len(old) <= len(s); i++ {
		if s[i:i+len(old)] == old {
			return s[:i] + new + s[i+len(old):]
		}
	}
	panic("not found: " + old)
}
