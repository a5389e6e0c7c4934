package model

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
)

// ScorecardSpec is a points scorecard: Predict returns Base plus, for every feature, the
// points of the bin its input falls in.
type ScorecardSpec struct {
	Base     float64            `json:"base" yaml:"base"`
	Features []ScorecardFeature `json:"features" yaml:"features"`
}

// ScorecardFeature bins one input. A value is matched against the bins; a value that matches
// none scores Default. A missing value (NaN) scores Missing, or Default when Missing is not
// set. Build rejects a feature for which some value would score nothing: give Default unless
// the range bins cover every number and Missing (or Default) for missing values.
type ScorecardFeature struct {
	Input   string         `json:"input" yaml:"input"`
	Bins    []ScorecardBin `json:"bins" yaml:"bins"`
	Missing *float64       `json:"missing,omitempty" yaml:"missing,omitempty"`
	Default *float64       `json:"default,omitempty" yaml:"default,omitempty"`
}

// ScorecardBin is either a range [Min, Max) — an absent Min is −∞, an absent Max +∞ — or, with
// Values, a set of category codes. A feature's bins are all ranges or all code sets; ranges
// must not overlap, nor may a code appear in two bins.
type ScorecardBin struct {
	Min    *float64  `json:"min,omitempty" yaml:"min,omitempty"`
	Max    *float64  `json:"max,omitempty" yaml:"max,omitempty"`
	Values []float64 `json:"values,omitempty" yaml:"values,omitempty"`
	Points float64   `json:"points" yaml:"points"`
}

// scoreFeature is a compiled feature: ranges sorted by lower bound, codes sorted.
type scoreFeature struct {
	input    int
	lo, hi   []float64 // range i is [lo[i], hi[i])
	rangePts []float64
	codes    []float64
	codePts  []float64
	missing  float64
	deflt    float64
}

type scorecardModel struct {
	id       string
	inputs   []string
	base     float64
	features []scoreFeature
}

func buildScorecard(s Spec) (Model, error) {
	fail := func(field string, err error) (Model, error) {
		return nil, &Error{ID: s.ID, Field: field, Err: err}
	}
	sc := s.Scorecard
	if sc == nil {
		return fail("scorecard", errors.New("is missing; a scorecard model needs base points and features"))
	}
	if !finite(sc.Base) {
		return fail("scorecard.base", fmt.Errorf("is %v; want a finite number", sc.Base))
	}
	if len(sc.Features) == 0 {
		return fail("scorecard.features", errors.New("is empty"))
	}
	if len(sc.Features) > MaxInputs {
		return fail("scorecard.features", limitErr("count", len(sc.Features), "MaxInputs", MaxInputs))
	}
	inputs := s.Inputs
	if len(inputs) == 0 {
		for _, f := range sc.Features {
			inputs = append(inputs, f.Input)
		}
		if err := checkNames(inputs); err != nil {
			return fail("scorecard.features", fmt.Errorf("inputs: %v", err))
		}
	}
	index := make(map[string]int, len(inputs))
	for i, name := range inputs {
		index[name] = i
	}
	m := &scorecardModel{id: s.ID, inputs: slices.Clone(inputs), base: sc.Base}
	used := make([]bool, len(inputs))
	for k, f := range sc.Features {
		field := "scorecard.features[" + strconv.Itoa(k) + "]"
		i, ok := index[f.Input]
		if !ok {
			return fail(field+".input", fmt.Errorf("%q is not one of the inputs", f.Input))
		}
		if used[i] {
			return fail(field+".input", fmt.Errorf("%q is scored by two features", f.Input))
		}
		used[i] = true
		c, err := compileFeature(f)
		if err != nil {
			return fail(field, err)
		}
		c.input = i
		m.features = append(m.features, c)
	}
	for i, u := range used {
		if !u {
			return fail("inputs", fmt.Errorf("%q is not scored by any feature", inputs[i]))
		}
	}
	return m, nil
}

