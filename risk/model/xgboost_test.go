package model

import (
	"errors"
	"math"
	"math/rand/v2"
	"strings"
	"testing"
)

// xgbCatModel is a hand-written model in XGBoost 2.x's JSON layout (default_left as 0/1, NaN
// as a bare word for the categorical split's condition, as XGBoost writes it). Tree 0 splits
// on category b ∈ {1, 3, 40} (in the set → right) and then on a < 0.3; tree 1 is one leaf.
const xgbCatModel = `{"learner":{"feature_names":["a","b"],"gradient_booster":{"model":{
 "gbtree_model_param":{"num_trees":"2"},"tree_info":[0,0],
 "trees":[
  {"left_children":[1,3,-1,-1,-1],"right_children":[2,4,-1,-1,-1],
   "split_indices":[1,0,0,0,0],"split_conditions":[NaN,0.3,2.25,1.5,-0.5],
   "default_left":[0,1,0,0,0],"split_type":[1,0,0,0,0],
   "categories":[1,3,40],"categories_nodes":[0],"categories_segments":[0],"categories_sizes":[3],
   "base_weights":[0,0,0,0,0]},
  {"left_children":[-1],"right_children":[-1],"split_indices":[0],"split_conditions":[0.125],
   "default_left":[0],"split_type":[0]}
 ]},"name":"gbtree"},
 "learner_model_param":{"base_score":"3E-1","num_class":"0","num_feature":"2","num_target":"1"},
 "objective":{"name":"binary:logistic"}},"version":[2,1,0]}`

func TestXGBoostSplits(t *testing.T) {
	m := mustBuild(t, Spec{ID: "x", Type: TypeXGBoost, Source: xgbCatModel})
	if in := m.Inputs(); len(in) != 2 || in[0] != "a" || in[1] != "b" {
		t.Fatalf("inputs %v", in)
	}
	// XGBoost works in float32: the base margin is logit(0.3) computed in float32 steps, each
	// tree's leaf is added to a float32 sum, and the sigmoid is float32.
	one := float32(1)
	base := -float32(math.Log(float64(one/float32(0.3) - 1)))
	prob := func(leaf0 float32) float64 {
		s := base
		s += leaf0
		s += 0.125
		return float64(sigmoid32(s))
	}
	const (
		inSet  = 2.25         // b in {1, 3, 40}, or b missing (default right)
		aLow   = 1.5          // b not in the set, a < 0.3 or a missing (default left)
		aHigh  = -0.5         // b not in the set, a >= 0.3
		just   = 0.2999999975 // float32(just) == float32(0.3): not below the condition
		justLo = 0.2999999969 // float32 rounds it below 0.3
	)
	for _, c := range []struct {
		name string
		a, b float64
		leaf float32
	}{
		{"in set", 0.1, 3, inSet},
		{"in set, last word", 0.1, 40, inSet},
		{"in set, fraction truncates", 0.1, 40.5, inSet},
		{"not in set, a low", 0.1, 2, aLow},
		{"not in set, a high", 0.5, 2, aHigh},
		{"a missing goes left", nan, 2, aLow},
		{"b missing goes right", 0.5, nan, inSet},
		{"negative category is not in the set", 0.5, -1, aHigh},
		{"category in (-1,0) is invalid for XGBoost", 0.5, -0.5, aHigh},
		{"category past the bitset", 0.5, 64, aHigh},
		{"category past MaxCategory", 0.5, 1e9, aHigh},
		{"a rounds to the float32 condition", just, 2, aHigh},
		{"a rounds below the float32 condition", justLo, 2, aLow},
		{"a at +Inf", math.Inf(1), 2, aHigh},
		{"a at -Inf", math.Inf(-1), 2, aLow},
	} {
		t.Run(c.name, func(t *testing.T) {
			want := prob(c.leaf)
			if got := m.Predict([]float64{c.a, c.b}); got != want {
				t.Fatalf("%.17g, want %.17g", got, want)
			}
			// Sanity against float64 arithmetic: logit(0.3) + leaf + 0.125.
			approx := 1 / (1 + math.Exp(-(math.Log(0.3/0.7) + float64(c.leaf) + 0.125)))
			if math.Abs(want-approx) > 1e-6 {
				t.Fatalf("float32 %v far from float64 %v", want, approx)
			}
		})
	}
}

func xgbModel(objective, baseScore, booster, extra string) string {
	trees := `"trees":[{"left_children":[1,-1,-1],"right_children":[2,-1,-1],"split_indices":[0,0,0],
		"split_conditions":[1,0.5,-0.25],"default_left":[true,false,false]},
		{"left_children":[-1],"right_children":[-1],"split_indices":[0],"split_conditions":[0.75],"default_left":[false]}]`
	gb := `{"name":"gbtree","model":{"tree_info":[0,0],` + trees + `}` + extra + `}`
	if booster == "dart" {
		gb = `{"name":"dart","gbtree":{"name":"gbtree","model":{"tree_info":[0,0],` + trees + `}}` + extra + `}`
	}
	return `{"learner":{"gradient_booster":` + gb + `,"learner_model_param":{"base_score":"` + baseScore +
		`","num_class":"0","num_feature":"1"},"objective":{"name":"` + objective + `"}}}`
}

