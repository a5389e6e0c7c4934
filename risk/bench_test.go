package risk_test

import (
	"context"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/fincore/fincore/bench"
	"github.com/fincore/fincore/risk"
	"github.com/fincore/fincore/store/storetest"
)

// BenchmarkDecide measures one decision of the reference workload in process, with the
// event and decision log written to an in-memory store that discards it (the storage cost
// is measured by fincore bench risk). Besides ns/op it reports the process's CPU time per
// decision (cpu-ns/op; log encoding and the event generator included), steadier than wall
// time on a shared machine. Run it with -benchmem for allocations per decision.
func BenchmarkDecide(b *testing.B) {
	ctx := context.Background()
	cfg := bench.RiskConfig{}
	e := openReference(b, cfg)
	gen := bench.NewRiskEvents(cfg, time.Now().Add(-time.Hour), 20_000)
	decide := bench.EngineDecider(e, "ref")
	rng := rand.New(rand.NewPCG(1, 2))
	for range 5_000 {
		if _, err := decide(ctx, gen.Next(rng)); err != nil {
			b.Fatal(err)
		}
	}
	b.ResetTimer()
	cpu0 := bench.ProcessCPU()
	defer func() {
		if cpu := bench.ProcessCPU() - cpu0; cpu > 0 {
			b.ReportMetric(float64(cpu)/float64(b.N), "cpu-ns/op")
		}
	}()
	b.RunParallel(func(pb *testing.PB) {
		rng := rand.New(rand.NewPCG(rand.Uint64(), 3))
		for pb.Next() {
			if _, err := decide(ctx, gen.Next(rng)); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// openReference opens an engine on a store that discards the log, with the reference rule
// set of cfg active as "ref". It is closed when the test ends.
func openReference(tb testing.TB, cfg bench.RiskConfig) *risk.Engine {
	tb.Helper()
	ctx := context.Background()
	e, err := risk.Open(ctx, risk.DiscardStore(), risk.Config{Logger: storetest.QuietLogger(), SnapshotEvery: -1, NoCloseSnapshot: true})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { e.Close() })
	sum, err := e.PutRuleSet(ctx, "ref", []byte(bench.RiskRuleSet(cfg)))
	if err != nil {
		tb.Fatal(err)
	}
	if _, err := e.Activate(ctx, "ref", sum.Version, 0); err != nil {
		tb.Fatal(err)
	}
	return e
}
