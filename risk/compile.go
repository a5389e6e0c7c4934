package risk

import (
	"errors"
	"fmt"
	"reflect"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/expr-lang/expr"
	"github.com/expr-lang/expr/ast"
	"github.com/expr-lang/expr/file"
	"github.com/expr-lang/expr/parser"
	"github.com/expr-lang/expr/vm"
	"gopkg.in/yaml.v3"
)

// Model is a scoring model a rule set refers to as models.<id>: a tree ensemble, a logistic
// regression or a scorecard. Inputs names the values Predict takes, in order: feature names,
// or "event.<field>" for a number taken straight from the event (NaN when missing).
type Model interface {
	ID() string
	Inputs() []string
	Predict(x []float64) float64
}

// ModelBuilder builds a model from its rule set entry (the YAML node of one element of
// models:, whose fields are the model package's Spec).
type ModelBuilder func(n *yaml.Node) (Model, error)

// Lists answers list look-ups for in_list.
type Lists interface {
	// Contains reports whether list holds value.
	Contains(list, value string) bool
}

// CompileOptions give Compile what expressions and models need at run time.
type CompileOptions struct {
	// Lists answers in_list at decision time (nil: every look-up is false).
	Lists Lists
	// BuildModel builds the models: entries; nil rejects a rule set with models.
	BuildModel ModelBuilder
}

// Compiled is a validated rule set ready to evaluate: expressions compiled once, models
// built, features resolved to their state.
type Compiled struct {
	Name     string
	Version  int
	Features []*Feature
	Lists    []string
	Models   []*compiledModel
	Rules    []*compiledRule
	Decision DecisionDef

	env      envLayout
	stateIDs []int         // the engine's state id of each feature
	frag     *logFragments // pieces of the decision log body as JSON
}

// Feature is a compiled feature definition.
type Feature struct {
	FeatureDef
	// Sig identifies the feature's state: two features (in any rule set or version) with the
	// same types, key, aggregation, field, window and filter share their counters, so that a
	// new version does not start from zero.
	Sig      string
	allTypes bool
	where    *vm.Program
	// fastWhere is where compiled to a closure (nil: where runs on expr's VM).
	fastWhere boolFn
}

// Matches reports whether an event of type typ is one the feature counts (before where).
func (f *Feature) Matches(typ string) bool {
	return f.allTypes || slices.Contains(f.On, typ)
}

// passes reports whether ev passes the feature's where filter (true without one). An
// expression that fails at run time (a missing field compared with a number) does not pass.
func (f *Feature) passes(ev *Event) bool {
	if f.where == nil {
		return true
	}
	if f.fastWhere != nil {
		env := fastEnv{fields: ev.Fields}
		if v, ok := f.fastWhere(&env); ok {
			return v
		}
	}
	out, err := vm.Run(f.where, eventOnlyEnv{Event: ev.Fields})
	b, _ := out.(bool)
	return err == nil && b
}

type compiledModel struct {
	id     string
	model  Model
	inputs []modelInput
}

// modelInput is where one model input comes from: a feature (index) or an event field.
type modelInput struct {
	feature int
	field   string
}

type compiledRule struct {
	RuleDef
	prog *vm.Program
	// fast is the expression compiled to a closure (nil: it runs on expr's VM only).
	fast boolFn
	// reason is the rule as a decision's reason when it hits.
	reason Reason
}

// envLayout is the type of the environment rules run in: event, features and models, the
// last two as structs whose fields are the declared names, so that the type checker rejects
// an unknown feature or model and sees that each is a number.
type envLayout struct {
	typ      reflect.Type // struct{Event; Features; Models}
	features reflect.Type
	models   reflect.Type
}

const (
	envEvent = iota
	envFeatures
	envModels
)

func newEnvLayout(features []*Feature, models []*compiledModel) envLayout {
	num := func(names []string) reflect.Type {
		fs := make([]reflect.StructField, len(names))
		for i, n := range names {
			fs[i] = reflect.StructField{Name: fmt.Sprintf("F%d", i), Type: reflect.TypeFor[float64](), Tag: reflect.StructTag(`expr:"` + n + `"`)}
		}
		return reflect.StructOf(fs)
	}
	var fnames, mnames []string
	for _, f := range features {
		fnames = append(fnames, f.Name)
	}
	for _, m := range models {
		mnames = append(mnames, m.id)
	}
	l := envLayout{features: num(fnames), models: num(mnames)}
	l.typ = reflect.StructOf([]reflect.StructField{
		{Name: "Event", Type: reflect.TypeFor[map[string]any](), Tag: `expr:"event"`},
		{Name: "Features", Type: l.features, Tag: `expr:"features"`},
		{Name: "Models", Type: l.models, Tag: `expr:"models"`},
	})
	return l
}

