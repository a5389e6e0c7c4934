package risk

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// Limits on a rule set, so that one upload cannot make every decision slow or the process
// large (DESIGN.md principle 6).
const (
	MaxRuleSetBytes  = 32 << 20 // a document, models included
	MaxFeatures      = 1000
	MaxRules         = 2000
	MaxLists         = 100
	MaxModels        = 50
	MaxExprBytes     = 4096
	MaxEventTypes    = 64 // per feature
	MinWindow        = time.Minute
	MaxWindow        = 90 * 24 * time.Hour
	maxRuleSetErrors = 20
)

// RuleSet is a parsed rule set document: what a user uploads, before validation. Every
// element remembers the line it came from, for error messages.
type RuleSet struct {
	Features []FeatureDef
	Lists    []ListRef
	Models   []ModelDef
	Rules    []RuleDef
	Decision DecisionDef
}

// FeatureDef is one sliding-window feature: agg over the events of the listed types (On, or
// "*" for all) with the same value of Key, passing Where, in the last Window.
type FeatureDef struct {
	Name   string
	On     []string
	Key    string
	Agg    string
	Field  string
	Window time.Duration
	Where  string
	Line   int
	// whereLine is the line of the where expression.
	whereLine int
}

// ListRef names a list the rules may look up with in_list.
type ListRef struct {
	Name string
	Line int
}

// ModelDef is one model entry. The engine leaves its body to the model builder: Node is the
// entry's YAML node, which decodes into the model package's Spec.
type ModelDef struct {
	ID     string
	Type   string
	Inputs []string
	Node   *yaml.Node
	Line   int
}

// RuleDef is one rule: when When holds, Score is added to the decision's score, and Action
// (if set) forces the outcome.
type RuleDef struct {
	ID     string
	When   string
	Score  int
	Action string // "", "accept", "review" or "reject"
	Reason string
	Line   int

	whenLine int
}

// DecisionDef holds the thresholds on the summed score.
type DecisionDef struct {
	ReviewAt int
	RejectAt int
	Line     int
}

// Aggregations a feature may use.
var aggs = []string{"count", "sum", "min", "max", "avg", "distinct"}

// Actions a rule may take.
var actions = []string{"accept", "review", "reject"}

var (
	identPattern  = regexp.MustCompile(`^[a-z_][a-z0-9_]{0,63}$`)
	fieldPattern  = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]{0,63}$`)
	codePattern   = regexp.MustCompile(`^[a-z0-9][a-z0-9_.:-]{0,63}$`)
	ruleIDPattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$`)
	typePattern   = regexp.MustCompile(`^[A-Za-z0-9_.:-]{1,64}$`)
	namePattern   = regexp.MustCompile(`^[a-z0-9][a-z0-9_.-]{0,63}$`)
)

// ValidName reports whether s may name a rule set or a list: lower-case letters, digits,
// '_', '.', '-', at most 64 bytes, starting with a letter or digit.
func ValidName(s string) bool { return namePattern.MatchString(s) }

// RuleSetError is a problem with a rule set document, at a line (0 when the document as a
// whole is at fault).
type RuleSetError struct {
	Line int
	Msg  string
}

func (e *RuleSetError) Error() string {
	if e.Line > 0 {
		return fmt.Sprintf("line %d: %s", e.Line, e.Msg)
	}
	return e.Msg
}

// RuleSetErrors are all the problems found in a document (up to a limit), in line order.
type RuleSetErrors []*RuleSetError

func (es RuleSetErrors) Error() string {
	var b strings.Builder
	for i, e := range es {
		if i > 0 {
			b.WriteString("; ")
		}
		b.WriteString(e.Error())
	}
	return b.String()
}

// problems collects errors while a document is read.
type problems struct{ list RuleSetErrors }

func (p *problems) add(line int, format string, args ...any) {
	if len(p.list) < maxRuleSetErrors {
		p.list = append(p.list, &RuleSetError{Line: line, Msg: fmt.Sprintf(format, args...)})
	}
}

func (p *problems) err() error {
	if len(p.list) == 0 {
		return nil
	}
	slices.SortStableFunc(p.list, func(a, b *RuleSetError) int { return a.Line - b.Line })
	return p.list
}