func compileFeature(f ScorecardFeature) (scoreFeature, error) {
	var c scoreFeature
	if len(f.Bins) == 0 {
		return c, errors.New("bins is empty")
	}
	if len(f.Bins) > MaxBins {
		return c, limitErr("bin count", len(f.Bins), "MaxBins", MaxBins)
	}
	type rng struct{ lo, hi, pts float64 }
	type code struct{ v, pts float64 }
	var ranges []rng
	var codes []code
	for j, b := range f.Bins {
		if !finite(b.Points) {
			return c, fmt.Errorf("bins[%d].points is %v; want a finite number", j, b.Points)
		}
		if len(b.Values) > 0 {
			if b.Min != nil || b.Max != nil {
				return c, fmt.Errorf("bins[%d] has both values and min/max; a bin is a range or a set of codes", j)
			}
			for _, v := range b.Values {
				if !finite(v) {
					return c, fmt.Errorf("bins[%d].values has %v; want finite codes", j, v)
				}
				codes = append(codes, code{v, b.Points})
			}
			continue
		}
		r := rng{math.Inf(-1), math.Inf(1), b.Points}
		if b.Min != nil {
			r.lo = *b.Min
		}
		if b.Max != nil {
			r.hi = *b.Max
		}
		if math.IsNaN(r.lo) || math.IsNaN(r.hi) || !(r.lo < r.hi) {
			return c, fmt.Errorf("bins[%d] is [%v, %v); want min < max", j, r.lo, r.hi)
		}
		ranges = append(ranges, r)
	}
	if len(ranges) > 0 && len(codes) > 0 {
		return c, errors.New("mixes range bins and code bins; a feature's bins are all ranges or all codes")
	}
	slices.SortFunc(ranges, func(a, b rng) int { return cmpFloat(a.lo, b.lo) })
	for j := 1; j < len(ranges); j++ {
		if ranges[j].lo < ranges[j-1].hi {
			return c, fmt.Errorf("bins [%v, %v) and [%v, %v) overlap", ranges[j-1].lo, ranges[j-1].hi, ranges[j].lo, ranges[j].hi)
		}
	}
	slices.SortFunc(codes, func(a, b code) int { return cmpFloat(a.v, b.v) })
	for j := 1; j < len(codes); j++ {
		if codes[j].v == codes[j-1].v {
			return c, fmt.Errorf("code %v is in two bins", codes[j].v)
		}
	}
	if f.Default == nil {
		if gap, ok := firstGap(ranges, func(r rng) (float64, float64) { return r.lo, r.hi }); ok {
			return c, fmt.Errorf("values from %v match no bin; add a bin or set default", gap)
		}
		if f.Missing == nil {
			return c, errors.New("has no points for a missing value; set missing or default")
		}
	}
	for _, r := range ranges {
		c.lo, c.hi, c.rangePts = append(c.lo, r.lo), append(c.hi, r.hi), append(c.rangePts, r.pts)
	}
	for _, k := range codes {
		c.codes, c.codePts = append(c.codes, k.v), append(c.codePts, k.pts)
	}
	if f.Default != nil {
		if !finite(*f.Default) {
			return c, fmt.Errorf("default is %v; want a finite number", *f.Default)
		}
		c.deflt, c.missing = *f.Default, *f.Default
	}
	if f.Missing != nil {
		if !finite(*f.Missing) {
			return c, fmt.Errorf("missing is %v; want a finite number", *f.Missing)
		}
		c.missing = *f.Missing
	}
	return c, nil
}

// firstGap returns the first number not covered by the sorted, non-overlapping ranges.
func firstGap[T any](ranges []T, bounds func(T) (float64, float64)) (float64, bool) {
	at := math.Inf(-1)
	for _, r := range ranges {
		lo, hi := bounds(r)
		if lo > at {
			return at, true
		}
		at = hi
	}
	if !math.IsInf(at, 1) {
		return at, true
	}
	return 0, false
}

func cmpFloat(a, b float64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func (m *scorecardModel) ID() string       { return m.id }
func (m *scorecardModel) Inputs() []string { return slices.Clone(m.inputs) }

func (m *scorecardModel) Predict(x []float64) float64 {
	total := m.base
	for i := range m.features {
		f := &m.features[i]
		v := math.NaN()
		if f.input < len(x) {
			v = x[f.input]
		}
		total += f.points(v)
	}
	return total
}

func (f *scoreFeature) points(v float64) float64 {
	if v != v {
		return f.missing
	}
	// The last range whose lower bound is <= v, if v is below its upper bound.
	lo, hi := 0, len(f.lo)
	for lo < hi {
		mid := int(uint(lo+hi) >> 1)
		if f.lo[mid] <= v {
			lo = mid + 1
		} else {
			hi = mid
		}
	}
	if lo > 0 && (v < f.hi[lo-1] || math.IsInf(f.hi[lo-1], 1)) { // no upper bound takes +Inf
		return f.rangePts[lo-1]
	}
	lo, hi = 0, len(f.codes)
	for lo < hi {
		mid := int(uint(lo+hi) >> 1)
		if f.codes[mid] < v {
			lo = mid + 1
		} else {
			hi = mid
		}
	}
	if lo < len(f.codes) && f.codes[lo] == v {
		return f.codePts[lo]
	}
	return f.deflt
}
