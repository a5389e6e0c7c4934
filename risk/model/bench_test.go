package model

import (
	"math/rand/v2"
	"testing"
)

// benchInputs returns n random input vectors of width w in [0, 1), with about 2% missing.
func benchInputs(n, w int) [][]float64 {
	rng := rand.New(rand.NewPCG(7, 7))
	xs := make([][]float64, n)
	for i := range xs {
		x := make([]float64, w)
		for j := range x {
			x[j] = rng.Float64()
			if rng.IntN(50) == 0 {
				x[j] = nan
			}
		}
		xs[i] = x
	}
	return xs
}

// BenchmarkPredict evaluates one model per call: the 300-tree, depth-6 shape of the risk
// engine's reference workload, and others for scale. Besides wall-clock ns/op it reports the
// process's CPU time per call (cpu-ns/op), which other work on the machine disturbs less.
func BenchmarkPredict(b *testing.B) {
	for _, c := range []struct {
		name                 string
		trees, depth, inputs int
	}{
		{"trees=300/depth=6", 300, 6, 50},
		{"trees=100/depth=6", 100, 6, 50},
		{"trees=300/depth=8", 300, 8, 50},
	} {
		b.Run(c.name, func(b *testing.B) {
			m := Synthetic(1, c.trees, c.depth, c.inputs)
			xs := benchInputs(1024, c.inputs)
			b.ReportAllocs()
			sink := 0.0
			i := 0
			cpu0, ok := cpuTime()
			for b.Loop() {
				sink += m.Predict(xs[i&1023])
				i++
			}
			if cpu1, ok1 := cpuTime(); ok && ok1 {
				b.ReportMetric(float64(cpu1-cpu0)/float64(b.N), "cpu-ns/op")
			}
			if sink != sink {
				b.Log("NaN")
			}
		})
	}
}

// BenchmarkWalkOneTreeAtATime is the baseline for the interleaved walk: the same 300-tree,
// depth-6 model summed with the plain one-tree walk (leafRef), which branches on every split.
func BenchmarkWalkOneTreeAtATime(b *testing.B) {
	f := Synthetic(1, 300, 6, 50).(*treeModel).f
	xs := benchInputs(1024, 50)
	sink, i := 0.0, 0
	cpu0, ok := cpuTime()
	for b.Loop() {
		x := xs[i&1023]
		s := f.base
		for _, r := range f.roots {
			s += f.leafRef(r, x)
		}
		sink += s
		i++
	}
	if cpu1, ok1 := cpuTime(); ok && ok1 {
		b.ReportMetric(float64(cpu1-cpu0)/float64(b.N), "cpu-ns/op")
	}
	if sink != sink {
		b.Log("NaN")
	}
}

// BenchmarkBuild parses and flattens a 300-tree, depth-6 LightGBM text model (about 1 MB).
func BenchmarkBuild(b *testing.B) {
	src := SyntheticLightGBM(1, 300, 6, 50)
	b.SetBytes(int64(len(src)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Build(Spec{ID: "m", Type: TypeLightGBM, Source: src}); err != nil {
			b.Fatal(err)
		}
	}
}