// ParseRuleSet reads a rule set document, YAML or JSON (a JSON document is read as the YAML
// it also is). It checks the document's shape (known keys, types, names, windows) and reports
// every problem with its line; expressions are checked by Compile.
func ParseRuleSet(src []byte) (*RuleSet, error) {
	if len(src) > MaxRuleSetBytes {
		return nil, RuleSetErrors{{Msg: fmt.Sprintf("the rule set is larger than %d bytes", MaxRuleSetBytes)}}
	}
	if t := bytes.TrimSpace(src); len(t) > 0 && t[0] == '{' {
		// JSON: report a syntax error with encoding/json's precise offset.
		var v any
		if err := json.Unmarshal(src, &v); err != nil {
			return nil, RuleSetErrors{jsonSyntaxError(src, err)}
		}
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(src, &doc); err != nil {
		return nil, RuleSetErrors{yamlError(err)}
	}
	if doc.Kind != yaml.DocumentNode || len(doc.Content) != 1 {
		return nil, RuleSetErrors{{Msg: "the rule set is empty"}}
	}
	root := doc.Content[0]
	p := &problems{}
	rs := &RuleSet{}
	fields := p.mapping(root, "rule set", "features", "lists", "models", "rules", "decision")
	if fields == nil {
		return nil, p.err()
	}
	for _, n := range p.sequence(fields["features"], "features", MaxFeatures) {
		rs.Features = append(rs.Features, p.feature(n))
	}
	for _, n := range p.sequence(fields["lists"], "lists", MaxLists) {
		name := p.str(n, "list name")
		if name != "" && !ValidName(name) {
			p.add(n.Line, "list name %q must be lower-case letters, digits, '_', '.' or '-' (at most 64)", name)
		}
		rs.Lists = append(rs.Lists, ListRef{Name: name, Line: n.Line})
	}
	for _, n := range p.sequence(fields["models"], "models", MaxModels) {
		rs.Models = append(rs.Models, p.model(n))
	}
	for _, n := range p.sequence(fields["rules"], "rules", MaxRules) {
		rs.Rules = append(rs.Rules, p.rule(n))
	}
	if fields["rules"] == nil {
		p.add(root.Line, "rules: missing; a rule set needs at least one rule")
	}
	if d := fields["decision"]; d == nil {
		p.add(root.Line, "decision: missing; it holds review_at and reject_at")
	} else {
		rs.Decision = p.decision(d)
	}
	if err := p.err(); err != nil {
		return nil, err
	}
	return rs, nil
}

// yamlLine pulls the line number out of a yaml.v3 syntax error ("yaml: line 3: ...").
var yamlLine = regexp.MustCompile(`line (\d+):\s*`)

func yamlError(err error) *RuleSetError {
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	if m := yamlLine.FindStringSubmatchIndex(msg); m != nil {
		line, _ := strconv.Atoi(msg[m[2]:m[3]])
		return &RuleSetError{Line: line, Msg: "syntax: " + msg[:m[0]] + msg[m[1]:]}
	}
	return &RuleSetError{Msg: "syntax: " + msg}
}

func jsonSyntaxError(src []byte, err error) *RuleSetError {
	var se *json.SyntaxError
	if errors.As(err, &se) {
		return &RuleSetError{Line: 1 + bytes.Count(src[:min(int(se.Offset), len(src))], []byte("\n")), Msg: "syntax: " + se.Error()}
	}
	return &RuleSetError{Msg: "syntax: " + err.Error()}
}

// mapping checks that n is a mapping whose keys are all in allowed, and returns the values by
// key.
func (p *problems) mapping(n *yaml.Node, what string, allowed ...string) map[string]*yaml.Node {
	n = deref(n)
	if n.Kind != yaml.MappingNode {
		p.add(n.Line, "%s must be a mapping", what)
		return nil
	}
	out := make(map[string]*yaml.Node, len(n.Content)/2)
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if !slices.Contains(allowed, k.Value) {
			p.add(k.Line, "%s: unknown key %q (allowed: %s)", what, clipText(k.Value), strings.Join(allowed, ", "))
			continue
		}
		out[k.Value] = v
	}
	return out
}

func deref(n *yaml.Node) *yaml.Node {
	for i := 0; n.Kind == yaml.AliasNode && n.Alias != nil && i < 8; i++ {
		n = n.Alias
	}
	return n
}

func (p *problems) sequence(n *yaml.Node, what string, limit int) []*yaml.Node {
	if n == nil {
		return nil
	}
	n = deref(n)
	if n.Kind == yaml.ScalarNode && n.Tag == "!!null" {
		return nil
	}
	if n.Kind != yaml.SequenceNode {
		p.add(n.Line, "%s must be a list", what)
		return nil
	}
	if len(n.Content) > limit {
		p.add(n.Line, "%s: %d entries is more than the limit of %d", what, len(n.Content), limit)
		return nil
	}
	return n.Content
}

func (p *problems) str(n *yaml.Node, what string) string {
	n = deref(n)
	if n.Kind != yaml.ScalarNode || n.Tag == "!!null" {
		p.add(n.Line, "%s must be a string", what)
		return ""
	}
	if n.Tag != "!!str" && n.Tag != "!!int" && n.Tag != "!!float" && n.Tag != "!!bool" {
		p.add(n.Line, "%s must be a string", what)
		return ""
	}
	return n.Value
}

