package risk_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/fincore/fincore/bench"
	"github.com/fincore/fincore/risk"
)

// TestDecisionAllocations bounds the allocations of one decision of the reference rule set
// (200 rules, 50 features, 5 models) for keys that already have their window states: the
// event's dedupe entry, the decision, its values and rule hits, the log's share. A change
// that put maps or reflection back on the hot path would fail here.
func TestDecisionAllocations(t *testing.T) {
	ctx := context.Background()
	e := openReference(t, bench.RiskConfig{Trees: 20})
	start := time.Date(2026, 12, 4, 10, 0, 0, 0, time.UTC)
	var events []*risk.Event
	for i := range 400 {
		raw := fmt.Sprintf(`{"type":"payment","id":"a%d","timestamp":%q,"user_id":"u%d","device_id":"d1","card_id":"c1","ip":"10.0.0.1","merchant_id":"m1","amount":%d,"channel":"web"}`,
			i, start.Add(time.Duration(i)*time.Second).Format(time.RFC3339), i%4, 100+i)
		ev, err := risk.ParseEvent([]byte(raw))
		if err != nil {
			t.Fatal(err)
		}
		events = append(events, ev)
	}
	for _, ev := range events[:200] { // every key and window state exists
		if _, err := e.DecideBrief(ctx, "ref", ev); err != nil {
			t.Fatal(err)
		}
	}
	next := 200
	allocs := testing.AllocsPerRun(150, func() {
		if _, err := e.DecideBrief(ctx, "ref", events[next]); err != nil {
			t.Fatal(err)
		}
		next++
	})
	t.Logf("%.1f allocations per decision", allocs)
	if allocs > 12 {
		t.Fatalf("%.1f allocations per decision, want at most 12", allocs)
	}
}
