package risk

import (
	"github.com/expr-lang/expr/ast"
	"github.com/expr-lang/expr/vm/runtime"
)

// Rule and filter expressions are compiled twice: by expr-lang into a program for its VM (the
// reference semantics, and the fallback), and here, for the common shapes, into Go closures
// that read the feature and model values straight from slices instead of through a
// reflection-built environment.
//
// A closure answers (value, ok). ok false means the closure met something it does not decide
// exactly as expr would (an event field of another type than the operation expects, say a
// missing field compared with a number, which is an error in expr); the caller then runs the
// whole expression on expr's VM, which gives expr's own answer or error. So a closure only
// ever answers where expr's answer is known to be the same, and the differential test
// (fastexpr_test.go) checks it on random expressions and events.
//
// Shapes compiled: true/false; !, not; &&, and, ||, or; ==, != between event fields, features,
// models and constants; <, <=, >, >= and +, -, *, / over numbers (features, models, event
// fields holding numbers, numeric constants); unary - and +; event fields used as booleans;
// in_list("name", event.field or a constant). Anything else (optional chaining, builtins,
// string operators, let, conditionals, arrays ...) leaves the whole expression to expr.

// fastEnv is what the closures read: the event's fields, and the rule set's feature values
// followed by its model values (each in declaration order).
type fastEnv struct {
	fields map[string]any
	vals   []float64
	// The event's values of the first fields the closures read (numbered by their compiler,
	// fastCompiler.field), each looked up in fields once per environment: 200 rules that
	// read event.amount look it up once, not 200 times. Bit i of have marks cache[i] loaded.
	cache [8]any
	have  uint8
}

// field returns the event's value of field name, which the closures' compiler numbered i.
func (env *fastEnv) field(i int, name string) any {
	if i >= len(env.cache) {
		return env.fields[name]
	}
	if bit := uint8(1) << i; env.have&bit == 0 {
		env.cache[i] = env.fields[name]
		env.have |= bit
	}
	return env.cache[i]
}

type (
	boolFn func(*fastEnv) (bool, bool)
	numFn  func(*fastEnv) (float64, bool)
	anyFn  func(*fastEnv) any
)

// fastCompiler compiles checked and optimised expr trees (vm.Program.Node) into closures.
// features and models map names to their index in fastEnv.vals (a model's index counts the
// features before it); both are nil for a feature's where, which sees the event alone. lists
// answers in_list (nil: never holds).
type fastCompiler struct {
	features map[string]int
	models   map[string]int
	lists    Lists
	fields   map[string]int // event fields read, numbered for fastEnv.field
}

// field numbers an event field for fastEnv.field.
func (fc *fastCompiler) field(name string) int {
	i, ok := fc.fields[name]
	if !ok {
		if fc.fields == nil {
			fc.fields = map[string]int{}
		}
		i = len(fc.fields)
		fc.fields[name] = i
	}
	return i
}

// boolean compiles a boolean expression; nil when its shape is not one it handles.
func (fc *fastCompiler) boolean(n ast.Node) boolFn {
	switch x := n.(type) {
	case *ast.BoolNode:
		v := x.Value
		return func(*fastEnv) (bool, bool) { return v, true }
	case *ast.ConstantNode:
		v, ok := x.Value.(bool)
		if !ok {
			return nil
		}
		return func(*fastEnv) (bool, bool) { return v, true }
	case *ast.UnaryNode:
		if x.Operator != "!" && x.Operator != "not" {
			return nil
		}
		f := fc.boolean(x.Node)
		if f == nil {
			return nil
		}
		return func(env *fastEnv) (bool, bool) {
			v, ok := f(env)
			return !v, ok
		}
	case *ast.MemberNode:
		field, ok := eventField(x)
		if !ok {
			return nil
		}
		i := fc.field(field)
		return func(env *fastEnv) (bool, bool) {
			v, ok := env.field(i, field).(bool)
			return v, ok
		}
	case *ast.CallNode:
		return fc.inList(x)
	case *ast.BinaryNode:
		return fc.binary(x)
	}
	return nil
}

func (fc *fastCompiler) binary(x *ast.BinaryNode) boolFn {
	switch x.Operator {
	case "&&", "and", "||", "or":
		l, r := fc.boolean(x.Left), fc.boolean(x.Right)
		if l == nil || r == nil {
			return nil
		}
		if x.Operator == "&&" || x.Operator == "and" {
			return func(env *fastEnv) (bool, bool) {
				v, ok := l(env)
				if !ok || !v {
					return false, ok
				}
				return r(env)
			}
		}
		return func(env *fastEnv) (bool, bool) {
			v, ok := l(env)
			if !ok || v {
				return v, ok
			}
			return r(env)
		}
	case "==", "!=":
		f := fc.equal(x.Left, x.Right)
		if f == nil {
			return nil
		}
		if x.Operator == "!=" {
			return func(env *fastEnv) (bool, bool) {
				v, ok := f(env)
				return !v, ok
			}
		}
		return f
	case "<", "<=", ">", ">=":
		if f := fc.compareSlot(x); f != nil {
			return f
		}
		l, r := fc.number(x.Left), fc.number(x.Right)
		if l == nil || r == nil {
			return nil
		}
		cmp := compareOps[x.Operator]
		return func(env *fastEnv) (bool, bool) {
			a, ok := l(env)
			if !ok {
				return false, false
			}
			b, ok := r(env)
			if !ok {
				return false, false
			}
			return cmp(a, b), true
		}
	}
	return nil
}

