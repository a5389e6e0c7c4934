package config

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
)

// Values are JSON. The validators below are strict: an integer is an integer literal (no
// fraction, no exponent, no quotes), a boolean is true or false, an object has exactly its
// documented fields, each once. Modules build their own validators from these.

// Degradation switch states (keys switch.<name...>).
const (
	SwitchOn       = "on"       // the feature runs normally
	SwitchDegraded = "degraded" // the feature runs in its reduced mode (the module defines it)
	SwitchOff      = "off"      // the feature is switched off
)

// Bounds of a rate limit's fields.
const (
	RateMax  = 1e9
	BurstMax = 1_000_000_000
)

// RateLimit is the value of ratelimit.default and ratelimit.key.<key_id>: a token bucket
// refilled at RatePerS tokens a second, holding at most Burst.
type RateLimit struct {
	RatePerS float64 `json:"rate_per_s"`
	Burst    int64   `json:"burst"`
}

func builtins() []Spec {
	return []Spec{
		{Pattern: "channel.<code>.enabled", Type: "bool", Validate: Bool(),
			Doc: "Whether payment routing may use bank channel <code>; false takes it out of rotation on every instance."},
		{Pattern: "channel.<code>.weight", Type: "int 0..1000", Validate: Int(0, 1000),
			Doc: "The routing weight of channel <code> among the candidates of equal priority; 0 sends it no traffic."},
		{Pattern: "channel.<code>.priority", Type: "int", Validate: Int(math.MinInt64, math.MaxInt64),
			Doc: "The routing priority of channel <code>; lower values are tried first."},
		{Pattern: "risk.ruleset.<name>.version", Type: "int >= 1", Validate: Int(1, math.MaxInt64),
			Doc: "The version of risk rule set <name> that decisions use."},
		{Pattern: "ratelimit.default", Type: `{"rate_per_s": number > 0, "burst": int >= 1}`, Validate: validateRateLimit,
			Doc: "The token bucket of an API key that has no limit of its own."},
		{Pattern: "ratelimit.key.<key_id>", Type: `{"rate_per_s": number > 0, "burst": int >= 1}`, Validate: validateRateLimit,
			Doc: "The token bucket of API key <key_id>, instead of ratelimit.default."},
		{Pattern: "switch.<name...>", Type: `"on" | "degraded" | "off"`, Validate: Enum(SwitchOn, SwitchDegraded, SwitchOff),
			Doc: "The degradation switch <name>: a module (ledger, payments) or a finer part of one (payments.channel.icbc); on, degraded (the module's reduced mode) or off."},
	}
}

// Bool accepts true or false.
func Bool() Validator {
	return func(v []byte) error {
		_, err := ParseBool(v)
		return err
	}
}

// ParseBool decodes a bool value.
func ParseBool(v []byte) (bool, error) {
	switch string(v) {
	case "true":
		return true, nil
	case "false":
		return false, nil
	}
	return false, fmt.Errorf("must be true or false, not %s", describe(v))
}

// Int accepts an integer literal between lo and hi inclusive.
func Int(lo, hi int64) Validator {
	return func(v []byte) error {
		_, err := parseInt(v, lo, hi)
		return err
	}
}

// ParseInt decodes an integer value.
func ParseInt(v []byte) (int64, error) { return parseInt(v, math.MinInt64, math.MaxInt64) }

func parseInt(v []byte, lo, hi int64) (int64, error) {
	bad := func() error {
		switch {
		case lo == math.MinInt64 && hi == math.MaxInt64:
			return fmt.Errorf("must be an integer, not %s", describe(v))
		case hi == math.MaxInt64:
			return fmt.Errorf("must be an integer >= %d, not %s", lo, describe(v))
		}
		return fmt.Errorf("must be an integer between %d and %d, not %s", lo, hi, describe(v))
	}
	if len(v) == 0 || v[0] != '-' && (v[0] < '0' || v[0] > '9') || bytes.ContainsAny(v, ".eE") {
		return 0, bad()
	}
	n, err := strconv.ParseInt(string(v), 10, 64)
	if err != nil || n < lo || n > hi {
		return 0, bad()
	}
	return n, nil
}

