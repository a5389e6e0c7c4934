package model

import (
	"errors"
	"fmt"
	"math"
	"strings"
	"testing"
)

const lgbHeader = "tree\nversion=v3\nnum_class=1\nnum_tree_per_iteration=1\nlabel_index=0\nmax_feature_idx=0\n"

// lgbOneSplit is a one-feature model of one split: leaf value 1 on the left, 2 on the right.
func lgbOneSplit(objective string, decisionType int, threshold string) string {
	return lgbHeader + objective + "\n\nTree=0\nnum_leaves=2\nnum_cat=0\nsplit_feature=0\nsplit_gain=1\n" +
		"threshold=" + threshold + "\ndecision_type=" + fmt.Sprint(decisionType) +
		"\nleft_child=-1\nright_child=-2\nleaf_value=1 2\nleaf_count=5 5\ninternal_value=0\n" +
		"internal_count=10\nis_linear=0\nshrinkage=1\n\n\nend of trees\n"
}

// TestLightGBMMissingValues covers decision_type's default-left bit and the three missing
// types, as LightGBM's NumericalDecision applies them.
func TestLightGBMMissingValues(t *testing.T) {
	const left, right = 1, 2
	for _, c := range []struct {
		name      string
		decision  int
		threshold string
		x         float64
		want      float64
	}{
		{"at the threshold goes left", 0, "0.5", 0.5, left},
		{"above goes right", 0, "0.5", 0.5000000000000001, right},
		{"None: NaN reads as 0, 0 <= 0.5", 0, "0.5", nan, left},
		{"None: NaN reads as 0, 0 > -0.5", 2, "-0.5", nan, right},
		{"NaN type, default right", 8, "0.5", nan, right},
		{"NaN type, default left", 10, "-0.5", nan, left},
		{"NaN type: zero is an ordinary value", 8, "0.5", 0, left},
		{"Zero type: 0 is missing, default right", 4, "0.5", 0, right},
		{"Zero type: tiny values are zero", 4, "0.5", 1e-36, right},
		{"Zero type: tiny negative values are zero", 4, "0.5", -1e-36, right},
		{"Zero type: NaN is missing", 4, "0.5", nan, right},
		{"Zero type: 1e-30 is not zero", 4, "0.5", 1e-30, left},
		{"Zero type: default left", 6, "-0.5", 0, left},
		{"Zero type: ordinary value", 6, "-0.5", 1, right},
	} {
		t.Run(c.name, func(t *testing.T) {
			m := mustBuild(t, Spec{ID: "m", Type: TypeLightGBM, Inputs: []string{"x"}, Source: lgbOneSplit("objective=regression", c.decision, c.threshold)})
			if got := m.Predict([]float64{c.x}); got != c.want {
				t.Fatalf("Predict(%v) = %v, want %v", c.x, got, c.want)
			}
		})
	}
}

// TestLightGBMObjectives: the objective line decides what Predict returns. The model's raw
// score is 1 for x = 0 and 2 for x = 1.
func TestLightGBMObjectives(t *testing.T) {
	for _, c := range []struct {
		objective string
		x         float64
		want      float64
	}{
		{"objective=regression", 1, 2},
		{"objective=huber", 0, 1},
		{"objective=regression sqrt", 1, 4},
		{"objective=poisson", 1, math.Exp(2)},
		{"objective=tweedie", 0, math.E},
		{"objective=binary sigmoid:1", 1, 1 / (1 + math.Exp(-2))},
		{"objective=binary sigmoid:2", 1, 1 / (1 + math.Exp(-4))},
		{"objective=binary", 0, 1 / (1 + math.Exp(-1))},
		{"objective=cross_entropy", 0, 1 / (1 + math.Exp(-1))},
		{"objective=lambdarank", 1, 2},
		{"", 1, 2}, // custom objective: no line, raw score
	} {
		t.Run(c.objective, func(t *testing.T) {
			m := mustBuild(t, Spec{ID: "m", Type: TypeLightGBM, Inputs: []string{"x"}, Source: lgbOneSplit(c.objective, 0, "0.5")})
			if got := m.Predict([]float64{c.x}); got != c.want {
				t.Fatalf("Predict(%v) = %v, want %v", c.x, got, c.want)
			}
		})
	}
	// A negative raw score with sqrt: sign(s) * s².
	src := strings.Replace(lgbOneSplit("objective=regression sqrt", 0, "0.5"), "leaf_value=1 2", "leaf_value=-3 2", 1)
	if got := mustBuild(t, Spec{ID: "m", Type: TypeLightGBM, Inputs: []string{"x"}, Source: src}).Predict([]float64{0}); got != -9 {
		t.Fatalf("sqrt objective on -3 gives %v, want -9", got)
	}
}