// compareSlot compiles the commonest rule shape, a feature or a model compared with a
// numeric constant, into one closure without calls inside; nil for other shapes.
func (fc *fastCompiler) compareSlot(x *ast.BinaryNode) boolFn {
	m, ok := x.Left.(*ast.MemberNode)
	if !ok || !isNumericConstant(x.Right) {
		return nil
	}
	i, ok := fc.slot(m)
	if !ok {
		return nil
	}
	c, _ := fc.number(x.Right)(nil)
	switch x.Operator {
	case "<":
		return func(env *fastEnv) (bool, bool) { return env.vals[i] < c, true }
	case "<=":
		return func(env *fastEnv) (bool, bool) { return env.vals[i] <= c, true }
	case ">":
		return func(env *fastEnv) (bool, bool) { return env.vals[i] > c, true }
	case ">=":
		return func(env *fastEnv) (bool, bool) { return env.vals[i] >= c, true }
	}
	return nil
}

// isNumericConstant reports whether n is an integer or float literal (or a folded constant).
func isNumericConstant(n ast.Node) bool {
	switch x := n.(type) {
	case *ast.IntegerNode, *ast.FloatNode:
		return true
	case *ast.ConstantNode:
		switch x.Value.(type) {
		case int, float64:
			return true
		}
	}
	return false
}

var compareOps = map[string]func(a, b float64) bool{
	"<":  func(a, b float64) bool { return a < b },
	"<=": func(a, b float64) bool { return a <= b },
	">":  func(a, b float64) bool { return a > b },
	">=": func(a, b float64) bool { return a >= b },
}

// equal compiles l == r. Two numbers (features, models, numeric constants, and arithmetic
// over them) compare as floats; anything involving an event field or a string, boolean or
// nil constant compares with expr's own runtime.Equal, so every type combination answers as
// expr does.
func (fc *fastCompiler) equal(l, r ast.Node) boolFn {
	if isPlainNumber(l) && isPlainNumber(r) {
		a, b := fc.number(l), fc.number(r)
		if a == nil || b == nil {
			return nil
		}
		return func(env *fastEnv) (bool, bool) {
			x, ok := a(env)
			if !ok {
				return false, false
			}
			y, ok := b(env)
			return x == y, ok
		}
	}
	a, b := fc.value(l), fc.value(r)
	if a == nil || b == nil {
		return nil
	}
	return func(env *fastEnv) (bool, bool) { return runtime.Equal(a(env), b(env)), true }
}

// isPlainNumber reports whether n is statically a number that never fails: a numeric
// constant, a feature or a model (not an event field, whose type is only known at run time).
func isPlainNumber(n ast.Node) bool {
	if isNumericConstant(n) {
		return true
	}
	switch x := n.(type) {
	case *ast.MemberNode:
		_, ok := eventField(x)
		return !ok
	case *ast.UnaryNode:
		return isPlainNumber(x.Node)
	case *ast.BinaryNode:
		return isPlainNumber(x.Left) && isPlainNumber(x.Right)
	}
	return false
}

// value compiles an operand of == into a closure giving the value expr would see: the raw
// event field, or a constant as expr holds it. nil when n is not such an operand.
func (fc *fastCompiler) value(n ast.Node) anyFn {
	switch x := n.(type) {
	case *ast.NilNode:
		return func(*fastEnv) any { return nil }
	case *ast.StringNode:
		var v any = x.Value
		return func(*fastEnv) any { return v }
	case *ast.BoolNode:
		var v any = x.Value
		return func(*fastEnv) any { return v }
	case *ast.IntegerNode:
		var v any = x.Value
		return func(*fastEnv) any { return v }
	case *ast.FloatNode:
		var v any = x.Value
		return func(*fastEnv) any { return v }
	case *ast.ConstantNode:
		switch x.Value.(type) {
		case nil, string, bool, int, float64:
			v := x.Value
			return func(*fastEnv) any { return v }
		}
		return nil
	case *ast.MemberNode:
		if field, ok := eventField(x); ok {
			i := fc.field(field)
			return func(env *fastEnv) any { return env.field(i, field) }
		}
		// A feature or a model: a float64, boxed (rare: compared with an event field).
		f := fc.number(x)
		if f == nil {
			return nil
		}
		return func(env *fastEnv) any { v, _ := f(env); return v }
	}
	return nil
}

