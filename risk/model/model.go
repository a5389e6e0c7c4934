// Package model evaluates the risk engine's models in process: tree ensembles exported by
// LightGBM (text model format) and XGBoost (JSON model format), logistic regressions and
// scorecards of binned points.
//
// A model is described by a Spec and compiled once by Build into an immutable Model whose
// Predict is safe for concurrent use and allocates nothing. Tree ensembles are flattened into
// contiguous arrays at build time, so evaluating 300 trees of depth 6 walks 1,800 array
// entries and no pointers; trees up to depth 8 are further laid out as complete trees whose
// children are found by arithmetic (packed.go).
//
// Predict takes the inputs in the order of Inputs() and returns what the model's training tool
// would return from its own predict call: a probability for binary classifiers, the raw score
// for regressions (or its exponential for Poisson, gamma and Tweedie objectives), the summed
// points for scorecards. NaN is a missing value and follows the model's missing-value rule.
package model

import (
	"errors"
	"fmt"
	"strings"
)

// Model is a compiled model. Implementations are immutable and safe for concurrent use.
type Model interface {
	// ID is the model's identifier from its Spec.
	ID() string
	// Inputs names the values Predict expects, in order.
	Inputs() []string
	// Predict evaluates the model. x holds one value per input, in the order of Inputs; NaN
	// marks a missing value. Entries missing at the end of a short x count as NaN; extra
	// entries are ignored.
	Predict(x []float64) float64
}

// Model types accepted in Spec.Type.
const (
	TypeLightGBM  = "lightgbm"
	TypeXGBoost   = "xgboost"
	TypeLogistic  = "logistic"
	TypeScorecard = "scorecard"
)

// Spec describes a model as a rule set declares it.
type Spec struct {
	// ID names the model; rules see its result as models.<id>.
	ID string `json:"id" yaml:"id"`
	// Type is one of "lightgbm", "xgboost", "logistic" or "scorecard".
	Type string `json:"type" yaml:"type"`
	// Inputs names the feature that feeds each model input, in the model's feature order. For
	// tree models it must list one name per feature of the model file; if it is empty the
	// names stored in the model file are used. For logistic regressions and scorecards it may
	// be empty, and is then taken from the weights (sorted by name) or the scorecard's
	// features (in their order).
	Inputs []string `json:"inputs" yaml:"inputs"`
	// Source is the model file for tree models: LightGBM's text format (what save_model
	// writes) or XGBoost's JSON format (save_model to a .json file).
	Source string `json:"source,omitempty" yaml:"source,omitempty"`
	// Logistic holds a logistic regression's coefficients.
	Logistic *LogisticSpec `json:"logistic,omitempty" yaml:"logistic,omitempty"`
	// Scorecard holds a scorecard's bins and points.
	Scorecard *ScorecardSpec `json:"scorecard,omitempty" yaml:"scorecard,omitempty"`
}

// Limits on what Build accepts. Inputs past them are rejected with an error that wraps
// ErrLimit and names the limit.
const (
	MaxIDBytes      = 128      // length of Spec.ID
	MaxSourceBytes  = 64 << 20 // size of Spec.Source
	MaxInputs       = 10_000   // inputs (features) of one model
	MaxTrees        = 10_000   // trees in one ensemble
	MaxTreeNodes    = 1 << 17  // nodes (splits and leaves) in one tree
	MaxForestNodes  = 1 << 23  // nodes in one ensemble
	MaxTreeDepth    = 64       // splits on the path from a tree's root to a leaf
	MaxCategoryWord = 1 << 16  // 32-bit words of category bitsets in one ensemble
	MaxCategory     = 1 << 24  // largest category value + 1 in a categorical split
	MaxBins         = 1_000    // bins of one scorecard feature
)

// ErrLimit is wrapped by every error that rejects a model for exceeding a limit.
var ErrLimit = errors.New("limit exceeded")

