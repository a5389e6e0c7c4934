package model

import (
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
)

// Synthetic returns a random binary classifier for benchmarks and load tests: trees complete
// trees of the given depth (2^depth leaves each) over inputs inputs named f0, f1, ..., with
// thresholds in [0, 1), so inputs drawn uniformly from [0, 1) reach every leaf. Splits mix
// LightGBM's missing-value rules (NaN goes left, goes right, or counts as 0). The same
// arguments always give the same model. The model goes through the LightGBM parser, so it
// costs what a real model of that shape costs.
//
// Synthetic panics on trees outside 1..MaxTrees, depth outside 0..16 or inputs outside
// 1..MaxInputs.
func Synthetic(seed int64, trees, depth, inputs int) Model {
	m, err := Build(Spec{ID: "synthetic", Type: TypeLightGBM, Source: SyntheticLightGBM(seed, trees, depth, inputs)})
	if err != nil {
		panic(fmt.Sprintf("model.Synthetic: %v", err))
	}
	return m
}

// SyntheticLightGBM is the LightGBM text model that Synthetic builds.
func SyntheticLightGBM(seed int64, trees, depth, inputs int) string {
	if trees < 1 || trees > MaxTrees || depth < 0 || depth > 16 || inputs < 1 || inputs > MaxInputs {
		panic(fmt.Sprintf("model.Synthetic: trees %d (want 1..%d), depth %d (want 0..16), inputs %d (want 1..%d)",
			trees, MaxTrees, depth, inputs, MaxInputs))
	}
	rng := rand.New(rand.NewPCG(uint64(seed), 0x9e3779b97f4a7c15))
	var b strings.Builder
	b.WriteString("tree\nversion=v3\nnum_class=1\nnum_tree_per_iteration=1\nlabel_index=0\n")
	fmt.Fprintf(&b, "max_feature_idx=%d\nobjective=binary sigmoid:1\nfeature_names=", inputs-1)
	for i := 0; i < inputs; i++ {
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString("f" + strconv.Itoa(i))
	}
	b.WriteString("\n\n")
	nInner := 1<<depth - 1
	nLeaves := 1 << depth
	list := func(key string, n int, item func(i int) string) {
		b.WriteString(key)
		b.WriteByte('=')
		for i := 0; i < n; i++ {
			if i > 0 {
				b.WriteByte(' ')
			}
			b.WriteString(item(i))
		}
		b.WriteByte('\n')
	}
	// Internal node k has children 2k+1 and 2k+2; a child index past the internal nodes is a
	// leaf, written as ^leaf.
	child := func(c int) string {
		if c >= nInner {
			return strconv.Itoa(^(c - nInner))
		}
		return strconv.Itoa(c)
	}
	decisions := []string{"2", "8", "10"} // missing type None (NaN reads as 0); NaN right; NaN left
	for t := 0; t < trees; t++ {
		fmt.Fprintf(&b, "Tree=%d\nnum_leaves=%d\nnum_cat=0\n", t, nLeaves)
		if nInner > 0 {
			list("split_feature", nInner, func(int) string { return strconv.Itoa(rng.IntN(inputs)) })
			list("threshold", nInner, func(int) string { return strconv.FormatFloat(rng.Float64(), 'g', -1, 64) })
			list("decision_type", nInner, func(int) string { return decisions[rng.IntN(len(decisions))] })
			list("left_child", nInner, func(k int) string { return child(2*k + 1) })
			list("right_child", nInner, func(k int) string { return child(2*k + 2) })
		}
		list("leaf_value", nLeaves, func(int) string { return strconv.FormatFloat(rng.Float64()*0.2-0.1, 'g', -1, 64) })
		b.WriteString("shrinkage=0.1\n\n\n")
	}
	b.WriteString("end of trees\n")
	return b.String()
}
