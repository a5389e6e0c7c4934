package model

import (
	"math"
	"os"
	"strconv"
	"strings"
	"testing"
)

// Reference predictions: real model files exported by LightGBM and XGBoost, with the
// predictions those tools made for the same rows (testdata/ATTRIBUTION.md says where they come
// from). Both are reproduced to the last bit, so the tolerance is far tighter than it needs to
// be; it stays at 1e-9 relative so that a harmless change in summation order would not fail.
const refTolerance = 1e-9

func readFile(t testing.TB, name string) string {
	t.Helper()
	b, err := os.ReadFile("testdata/" + name)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// readFloats reads whitespace-separated numbers.
func readFloats(t testing.TB, text string) []float64 {
	t.Helper()
	var out []float64
	for _, f := range strings.Fields(text) {
		v, err := strconv.ParseFloat(f, 64)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, v)
	}
	return out
}

func closeTo(got, want, rel float64) bool {
	return math.Abs(got-want) <= rel*math.Max(math.Abs(want), 1e-300)
}

// layouts returns tree model m twice: walking its trees in the pointer layout and in the
// packed one (forced, however deep or ragged the trees), so that reference tests check both.
func layouts(t testing.TB, m Model) map[string]*treeModel {
	t.Helper()
	tm := m.(*treeModel)
	walk, pk := *tm, *tm
	wf, pf := *tm.f, *tm.f
	wf.packed = nil
	pf.packWithin(MaxTreeDepth, math.MaxInt32)
	if pf.packed == nil {
		t.Fatal("the model could not be packed")
	}
	walk.f, pk.f = &wf, &pf
	return map[string]*treeModel{"walk": &walk, "packed": &pk}
}

func mustBuild(t testing.TB, s Spec) Model {
	t.Helper()
	m, err := Build(s)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// TestLightGBMReference: a DART binary classifier of 10 trees over the 30 features of the
// breast cancer data set; the stored predictions are LightGBM's raw scores.
func TestLightGBMReference(t *testing.T) {
	m := mustBuild(t, Spec{ID: "bc", Type: TypeLightGBM, Source: readFile(t, "lg_dart_breast_cancer.model")})
	if got := m.Inputs(); len(got) != 30 || got[0] != "Column_0" || got[29] != "Column_29" {
		t.Fatalf("inputs from the model file = %v", got)
	}
	rows := strings.Split(strings.TrimSpace(readFile(t, "breast_cancer_test.tsv")), "\n")
	want := readFloats(t, readFile(t, "lg_dart_breast_cancer_true_predictions.txt"))
	if len(rows) != len(want) || len(rows) < 20 {
		t.Fatalf("%d rows, %d predictions", len(rows), len(want))
	}
	for layout, m := range layouts(t, m) {
		for i, row := range rows {
			x := readFloats(t, row)
			raw := m.margin(x)
			if !closeTo(raw, want[i], refTolerance) {
				t.Errorf("%s: row %d: raw score %.17g, LightGBM gave %.17g", layout, i, raw, want[i])
			}
			// The binary objective (sigmoid:1) turns the raw score into a probability.
			if p, wantP := m.Predict(x), 1/(1+math.Exp(-want[i])); !closeTo(p, wantP, refTolerance) {
				t.Errorf("%s: row %d: probability %.17g, want %.17g", layout, i, p, wantP)
			}
		}
	}
}

// TestXGBoostReference: XGBoost's agaricus demo model (binary:logistic, base_score 0.5, three
// trees of depth 2) saved as JSON, and XGBoost's probabilities for the agaricus test rows.
// The rows are sparse: an absent feature is missing and takes the split's default direction.
func TestXGBoostReference(t *testing.T) {
	names := make([]string, 127)
	for i := range names {
		names[i] = "f" + strconv.Itoa(i)
	}
	m := mustBuild(t, Spec{ID: "agaricus", Type: TypeXGBoost, Inputs: names, Source: readFile(t, "xgagaricus.json")})
	rows := strings.Split(strings.TrimSpace(readFile(t, "agaricus_test.libsvm")), "\n")
	want := readFloats(t, readFile(t, "agaricus_true_predictions.txt"))
	if len(rows) != len(want) || len(rows) < 50 {
		t.Fatalf("%d rows, %d predictions", len(rows), len(want))
	}
	distinct := map[float64]bool{}
	for i, row := range rows {
		x := make([]float64, len(names))
		for j := range x {
			x[j] = math.NaN()
		}
		fields := strings.Fields(row)
		for _, kv := range fields[1:] { // fields[0] is the label
			k, v, _ := strings.Cut(kv, ":")
			idx, err := strconv.Atoi(k)
			if err != nil {
				t.Fatal(err)
			}
			// The stored rows number features from 0; the model was trained on the copy
			// numbered from 1 (see ATTRIBUTION.md).
			x[idx+1] = readFloats(t, v)[0]
		}
		for layout, m := range layouts(t, m) {
			if got := m.Predict(x); !closeTo(got, want[i], refTolerance) {
				t.Errorf("%s: row %d: %.17g, XGBoost gave %.17g", layout, i, got, want[i])
			}
		}
		distinct[want[i]] = true
	}
	if len(distinct) < 5 {
		t.Fatalf("only %d distinct predictions: the rows do not exercise the trees", len(distinct))
	}
}

// TestLightGBMCategoricalFile: a two-tree model exported by LightGBM whose first split is
// categorical on X2 (decision_type 9: categorical, NaN missing type) with the set {100}
// (cat_threshold word 3 = 16, bit 4: 3*32+4 = 100), then X1 <= 340.5. Expected values are
// the leaves picked by hand.
func TestLightGBMCategoricalFile(t *testing.T) {
	m := mustBuild(t, Spec{ID: "simple", Type: TypeLightGBM, Source: readFile(t, "model_simple.txt")})
	// Summed in float64 at run time, as the model does (Go would add constants exactly).
	add := func(a, b float64) float64 { return a + b }
	var (
		inSet = add(0.56697267424823339, 0.12883103567558912)   // leaf 0 of both trees
		low   = add(0.3584987837673016, -0.063872842243335157)  // X2 not 100, X1 <= 340.5
		high  = add(0.41213915936587919, -0.016484332942214807) // X2 not 100, X1 > 340.5
	)
	for _, c := range []struct {
		name   string
		x1, x2 float64
		raw    float64
	}{
		{"category 100", 500, 100, inSet},
		{"category 100 as 100.7 truncates", 500, 100.7, inSet},
		{"other category, low X1", 10, 3, low},
		{"other category, high X1", 341, 3, high},
		{"X1 at the threshold goes left", 340.50000000000006, 3, low},
		{"category beyond the bitset", 10, 4000, low},
		{"negative category is no category", 10, -100, low},
		{"category in (-1,0) truncates to 0, not in set", 10, -0.5, low},
		{"huge category", 10, 1e300, low},
		{"missing category goes right", 341, nan, high},
		{"missing X1 reads as 0 (missing type None)", nan, 7, low},
		{"infinite X1", math.Inf(1), 7, high},
	} {
		t.Run(c.name, func(t *testing.T) {
			x := []float64{c.x1, c.x2}
			for layout, m := range layouts(t, m) {
				if got := m.margin(x); got != c.raw {
					t.Fatalf("%s: raw %.17g, want %.17g", layout, got, c.raw)
				}
				if got, want := m.Predict(x), 1/(1+math.Exp(-c.raw)); got != want {
					t.Fatalf("%s: probability %v, want %v", layout, got, want)
				}
			}
		})
	}
}
