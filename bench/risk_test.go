package bench

import (
	"context"
	"math"
	"runtime/metrics"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fincore/fincore/risk"
)

// TestRuntimeStatsSince checks the scheduler p99 and GC pause total computed from the
// difference of two readings of the runtime's histograms.
func TestRuntimeStatsSince(t *testing.T) {
	buckets := []float64{math.Inf(-1), 0.001, 0.002, 0.004, math.Inf(1)}
	reading := func(sched, pauses []uint64) runtimeStats {
		return runtimeStats{sched: &metrics.Float64Histogram{Counts: sched, Buckets: buckets},
			pauses: &metrics.Float64Histogram{Counts: pauses, Buckets: buckets}}
	}
	before := reading([]uint64{5, 5, 5, 5}, []uint64{0, 1, 0, 0})
	// Since before: 90 waits under 1 ms, 9 of 1-2 ms, 1 of 2-4 ms; two pauses of 1-2 ms.
	after := reading([]uint64{95, 14, 6, 5}, []uint64{0, 3, 0, 0})
	p99, pauses := after.since(before)
	if p99 != 2 || pauses != 3 {
		t.Fatalf("p99 %v ms, pauses %v ms; want 2 and 3", p99, pauses)
	}
	if p99, pauses := (runtimeStats{}).since(before); p99 != 0 || pauses != 0 {
		t.Fatalf("without readings: %v %v", p99, pauses)
	}
	if s := readRuntimeStats(); s.sched == nil || s.pauses == nil {
		t.Fatal("the runtime has no scheduler latency or GC pause histogram")
	}
}

// TestRunRiskRate checks the paced run: the measured decisions are exactly rate × duration
// when the decider keeps up, and when it cannot, the latency counts from each decision's
// slot, so the backlog shows (a closed loop would report only the decider's own time).
func TestRunRiskRate(t *testing.T) {
	ctx := context.Background()
	cfg := RiskConfig{Clients: 4, Duration: time.Second, Rate: 200, Users: 100, Devices: 10}
	var calls atomic.Int64
	fast := func(context.Context, []byte) (string, error) { calls.Add(1); return risk.Accept, nil }
	res, err := RunRisk(ctx, cfg, NewRiskEvents(cfg, time.Now(), 1000), fast)
	if err != nil {
		t.Fatal(err)
	}
	if res.Decisions != 200 || calls.Load() != 200 || res.Rate != 200 || res.DecisionsPerS != 200 {
		t.Fatalf("paced fast run: %d decisions (%d calls), rate %d, %v/s; want 200", res.Decisions, calls.Load(), res.Rate, res.DecisionsPerS)
	}

	// One client taking 20 ms a decision against 100 offered a second: half are served
	// within the second, each later than the one before.
	cfg = RiskConfig{Clients: 1, Duration: time.Second, Rate: 100, Users: 100, Devices: 10}
	slow := func(context.Context, []byte) (string, error) {
		time.Sleep(20 * time.Millisecond)
		return risk.Accept, nil
	}
	res, err = RunRisk(ctx, cfg, NewRiskEvents(cfg, time.Now(), 1000), slow)
	if err != nil {
		t.Fatal(err)
	}
	if res.Decisions < 30 || res.Decisions > 55 || res.MaxMs < 300 {
		t.Fatalf("paced slow run: %d decisions, max %v ms; want about 50 and a backlog of several hundred ms", res.Decisions, res.MaxMs)
	}
}
