package main

import (
	"os"
	"runtime/debug"
	"time"
)

// Settings of the write path that serve and the benchmarks share, so that the benchmarks
// measure what production runs (BENCHMARKS.md, "Payments (issue 4)").
const (
	// ledgerCommitInterval is the least time between the starts of two group commits under
	// a steady stream of requests (ledger.Config.CommitInterval): at 1,500 payments/s it
	// cut the CPU per payment by a fifth for a millisecond more latency.
	ledgerCommitInterval = 2 * time.Millisecond
	// timerDoneWait is how long the timer service gathers completions into one write
	// (timer.Config.DoneWait): fewer, larger transactions on the write connection the
	// ledger's group commits also need.
	timerDoneWait = 50 * time.Millisecond
	// timerWorkers bounds the timers delivered at once (timer.Config.Workers). Payments call
	// their banks from timer handlers, so it bounds the bank calls in flight: at 100 ms a
	// call, the default of 64 would cap payments at about 640/s.
	timerWorkers = 1024
)

// gcPercent is the collector's target heap growth (GOGC) in serve and `bench payments`,
// unless the environment sets GOGC. At the default of 100 a payments process at 3,000/s ran
// a collection about three times a second, 9–12% of its CPU, and its assists and write
// barriers showed in the acceptance latency tail; at 200 half as many, about 5%, for a heap
// of some 200 MB instead of 140 (BENCHMARKS.md, "Payments (issue 4)").
const gcPercent = 200

// tuneGC sets the collector's target heap growth to gcPercent unless GOGC is set.
func tuneGC() {
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(gcPercent)
	}
}
