package risk

import (
	"fmt"
	"math"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"

	"github.com/expr-lang/expr/vm"
	"gopkg.in/yaml.v3"
)

// The closures compiled from rule and filter expressions must agree with expr-lang's VM: on
// random expressions over random events, wherever a closure answers (ok), expr must answer the
// same without an error; and a whole evaluation (closures with their fallback) must give the
// same decision, score, reasons and rule errors as evaluating every rule on expr's VM.

// exprGen writes random expressions of the rule language, mostly of shapes the closures
// compile, some of shapes they leave to expr.
type exprGen struct {
	r     *rand.Rand
	depth int
}

var (
	genFeatures = []string{"f0", "f1", "f2", "f3"}
	genModels   = []string{"m0", "m1"}
	genNumField = []string{"amount", "n", "mixed", "missing"}
	genStrField = []string{"s", "device", "mixed", "missing"}
)

func (g *exprGen) pick(xs []string) string { return xs[g.r.IntN(len(xs))] }

func (g *exprGen) boolean() string {
	g.depth++
	defer func() { g.depth-- }()
	k := g.r.IntN(14)
	if g.depth > 3 {
		k = g.r.IntN(4)
	}
	switch k {
	case 0, 1:
		return g.num() + " " + g.pick([]string{"<", "<=", ">", ">=", "==", "!="}) + " " + g.num()
	case 2:
		return "event." + g.pick(genStrField) + " " + g.pick([]string{"==", "!="}) + " " + g.scalar()
	case 3:
		return fmt.Sprintf("in_list(%q, %s)", g.pick([]string{"l1", "l2"}), g.pick([]string{"event.device", "event.s", "event.n", "event.missing", "event.flag", `"d1"`, "7", "features.f0"}))
	case 4, 5:
		return "(" + g.boolean() + ") " + g.pick([]string{"&&", "||", "and", "or"}) + " (" + g.boolean() + ")"
	case 6:
		return g.pick([]string{"!", "not "}) + "(" + g.boolean() + ")"
	case 7:
		return g.pick([]string{"event.flag", "true", "false"})
	case 8:
		return "event." + g.pick(genNumField) + " == event." + g.pick(genStrField)
	case 9:
		return g.scalar() + " " + g.pick([]string{"==", "!="}) + " event." + g.pick(genNumField)
	case 10:
		// Shapes left to expr.
		return g.pick([]string{
			`event.s startsWith "a"`, `event.amount % 2 == 0`, `event?.amount > 100`, `len(event.s) > 1`,
			`event.s in ["a", "b"]`, `(event.amount ?? 0) > 5`, `event.s < "m"`, `features.f0 ** 2 > 10`,
			`event.amount > 10 ? true : false`, `let x = features.f1; x > 2`,
		})
	case 11:
		return "event." + g.pick(genNumField) + " " + g.pick([]string{"<", ">", ">="}) + " " + g.num()
	case 12:
		return g.num() + " == " + g.pick([]string{"nil", "true", `"x"`})
	default:
		return g.pick([]string{"features.f0", "features.f1", "features.f2", "models.m0", "models.m1"}) + " " +
			g.pick([]string{"<", "<=", ">", ">="}) + " " + fmt.Sprint(g.r.IntN(12)-1)
	}
}

func (g *exprGen) num() string {
	g.depth++
	defer func() { g.depth-- }()
	k := g.r.IntN(10)
	if g.depth > 4 {
		k = g.r.IntN(4)
	}
	switch k {
	case 0:
		return "features." + g.pick(genFeatures)
	case 1:
		return "models." + g.pick(genModels)
	case 2:
		return fmt.Sprint(g.r.IntN(12) - 1)
	case 3:
		return fmt.Sprintf("%.2f", g.r.Float64()*20-5)
	case 4:
		return "event." + g.pick(genNumField)
	case 5:
		return "-" + g.num()
	default:
		return "(" + g.num() + " " + g.pick([]string{"+", "-", "*", "/"}) + " " + g.num() + ")"
	}
}

