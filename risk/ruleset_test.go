package risk

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"
)

// stubModel stands in for the model package in these tests: a weighted sum of its inputs.
type stubModel struct {
	id      string
	inputs  []string
	weights []float64
}

func (m *stubModel) ID() string       { return m.id }
func (m *stubModel) Inputs() []string { return m.inputs }
func (m *stubModel) Predict(x []float64) float64 {
	s := 0.0
	for i, v := range x {
		s += m.weights[i] * v
	}
	return s
}

func stubBuilder(n *yaml.Node) (Model, error) {
	var s struct {
		ID      string    `yaml:"id"`
		Type    string    `yaml:"type"`
		Inputs  []string  `yaml:"inputs"`
		Weights []float64 `yaml:"weights"`
	}
	if err := n.Decode(&s); err != nil {
		return nil, err
	}
	if s.Type != "stub" {
		return nil, fmt.Errorf("unknown model type %q", s.Type)
	}
	if len(s.Weights) != len(s.Inputs) {
		return nil, errors.New("weights and inputs differ in length")
	}
	return &stubModel{id: s.ID, inputs: s.Inputs, weights: s.Weights}, nil
}

const goodRuleSet = `
features:
  - name: user_count_1h
    on: [payment]
    key: user_id
    agg: count
    window: 1h
  - name: user_amount_24h
    on: [payment]
    key: user_id
    agg: sum
    field: amount
    window: 24h
    where: event.amount > 0
  - name: device_users_7d
    on: ["*"]
    key: device_id
    agg: distinct
    field: user_id
    window: 7d
lists: [device_black, user_white]
models:
  - id: velocity
    type: stub
    inputs: [user_count_1h, event.amount]
    weights: [1, 0.001]
rules:
  - id: R1
    when: features.user_count_1h > 5
    score: 40
    reason: velocity_1h
  - id: R2
    when: in_list("device_black", event.device_id)
    action: reject
    reason: device_blacklisted
  - id: R3
    when: |
      models.velocity > 10 &&
      features.device_users_7d >= 3
    score: 30
    reason: shared_device
  - id: R4
    when: in_list("user_white", event.user_id)
    action: accept
    reason: whitelisted
decision:
  review_at: 40
  reject_at: 80
`

func mustCompile(t testing.TB, src string, lists Lists) *Compiled {
	t.Helper()
	rs, err := ParseRuleSet([]byte(src))
	if err != nil {
		t.Fatalf("parse: %v", err)
	}
	c, err := Compile(rs, CompileOptions{Lists: lists, BuildModel: stubBuilder})
	if err != nil {
		t.Fatalf("compile: %v", err)
	}
	return c
}

func TestRuleSetGood(t *testing.T) {
	c := mustCompile(t, goodRuleSet, nil)
	if len(c.Features) != 3 || len(c.Rules) != 4 || len(c.Models) != 1 || len(c.Lists) != 2 {
		t.Fatalf("compiled %d features, %d rules, %d models, %d lists", len(c.Features), len(c.Rules), len(c.Models), len(c.Lists))
	}
	if c.Features[2].Window != 7*24*time.Hour || !c.Features[2].allTypes || c.Features[1].where == nil {
		t.Fatalf("features: %+v", c.Features)
	}
	if c.Decision.ReviewAt != 40 || c.Decision.RejectAt != 80 {
		t.Fatalf("decision %+v", c.Decision)
	}
	// The same document in JSON compiles to the same thing.
	var v any
	if err := yaml.Unmarshal([]byte(goodRuleSet), &v); err != nil {
		t.Fatal(err)
	}
	j := toJSON(t, v)
	cj := mustCompile(t, j, nil)
	if len(cj.Rules) != 4 || cj.Features[1].Sig != c.Features[1].Sig {
		t.Fatalf("JSON form differs: %+v", cj.Features[1])
	}
}