func (p *problems) integer(n *yaml.Node, what string) int {
	n = deref(n)
	if n.Kind != yaml.ScalarNode || n.Tag != "!!int" {
		p.add(n.Line, "%s must be an integer", what)
		return 0
	}
	v, err := strconv.ParseInt(n.Value, 0, 32)
	if err != nil {
		p.add(n.Line, "%s must be an integer between %d and %d", what, -1<<31, 1<<31-1)
		return 0
	}
	return int(v)
}

func (p *problems) strings(n *yaml.Node, what string, limit int) []string {
	var out []string
	for _, e := range p.sequence(n, what, limit) {
		out = append(out, p.str(e, what+" entry"))
	}
	return out
}

func (p *problems) feature(n *yaml.Node) FeatureDef {
	f := FeatureDef{Line: n.Line}
	m := p.mapping(n, "feature", "name", "on", "key", "agg", "field", "window", "where")
	if m == nil {
		return f
	}
	f.Name = p.requiredMatch(m, n, "name", "feature", identPattern, "lower-case letters, digits and '_' (at most 64), starting with a letter or '_'")
	what := "feature " + f.Name
	if m["on"] == nil {
		p.add(n.Line, "%s: on is missing (a list of event types, or [\"*\"])", what)
	} else {
		f.On = p.strings(m["on"], what+": on", MaxEventTypes)
		if len(f.On) == 0 {
			p.add(m["on"].Line, "%s: on must name at least one event type, or \"*\"", what)
		}
		for _, t := range f.On {
			if t != "*" && t != "" && !typePattern.MatchString(t) {
				p.add(m["on"].Line, "%s: event type %q is not valid", what, clipText(t))
			}
		}
		if slices.Contains(f.On, "*") && len(f.On) > 1 {
			p.add(m["on"].Line, "%s: \"*\" must be the only entry of on", what)
		}
	}
	f.Key = p.required(m, n, "key", what)
	if f.Key != "" && !fieldPattern.MatchString(f.Key) {
		p.add(m["key"].Line, "%s: key %q must name a top-level event field", what, clipText(f.Key))
	}
	f.Agg = p.required(m, n, "agg", what)
	if f.Agg != "" && !slices.Contains(aggs, f.Agg) {
		p.add(m["agg"].Line, "%s: agg %q is not one of %s", what, clipText(f.Agg), strings.Join(aggs, ", "))
	}
	if v := m["field"]; v != nil {
		f.Field = p.str(v, what+": field")
		if f.Field != "" && !fieldPattern.MatchString(f.Field) {
			p.add(v.Line, "%s: field %q must name a top-level event field", what, clipText(f.Field))
		}
	}
	switch {
	case f.Agg == "count" && f.Field != "":
		p.add(m["field"].Line, "%s: count takes no field", what)
	case f.Agg != "" && f.Agg != "count" && slices.Contains(aggs, f.Agg) && f.Field == "" && m["field"] == nil:
		p.add(n.Line, "%s: %s needs a field", what, f.Agg)
	}
	if w := p.required(m, n, "window", what); w != "" {
		d, err := ParseWindow(w)
		if err != nil {
			p.add(m["window"].Line, "%s: %v", what, err)
		}
		f.Window = d
	}
	if v := m["where"]; v != nil {
		f.Where = p.str(v, what+": where")
		f.whereLine = exprLine(v)
	}
	return f
}

func (p *problems) required(m map[string]*yaml.Node, parent *yaml.Node, key, what string) string {
	v := m[key]
	if v == nil {
		p.add(parent.Line, "%s: %s is missing", what, key)
		return ""
	}
	s := p.str(v, what+": "+key)
	if s == "" && v.Tag != "!!null" {
		p.add(v.Line, "%s: %s is empty", what, key)
	}
	return s
}

// requiredMatch is required for a value that must also match pattern (described by want).
func (p *problems) requiredMatch(m map[string]*yaml.Node, parent *yaml.Node, key, what string, pattern *regexp.Regexp, want string) string {
	s := p.required(m, parent, key, what)
	if s != "" && !pattern.MatchString(s) {
		p.add(m[key].Line, "%s %s %q must be %s", what, key, clipText(s), want)
	}
	return s
}

// exprLine is the document line where an expression's text starts: the line after the
// indicator for a block scalar ("when: |"), the value's own line otherwise.
func exprLine(n *yaml.Node) int {
	if n.Style&(yaml.LiteralStyle|yaml.FoldedStyle) != 0 {
		return n.Line + 1
	}
	return n.Line
}