func (g *exprGen) scalar() string {
	return g.pick([]string{`"d1"`, `"a"`, `""`, "5", "5.0", "0", "true", "false", "nil", "-3", "1e3"})
}

// genEvent returns an event whose fields take random types: numbers, numeric strings,
// strings, booleans, null, objects, or are missing.
func genEvent(r *rand.Rand, i int) *Event {
	fields := map[string]any{"type": "payment", "id": fmt.Sprint("e", i), "timestamp": "2026-12-04T00:00:00Z"}
	values := []any{0.0, 5.0, -3.0, 7.0, 1000.0, 0.5, math.Inf(1), "5", "a", "d1", "", true, false, nil, map[string]any{"x": 1.0}, []any{1.0}}
	for _, f := range []string{"amount", "n", "mixed", "s", "device", "flag"} {
		if r.IntN(6) == 0 {
			continue // missing
		}
		switch f {
		case "amount", "n":
			if r.IntN(4) > 0 {
				fields[f] = float64(r.IntN(20) - 4)
				continue
			}
		case "s", "device":
			if r.IntN(4) > 0 {
				fields[f] = []string{"a", "b", "d1", "d2", "m"}[r.IntN(5)]
				continue
			}
		case "flag":
			if r.IntN(4) > 0 {
				fields[f] = r.IntN(2) == 0
				continue
			}
		}
		fields[f] = values[r.IntN(len(values))]
	}
	return &Event{ID: fields["id"].(string), Type: "payment", Fields: fields}
}

type mapLists map[string]map[string]bool

func (m mapLists) Contains(list, v string) bool { return m[list][v] }

// sumModel is a stand-in model: the sum of its inputs (NaN inputs count as 1).
type sumModel struct {
	id     string
	inputs []string
}

func (m *sumModel) ID() string       { return m.id }
func (m *sumModel) Inputs() []string { return m.inputs }
func (m *sumModel) Predict(x []float64) float64 {
	s := 0.0
	for _, v := range x {
		if math.IsNaN(v) {
			v = 1
		}
		s += v
	}
	return s
}

func buildSumModel(n *yaml.Node) (Model, error) {
	var s struct {
		ID     string   `yaml:"id"`
		Inputs []string `yaml:"inputs"`
	}
	if err := n.Decode(&s); err != nil {
		return nil, err
	}
	return &sumModel{id: s.ID, inputs: s.Inputs}, nil
}