// number compiles a numeric expression; nil when its shape is not one it handles.
func (fc *fastCompiler) number(n ast.Node) numFn {
	switch x := n.(type) {
	case *ast.IntegerNode:
		v := float64(x.Value)
		return func(*fastEnv) (float64, bool) { return v, true }
	case *ast.FloatNode:
		v := x.Value
		return func(*fastEnv) (float64, bool) { return v, true }
	case *ast.ConstantNode:
		var v float64
		switch c := x.Value.(type) {
		case int:
			v = float64(c)
		case float64:
			v = c
		default:
			return nil
		}
		return func(*fastEnv) (float64, bool) { return v, true }
	case *ast.MemberNode:
		return fc.member(x)
	case *ast.UnaryNode:
		f := fc.number(x.Node)
		if f == nil {
			return nil
		}
		switch x.Operator {
		case "-":
			return func(env *fastEnv) (float64, bool) {
				v, ok := f(env)
				return -v, ok
			}
		case "+":
			return f
		}
	case *ast.BinaryNode:
		op := arithOps[x.Operator]
		if op == nil {
			return nil
		}
		// Integer arithmetic (both sides integer constants) is int in expr, and the
		// optimiser folds it anyway: leave it to expr.
		if isIntConstant(x.Left) && isIntConstant(x.Right) && x.Operator != "/" {
			return nil
		}
		l, r := fc.number(x.Left), fc.number(x.Right)
		if l == nil || r == nil {
			return nil
		}
		return func(env *fastEnv) (float64, bool) {
			a, ok := l(env)
			if !ok {
				return 0, false
			}
			b, ok := r(env)
			if !ok {
				return 0, false
			}
			return op(a, b), true
		}
	}
	return nil
}

var arithOps = map[string]func(a, b float64) float64{
	"+": func(a, b float64) float64 { return a + b },
	"-": func(a, b float64) float64 { return a - b },
	"*": func(a, b float64) float64 { return a * b },
	"/": func(a, b float64) float64 { return a / b },
}

func isIntConstant(n ast.Node) bool {
	switch x := n.(type) {
	case *ast.IntegerNode:
		return true
	case *ast.ConstantNode:
		_, ok := x.Value.(int)
		return ok
	case *ast.UnaryNode:
		return isIntConstant(x.Node)
	}
	return false
}

// member compiles features.x, models.x and event.x as numbers. An event field that does not
// hold a float64 (JSON numbers are parsed as float64) is left to expr.
func (fc *fastCompiler) member(x *ast.MemberNode) numFn {
	if field, ok := eventField(x); ok {
		i := fc.field(field)
		return func(env *fastEnv) (float64, bool) {
			v, ok := env.field(i, field).(float64)
			return v, ok
		}
	}
	i, ok := fc.slot(x)
	if !ok {
		return nil
	}
	return func(env *fastEnv) (float64, bool) { return env.vals[i], true }
}

// slot returns the index in fastEnv.vals of features.x or models.x.
func (fc *fastCompiler) slot(x *ast.MemberNode) (int, bool) {
	id, prop, ok := memberName(x)
	if !ok {
		return 0, false
	}
	switch id {
	case "features":
		i, ok := fc.features[prop]
		return i, ok
	case "models":
		i, ok := fc.models[prop]
		return i, ok
	}
	return 0, false
}

// inList compiles in_list("name", v) where v is an event field or a constant; it answers as
// the in_list function registered with expr does.
func (fc *fastCompiler) inList(x *ast.CallNode) boolFn {
	callee, ok := x.Callee.(*ast.IdentifierNode)
	if !ok || callee.Value != "in_list" || len(x.Arguments) != 2 {
		return nil
	}
	name, ok := x.Arguments[0].(*ast.StringNode)
	if !ok {
		return nil
	}
	list := name.Value
	v := fc.value(x.Arguments[1])
	if v == nil {
		return nil
	}
	lists := fc.lists
	if lists == nil {
		return func(*fastEnv) (bool, bool) { return false, true }
	}
	return func(env *fastEnv) (bool, bool) {
		s, ok := listValue(v(env))
		return ok && lists.Contains(list, s), true
	}
}

// eventField reports whether x is event.<field> (or event["field"]), and which field.
func eventField(x *ast.MemberNode) (string, bool) {
	id, prop, ok := memberName(x)
	if !ok || id != "event" {
		return "", false
	}
	return prop, true
}

// memberName splits a plain (not optional, not a method) ident.prop member access.
func memberName(x *ast.MemberNode) (string, string, bool) {
	if x.Optional || x.Method {
		return "", "", false
	}
	id, ok := x.Node.(*ast.IdentifierNode)
	if !ok {
		return "", "", false
	}
	prop, ok := x.Property.(*ast.StringNode)
	if !ok {
		return "", "", false
	}
	return id.Value, prop.Value, true
}