// TestLightGBMShapes: single-leaf trees (as LightGBM writes them, with empty split lines),
// average_output (random forests), CRLF line ends, and trees summed in order.
func TestLightGBMShapes(t *testing.T) {
	src := lgbHeader + "objective=regression\naverage_output\nfeature_names=amount\n\n" +
		"Tree=0\nnum_leaves=1\nnum_cat=0\nsplit_feature=\nsplit_gain=\nthreshold=\ndecision_type=\nleft_child=\nright_child=\nleaf_value=3\nshrinkage=1\n\n\n" +
		"Tree=1\nnum_leaves=2\nsplit_feature=0\nthreshold=10\ndecision_type=2\nleft_child=-1\nright_child=-2\nleaf_value=1 5\n\n\n" +
		"end of trees\n\nparameters:\n[boosting: rf]\nend of parameters\n"
	for _, s := range []string{src, strings.ReplaceAll(src, "\n", "\r\n")} {
		m := mustBuild(t, Spec{ID: "rf", Type: TypeLightGBM, Source: s})
		if in := m.Inputs(); len(in) != 1 || in[0] != "amount" {
			t.Fatalf("inputs %v", in)
		}
		if got := m.Predict([]float64{5}); got != 2 { // (3 + 1) / 2
			t.Fatalf("Predict(5) = %v, want 2", got)
		}
		if got := m.Predict([]float64{50}); got != 4 { // (3 + 5) / 2
			t.Fatalf("Predict(50) = %v, want 4", got)
		}
	}
}