// genRuleSet compiles a rule set of n random rules (those expr refuses are dropped) and
// random feature filters.
func genRuleSet(t *testing.T, r *rand.Rand, n int) *Compiled {
	t.Helper()
	lists := mapLists{"l1": {"d1": true, "5": true, "7": true, "true": true}, "l2": {"a": true, "0": true}}
	g := &exprGen{r: r}
	var rules []string
	for len(rules) < n {
		src := g.boolean()
		doc := fmt.Sprintf("features:\n  - {name: f0, on: [payment], key: device, agg: count, window: 1h}\nlists: [l1, l2]\nrules:\n  - {id: x, when: %q, score: 1, reason: x}\ndecision: {review_at: 1, reject_at: 2}\n", src)
		rs, err := ParseRuleSet([]byte(doc))
		if err != nil {
			t.Fatalf("%s: %v", src, err)
		}
		rs.Features = append(rs.Features, FeatureDef{Name: "f1", On: []string{"*"}, Key: "device", Agg: "count", Window: 3600e9},
			FeatureDef{Name: "f2", On: []string{"*"}, Key: "device", Agg: "count", Window: 3600e9},
			FeatureDef{Name: "f3", On: []string{"*"}, Key: "device", Agg: "count", Window: 3600e9})
		rs.Models = genModelDefs()
		if _, err := Compile(rs, CompileOptions{Lists: lists, BuildModel: buildSumModel}); err != nil {
			continue // the type checker refused it (e.g. a number compared with a string)
		}
		rules = append(rules, src)
	}
	var b strings.Builder
	b.WriteString("features:\n")
	for i, f := range genFeatures {
		where := ""
		if i > 0 {
			where = fmt.Sprintf(", where: %q", whereFor(g))
		}
		fmt.Fprintf(&b, "  - {name: %s, on: [payment], key: device, agg: count, window: %dm%s}\n", f, 10+i, where)
	}
	b.WriteString("lists: [l1, l2]\nrules:\n")
	for i, src := range rules {
		action := []string{"", "", "", "", ", action: review", ", action: reject", ", action: accept"}[r.IntN(7)]
		fmt.Fprintf(&b, "  - {id: r%d, when: %q, score: %d, reason: r%d%s}\n", i, src, r.IntN(50), i, action)
	}
	b.WriteString("decision: {review_at: 100, reject_at: 300}\n")
	rs, err := ParseRuleSet([]byte(b.String()))
	if err != nil {
		t.Fatal(err)
	}
	rs.Models = genModelDefs()
	c, err := Compile(rs, CompileOptions{Lists: lists, BuildModel: buildSumModel})
	if err != nil {
		// A where the type checker refuses: try again with other filters.
		return genRuleSet(t, r, n)
	}
	c.stateIDs = make([]int, len(c.Features))
	for i := range c.stateIDs {
		c.stateIDs[i] = i
	}
	return c
}

// whereFor returns a filter expression: event fields only.
func whereFor(g *exprGen) string {
	for {
		s := g.boolean()
		if !strings.Contains(s, "features.") && !strings.Contains(s, "models.") {
			return s
		}
	}
}

func genModelDefs() []ModelDef {
	var out []ModelDef
	for i, id := range genModels {
		var n yaml.Node
		src := fmt.Sprintf("{id: %s, type: sum, inputs: [f%d, event.amount]}", id, i)
		if err := yaml.Unmarshal([]byte(src), &n); err != nil {
			panic(err)
		}
		out = append(out, ModelDef{ID: id, Type: "sum", Inputs: []string{fmt.Sprint("f", i), "event.amount"}, Node: n.Content[0]})
	}
	return out
}

func TestFastExprAgreesWithExpr(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	var compiled, total, answered, runs int
	for range 30 {
		c := genRuleSet(t, r, 40)
		for range 60 {
			ev := genEvent(r, runs)
			runs++
			fv := make([]float64, len(c.Features))
			for i := range fv {
				fv[i] = []float64{0, 1, 2, 3, 5, 7, 10, 0.5, -1, math.Inf(1)}[r.IntN(10)]
			}
			mv := []float64{float64(r.IntN(10)), r.Float64() * 10}
			env := fastEnv{fields: ev.Fields, vals: append(append([]float64(nil), fv...), mv...)}
			slow := c.env.build(ev, fv, mv)
			for _, rule := range c.Rules {
				total++
				if rule.fast == nil {
					continue
				}
				compiled++
				hit, ok := rule.fast(&env)
				out, err := vm.Run(rule.prog, slow)
				if !ok {
					continue
				}
				answered++
				if err != nil {
					t.Fatalf("%s on %v (features %v, models %v): closure says %v, expr fails: %v", rule.When, ev.Fields, fv, mv, hit, err)
				}
				if b, isBool := out.(bool); !isBool || b != hit {
					t.Fatalf("%s on %v (features %v, models %v): closure says %v, expr %v", rule.When, ev.Fields, fv, mv, hit, out)
				}
			}
			for _, f := range c.Features {
				if f.where == nil {
					continue
				}
				out, err := vm.Run(f.where, eventOnlyEnv{Event: ev.Fields})
				b, _ := out.(bool)
				if want := err == nil && b; f.passes(ev) != want {
					t.Fatalf("where %s on %v: passes %v, expr %v (%v)", f.Where, ev.Fields, f.passes(ev), out, err)
				}
			}
		}
	}
	t.Logf("%d rule evaluations: %d by compiled closures, %d of them answered without expr", total, compiled, answered)
	// The generator mostly writes shapes the closures handle; a regression that stopped
	// compiling them (or made them always defer to expr) must fail here.
	if compiled < total*3/4 || answered < compiled/2 {
		t.Fatalf("too few closures: %d of %d compiled, %d answered", compiled, total, answered)
	}
}

