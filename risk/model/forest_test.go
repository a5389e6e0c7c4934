package model

import (
	"math"
	"math/rand/v2"
	"testing"
)

// leafRef is the plain one-tree walk that forest.walk must agree with.
func (f *forest) leafRef(i int32, x []float64) float64 {
	for i >= 0 {
		n := &f.nodes[i]
		v := x[n.feature]
		var left bool
		switch {
		case n.flags&(flagCategorical|flagZeroMissing) != 0:
			left = f.decide(n.flags, n.threshold, v)
		case math.IsNaN(v):
			left = n.flags&flagDefaultLeft != 0
		default:
			left = v <= n.threshold
		}
		if left {
			i = n.left
		} else {
			i = n.right
		}
	}
	return f.leaves[^i]
}

// randomForest builds a forest of ragged trees with every kind of split.
func randomForest(rng *rand.Rand, trees, features int, f32 bool) *forest {
	f := &forest{nFeatures: features, f32: f32, base: rng.Float64()}
	for len(f.roots) < trees {
		var raw []rawNode
		var grow func(depth int) int32
		grow = func(depth int) int32 {
			at := int32(len(raw))
			raw = append(raw, rawNode{})
			if depth == 0 || rng.IntN(4) == 0 {
				raw[at] = rawNode{leaf: true, value: rng.NormFloat64()}
				return at
			}
			r := rawNode{feature: int32(rng.IntN(features)), threshold: rng.Float64()*4 - 2}
			if rng.IntN(2) == 0 {
				r.flags |= flagDefaultLeft
			}
			switch rng.IntN(5) {
			case 0:
				r.flags |= flagZeroMissing
			case 1:
				words := make([]uint32, 1+rng.IntN(2))
				for i := range words {
					words[i] = rng.Uint32()
				}
				k, err := f.addCatSet(words)
				if err != nil {
					panic(err)
				}
				r.flags |= flagCategorical
				r.threshold = float64(k)
				if f32 {
					r.flags |= flagInSetRight
				}
			}
			r.left = grow(depth - 1)
			r.right = grow(depth - 1)
			raw[at] = r
			return at
		}
		grow(1 + rng.IntN(8))
		if err := f.addTree(raw); err != nil {
			panic(err)
		}
	}
	return f
}

// TestWalkMatchesReference: the interleaved walk and the packed walk give the same leaves,
// summed in the same order, as walking one tree at a time, for tree counts around the lane
// width and the packed chunk, ragged trees of depth 1 to 8 and every kind of split.
func TestWalkMatchesReference(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for _, trees := range []int{1, lanes - 1, lanes, lanes + 1, 3*lanes + 5, packChunk, packChunk + 3} {
		for _, f32 := range []bool{false, true} {
			f := randomForest(rng, trees, 6, f32)
			f.packWithin(maxPackDepth, math.MaxInt32) // however ragged
			if f.packed == nil {
				t.Fatal("not packed")
			}
			for range 300 {
				x := make([]float64, 6)
				for i := range x {
					switch rng.IntN(6) {
					case 0:
						x[i] = math.NaN()
					case 1:
						x[i] = 0
					case 2:
						x[i] = float64(rng.IntN(70)) // categories
					default:
						x[i] = rng.Float64()*6 - 3
					}
				}
				var want float64
				if f32 {
					s := float32(f.base)
					for _, r := range f.roots {
						s += float32(f.leafRef(r, x))
					}
					want = float64(s)
				} else {
					want = f.base
					for _, r := range f.roots {
						want += f.leafRef(r, x)
					}
				}
				if got := f.marginWalk(x); got != want {
					t.Fatalf("%d trees, f32 %v, x %v: interleaved walk %v, reference %v", trees, f32, x, got, want)
				}
				if got := f.marginPacked(x); got != want {
					t.Fatalf("%d trees, f32 %v, x %v: packed walk %v, reference %v", trees, f32, x, got, want)
				}
			}
		}
	}
}
