package model

import (
	"math/rand/v2"
	"testing"
)

// benchInputs returns n random input vectors of width w in [0, 1), with about 2% missing.
func benchInputs(n, w int) [][]float64 { return benchInputsMissing(n, w, 50) }

// benchInputsMissing returns n random input vectors of width w in [0, 1), with one value in
// oneIn missing (none for oneIn 0).
func benchInputsMissing(n, w, oneIn int) [][]float64 {
	rng := rand.New(rand.NewPCG(7, 7))
	xs := make([][]float64, n)
	for i := range xs {
		x := make([]float64, w)
		for j := range x {
			x[j] = rng.Float64()
			if oneIn > 0 && rng.IntN(oneIn) == 0 {
				x[j] = nan
			}
		}
		xs[i] = x
	}
	return xs
}

// benchOver runs the benchmark loop over the 1,024 inputs xs in turn and reports the
// process's CPU time per call (cpu-ns/op) besides the wall-clock ns/op.
func benchOver(b *testing.B, xs [][]float64, predict func([]float64) float64) {
	sink, i := 0.0, 0
	cpu0, ok := cpuTime()
	for b.Loop() {
		sink += predict(xs[i&1023])
		i++
	}
	if cpu1, ok1 := cpuTime(); ok && ok1 {
		b.ReportMetric(float64(cpu1-cpu0)/float64(b.N), "cpu-ns/op")
	}
	if sink != sink {
		b.Log("NaN")
	}
}

// BenchmarkPredict evaluates one model per call: the 300-tree, depth-6 shape of the risk
// engine's reference workload (whose window features are never missing: "complete"), and
// others for scale, with 2% of the inputs missing. Besides wall-clock ns/op it reports the
// process's CPU time per call (cpu-ns/op), which other work on the machine disturbs less.
func BenchmarkPredict(b *testing.B) {
	for _, c := range []struct {
		name                          string
		trees, depth, inputs, missing int
	}{
		{"trees=300/depth=6/complete", 300, 6, 20, 0},
		{"trees=300/depth=6", 300, 6, 50, 50},
		{"trees=100/depth=6", 100, 6, 50, 50},
		{"trees=300/depth=8", 300, 8, 50, 50},
	} {
		b.Run(c.name, func(b *testing.B) {
			m := Synthetic(1, c.trees, c.depth, c.inputs)
			xs := benchInputsMissing(1024, c.inputs, c.missing)
			b.ReportAllocs()
			benchOver(b, xs, m.Predict)
		})
	}
}

// BenchmarkWalk compares the ways of walking the 300-tree, depth-6 model of the reference
// workload on inputs without missing values: one tree at a time (leafRef, which branches on
// every split), the interleaved walk of the pointer layout (marginWalk, what deep trees use)
// and the packed complete-tree walk (marginPacked, what shallow trees use).
func BenchmarkWalk(b *testing.B) {
	f := Synthetic(1, 300, 6, 20).(*treeModel).f
	xs := benchInputsMissing(1024, 20, 0)
	for _, c := range []struct {
		name string
		sum  func(x []float64) float64
	}{
		{"one-tree-at-a-time", func(x []float64) float64 {
			s := f.base
			for _, r := range f.roots {
				s += f.leafRef(r, x)
			}
			return s
		}},
		{"interleaved", f.marginWalk},
		{"packed", f.marginPacked},
	} {
		b.Run(c.name, func(b *testing.B) { benchOver(b, xs, c.sum) })
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
