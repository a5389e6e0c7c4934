package config

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
)

// Key limits.
const (
	// KeyMaxBytes bounds a key's length.
	KeyMaxBytes = 256
	// paramMaxBytes bounds the text a placeholder stands for.
	paramMaxBytes = 64
)

// Validator checks one value. It receives syntactically valid, compact JSON and returns nil
// or an error whose text tells an operator what is wrong ("must be an integer between 0 and
// 1000, not 1200"); the text is shown to API clients.
type Validator func(value []byte) error

// Spec declares a family of keys: a pattern, the type of its values and what they mean.
type Spec struct {
	// Pattern is the key with placeholders for the parts that vary, in angle brackets:
	// "channel.<code>.weight". Tokens are separated by dots. A literal token holds lower-case
	// letters, digits, '_' and '-'; a placeholder matches one token of letters, digits, '_'
	// and '-', at most 64 bytes. The last placeholder may be written <name...>: it then
	// matches 1 to RestMaxTokens tokens ("switch.<name...>" matches switch.payments and
	// switch.payments.channel.icbc).
	Pattern string
	// Type describes the values for people: "bool", "int 0..1000", "\"on\" | \"off\"".
	Type string
	// Doc says what the key controls and who reads it.
	Doc string
	// Validate checks a value before it is stored. Required.
	Validate Validator
	// Checks are further checks of the whole key and value, added with Registry.AddCheck by
	// the module that applies the key (for example that a key id has the right form).
	Checks []Check
}

// Check is a further check of a key and its value (compact JSON); its error text is shown to
// API clients like a Validator's.
type Check func(key string, value []byte) error

// RestMaxTokens bounds the tokens a <name...> placeholder matches.
const RestMaxTokens = 5

// Registry holds the key specs a Center accepts. A key is accepted only if exactly one spec's
// pattern matches it. It is safe for concurrent use; modules register their keys when they
// are wired, before they write them.
type Registry struct {
	mu    sync.RWMutex
	specs []*compiled
}

type compiled struct {
	Spec
	tokens []string // "" marks a placeholder
	names  []string // placeholder names, by token position ("" for literals)
	rest   bool     // the last placeholder is <name...>
}

// lengths returns the fewest and most tokens a matching key has.
func (c *compiled) lengths() (lo, hi int) {
	if c.rest {
		return len(c.tokens), len(c.tokens) - 1 + RestMaxTokens
	}
	return len(c.tokens), len(c.tokens)
}

// NewRegistry returns a registry holding fincore's built-in keys (see docs/config.md):
// channel switches and weights, risk rule-set versions, rate limits and degradation switches.
func NewRegistry() *Registry {
	r := &Registry{}
	for _, s := range builtins() {
		if err := r.Register(s); err != nil {
			panic("config: built-in key " + s.Pattern + ": " + err.Error())
		}
	}
	return r
}