func (p *problems) model(n *yaml.Node) ModelDef {
	md := ModelDef{Node: n, Line: n.Line}
	n = deref(n)
	if n.Kind != yaml.MappingNode {
		p.add(n.Line, "model must be a mapping")
		return md
	}
	// The body (source, logistic, scorecard) belongs to the model builder; here only the
	// fields the engine itself needs are read.
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		switch k.Value {
		case "id":
			md.ID = p.str(v, "model id")
		case "type":
			md.Type = p.str(v, "model type")
		case "inputs":
			md.Inputs = p.strings(v, "model inputs", 10000)
		}
	}
	if md.ID == "" {
		p.add(n.Line, "model: id is missing")
	} else if !identPattern.MatchString(md.ID) {
		p.add(n.Line, "model id %q must be lower-case letters, digits and '_' (at most 64), starting with a letter or '_'", clipText(md.ID))
	}
	if md.Type == "" {
		p.add(n.Line, "model %s: type is missing", md.ID)
	}
	return md
}

func (p *problems) rule(n *yaml.Node) RuleDef {
	r := RuleDef{Line: n.Line}
	m := p.mapping(n, "rule", "id", "when", "score", "action", "reason")
	if m == nil {
		return r
	}
	r.ID = p.requiredMatch(m, n, "id", "rule", ruleIDPattern, "letters, digits, '_', '.', ':' or '-' (at most 64)")
	what := "rule " + r.ID
	r.When = p.required(m, n, "when", what)
	if v := m["when"]; v != nil {
		r.whenLine = exprLine(v)
	}
	if v := m["score"]; v != nil {
		r.Score = p.integer(v, what+": score")
		if r.Score < -1_000_000 || r.Score > 1_000_000 {
			p.add(v.Line, "%s: score must be between -1000000 and 1000000", what)
		}
	}
	if v := m["action"]; v != nil {
		r.Action = p.str(v, what+": action")
		if !slices.Contains(actions, r.Action) {
			p.add(v.Line, "%s: action %q is not one of accept, review, reject", what, clipText(r.Action))
		}
	}
	r.Reason = p.required(m, n, "reason", what)
	if r.Reason != "" && !codePattern.MatchString(r.Reason) {
		p.add(m["reason"].Line, "%s: reason %q must be a code: lower-case letters, digits, '_', '.', ':' or '-' (at most 64)", what, clipText(r.Reason))
	}
	if m["score"] == nil && m["action"] == nil {
		p.add(n.Line, "%s: needs a score or an action", what)
	}
	return r
}

func (p *problems) decision(n *yaml.Node) DecisionDef {
	d := DecisionDef{Line: n.Line}
	m := p.mapping(n, "decision", "review_at", "reject_at")
	if m == nil {
		return d
	}
	for _, k := range []string{"review_at", "reject_at"} {
		if m[k] == nil {
			p.add(n.Line, "decision: %s is missing", k)
		}
	}
	if v := m["review_at"]; v != nil {
		d.ReviewAt = p.integer(v, "decision: review_at")
	}
	if v := m["reject_at"]; v != nil {
		d.RejectAt = p.integer(v, "decision: reject_at")
	}
	if m["review_at"] != nil && m["reject_at"] != nil && d.ReviewAt > d.RejectAt {
		p.add(n.Line, "decision: review_at (%d) must not exceed reject_at (%d)", d.ReviewAt, d.RejectAt)
	}
	return d
}

// ParseWindow reads a window length: a Go duration ("90s", "15m", "1h30m") or a whole number
// of days ("7d"), between 1 minute and 90 days.
func ParseWindow(s string) (time.Duration, error) {
	var d time.Duration
	if days, ok := strings.CutSuffix(s, "d"); ok {
		n, err := strconv.Atoi(days)
		if err != nil || n <= 0 || n > 90 {
			return 0, fmt.Errorf("window %q: days must be a whole number from 1 to 90", clipText(s))
		}
		d = time.Duration(n) * 24 * time.Hour
	} else {
		var err error
		if d, err = time.ParseDuration(s); err != nil {
			return 0, fmt.Errorf("window %q is not a duration such as 10m, 1h or 7d", clipText(s))
		}
	}
	if d < MinWindow || d > MaxWindow {
		return 0, fmt.Errorf("window %q is outside 1m..90d", clipText(s))
	}
	if d%time.Second != 0 {
		return 0, fmt.Errorf("window %q must be a whole number of seconds", clipText(s))
	}
	return d, nil
}

// clipText shortens user text echoed in an error.
func clipText(s string) string {
	if len(s) <= 64 {
		return s
	}
	n := 64
	for n > 0 && s[n]&0xC0 == 0x80 {
		n--
	}
	return s[:n] + "..."
}