// Enum accepts one of the given strings.
func Enum(allowed ...string) Validator {
	allowed = slices.Clone(allowed)
	return func(v []byte) error {
		_, err := parseEnum(v, allowed)
		return err
	}
}

// ParseString decodes a string value.
func ParseString(v []byte) (string, error) {
	var s string
	if len(v) == 0 || v[0] != '"' || json.Unmarshal(v, &s) != nil {
		return "", fmt.Errorf("must be a string, not %s", describe(v))
	}
	return s, nil
}

func parseEnum(v []byte, allowed []string) (string, error) {
	s, err := ParseString(v)
	if err == nil && slices.Contains(allowed, s) {
		return s, nil
	}
	return "", fmt.Errorf("must be one of %s, not %s", quoteAll(allowed), describe(v))
}

// ParseSwitch decodes a degradation switch (switch.<name...>).
func ParseSwitch(v []byte) (string, error) {
	return parseEnum(v, []string{SwitchOn, SwitchDegraded, SwitchOff})
}

func quoteAll(ss []string) string {
	q := make([]string, len(ss))
	for i, s := range ss {
		q[i] = strconv.Quote(s)
	}
	return strings.Join(q, ", ")
}

func validateRateLimit(v []byte) error {
	_, err := ParseRateLimit(v)
	return err
}

// ParseRateLimit decodes a rate-limit value: {"rate_per_s": number > 0, "burst": int >= 1}.
func ParseRateLimit(v []byte) (RateLimit, error) {
	var rl RateLimit
	fields, err := Fields(v)
	if err != nil {
		return rl, err
	}
	for name := range fields {
		if name != "rate_per_s" && name != "burst" {
			return rl, fmt.Errorf("has an unknown field %q (allowed: rate_per_s, burst)", name)
		}
	}
	rate, ok := fields["rate_per_s"]
	if !ok {
		return rl, fmt.Errorf("needs rate_per_s")
	}
	if len(rate) == 0 || rate[0] != '-' && (rate[0] < '0' || rate[0] > '9') {
		return rl, fmt.Errorf("rate_per_s must be a number, not %s", describe(rate))
	}
	rl.RatePerS, err = strconv.ParseFloat(string(rate), 64)
	if err != nil || !(rl.RatePerS > 0) || rl.RatePerS > RateMax {
		return rl, fmt.Errorf("rate_per_s must be a number greater than 0 and at most %g, not %s", float64(RateMax), rate)
	}
	burst, ok := fields["burst"]
	if !ok {
		return rl, fmt.Errorf("needs burst")
	}
	if rl.Burst, err = parseInt(burst, 1, BurstMax); err != nil {
		return rl, fmt.Errorf("burst %v", err)
	}
	return rl, nil
}

// Fields splits a JSON object value into its members, refusing anything that is not an
// object and repeated member names.
func Fields(v []byte) (map[string]json.RawMessage, error) {
	if len(v) == 0 || v[0] != '{' {
		return nil, fmt.Errorf("must be an object, not %s", describe(v))
	}
	dec := json.NewDecoder(bytes.NewReader(v))
	dec.UseNumber()
	if _, err := dec.Token(); err != nil { // {
		return nil, fmt.Errorf("must be an object: %v", err)
	}
	out := map[string]json.RawMessage{}
	for dec.More() {
		t, err := dec.Token()
		if err != nil {
			return nil, fmt.Errorf("must be an object: %v", err)
		}
		name, _ := t.(string)
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return nil, fmt.Errorf("field %q: %v", name, err)
		}
		if _, dup := out[name]; dup {
			return nil, fmt.Errorf("has the field %q more than once", name)
		}
		out[name] = raw
	}
	return out, nil
}

// describe names a JSON value for a message: the value itself when short, else its kind.
func describe(v []byte) string {
	if len(v) == 0 {
		return "nothing"
	}
	if len(v) <= 32 {
		return string(v)
	}
	switch v[0] {
	case '"':
		return "a long string"
	case '{':
		return "an object"
	case '[':
		return "an array"
	}
	return "a long number"
}
