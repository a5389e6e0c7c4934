package model

import (
	"errors"
	"math"
	"strings"
	"sync"
	"testing"
)

var nan = math.NaN()

func ptr(v float64) *float64 { return &v }

// TestPredictAllocatesNothing checks every model type with testing.AllocsPerRun.
func TestPredictAllocatesNothing(t *testing.T) {
	models := map[string]Model{
		"lightgbm":  Synthetic(3, 300, 6, 20),
		"xgboost":   mustBuild(t, Spec{ID: "x", Type: TypeXGBoost, Inputs: []string{"a", "b"}, Source: xgbCatModel}),
		"logistic":  mustBuild(t, Spec{ID: "l", Type: TypeLogistic, Logistic: &LogisticSpec{Intercept: 1, Weights: map[string]float64{"a": 1, "b": 2}}}),
		"scorecard": mustBuild(t, Spec{ID: "s", Type: TypeScorecard, Scorecard: testScorecard()}),
	}
	for name, m := range models {
		x := make([]float64, len(m.Inputs()))
		for i := range x {
			x[i] = float64(i%3) * 0.4
		}
		x[0] = nan
		if n := testing.AllocsPerRun(200, func() { m.Predict(x) }); n != 0 {
			t.Errorf("%s: %v allocations per Predict, want 0", name, n)
		}
	}
}

// TestSynthetic: the generator's shape, determinism and spread.
func TestSynthetic(t *testing.T) {
	m := Synthetic(42, 300, 6, 50)
	f := m.(*treeModel).f
	if len(f.roots) != 300 || len(f.nodes) != 300*63 || len(f.leaves) != 300*64 {
		t.Fatalf("%d trees, %d splits, %d leaves; want 300, 18900, 19200", len(f.roots), len(f.nodes), len(f.leaves))
	}
	if in := m.Inputs(); len(in) != 50 || in[0] != "f0" || in[49] != "f49" {
		t.Fatalf("inputs %v", in)
	}
	again := Synthetic(42, 300, 6, 50)
	other := Synthetic(43, 300, 6, 50)
	differs := 0
	lo, hi := 1.0, 0.0
	for _, x := range benchInputs(200, 50) {
		p := m.Predict(x)
		if p != again.Predict(x) {
			t.Fatal("same seed, different predictions")
		}
		if p != other.Predict(x) {
			differs++
		}
		if !(p > 0 && p < 1) {
			t.Fatalf("probability %v", p)
		}
		lo, hi = math.Min(lo, p), math.Max(hi, p)
	}
	if differs < 190 {
		t.Fatalf("seeds 42 and 43 agree on %d of 200 inputs", 200-differs)
	}
	if hi-lo < 0.05 {
		t.Fatalf("predictions span only [%v, %v]", lo, hi)
	}
	if single := Synthetic(1, 5, 0, 1); single.Predict([]float64{0.5}) != single.Predict([]float64{nan}) {
		t.Fatal("depth 0 trees depend on the input")
	}
}

func TestSyntheticPanicsOnBadShape(t *testing.T) {
	for _, c := range [][3]int{{0, 6, 10}, {MaxTrees + 1, 1, 1}, {1, 17, 1}, {1, -1, 1}, {1, 1, 0}} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("Synthetic(%v) did not panic", c)
				}
			}()
			Synthetic(1, c[0], c[1], c[2])
		}()
	}
}

// TestShortInputIsMissing: entries missing from a short x count as NaN.
func TestShortInputIsMissing(t *testing.T) {
	m := Synthetic(5, 50, 4, 8)
	for _, x := range benchInputs(50, 8) {
		full := append([]float64(nil), x...)
		for i := 5; i < 8; i++ {
			full[i] = nan
		}
		if got, want := m.Predict(x[:5]), m.Predict(full); got != want {
			t.Fatalf("short input %v, padded with NaN %v", got, want)
		}
		if got, want := m.Predict(append(x, 1, 2, 3)), m.Predict(x); got != want {
			t.Fatal("extra entries changed the prediction")
		}
	}
}

// TestConcurrentPredict runs one model from many goroutines (meaningful under -race).
func TestConcurrentPredict(t *testing.T) {
	m := Synthetic(9, 50, 5, 10)
	xs := benchInputs(64, 10)
	want := make([]float64, len(xs))
	for i, x := range xs {
		want[i] = m.Predict(x)
	}
	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		wg.Go(func() {
			for i, x := range xs {
				if m.Predict(x) != want[i] {
					t.Error("concurrent prediction differs")
					return
				}
			}
		})
	}
	wg.Wait()
}

// TestBuildRejects: spec-level errors name the field at fault.
func TestBuildRejects(t *testing.T) {
	lgb := SyntheticLightGBM(1, 2, 2, 3)
	logistic := &LogisticSpec{Weights: map[string]float64{"a": 1}}
	for _, c := range []struct {
		name  string
		spec  Spec
		field string
		msg   string
	}{
		{"no id", Spec{Type: TypeLogistic, Logistic: logistic}, "id", "empty"},
		{"long id", Spec{ID: strings.Repeat("x", MaxIDBytes+1), Type: TypeLogistic, Logistic: logistic}, "id", "MaxIDBytes"},
		{"no type", Spec{ID: "m"}, "type", "empty"},
		{"unknown type", Spec{ID: "m", Type: "catboost"}, "type", `"catboost"`},
		{"tree without source", Spec{ID: "m", Type: TypeLightGBM}, "source", "empty"},
		{"source on logistic", Spec{ID: "m", Type: TypeLogistic, Source: "x", Logistic: logistic}, "source", "only for"},
		{"logistic on tree", Spec{ID: "m", Type: TypeLightGBM, Source: lgb, Logistic: logistic}, "logistic", "only for"},
		{"scorecard on logistic", Spec{ID: "m", Type: TypeLogistic, Logistic: logistic, Scorecard: testScorecard()}, "scorecard", "only for"},
		{"duplicate inputs", Spec{ID: "m", Type: TypeLightGBM, Source: lgb, Inputs: []string{"a", "b", "a"}}, "inputs", "twice"},
		{"empty input name", Spec{ID: "m", Type: TypeLightGBM, Source: lgb, Inputs: []string{"a", "", "c"}}, "inputs", "empty"},
		{"input count differs from model", Spec{ID: "m", Type: TypeLightGBM, Source: lgb, Inputs: []string{"a", "b"}}, "inputs", "3 features"},
		{"too many inputs", Spec{ID: "m", Type: TypeLightGBM, Source: lgb, Inputs: make([]string, MaxInputs+1)}, "inputs", "MaxInputs"},
		{"source too large", Spec{ID: "m", Type: TypeLightGBM, Source: strings.Repeat(" ", MaxSourceBytes+1)}, "source", "MaxSourceBytes"},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := Build(c.spec)
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("error %v, want *Error", err)
			}
			if e.Field != c.field || !strings.Contains(err.Error(), c.msg) {
				t.Fatalf("error %q (field %q), want field %q and %q", err, e.Field, c.field, c.msg)
			}
			if strings.Contains(c.msg, "Max") && !errors.Is(err, ErrLimit) {
				t.Fatalf("limit error %q does not wrap ErrLimit", err)
			}
		})
	}
}
