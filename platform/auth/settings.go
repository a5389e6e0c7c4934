package auth

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
)

// Configuration keys that Settings understands (docs/auth.md):
//
//	ratelimit.default           {"rate_per_s": 100, "burst": 200}   default per-key limit
//	ratelimit.key.<key_id>      {"rate_per_s": 10, "burst": 20}     one key's limit
//	switch.<name>               "on" | "degraded" | "off"           a degradation switch
const (
	KeyRateLimitDefault = "ratelimit.default"
	PrefixRateLimitKey  = "ratelimit.key."
	PrefixSwitch        = "switch."
)

// Settings applies configuration entries to a limiter and switches. It is the adapter point
// for a configuration source: the config center's watcher calls Apply for every change of a
// key Settings Handles, and Validate before it stores a value. (Flags set the limiter and
// switches directly at start.)
type Settings struct {
	Limits   LimitSetter
	Switches SwitchSetter
	// Default is the default limit that deleting ratelimit.default restores (the one flags
	// set at start; zero: no limit).
	Default Limit
}

// Handles reports whether key is one of Settings' configuration keys.
func (s Settings) Handles(key string) bool {
	return key == KeyRateLimitDefault || strings.HasPrefix(key, PrefixRateLimitKey) || strings.HasPrefix(key, PrefixSwitch)
}

// Validate checks value for key without applying it. Keys Settings does not handle are an
// error.
func (s Settings) Validate(key string, value []byte) error {
	_, err := s.parse(key, value)
	return err
}

// Apply applies value for key; a nil value means the key was deleted: ratelimit.default
// returns to Default, a key's limit to the default, a switch to on. It changes nothing when
// value is invalid.
func (s Settings) Apply(key string, value []byte) error {
	apply, err := s.parse(key, value)
	if err != nil {
		return err
	}
	return apply()
}

// parse validates key and value and returns the function that applies them.
func (s Settings) parse(key string, value []byte) (func() error, error) {
	switch {
	case key == KeyRateLimitDefault:
		if value == nil {
			return func() error { return s.Limits.SetDefault(s.Default) }, nil
		}
		l, err := decodeLimit(key, value)
		if err != nil {
			return nil, err
		}
		return func() error { return s.Limits.SetDefault(l) }, nil
	case strings.HasPrefix(key, PrefixRateLimitKey):
		id := strings.TrimPrefix(key, PrefixRateLimitKey)
		if !ValidKeyID(id) {
			return nil, fmt.Errorf("%s: %q is not a key id (fk_ and 16 hex digits)", key, clip(id))
		}
		if value == nil {
			return func() error { s.Limits.DeleteKey(id); return nil }, nil
		}
		l, err := decodeLimit(key, value)
		if err != nil {
			return nil, err
		}
		return func() error { return s.Limits.SetKey(id, l) }, nil
	case strings.HasPrefix(key, PrefixSwitch):
		name := strings.TrimPrefix(key, PrefixSwitch)
		if !ValidSwitchName(name) {
			return nil, fmt.Errorf("%s: %q is not a switch name", key, clip(name))
		}
		if value == nil {
			return func() error { s.Switches.Delete(name); return nil }, nil
		}
		var str string
		if err := json.Unmarshal(value, &str); err != nil {
			return nil, fmt.Errorf("%s: the value must be a JSON string: \"on\", \"degraded\" or \"off\"", key)
		}
		st, err := ParseState(str)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", key, err)
		}
		return func() error { return s.Switches.Set(name, st) }, nil
	}
	return nil, fmt.Errorf("%q is not a rate limit or switch key", clip(key))
}

// decodeLimit reads {"rate_per_s": number, "burst": integer}, both required, nothing else.
func decodeLimit(key string, value []byte) (Limit, error) {
	var raw struct {
		RatePerS *float64 `json:"rate_per_s"`
		Burst    *int     `json:"burst"`
	}
	d := json.NewDecoder(bytes.NewReader(value))
	d.DisallowUnknownFields()
	if err := d.Decode(&raw); err != nil || d.More() {
		return Limit{}, fmt.Errorf("%s: the value must be {\"rate_per_s\": number, \"burst\": integer}", key)
	}
	if raw.RatePerS == nil || raw.Burst == nil {
		return Limit{}, fmt.Errorf("%s: rate_per_s and burst are both required", key)
	}
	l := Limit{RatePerS: *raw.RatePerS, Burst: *raw.Burst}
	if err := l.Validate(); err != nil {
		return Limit{}, fmt.Errorf("%s: %w", key, err)
	}
	return l, nil
}
