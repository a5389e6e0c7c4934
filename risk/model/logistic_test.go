package model

import (
	"errors"
	"math"
	"strings"
	"testing"
)

func TestLogistic(t *testing.T) {
	spec := &LogisticSpec{Intercept: -2, Weights: map[string]float64{"velocity": 0.5, "amount": 0.001, "unused": 0}}
	m := mustBuild(t, Spec{ID: "lr", Type: TypeLogistic, Logistic: spec})
	if in := m.Inputs(); strings.Join(in, ",") != "amount,unused,velocity" {
		t.Fatalf("inputs %v, want the weights' names sorted", in)
	}
	sig := func(z float64) float64 { return 1 / (1 + math.Exp(-z)) }
	for _, c := range []struct {
		name string
		x    []float64
		want float64
	}{
		{"all present", []float64{1000, 5, 4}, sig(-2 + 1 + 2)},
		{"missing adds nothing", []float64{nan, 5, 4}, sig(-2 + 2)},
		{"zero weight ignores even infinities", []float64{0, math.Inf(1), 0}, sig(-2)},
		{"short input", []float64{1000}, sig(-2 + 1)},
	} {
		t.Run(c.name, func(t *testing.T) {
			if got := m.Predict(c.x); math.Abs(got-c.want) > 1e-15 {
				t.Fatalf("%v, want %v", got, c.want)
			}
		})
	}
	// Explicit inputs fix the order.
	m = mustBuild(t, Spec{ID: "lr", Type: TypeLogistic, Inputs: []string{"velocity", "amount", "unused"}, Logistic: spec})
	if got, want := m.Predict([]float64{4, 1000, 9}), sig(-2+1+2); math.Abs(got-want) > 1e-15 {
		t.Fatalf("%v, want %v", got, want)
	}
}

func TestLogisticRejects(t *testing.T) {
	for _, c := range []struct {
		name   string
		inputs []string
		spec   *LogisticSpec
		field  string
		msg    string
	}{
		{"missing", nil, nil, "logistic", "missing"},
		{"no weights", nil, &LogisticSpec{}, "logistic.weights", "empty"},
		{"NaN intercept", nil, &LogisticSpec{Intercept: nan, Weights: map[string]float64{"a": 1}}, "logistic.intercept", "finite"},
		{"infinite weight", nil, &LogisticSpec{Weights: map[string]float64{"a": math.Inf(1)}}, "logistic.weights.a", "finite"},
		{"input without weight", []string{"a", "b"}, &LogisticSpec{Weights: map[string]float64{"a": 1}}, "logistic.weights", `no weight for input "b"`},
		{"weight without input", []string{"a"}, &LogisticSpec{Weights: map[string]float64{"a": 1, "c": 2}}, "logistic.weights", `"c", which is not one of the inputs`},
		{"empty name", nil, &LogisticSpec{Weights: map[string]float64{"": 1}}, "logistic.weights", "empty"},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := Build(Spec{ID: "lr", Type: TypeLogistic, Inputs: c.inputs, Logistic: c.spec})
			var e *Error
			if !errors.As(err, &e) || e.Field != c.field || !strings.Contains(err.Error(), c.msg) {
				t.Fatalf("error %v, want field %q and %q", err, c.field, c.msg)
			}
		})
	}
}