// build returns the environment expr's VM runs rules in, for one event.
func (l envLayout) build(ev *Event, fv, mv []float64) any {
	env := reflect.New(l.typ).Elem()
	env.Field(envEvent).Set(reflect.ValueOf(ev.Fields))
	f := env.Field(envFeatures)
	for i, v := range fv {
		f.Field(i).SetFloat(v)
	}
	m := env.Field(envModels)
	for i, v := range mv {
		m.Field(i).SetFloat(v)
	}
	return env.Interface()
}

// eventOnlyEnv is the environment of a feature's where: the event alone.
type eventOnlyEnv struct {
	Event map[string]any `expr:"event"`
}

// Compile validates rs and compiles it: expressions are compiled and type-checked against
// the event, the declared features and models and the in_list function; unknown features,
// lists and models are rejected; models are built. Every problem is reported with its line.
func Compile(rs *RuleSet, opts CompileOptions) (*Compiled, error) {
	p := &problems{}
	c := &Compiled{Decision: rs.Decision}
	lists := map[string]bool{}
	for _, l := range rs.Lists {
		if lists[l.Name] {
			p.add(l.Line, "list %q is declared twice", l.Name)
		}
		lists[l.Name] = true
		c.Lists = append(c.Lists, l.Name)
	}
	lookup := opts.Lists
	inList := expr.Function("in_list", func(args ...any) (any, error) {
		if lookup == nil {
			return false, nil
		}
		name, _ := args[0].(string)
		v, ok := listValue(args[1])
		return ok && lookup.Contains(name, v), nil
	}, new(func(string, any) bool))

	featureIdx := map[string]int{}
	for _, fd := range rs.Features {
		if _, dup := featureIdx[fd.Name]; dup {
			p.add(fd.Line, "feature %q is declared twice", fd.Name)
			continue
		}
		f := &Feature{FeatureDef: fd, allTypes: slices.Contains(fd.On, "*")}
		if fd.Where != "" {
			prog, err := compileExpr(fd.Where, fd.whereLine, declared{lists: lists}, expr.Env(eventOnlyEnv{}), expr.AsBool(), inList)
			if err != nil {
				p.add(err.Line, "feature %s: where: %s", fd.Name, err.Msg)
			} else {
				f.where = prog
				f.fastWhere = (&fastCompiler{lists: lookup}).boolean(prog.Node())
			}
		}
		on := slices.Clone(fd.On)
		sort.Strings(on)
		f.Sig = fmt.Sprintf("%s|%s|%s|%s|%d|%s", strings.Join(on, ","), fd.Key, fd.Agg, fd.Field, fd.Window/time.Second, strings.TrimSpace(fd.Where))
		featureIdx[fd.Name] = len(c.Features)
		c.Features = append(c.Features, f)
	}

	modelIDs := map[string]bool{}
	for _, md := range rs.Models {
		if modelIDs[md.ID] {
			p.add(md.Line, "model %q is declared twice", md.ID)
			continue
		}
		modelIDs[md.ID] = true
		if opts.BuildModel == nil {
			p.add(md.Line, "model %s: models are not available in this build", md.ID)
			continue
		}
		m, err := opts.BuildModel(md.Node)
		if err != nil {
			p.add(md.Line, "model %s: %v", md.ID, err)
			continue
		}
		cm := &compiledModel{id: md.ID, model: m}
		bad := false
		for _, in := range m.Inputs() {
			if field, ok := strings.CutPrefix(in, "event."); ok {
				if !fieldPattern.MatchString(field) {
					p.add(md.Line, "model %s: input %q does not name an event field", md.ID, clipText(in))
					bad = true
				}
				cm.inputs = append(cm.inputs, modelInput{feature: -1, field: field})
				continue
			}
			i, ok := featureIdx[in]
			if !ok {
				p.add(md.Line, "model %s: input %q is not a declared feature (or event.<field>)", md.ID, clipText(in))
				bad = true
				continue
			}
			cm.inputs = append(cm.inputs, modelInput{feature: i})
		}
		if !bad {
			c.Models = append(c.Models, cm)
		}
	}

	c.env = newEnvLayout(c.Features, c.Models)
	names := declared{lists: lists, features: map[string]bool{}, models: modelIDs}
	for n := range featureIdx {
		names.features[n] = true
	}
	envZero := reflect.New(c.env.typ).Elem().Interface()
	fc := &fastCompiler{features: featureIdx, models: map[string]int{}, lists: lookup}
	for i, m := range c.Models {
		fc.models[m.id] = len(c.Features) + i
	}
	ruleIDs := map[string]bool{}
	for _, rd := range rs.Rules {
		if ruleIDs[rd.ID] {
			p.add(rd.Line, "rule %q is declared twice", rd.ID)
		}
		ruleIDs[rd.ID] = true
		if rd.When == "" {
			continue
		}
		prog, err := compileExpr(rd.When, rd.whenLine, names, expr.Env(envZero), expr.AsBool(), inList)
		if err != nil {
			p.add(err.Line, "rule %s: when: %s", rd.ID, err.Msg)
			continue
		}
		c.Rules = append(c.Rules, &compiledRule{RuleDef: rd, prog: prog, fast: fc.boolean(prog.Node()),
			reason: Reason{Rule: rd.ID, Reason: rd.Reason, Score: rd.Score, Action: rd.Action}})
	}
	if err := p.err(); err != nil {
		return nil, err
	}
	// Every feature, model and rule of a valid rule set is compiled, in order: the log's
	// readers make the same fragments from the stored source (LogReader).
	c.frag = fragmentsOf(rs.Features, rs.Models, rs.Rules)
	return c, nil
}

