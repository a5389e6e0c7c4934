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

// BenchmarkIngestLarge counts events of the reference workload into a large feature state:
// that of 300,000 earlier events (1.5 million states, most far out of the processor's
// caches), where most key values of an event already have states. It is the part of a
// decision that is mostly memory access: parsing, de-duplication and the window states, no
// models or rules. cpu-ns/op is the process's CPU time per event.
func BenchmarkIngestLarge(b *testing.B) {
	ctx := context.Background()
	cfg := bench.RiskConfig{}
	e := openReference(b, cfg)
	gen := bench.NewRiskEvents(cfg, time.Now().Add(-time.Hour), 20_000)
	rng := rand.New(rand.NewPCG(1, 2))
	ingest := func() {
		ev, err := risk.ParseEvent(gen.Next(rng))
		if err == nil {
			_, err = e.Ingest(ctx, ev)
		}
		if err != nil {
			b.Fatal(err)
		}
	}
	for range 300_000 {
		ingest()
	}
	cpu0 := bench.ProcessCPU()
	n := 0
	for b.Loop() {
		ingest()
		n++
	}
	if cpu := bench.ProcessCPU() - cpu0; cpu > 0 {
		b.ReportMetric(float64(cpu)/float64(n), "cpu-ns/op")
	}
}
