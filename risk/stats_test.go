package risk_test

import (
	"context"
	"fmt"
	"runtime"
	"testing"
	"time"

	"github.com/fincore/fincore/bench"
	"github.com/fincore/fincore/risk"
)

// TestStateBytesFollowsHeap: the memory Stats reports for the feature state (key table and
// window states) is close to what the heap grew by while events of new key values were
// counted (the de-duplication memory of their ids is the rest).
func TestStateBytesFollowsHeap(t *testing.T) {
	ctx := context.Background()
	e := openReference(t, bench.RiskConfig{Trees: 5})
	heap := func() uint64 {
		runtime.GC()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		return ms.HeapAlloc
	}
	before, st0 := heap(), e.Stats().StateBytes
	start := time.Date(2026, 12, 6, 0, 0, 0, 0, time.UTC)
	for i := range 30000 {
		raw := fmt.Sprintf(`{"type":"payment","id":"s%d","timestamp":%q,"user_id":"u%d","device_id":"d%d","card_id":"c%d","ip":"10.0.%d.%d","merchant_id":"m%d","amount":%d,"channel":"web"}`,
			i, start.Add(time.Duration(i)*time.Second).Format(time.RFC3339), i, i/2, i, i/250, i%250, i%100, 100+i%900)
		ev, err := risk.ParseEvent([]byte(raw))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := e.Ingest(ctx, ev); err != nil {
			t.Fatal(err)
		}
	}
	if err := e.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	grew := float64(heap() - before)
	s := e.Stats()
	est := float64(s.StateBytes - st0)
	t.Logf("%d key values, %d states: heap +%.0f B, StateBytes +%.0f B (%.0f B per state)", s.KeyValues, s.Keys, grew, est, est/float64(s.Keys))
	if est < 0.8*grew || est > 1.2*grew {
		t.Fatalf("StateBytes grew by %.0f, the heap by %.0f", est, grew)
	}
}
