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
// is measured by fincore bench risk).
func BenchmarkDecide(b *testing.B) {
	ctx := context.Background()
	e, err := risk.Open(ctx, risk.DiscardStore(), risk.Config{Logger: storetest.QuietLogger(), SnapshotEvery: -1, NoCloseSnapshot: true})
	if err != nil {
		b.Fatal(err)
	}
	defer e.Close()
	cfg := bench.RiskConfig{}
	sum, err := e.PutRuleSet(ctx, "ref", []byte(bench.RiskRuleSet(cfg)))
	if err != nil {
		b.Fatal(err)
	}
	if _, err := e.Activate(ctx, "ref", sum.Version, 0); err != nil {
		b.Fatal(err)
	}
	gen := bench.NewRiskEvents(cfg, time.Now().Add(-time.Hour), 20_000)
	decide := bench.EngineDecider(e, "ref")
	rng := rand.New(rand.NewPCG(1, 2))
	for range 5_000 {
		if _, err := decide(ctx, gen.Next(rng)); err != nil {
			b.Fatal(err)
		}
	}
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		rng := rand.New(rand.NewPCG(rand.Uint64(), 3))
		for pb.Next() {
			if _, err := decide(ctx, gen.Next(rng)); err != nil {
				b.Fatal(err)
			}
		}
	})
}
