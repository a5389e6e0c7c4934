package risk_test

import (
	"context"
	"math/rand/v2"
	"os"
	"runtime"
	"runtime/metrics"
	"runtime/pprof"
	"testing"
	"time"

	"github.com/fincore/fincore/bench"
)

// BenchmarkStateHeap decides b.N events of the reference workload (after 200,000 to fill the
// state) and reports what the garbage collector has to go through afterwards: live heap
// objects and scannable bytes (pointer-bearing memory a mark phase reads) per key value, and
// the CPU of one forced collection. Run it with -benchtime 1x; it is a measurement of the
// state's layout, not of speed. RISK_HEAP_PROFILE=FILE writes a heap profile of that state
// (go tool pprof -sample_index=inuse_objects).
func BenchmarkStateHeap(b *testing.B) {
	ctx := context.Background()
	cfg := bench.RiskConfig{Trees: 20}
	e := openReference(b, cfg)
	gen := bench.NewRiskEvents(cfg, time.Now().Add(-time.Hour), 20_000)
	decide := bench.EngineDecider(e, "ref")
	rng := rand.New(rand.NewPCG(1, 2))
	for range 200_000 + b.N {
		if _, err := decide(ctx, gen.Next(rng)); err != nil {
			b.Fatal(err)
		}
	}
	if err := e.Flush(ctx); err != nil {
		b.Fatal(err)
	}
	b.StopTimer()
	runtime.GC()
	s := []metrics.Sample{{Name: "/gc/heap/objects:objects"}, {Name: "/gc/scan/heap:bytes"}, {Name: "/gc/heap/live:bytes"}}
	metrics.Read(s)
	cpu0 := bench.ProcessCPU()
	runtime.GC()
	gcCPU := bench.ProcessCPU() - cpu0
	metrics.Read(s)
	if path := os.Getenv("RISK_HEAP_PROFILE"); path != "" {
		f, err := os.Create(path)
		if err != nil {
			b.Fatal(err)
		}
		pprof.WriteHeapProfile(f)
		f.Close()
	}
	st := e.Counters()
	keys := float64(st.KeyValues)
	b.ReportMetric(float64(s[0].Value.Uint64())/keys, "objects/key")
	b.ReportMetric(float64(s[1].Value.Uint64())/keys, "scan-B/key")
	b.ReportMetric(float64(s[2].Value.Uint64())/keys, "live-B/key")
	b.ReportMetric(keys, "keys")
	b.ReportMetric(float64(gcCPU)/1e6, "gc-cpu-ms")
	runtime.KeepAlive(e)
}