// TestRuleSetErrors checks that each kind of bad rule set is rejected with an error naming the
// right line.
func TestRuleSetErrors(t *testing.T) {
	tests := []struct {
		name string
		src  string
		line int
		msg  string
	}{
		{"syntax", "features: [\n  - x: 1\n", 0, "syntax"},
		{"unknown top key", "rulez: []\nrules: []\ndecision: {review_at: 1, reject_at: 2}\n", 1, `unknown key "rulez"`},
		{"missing decision", "rules:\n  - {id: a, when: 'true', score: 1, reason: r}\n", 1, "decision: missing"},
		{"window too short", ruleSetWith(`  - {name: f, on: [p], key: u, agg: count, window: 30s}`, "true"), 3, "outside 1m..90d"},
		{"window too long", ruleSetWith(`  - {name: f, on: [p], key: u, agg: count, window: 91d}`, "true"), 3, "days must be"},
		{"window garbage", ruleSetWith(`  - {name: f, on: [p], key: u, agg: count, window: soon}`, "true"), 3, "not a duration"},
		{"bad agg", ruleSetWith(`  - {name: f, on: [p], key: u, agg: median, field: a, window: 1h}`, "true"), 3, `agg "median"`},
		{"sum without field", ruleSetWith(`  - {name: f, on: [p], key: u, agg: sum, window: 1h}`, "true"), 3, "sum needs a field"},
		{"count with field", ruleSetWith(`  - {name: f, on: [p], key: u, agg: count, field: a, window: 1h}`, "true"), 3, "count takes no field"},
		{"star with others", ruleSetWith(`  - {name: f, on: ["*", p], key: u, agg: count, window: 1h}`, "true"), 3, `"*" must be the only`},
		{"unknown feature", ruleSetWith(`  - {name: f, on: [p], key: u, agg: count, window: 1h}`, "features.g > 1"), 6, "unknown feature \"g\""},
		{"unknown list", ruleSetWith(`  - {name: f, on: [p], key: u, agg: count, window: 1h}`, `in_list("nope", event.x)`), 6, `list "nope" is not declared`},
		{"list name not literal", ruleSetWith(`  - {name: f, on: [p], key: u, agg: count, window: 1h}`, `in_list(event.l, event.x)`), 6, "string literal"},
		{"unknown model", ruleSetWith(`  - {name: f, on: [p], key: u, agg: count, window: 1h}`, "models.m > 1"), 6, "unknown model \"m\""},
		{"not bool", ruleSetWith(`  - {name: f, on: [p], key: u, agg: count, window: 1h}`, "features.f + 1"), 6, "bool"},
		{"type error", ruleSetWith(`  - {name: f, on: [p], key: u, agg: count, window: 1h}`, `features.f > "a"`), 6, "mismatched types"},
		{"syntax in expr", ruleSetWith(`  - {name: f, on: [p], key: u, agg: count, window: 1h}`, "features.f >"), 6, "unexpected"},
		{"where uses features", ruleSetWith(`  - {name: f, on: [p], key: u, agg: count, window: 1h, where: "features.f > 1"}`, "true"), 3, "unknown name features"},
		{"duplicate feature", ruleSetWith("  - {name: f, on: [p], key: u, agg: count, window: 1h}\n  - {name: f, on: [p], key: u, agg: count, window: 2h}", "true"), 4, "declared twice"},
		{"bad reason", "rules:\n  - {id: a, when: 'true', score: 1, reason: 'Bad Reason'}\ndecision: {review_at: 1, reject_at: 2}\n", 2, "must be a code"},
		{"bad action", "rules:\n  - {id: a, when: 'true', action: block, reason: r}\ndecision: {review_at: 1, reject_at: 2}\n", 2, `action "block"`},
		{"thresholds", "rules:\n  - {id: a, when: 'true', score: 1, reason: r}\ndecision: {review_at: 5, reject_at: 2}\n", 3, "must not exceed"},
		{"score not int", "rules:\n  - {id: a, when: 'true', score: 1.5, reason: r}\ndecision: {review_at: 1, reject_at: 2}\n", 2, "must be an integer"},
		{"model input unknown", "models:\n  - {id: m, type: stub, inputs: [nope], weights: [1]}\nrules:\n  - {id: a, when: 'models.m > 1', score: 1, reason: r}\ndecision: {review_at: 1, reject_at: 2}\n", 2, "not a declared feature"},
		{"model builder error", "models:\n  - {id: m, type: forest, inputs: [], weights: []}\nrules:\n  - {id: a, when: 'true', score: 1, reason: r}\ndecision: {review_at: 1, reject_at: 2}\n", 2, "unknown model type"},
		{"multiline expr", "rules:\n  - id: a\n    when: |\n      true &&\n      features.zz > 1\n    score: 1\n    reason: r\ndecision: {review_at: 1, reject_at: 2}\n", 5, "unknown feature \"zz\""},
		{"json", `{"rules": [{"id": "a", "when": "features.q > 1", "score": 1, "reason": "r"}], "decision": {"review_at": 1, "reject_at": 2}}`, 1, "unknown feature \"q\""},
		{"json syntax", "{\"rules\": [\n{\"id\": \"a\",,}]}", 2, "syntax"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rs, err := ParseRuleSet([]byte(tc.src))
			if err == nil {
				_, err = Compile(rs, CompileOptions{BuildModel: stubBuilder})
			}
			var es RuleSetErrors
			if !errors.As(err, &es) || len(es) == 0 {
				t.Fatalf("want rule set errors, got %v", err)
			}
			if !strings.Contains(es[0].Msg, tc.msg) {
				t.Fatalf("first error %q does not mention %q (all: %v)", es[0].Msg, tc.msg, err)
			}
			if tc.line > 0 && es[0].Line != tc.line {
				t.Fatalf("error %q is on line %d, want %d", es[0].Msg, es[0].Line, tc.line)
			}
		})
	}
}

// ruleSetWith is a rule set with one feature block (at line 3) and one rule whose when is on
// line 6.
func ruleSetWith(features, when string) string {
	return "lists: [l]\nfeatures:\n" + features + "\nrules:\n  - id: a\n    when: '" + strings.ReplaceAll(when, "'", "''") + "'\n    score: 1\n    reason: r\ndecision: {review_at: 1, reject_at: 2}\n"
}

