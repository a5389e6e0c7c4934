package model

import (
	"errors"
	"fmt"
	"math"
	"slices"
)

// LogisticSpec is a logistic regression: Predict returns 1 / (1 + exp(-z)) with
// z = intercept + the sum of weight × input. A missing input (NaN) adds nothing to z, as if it
// sat at the value the coefficients were centred on.
type LogisticSpec struct {
	Intercept float64            `json:"intercept" yaml:"intercept"`
	Weights   map[string]float64 `json:"weights" yaml:"weights"` // input name → coefficient
}

type term struct {
	input  int
	weight float64
}

type logisticModel struct {
	id        string
	inputs    []string
	intercept float64
	terms     []term // non-zero weights only
}

func buildLogistic(s Spec) (Model, error) {
	fail := func(field string, err error) (Model, error) {
		return nil, &Error{ID: s.ID, Field: field, Err: err}
	}
	l := s.Logistic
	if l == nil {
		return fail("logistic", errors.New("is missing; a logistic model needs an intercept and weights"))
	}
	if len(l.Weights) == 0 {
		return fail("logistic.weights", errors.New("is empty"))
	}
	if len(l.Weights) > MaxInputs {
		return fail("logistic.weights", limitErr("count", len(l.Weights), "MaxInputs", MaxInputs))
	}
	if !finite(l.Intercept) {
		return fail("logistic.intercept", fmt.Errorf("is %v; want a finite number", l.Intercept))
	}
	inputs := s.Inputs
	if len(inputs) == 0 {
		for name := range l.Weights {
			inputs = append(inputs, name)
		}
		slices.Sort(inputs)
		if err := checkNames(inputs); err != nil {
			return fail("logistic.weights", err)
		}
	}
	m := &logisticModel{id: s.ID, inputs: slices.Clone(inputs), intercept: l.Intercept}
	for i, name := range inputs {
		w, ok := l.Weights[name]
		if !ok {
			return fail("logistic.weights", fmt.Errorf("has no weight for input %q", name))
		}
		if !finite(w) {
			return fail("logistic.weights."+name, fmt.Errorf("is %v; want a finite number", w))
		}
		if w != 0 {
			m.terms = append(m.terms, term{input: i, weight: w})
		}
	}
	if len(l.Weights) != len(inputs) {
		for name := range l.Weights {
			if !slices.Contains(inputs, name) {
				return fail("logistic.weights", fmt.Errorf("names %q, which is not one of the inputs", name))
			}
		}
	}
	return m, nil
}

func (m *logisticModel) ID() string       { return m.id }
func (m *logisticModel) Inputs() []string { return slices.Clone(m.inputs) }

func (m *logisticModel) Predict(x []float64) float64 {
	z := m.intercept
	for _, t := range m.terms {
		if t.input < len(x) {
			if v := x[t.input]; v == v {
				z += t.weight * v
			}
		}
	}
	return 1 / (1 + math.Exp(-z))
}

func finite(v float64) bool { return !math.IsNaN(v) && !math.IsInf(v, 0) }