// TestXGBoostObjectives: the base margin and output transformation per objective. With x = 0
// the trees give 0.5 + 0.75; with x = 2 they give -0.25 + 0.75.
func TestXGBoostObjectives(t *testing.T) {
	f32 := func(v float64) float32 { return float32(v) }
	sum := func(base float32, leaves ...float32) float32 {
		for _, l := range leaves {
			base += l
		}
		return base
	}
	logit := func(p float32) float32 { return -float32(math.Log(float64(1/p - 1))) }
	for _, c := range []struct {
		objective, base, booster, extra string
		x                               float64
		want                            float64
	}{
		{"reg:squarederror", "1.5E0", "gbtree", "", 0, float64(sum(1.5, 0.5, 0.75))},
		{"reg:squarederror", "[1.5E0]", "gbtree", "", 2, float64(sum(1.5, -0.25, 0.75))},
		{"binary:logistic", "5E-1", "gbtree", "", 0, float64(sigmoid32(sum(0, 0.5, 0.75)))},
		{"binary:logistic", "2E-1", "gbtree", "", 2, float64(sigmoid32(sum(logit(0.2), -0.25, 0.75)))},
		{"binary:logitraw", "2E-1", "gbtree", "", 2, float64(sum(logit(0.2), -0.25, 0.75))},
		{"count:poisson", "2E0", "gbtree", "", 0, float64(f32(math.Exp(float64(sum(f32(math.Log(2)), 0.5, 0.75)))))},
		{"binary:hinge", "0E0", "gbtree", "", 2, 1},
		{"binary:hinge", "-1E0", "gbtree", "", 2, 0},
		// DART scales each tree's leaves by its weight, in float32.
		{"reg:squarederror", "0E0", "dart", `,"weight_drop":[0.5,2]`, 0, float64(sum(0, 0.5*0.5, 2*0.75))},
	} {
		t.Run(c.objective+"/"+c.booster+"/"+c.base, func(t *testing.T) {
			m := mustBuild(t, Spec{ID: "x", Type: TypeXGBoost, Inputs: []string{"x"}, Source: xgbModel(c.objective, c.base, c.booster, c.extra)})
			if got := m.Predict([]float64{c.x}); got != c.want {
				t.Fatalf("%.17g, want %.17g", got, c.want)
			}
		})
	}
}

func TestXGBoostRejects(t *testing.T) {
	good := xgbModel("binary:logistic", "5E-1", "gbtree", "")
	for _, c := range []struct{ name, src, msg string }{
		{"not json", "tree\nversion=v3", "not an XGBoost JSON model"},
		{"no booster", `{"learner":{}}`, "no learner.gradient_booster"},
		{"gblinear", `{"learner":{"gradient_booster":{"name":"gblinear"},"learner_model_param":{"num_feature":"1"}}}`, "gblinear"},
		{"multiclass", strings.Replace(good, `"num_class":"0"`, `"num_class":"3"`, 1), "more than one output"},
		{"multi objective", xgbModel("multi:softprob", "5E-1", "gbtree", ""), "multiclass"},
		{"unknown objective", xgbModel("reg:magic", "5E-1", "gbtree", ""), `"reg:magic"`},
		{"base score outside (0,1)", xgbModel("binary:logistic", "1E0", "gbtree", ""), "(0, 1)"},
		{"base score not a number", xgbModel("binary:logistic", "half", "gbtree", ""), "base_score"},
		{"no features", strings.Replace(good, `"num_feature":"1"`, `"num_feature":"0"`, 1), "num_feature"},
		{"too many features", strings.Replace(good, `"num_feature":"1"`, `"num_feature":"10001"`, 1), "MaxInputs"},
		{"dart weights missing", xgbModel("binary:logistic", "5E-1", "dart", ""), "weight_drop"},
		{"array lengths differ", strings.Replace(good, `"split_indices":[0,0,0]`, `"split_indices":[0,0]`, 1), "split_indices has 2 entries for 3 nodes"},
		{"feature out of range", strings.Replace(good, `"split_indices":[0,0,0]`, `"split_indices":[1,0,0]`, 1), "feature 1"},
		{"child out of range", strings.Replace(good, `"right_children":[2,-1,-1]`, `"right_children":[7,-1,-1]`, 1), "outside"},
		{"cycle", strings.Replace(good, `"right_children":[2,-1,-1]`, `"right_children":[0,-1,-1]`, 1), "outside"},
		{"node reached twice", strings.Replace(good, `"right_children":[2,-1,-1]`, `"right_children":[1,-1,-1]`, 1), "reached twice"},
		{"half leaf", strings.Replace(good, `"right_children":[2,-1,-1]`, `"right_children":[2,1,-1]`, 1), "no left child"},
		{"NaN condition", strings.Replace(good, `"split_conditions":[1,`, `"split_conditions":[NaN,`, 1), "split condition NaN"},
		{"bad default_left", strings.Replace(good, `"default_left":[true,`, `"default_left":[2,`, 1), "not a boolean"},
		{"output groups", strings.Replace(good, `"tree_info":[0,0]`, `"tree_info":[0,1]`, 1), "output group 1"},
		{"category out of range", strings.Replace(xgbCatModel, `"categories":[1,3,40]`, `"categories":[1,3,16777216]`, 1), "MaxCategory"},
		{"category segment outside", strings.Replace(xgbCatModel, `"categories_sizes":[3]`, `"categories_sizes":[4]`, 1), "outside the 3 categories"},
		{"categorical node without categories", strings.Replace(xgbCatModel, `"categories_nodes":[0]`, `"categories_nodes":[1]`, 1), "node 0 has no categories"},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := Build(Spec{ID: "x", Type: TypeXGBoost, Inputs: []string{"a"}, Source: c.src})
			if err == nil || !strings.Contains(err.Error(), c.msg) {
				t.Fatalf("error %v, want one containing %q", err, c.msg)
			}
			var e *Error
			if !errors.As(err, &e) || e.Field != "source" {
				t.Fatalf("error %#v, want field source", err)
			}
		})
	}
}