// TestLightGBMRejects: parse errors name the line of the model file and, for limits, the limit.
func TestLightGBMRejects(t *testing.T) {
	one := lgbOneSplit("objective=regression", 2, "0.5")
	// Line numbers in one: 1 tree, 2 version, ..., 6 max_feature_idx, 7 objective, 9 Tree=0,
	// 10 num_leaves, 11 num_cat, 12 split_feature, 13 split_gain, 14 threshold,
	// 15 decision_type, 16 left_child, 17 right_child, 18 leaf_value, 22 is_linear.
	replace := func(old, new string) string {
		if !strings.Contains(one, old) {
			t.Fatalf("%q not in the model", old)
		}
		return strings.Replace(one, old, new, 1)
	}
	chain := func(depth int) string { // every right child is the next split: a path of depth splits
		var feat, thr, dec, left, right, leaves []string
		for i := 0; i < depth; i++ {
			feat, thr, dec = append(feat, "0"), append(thr, "0.5"), append(dec, "2")
			left = append(left, fmt.Sprint(^i))
			if i == depth-1 {
				right = append(right, fmt.Sprint(^depth))
			} else {
				right = append(right, fmt.Sprint(i+1))
			}
		}
		for i := 0; i <= depth; i++ {
			leaves = append(leaves, "1")
		}
		j := func(s []string) string { return strings.Join(s, " ") }
		return lgbHeader + "objective=regression\n\nTree=0\nnum_leaves=" + fmt.Sprint(depth+1) +
			"\nsplit_feature=" + j(feat) + "\nthreshold=" + j(thr) + "\ndecision_type=" + j(dec) +
			"\nleft_child=" + j(left) + "\nright_child=" + j(right) + "\nleaf_value=" + j(leaves) + "\n\nend of trees\n"
	}
	manyTrees := func(n int) string {
		var b strings.Builder
		b.WriteString(lgbHeader + "objective=regression\n\n")
		for i := 0; i < n; i++ {
			fmt.Fprintf(&b, "Tree=%d\nnum_leaves=1\nleaf_value=0.5\n\n", i)
		}
		return b.String() + "end of trees\n"
	}
	for _, c := range []struct {
		name  string
		src   string
		line  int
		msg   string
		limit bool
	}{
		{"not a model", "hello\n", 1, `starts with "hello"`, false},
		{"blank", "\n\n \n", 0, "is empty", false},
		{"no trees", lgbHeader + "objective=regression\n", 0, "no trees", false},
		{"no max_feature_idx", strings.Replace(one, "max_feature_idx=0\n", "", 1), 0, "max_feature_idx", false},
		{"bad max_feature_idx", replace("max_feature_idx=0", "max_feature_idx=-3"), 6, "max_feature_idx", false},
		{"too many features", replace("max_feature_idx=0", "max_feature_idx=10000"), 6, "MaxInputs", true},
		{"multiclass header", replace("num_class=1", "num_class=3"), 3, "multiclass", false},
		{"multiclass objective", replace("objective=regression", "objective=multiclass num_class:3"), 7, "multiclass", false},
		{"unknown objective", replace("objective=regression", "objective=magic"), 7, `"magic"`, false},
		{"bad sigmoid", replace("objective=regression", "objective=binary sigmoid:-1"), 7, "positive", false},
		{"feature names count", replace("objective=regression", "objective=regression\nfeature_names=a b"), 8, "2 names for 1 features", false},
		{"trees out of order", replace("Tree=0", "Tree=1"), 9, `want "Tree=0"`, false},
		{"no leaf values", replace("leaf_value=1 2\n", ""), 9, "no leaf_value", false},
		{"leaf value count", replace("leaf_value=1 2", "leaf_value=1 2 3"), 18, "more than 2 values", false},
		{"leaf value NaN", replace("leaf_value=1 2", "leaf_value=1 nan"), 9, "finite", false},
		{"leaf value text", replace("leaf_value=1 2", "leaf_value=1 two"), 18, `"two" is not a number`, false},
		{"threshold NaN", replace("threshold=0.5", "threshold=nan"), 9, "threshold NaN", false},
		{"feature out of range", replace("split_feature=0", "split_feature=1"), 9, "feature 1", false},
		{"child out of range", replace("right_child=-2", "right_child=-3"), 17, "not an integer in -2..0", false},
		{"node reached twice", replace("right_child=-2", "right_child=-1"), 9, "reached twice", false},
		{"unknown missing type", replace("decision_type=2", "decision_type=12"), 15, "unknown missing type", false},
		{"unknown decision bits", replace("decision_type=2", "decision_type=16"), 15, "0..15", false},
		{"linear tree", replace("is_linear=0", "is_linear=1"), 22, "linear trees", false},
		{"bad num_leaves", replace("num_leaves=2", "num_leaves=0"), 10, "num_leaves", false},
		{"too many leaves", replace("num_leaves=2", "num_leaves=70000"), 10, "MaxTreeNodes", true},
		{"categorical without bitsets", replace("decision_type=2", "decision_type=1"), 14, "category set index", false},
		{"categorical without boundaries", replace("num_cat=0", "num_cat=1"), 9, "no cat_boundaries", false},
		{"bad boundaries", replace("num_cat=0", "num_cat=1\ncat_boundaries=1 2\ncat_threshold=1"), 12, "start at 0", false},
		{"short cat_threshold", replace("num_cat=0", "num_cat=1\ncat_boundaries=0 2\ncat_threshold=1"), 13, "has 1 values, want 2", false},
		{"too deep", chain(MaxTreeDepth + 1), 9, "MaxTreeDepth", true},
		{"too many trees", manyTrees(MaxTrees + 1), 9 + 4*MaxTrees, "MaxTrees", true},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := Build(Spec{ID: "m", Type: TypeLightGBM, Inputs: []string{"x"}, Source: c.src})
			var e *Error
			if !errors.As(err, &e) || e.Field != "source" {
				t.Fatalf("error %v, want a source error", err)
			}
			if !strings.Contains(err.Error(), c.msg) || e.Line != c.line {
				t.Fatalf("error %q at line %d, want %q at line %d", err, e.Line, c.msg, c.line)
			}
			if c.limit != errors.Is(err, ErrLimit) {
				t.Fatalf("errors.Is(%q, ErrLimit) = %v", err, !c.limit)
			}
		})
	}
	if _, err := Build(Spec{ID: "m", Type: TypeLightGBM, Inputs: []string{"x"}, Source: chain(MaxTreeDepth)}); err != nil {
		t.Fatalf("a tree of depth MaxTreeDepth is rejected: %v", err)
	}
}