// Register adds a spec. It fails if the pattern is malformed, has no validator, or could
// match a key that a registered pattern also matches (each key has one meaning).
func (r *Registry) Register(s Spec) error {
	if s.Validate == nil {
		return fmt.Errorf("config: register %q: no validator", s.Pattern)
	}
	c, err := compile(s)
	if err != nil {
		return err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, o := range r.specs {
		if overlap(c, o) {
			return fmt.Errorf("config: register %q: it overlaps the registered pattern %q", s.Pattern, o.Pattern)
		}
	}
	r.specs = append(r.specs, c)
	return nil
}

// AddCheck adds a check to the spec registered with pattern: a value is then stored only if
// the spec's validator and every check accept it.
func (r *Registry) AddCheck(pattern string, check Check) error {
	if check == nil {
		return fmt.Errorf("config: add check to %q: nil check", pattern)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, c := range r.specs {
		if c.Pattern == pattern {
			c.Checks = append(slices.Clip(c.Checks), check)
			return nil
		}
	}
	return fmt.Errorf("config: add check: no registered pattern %q", pattern)
}

// Specs returns the registered specs sorted by pattern.
func (r *Registry) Specs() []Spec {
	r.mu.RLock()
	defer r.mu.RUnlock()
	out := make([]Spec, len(r.specs))
	for i, c := range r.specs {
		out[i] = c.Spec
	}
	slices.SortFunc(out, func(a, b Spec) int { return strings.Compare(a.Pattern, b.Pattern) })
	return out
}

// Lookup returns the spec whose pattern matches key and the values of its placeholders
// ({"code": "icbc"} for channel.icbc.weight). It returns ErrKeyUnknown (wrapped, with the
// reason) when the key is malformed or no pattern matches.
func (r *Registry) Lookup(key string) (Spec, map[string]string, error) {
	tokens, err := splitKey(key)
	if err != nil {
		return Spec{}, nil, err
	}
	r.mu.RLock()
	defer r.mu.RUnlock()
	for _, c := range r.specs {
		if params, ok := c.match(tokens); ok {
			return c.Spec, params, nil
		}
	}
	return Spec{}, nil, refuse(ErrKeyUnknown, "no registered key matches %q", key)
}

// splitKey checks a key's syntax and splits it into tokens.
func splitKey(key string) ([]string, error) {
	if key == "" {
		return nil, refuse(ErrKeyUnknown, "the key is empty")
	}
	if len(key) > KeyMaxBytes {
		return nil, refuse(ErrKeyUnknown, "the key is longer than %d bytes", KeyMaxBytes)
	}
	tokens := strings.Split(key, ".")
	for _, t := range tokens {
		if t == "" {
			return nil, refuse(ErrKeyUnknown, "%q has an empty part (two dots, or a dot at an end)", key)
		}
		if len(t) > paramMaxBytes {
			return nil, refuse(ErrKeyUnknown, "a part of %q is longer than %d bytes", key, paramMaxBytes)
		}
		for _, c := range []byte(t) {
			if !isParamByte(c) {
				return nil, refuse(ErrKeyUnknown, "%q may hold only letters, digits, '_', '-' and dots", key)
			}
		}
	}
	return tokens, nil
}

func isParamByte(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-'
}

func compile(s Spec) (*compiled, error) {
	if s.Pattern == "" || len(s.Pattern) > KeyMaxBytes {
		return nil, fmt.Errorf("config: pattern %q must be 1 to %d bytes", s.Pattern, KeyMaxBytes)
	}
	c := &compiled{Spec: s}
	pattern, rest := strings.CutSuffix(s.Pattern, "...>")
	if rest {
		pattern += ">"
	}
	if strings.Contains(pattern, "...") {
		return nil, fmt.Errorf("config: pattern %q: only the last placeholder may be <name...>", s.Pattern)
	}
	for t := range strings.SplitSeq(pattern, ".") {
		if len(t) > 2 && t[0] == '<' && t[len(t)-1] == '>' {
			name := t[1 : len(t)-1]
			if !validLiteral(name) || slices.Contains(c.names, name) {
				return nil, fmt.Errorf("config: pattern %q: placeholder %q must be a unique lower-case name", s.Pattern, t)
			}
			c.tokens = append(c.tokens, "")
			c.names = append(c.names, name)
			continue
		}
		if !validLiteral(t) {
			return nil, fmt.Errorf("config: pattern %q: %q is neither a lower-case word nor a <placeholder>", s.Pattern, t)
		}
		c.tokens = append(c.tokens, t)
		c.names = append(c.names, "")
	}
	if rest && c.tokens[len(c.tokens)-1] != "" {
		return nil, fmt.Errorf("config: pattern %q: <name...> must be a whole token", s.Pattern)
	}
	c.rest = rest
	return c, nil
}

func validLiteral(t string) bool {
	if t == "" || len(t) > paramMaxBytes {
		return false
	}
	for _, c := range []byte(t) {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

func (c *compiled) match(tokens []string) (map[string]string, bool) {
	if lo, hi := c.lengths(); len(tokens) < lo || len(tokens) > hi {
		return nil, false
	}
	var params map[string]string
	for i, t := range c.tokens {
		if t == "" {
			if params == nil {
				params = make(map[string]string, 1)
			}
			v := tokens[i]
			if c.rest && i == len(c.tokens)-1 {
				v = strings.Join(tokens[i:], ".")
			}
			params[c.names[i]] = v
			continue
		}
		if tokens[i] != t {
			return nil, false
		}
	}
	return params, true
}

// overlap reports whether some key matches both patterns: their lengths can agree, and at
// every position both fix, equal literals or at least one placeholder (positions past a
// pattern's tokens fall in its <name...> placeholder, which takes anything).
func overlap(a, b *compiled) bool {
	alo, ahi := a.lengths()
	blo, bhi := b.lengths()
	if ahi < blo || bhi < alo {
		return false
	}
	for i := range min(len(a.tokens), len(b.tokens)) {
		if a.tokens[i] != "" && b.tokens[i] != "" && a.tokens[i] != b.tokens[i] {
			return false
		}
	}
	return true
}

// Error is a request the Center refused. Kind is one of the Err* values below (errors.Is
// matches it); Detail tells the caller what is wrong and is safe to show an API client.
type Error struct {
	Kind   error
	Detail string
}

func (e *Error) Error() string { return e.Kind.Error() + ": " + e.Detail }
func (e *Error) Unwrap() error { return e.Kind }

func refuse(kind error, format string, args ...any) error {
	return &Error{Kind: kind, Detail: fmt.Sprintf(format, args...)}
}

// The kinds of refusal; test for them with errors.Is. The HTTP layer maps them to the API's
// error codes.
var (
	// ErrKeyUnknown: the key is malformed or no registered pattern matches it.
	ErrKeyUnknown = errors.New("unknown configuration key")
	// ErrValueInvalid: the value is not valid JSON, too large, or its key's validator refused it.
	ErrValueInvalid = errors.New("invalid configuration value")
	// ErrNotSet: the key is valid but has no value.
	ErrNotSet = errors.New("configuration key not set")
	// ErrConflict: the key's version is not the one the write expected.
	ErrConflict = errors.New("configuration version conflict")
	// ErrMetaInvalid: the actor or reason of a change is too long or not valid UTF-8.
	ErrMetaInvalid = errors.New("invalid change metadata")
)