// TestFastEvaluateMatchesVM compares whole evaluations with an evaluation that runs every
// rule on expr's VM.
func TestFastEvaluateMatchesVM(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	e := &Engine{}
	sc := new(scratch)
	for range 20 {
		c := genRuleSet(t, r, 60)
		for i := range 50 {
			ev := genEvent(r, i)
			values := make([]float64, len(c.Features))
			for j := range values {
				values[j] = float64(r.IntN(12))
			}
			got := e.evaluate(c, ev, values, sc).Explain()
			want := evaluateOnVM(c, ev, values)
			if got.Decision != want.Decision || got.Score != want.Score || !reflect.DeepEqual(got.Reasons, want.Reasons) ||
				!reflect.DeepEqual(got.Errors, want.Errors) || !reflect.DeepEqual(got.fv, want.fv) || !reflect.DeepEqual(got.mv, want.mv) {
				t.Fatalf("event %v:\n got %+v\nwant %+v", ev.Fields, got, want)
			}
		}
	}
}

// evaluateOnVM is the reference evaluation: every rule on expr's VM.
func evaluateOnVM(c *Compiled, ev *Event, values []float64) *Decision {
	fv := append([]float64(nil), values[:len(c.Features)]...)
	var mv []float64
	for _, m := range c.Models {
		p, _ := m.predict(ev, fv, nil)
		mv = append(mv, p)
	}
	env := c.env.build(ev, fv, mv)
	d := &Decision{Reasons: []Reason{}, fv: fv, mv: mv}
	var rej, acc, rev bool
	for _, r := range c.Rules {
		out, err := vm.Run(r.prog, env)
		if err != nil {
			d.Errors = append(d.Errors, RuleError{Rule: r.ID, Error: clipText(err.Error())})
			continue
		}
		if hit, _ := out.(bool); !hit {
			continue
		}
		d.Score += r.Score
		d.Reasons = append(d.Reasons, Reason{Rule: r.ID, Reason: r.Reason, Score: r.Score, Action: r.Action})
		rej, acc, rev = rej || r.Action == Reject, acc || r.Action == Accept, rev || r.Action == Review
	}
	d.Decision = c.Decision.outcome(d.Score, rej, acc, rev)
	return d
}

// TestFastEnvFieldCache: event fields numbered past the cache read the map; those in it are
// looked up once and answer the same every time, missing ones nil.
func TestFastEnvFieldCache(t *testing.T) {
	fc := &fastCompiler{}
	fields := map[string]any{}
	var names []string
	for i := range 12 {
		n := fmt.Sprint("f", i)
		names = append(names, n)
		if i%3 != 2 {
			fields[n] = float64(i)
		}
		if got := fc.field(n); got != i {
			t.Fatalf("field %s numbered %d, want %d", n, got, i)
		}
	}
	if fc.field("f3") != 3 {
		t.Fatal("a field numbered twice")
	}
	env := fastEnv{fields: fields}
	for range 2 {
		for i, n := range names {
			if got := env.field(i, n); got != fields[n] {
				t.Fatalf("%s: %v, want %v", n, got, fields[n])
			}
		}
	}
	if env.have != 0xff {
		t.Fatalf("cache bits %08b, want the first 8 loaded", env.have)
	}
	fields["f0"] = "changed" // a cached value is not looked up again
	if env.field(0, "f0") != float64(0) || env.field(11, "f11") != nil {
		t.Fatal("cache")
	}
}