// TestXGBoostErrorLines: JSON errors name the line of the model file.
func TestXGBoostErrorLines(t *testing.T) {
	for _, c := range []struct {
		name, src string
		line      int
	}{
		{"syntax", strings.Replace(xgbCatModel, `"split_indices":[1,0,0,0,0]`, `"split_indices":[1,0,0,0,0`, 1), 5},
		{"type", strings.Replace(xgbCatModel, `"left_children":[-1]`, `"left_children":["x"]`, 1), 9},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := Build(Spec{ID: "x", Type: TypeXGBoost, Source: c.src})
			var e *Error
			if !errors.As(err, &e) || e.Line != c.line || !strings.Contains(err.Error(), "not an XGBoost JSON model") {
				t.Fatalf("error %v, want one at line %d", err, c.line)
			}
		})
	}
}

func TestXGBoostTreeLimits(t *testing.T) {
	var b strings.Builder
	b.WriteString(`{"learner":{"gradient_booster":{"name":"gbtree","model":{"trees":[`)
	for i := 0; i <= MaxTrees; i++ {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(`{"left_children":[-1],"right_children":[-1],"split_indices":[0],"split_conditions":[1],"default_left":[0]}`)
	}
	b.WriteString(`]}},"learner_model_param":{"base_score":"0","num_feature":"1"},"objective":{"name":"reg:squarederror"}}}`)
	_, err := Build(Spec{ID: "x", Type: TypeXGBoost, Inputs: []string{"a"}, Source: b.String()})
	if !errors.Is(err, ErrLimit) || !strings.Contains(err.Error(), "MaxTrees") {
		t.Fatalf("error %v, want the MaxTrees limit", err)
	}
}

// TestBelow32 checks the float32 comparison rewrite: float32(x) < c exactly when x <= below32(c),
// for random thresholds and inputs at and around the rounding boundaries.
func TestBelow32(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	check := func(c float32, x float64) {
		t.Helper()
		if want, got := float32(x) < c, x <= below32(c); want != got {
			t.Fatalf("c=%v x=%.17g: float32 test %v, rewritten %v", c, x, want, got)
		}
	}
	specials := []float32{0, float32(math.Copysign(0, -1)), 1, -1, 0.3, math.MaxFloat32, -math.MaxFloat32,
		math.SmallestNonzeroFloat32, -math.SmallestNonzeroFloat32, float32(math.Inf(1))}
	for i := 0; i < 20000; i++ {
		var c float32
		if i < len(specials) {
			c = specials[i]
		} else {
			c = math.Float32frombits(rng.Uint32())
			if c != c || math.IsInf(float64(c), -1) {
				continue
			}
		}
		t64 := below32(c)
		for _, x := range []float64{t64, math.Nextafter(t64, math.Inf(1)), math.Nextafter(t64, math.Inf(-1)),
			float64(c), math.Nextafter(float64(c), 0), float64(c) * (1 + 1e-9), float64(c) * (1 - 1e-9),
			math.Inf(1), math.Inf(-1), overflow32, -overflow32} {
			check(c, x)
		}
	}
}

func TestQuoteNonFinite(t *testing.T) {
	for in, want := range map[string]string{
		`[NaN,1,-Infinity,Infinity]`:     `["NaN",1,"-Infinity","Infinity"]`,
		`{"NaN":"Infinity x NaN","a":1}`: `{"NaN":"Infinity x NaN","a":1}`,
		`["a\"NaN",NaN]`:                 `["a\"NaN","NaN"]`,
		`-1`:                             `-1`,
	} {
		if got := string(quoteNonFinite([]byte(in))); got != want {
			t.Errorf("%s → %s, want %s", in, got, want)
		}
	}
}