// Error is the error Build returns for a spec it rejects.
type Error struct {
	ID    string // the model's ID
	Field string // the spec field at fault: "type", "inputs", "source", "scorecard.features[2]", ...
	Line  int    // the 1-based line within Source, when known (LightGBM errors, XGBoost JSON syntax and type errors); else 0
	Err   error  // what is wrong
}

func (e *Error) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "model %q: %s", e.ID, e.Field)
	if e.Line > 0 {
		fmt.Fprintf(&b, " line %d", e.Line)
	}
	b.WriteString(": ")
	b.WriteString(e.Err.Error())
	return b.String()
}

func (e *Error) Unwrap() error { return e.Err }

// limitErr reports that what (a count or size) exceeds the named limit.
func limitErr(what string, got int, name string, limit int) error {
	return fmt.Errorf("%s %d exceeds the limit %s = %d: %w", what, got, name, limit, ErrLimit)
}

// Build validates s and compiles it into a Model.
func Build(s Spec) (Model, error) {
	fail := func(field string, err error) (Model, error) {
		return nil, &Error{ID: s.ID, Field: field, Err: err}
	}
	if s.ID == "" {
		return fail("id", errors.New("is empty"))
	}
	if len(s.ID) > MaxIDBytes {
		return fail("id", limitErr("length", len(s.ID), "MaxIDBytes", MaxIDBytes))
	}
	if len(s.Inputs) > MaxInputs {
		return fail("inputs", limitErr("count", len(s.Inputs), "MaxInputs", MaxInputs))
	}
	if err := checkNames(s.Inputs); err != nil {
		return fail("inputs", err)
	}
	if len(s.Source) > MaxSourceBytes {
		return fail("source", limitErr("size in bytes", len(s.Source), "MaxSourceBytes", MaxSourceBytes))
	}
	tree := s.Type == TypeLightGBM || s.Type == TypeXGBoost
	switch {
	case tree && s.Source == "":
		return fail("source", fmt.Errorf("is empty; a %s model needs its model file", s.Type))
	case !tree && s.Source != "":
		return fail("source", fmt.Errorf("is only for lightgbm and xgboost models, not %q", s.Type))
	case s.Type != TypeLogistic && s.Logistic != nil:
		return fail("logistic", fmt.Errorf("is only for logistic models, not %q", s.Type))
	case s.Type != TypeScorecard && s.Scorecard != nil:
		return fail("scorecard", fmt.Errorf("is only for scorecard models, not %q", s.Type))
	}
	switch s.Type {
	case TypeLightGBM:
		f, err := parseLightGBM(s.Source)
		if err != nil {
			return nil, sourceError(s.ID, err)
		}
		return newTreeModel(s, f)
	case TypeXGBoost:
		f, err := parseXGBoost(s.Source)
		if err != nil {
			return nil, sourceError(s.ID, err)
		}
		return newTreeModel(s, f)
	case TypeLogistic:
		return buildLogistic(s)
	case TypeScorecard:
		return buildScorecard(s)
	case "":
		return fail("type", errors.New("is empty; want lightgbm, xgboost, logistic or scorecard"))
	default:
		return fail("type", fmt.Errorf("%q is not one of lightgbm, xgboost, logistic, scorecard", s.Type))
	}
}

// lineError is a parse error at a line of a LightGBM text model.
type lineError struct {
	line int
	err  error
}

func (e *lineError) Error() string { return fmt.Sprintf("line %d: %v", e.line, e.err) }
func (e *lineError) Unwrap() error { return e.err }

func sourceError(id string, err error) error {
	if le, ok := err.(*lineError); ok {
		return &Error{ID: id, Field: "source", Line: le.line, Err: le.err}
	}
	return &Error{ID: id, Field: "source", Err: err}
}

// checkNames rejects empty and duplicate input names.
func checkNames(names []string) error {
	seen := make(map[string]int, len(names))
	for i, n := range names {
		if n == "" {
			return fmt.Errorf("name %d is empty", i)
		}
		if j, dup := seen[n]; dup {
			return fmt.Errorf("%q is listed twice (positions %d and %d)", n, j, i)
		}
		seen[n] = i
	}
	return nil
}
