package model

import (
	"errors"
	"math"
	"strings"
	"testing"
)

// testScorecard: age in ranges, a device-type code, and a count whose last bin is open.
func testScorecard() *ScorecardSpec {
	return &ScorecardSpec{
		Base: 600,
		Features: []ScorecardFeature{
			{Input: "age", Missing: ptr(-15), Bins: []ScorecardBin{
				{Max: ptr(25), Points: -20},
				{Min: ptr(25), Max: ptr(40), Points: 10},
				{Min: ptr(40), Points: 25},
			}},
			{Input: "device", Default: ptr(-5), Bins: []ScorecardBin{
				{Values: []float64{1, 2}, Points: 8},
				{Values: []float64{7}, Points: -30},
			}},
			{Input: "logins_24h", Default: ptr(-40), Missing: ptr(0), Bins: []ScorecardBin{
				{Min: ptr(0), Max: ptr(3), Points: 5},
				{Min: ptr(3), Max: ptr(10), Points: -10},
			}},
		},
	}
}

func TestScorecard(t *testing.T) {
	m := mustBuild(t, Spec{ID: "card", Type: TypeScorecard, Scorecard: testScorecard()})
	if in := m.Inputs(); strings.Join(in, ",") != "age,device,logins_24h" {
		t.Fatalf("inputs %v", in)
	}
	inf := func(sign int) float64 { return math.Inf(sign) }
	for _, c := range []struct {
		name string
		x    []float64
		want float64
	}{
		{"young, known device, few logins", []float64{20, 1, 2}, 600 - 20 + 8 + 5},
		{"lower bound is inclusive", []float64{25, 2, 0}, 600 + 10 + 8 + 5},
		{"upper bound is exclusive", []float64{40, 7, 3}, 600 + 25 - 30 - 10},
		{"open ends take infinities", []float64{inf(1), 7, 9.99}, 600 + 25 - 30 - 10},
		{"open start takes -Inf", []float64{inf(-1), 7, 9.99}, 600 - 20 - 30 - 10},
		{"unknown device code scores default", []float64{30, 3, 1}, 600 + 10 - 5 + 5},
		{"code 1.5 is no code", []float64{30, 1.5, 1}, 600 + 10 - 5 + 5},
		{"count past the last bin scores default", []float64{30, 1, 10}, 600 + 10 + 8 - 40},
		{"negative count scores default", []float64{30, 1, -1}, 600 + 10 + 8 - 40},
		{"missing values", []float64{nan, nan, nan}, 600 - 15 - 5 + 0},
		{"short input is missing", []float64{30}, 600 + 10 - 5 + 0},
	} {
		t.Run(c.name, func(t *testing.T) {
			if got := m.Predict(c.x); got != c.want {
				t.Fatalf("%v points, want %v", got, c.want)
			}
		})
	}
}

func TestScorecardRejects(t *testing.T) {
	with := func(edit func(*ScorecardSpec)) *ScorecardSpec {
		s := testScorecard()
		edit(s)
		return s
	}
	for _, c := range []struct {
		name   string
		inputs []string
		card   *ScorecardSpec
		field  string
		msg    string
	}{
		{"no scorecard", nil, nil, "scorecard", "missing"},
		{"no features", nil, &ScorecardSpec{Base: 1}, "scorecard.features", "empty"},
		{"no bins", nil, with(func(s *ScorecardSpec) { s.Features[0].Bins = nil }), "scorecard.features[0]", "bins is empty"},
		{"overlap", nil, with(func(s *ScorecardSpec) { s.Features[0].Bins[1].Min = ptr(24) }), "scorecard.features[0]", "overlap"},
		{"gap without default", nil, with(func(s *ScorecardSpec) { s.Features[0].Bins[1].Min = ptr(26) }), "scorecard.features[0]", "from 25 match no bin"},
		{"open top without default", nil, with(func(s *ScorecardSpec) { s.Features[0].Bins[2].Max = ptr(99) }), "scorecard.features[0]", "from 99 match no bin"},
		{"no missing points", nil, with(func(s *ScorecardSpec) { s.Features[0].Missing = nil }), "scorecard.features[0]", "missing value"},
		{"empty range", nil, with(func(s *ScorecardSpec) { s.Features[0].Bins[1].Max = ptr(25) }), "scorecard.features[0]", "min < max"},
		{"range and values", nil, with(func(s *ScorecardSpec) { s.Features[1].Bins[0].Min = ptr(0) }), "scorecard.features[1]", "both values and min/max"},
		{"ranges and codes", nil, with(func(s *ScorecardSpec) {
			s.Features[1].Bins = append(s.Features[1].Bins, ScorecardBin{Min: ptr(100), Points: 1})
		}), "scorecard.features[1]", "mixes"},
		{"code twice", nil, with(func(s *ScorecardSpec) { s.Features[1].Bins[1].Values = []float64{2} }), "scorecard.features[1]", "code 2 is in two bins"},
		{"unknown input", []string{"age", "device"}, testScorecard(), "scorecard.features[2].input", `"logins_24h" is not one of the inputs`},
		{"unused input", []string{"age", "device", "logins_24h", "extra"}, testScorecard(), "inputs", `"extra" is not scored`},
		{"input scored twice", nil, with(func(s *ScorecardSpec) { s.Features[2].Input = "age" }), "scorecard.features", "twice"},
		{"too many bins", nil, with(func(s *ScorecardSpec) {
			s.Features[1].Bins = make([]ScorecardBin, MaxBins+1)
		}), "scorecard.features[1]", "MaxBins"},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := Build(Spec{ID: "card", Type: TypeScorecard, Inputs: c.inputs, Scorecard: c.card})
			var e *Error
			if !errors.As(err, &e) || e.Field != c.field || !strings.Contains(err.Error(), c.msg) {
				t.Fatalf("error %v, want field %q and %q", err, c.field, c.msg)
			}
		})
	}
}