func TestParseWindow(t *testing.T) {
	for s, want := range map[string]time.Duration{"1m": time.Minute, "90d": 90 * 24 * time.Hour, "1h30m": 90 * time.Minute, "7d": 7 * 24 * time.Hour} {
		if d, err := ParseWindow(s); err != nil || d != want {
			t.Errorf("%s: %v %v", s, d, err)
		}
	}
	for _, s := range []string{"59s", "0d", "91d", "2160h1s", "-1h", "1.5d", "", "1m500ms"} {
		if _, err := ParseWindow(s); err == nil {
			t.Errorf("%q accepted", s)
		}
	}
}

func TestParseEvent(t *testing.T) {
	e, err := ParseEvent([]byte(`{"type":"payment","id":"e1","timestamp":"2026-12-04T10:00:00+08:00","amount":1200,"user_id":"u1","n":7,"ok":true}`))
	if err != nil {
		t.Fatal(err)
	}
	if e.Type != "payment" || e.ID != "e1" || !e.Time.Equal(time.Date(2026, 12, 4, 2, 0, 0, 0, time.UTC)) {
		t.Fatalf("%+v", e)
	}
	if v, ok := e.Number("amount"); !ok || v != 1200 {
		t.Fatalf("amount %v %v", v, ok)
	}
	if k, ok := e.Key("n"); !ok || k != "7" {
		t.Fatalf("key %q", k)
	}
	if k, ok := e.Key("ok"); !ok || k != "true" {
		t.Fatalf("key %q", k)
	}
	for name, raw := range map[string]string{
		"not object":   `[1]`,
		"null":         `null`,
		"no type":      `{"id":"a","timestamp":"2026-01-01T00:00:00Z"}`,
		"bad type":     `{"type":"a b","id":"a","timestamp":"2026-01-01T00:00:00Z"}`,
		"no id":        `{"type":"a","timestamp":"2026-01-01T00:00:00Z"}`,
		"empty id":     `{"type":"a","id":"","timestamp":"2026-01-01T00:00:00Z"}`,
		"numeric id":   `{"type":"a","id":5,"timestamp":"2026-01-01T00:00:00Z"}`,
		"bad time":     `{"type":"a","id":"a","timestamp":"yesterday"}`,
		"no zone":      `{"type":"a","id":"a","timestamp":"2026-01-01T00:00:00"}`,
		"trailing":     `{"type":"a","id":"a","timestamp":"2026-01-01T00:00:00Z"} {}`,
		"invalid utf8": "{\"type\":\"a\xff\",\"id\":\"a\",\"timestamp\":\"2026-01-01T00:00:00Z\"}",
	} {
		if _, err := ParseEvent([]byte(raw)); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func FuzzParseRuleSet(f *testing.F) {
	f.Add([]byte(goodRuleSet))
	f.Add([]byte(ruleSetWith(`  - {name: f, on: [p], key: u, agg: count, window: 1h}`, "features.f > 1")))
	f.Add([]byte(`{"rules":[{"id":"a","when":"true","score":1,"reason":"r"}],"decision":{"review_at":1,"reject_at":2}}`))
	f.Add([]byte("a: &x [*x]"))
	f.Fuzz(func(t *testing.T, src []byte) {
		rs, err := ParseRuleSet(src)
		if err != nil {
			var es RuleSetErrors
			if !errors.As(err, &es) || len(es) == 0 {
				t.Fatalf("error of type %T: %v", err, err)
			}
			return
		}
		c, err := Compile(rs, CompileOptions{BuildModel: stubBuilder})
		if err != nil {
			var es RuleSetErrors
			if !errors.As(err, &es) || len(es) == 0 {
				t.Fatalf("compile error of type %T: %v", err, err)
			}
			return
		}
		for _, f := range c.Features {
			if f.Window < MinWindow || f.Window > MaxWindow {
				t.Fatalf("window %v accepted", f.Window)
			}
		}
	})
}

func FuzzParseEvent(f *testing.F) {
	f.Add([]byte(`{"type":"payment","id":"e1","timestamp":"2026-12-04T10:00:00Z","amount":1200}`))
	f.Add([]byte(`{"type":"login","id":"e2","timestamp":"2026-12-04T10:00:00.123456789+08:00","nested":{"a":[1,2,{"b":1e400}]}}`))
	f.Fuzz(func(t *testing.T, raw []byte) {
		e, err := ParseEvent(raw)
		if err != nil {
			return
		}
		if e.ID == "" || e.Type == "" || e.Time.IsZero() {
			t.Fatalf("accepted event without id, type or time: %+v", e)
		}
		// The compacted form parses to the same event.
		e2, err := ParseEvent(e.Raw)
		if err != nil || e2.ID != e.ID || !e2.Time.Equal(e.Time) || len(e2.Fields) != len(e.Fields) {
			t.Fatalf("raw form does not round-trip: %v", err)
		}
	})
}

func toJSON(t testing.TB, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