// compileExpr compiles src with opts and checks its in_list calls name declared lists. The
// error's line is the document line of the problem (line is where src starts).
func compileExpr(src string, line int, names declared, opts ...expr.Option) (*vm.Program, *RuleSetError) {
	if len(src) > MaxExprBytes {
		return nil, &RuleSetError{Line: line, Msg: fmt.Sprintf("the expression is longer than %d bytes", MaxExprBytes)}
	}
	tree, err := parser.Parse(src)
	if err != nil {
		return nil, exprError(err, line)
	}
	// Names are checked first, for messages that say "unknown feature" rather than what the
	// type checker would say about a struct.
	var bad *RuleSetError
	ast.Walk(&tree.Node, visitFunc(func(n *ast.Node) {
		if bad != nil {
			return
		}
		at := line + strings.Count(src[:min(len(src), max(0, (*n).Location().From))], "\n")
		switch x := (*n).(type) {
		case *ast.MemberNode:
			id, ok1 := x.Node.(*ast.IdentifierNode)
			prop, ok2 := x.Property.(*ast.StringNode)
			if !ok1 || !ok2 || names.features == nil {
				return
			}
			if id.Value == "features" && !names.features[prop.Value] {
				bad = &RuleSetError{Line: at, Msg: fmt.Sprintf("unknown feature %q", clipText(prop.Value))}
			}
			if id.Value == "models" && !names.models[prop.Value] {
				bad = &RuleSetError{Line: at, Msg: fmt.Sprintf("unknown model %q", clipText(prop.Value))}
			}
		case *ast.CallNode:
			if id, ok := x.Callee.(*ast.IdentifierNode); !ok || id.Value != "in_list" || len(x.Arguments) == 0 {
				return
			}
			name, ok := x.Arguments[0].(*ast.StringNode)
			if !ok {
				bad = &RuleSetError{Line: at, Msg: "in_list needs a list name as a string literal"}
				return
			}
			if !names.lists[name.Value] {
				bad = &RuleSetError{Line: at, Msg: fmt.Sprintf("in_list: list %q is not declared under lists", clipText(name.Value))}
			}
		}
	}))
	if bad != nil {
		return nil, bad
	}
	opts = append(opts, expr.MaxNodes(2000))
	prog, err := expr.Compile(src, opts...)
	if err != nil {
		return nil, exprError(err, line)
	}
	return prog, nil
}

// declared are the names an expression may use. features is nil for a where expression,
// whose environment holds the event alone.
type declared struct {
	lists, features, models map[string]bool
}

type visitFunc func(n *ast.Node)

func (f visitFunc) Visit(n *ast.Node) { f(n) }

// exprError turns an expr compile error into a rule set error on the document line.
func exprError(err error, line int) *RuleSetError {
	var fe *file.Error
	if errors.As(err, &fe) {
		l := line
		if fe.Line > 1 {
			l += fe.Line - 1
		}
		return &RuleSetError{Line: l, Msg: fmt.Sprintf("%s (column %d)", fe.Message, fe.Column+1)}
	}
	return &RuleSetError{Line: line, Msg: err.Error()}
}

// listValue turns a looked-up value into the string lists hold: strings as they are, numbers
// in their shortest form, booleans as true/false.
func listValue(v any) (string, bool) {
	switch x := v.(type) {
	case string:
		return x, true
	case nil:
		return "", false
	default:
		return scalarKey(x)
	}
}
