package bench

import (
	"math"
	"runtime/metrics"
	"testing"
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
