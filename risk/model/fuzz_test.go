package model

import (
	"encoding/json"
	"errors"
	"math"
	"strconv"
	"testing"
)

// The parsers take model files from rule set uploads: they must reject anything malformed
// with an *Error and never panic, and whatever they accept must predict without panicking.

func FuzzLightGBM(f *testing.F) {
	f.Add(readFile(f, "model_simple.txt"))
	f.Add(readFile(f, "lg_dart_breast_cancer.model"))
	f.Add(lgbOneSplit("objective=binary sigmoid:1", 10, "0.5"))
	f.Add(lgbOneSplit("objective=regression sqrt", 4, "-1e-35"))
	f.Add(SyntheticLightGBM(1, 3, 3, 4))
	f.Fuzz(func(t *testing.T, src string) {
		fuzzTreeSource(t, TypeLightGBM, src, func() (*forest, error) { return parseLightGBM(src) })
	})
}

func FuzzXGBoost(f *testing.F) {
	f.Add(readFile(f, "xgagaricus.json"))
	f.Add(xgbCatModel)
	f.Add(xgbModel("binary:logistic", "[5E-1]", "gbtree", ""))
	f.Add(xgbModel("count:poisson", "2E0", "dart", `,"weight_drop":[0.5,2]`))
	f.Fuzz(func(t *testing.T, src string) {
		fuzzTreeSource(t, TypeXGBoost, src, func() (*forest, error) { return parseXGBoost(src) })
	})
}

// fuzzTreeSource builds src through Build (checking the error's type) and, if the parser
// accepts it, predicts with inputs named to fit.
func fuzzTreeSource(t *testing.T, typ, src string, parse func() (*forest, error)) {
	if _, err := Build(Spec{ID: "fuzz", Type: typ, Source: src}); err != nil {
		var e *Error
		if !errors.As(err, &e) {
			t.Fatalf("error %T %v is not an *Error", err, err)
		}
	}
	fr, err := parse()
	if err != nil {
		return
	}
	names := make([]string, fr.nFeatures)
	for i := range names {
		names[i] = "f" + strconv.Itoa(i)
	}
	m, err := newTreeModel(Spec{ID: "fuzz", Type: typ, Inputs: names}, fr)
	if err != nil {
		t.Fatalf("parsed model with %d generated names rejected: %v", len(names), err)
	}
	exercise(t, m)
}

func FuzzSpecJSON(f *testing.F) {
	for _, s := range []Spec{
		{ID: "lr", Type: TypeLogistic, Logistic: &LogisticSpec{Intercept: -1, Weights: map[string]float64{"a": 1, "b": -2}}},
		{ID: "card", Type: TypeScorecard, Scorecard: testScorecard()},
		{ID: "card", Type: TypeScorecard, Inputs: []string{"device"}, Scorecard: &ScorecardSpec{Features: []ScorecardFeature{
			{Input: "device", Default: ptr(1), Bins: []ScorecardBin{{Values: []float64{1, 2, 3}, Points: 4}}}}}},
		{ID: "tree", Type: TypeLightGBM, Source: lgbOneSplit("objective=binary", 8, "1")},
	} {
		b, err := json.Marshal(s)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var s Spec
		if json.Unmarshal(b, &s) != nil {
			return
		}
		m, err := Build(s)
		if err != nil {
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("error %T %v is not an *Error", err, err)
			}
			return
		}
		exercise(t, m)
	})
}

// exercise predicts with awkward inputs; each prediction must be repeatable.
func exercise(t *testing.T, m Model) {
	n := len(m.Inputs())
	for _, fill := range []float64{0, math.NaN(), math.Inf(1), math.Inf(-1), -0.5, 1, 3, 100, 1e300} {
		x := make([]float64, n)
		for i := range x {
			x[i] = fill
			if i%2 == 1 {
				x[i] = float64(i)
			}
		}
		a, b := m.Predict(x), m.Predict(x)
		if a != b && !(math.IsNaN(a) && math.IsNaN(b)) {
			t.Fatalf("Predict gave %v then %v", a, b)
		}
		// A packed forest walks to the same leaves as the pointer layout.
		if tm, ok := m.(*treeModel); ok && tm.f.packed != nil && len(x) >= tm.f.nFeatures {
			if p, w := tm.f.marginPacked(x), tm.f.marginWalk(x); p != w && !(math.IsNaN(p) && math.IsNaN(w)) {
				t.Fatalf("x %v: packed walk %v, pointer walk %v", x, p, w)
			}
		}
	}
	m.Predict(nil)
}
