package config

import (
	"errors"
	"maps"
	"strings"
	"testing"
)

func TestRegistryBuiltins(t *testing.T) {
	r := NewRegistry()
	for _, tc := range []struct {
		key     string
		pattern string
		params  map[string]string
	}{
		{"channel.icbc.enabled", "channel.<code>.enabled", map[string]string{"code": "icbc"}},
		{"channel.CMB-01.weight", "channel.<code>.weight", map[string]string{"code": "CMB-01"}},
		{"channel.x.priority", "channel.<code>.priority", map[string]string{"code": "x"}},
		{"risk.ruleset.cashout.version", "risk.ruleset.<name>.version", map[string]string{"name": "cashout"}},
		{"ratelimit.default", "ratelimit.default", nil},
		{"ratelimit.key.key_9f8e", "ratelimit.key.<key_id>", map[string]string{"key_id": "key_9f8e"}},
		{"switch.payments", "switch.<name...>", map[string]string{"name": "payments"}},
		{"switch.payments.channel.icbc", "switch.<name...>", map[string]string{"name": "payments.channel.icbc"}},
		{"switch.a.b.c.d.e", "switch.<name...>", map[string]string{"name": "a.b.c.d.e"}},
	} {
		spec, params, err := r.Lookup(tc.key)
		if err != nil {
			t.Errorf("Lookup(%q): %v", tc.key, err)
			continue
		}
		if spec.Pattern != tc.pattern || !maps.Equal(params, tc.params) {
			t.Errorf("Lookup(%q) = %s %v, want %s %v", tc.key, spec.Pattern, params, tc.pattern, tc.params)
		}
	}
	for _, key := range []string{
		"", "channel", "channel.icbc", "channel.icbc.colour", "channel..weight", "channel.icbc.weight.",
		".channel.icbc.weight", "channel.ic bc.weight", "channel.icbc*.weight", "channel.>.weight",
		"channel.中国.weight", "ratelimit", "ratelimit.key", "switch", "switch.a.b.c.d.e.f",
		"channel." + strings.Repeat("x", 65) + ".weight", strings.Repeat("a.", 200) + "a",
	} {
		_, _, err := r.Lookup(key)
		var ce *Error
		if !errors.Is(err, ErrKeyUnknown) || !errors.As(err, &ce) || ce.Detail == "" {
			t.Errorf("Lookup(%q) = %v, want ErrKeyUnknown with a detail", key, err)
		}
	}
}

func TestRegistryRegister(t *testing.T) {
	r := NewRegistry()
	ok := Spec{Pattern: "payment.route.<merchant>.max_amount", Type: "int >= 0", Validate: Int(0, 1<<40)}
	if err := r.Register(ok); err != nil {
		t.Fatal(err)
	}
	if spec, _, err := r.Lookup("payment.route.m1.max_amount"); err != nil || spec.Type != "int >= 0" {
		t.Fatalf("registered key: %v %v", spec, err)
	}
	for _, tc := range []struct {
		name string
		spec Spec
	}{
		{"no validator", Spec{Pattern: "a.b"}},
		{"empty pattern", Spec{Pattern: "", Validate: Bool()}},
		{"upper-case literal", Spec{Pattern: "Feature.x", Validate: Bool()}},
		{"bad placeholder", Spec{Pattern: "a.<B>", Validate: Bool()}},
		{"repeated placeholder", Spec{Pattern: "a.<x>.<x>", Validate: Bool()}},
		{"empty token", Spec{Pattern: "a..b", Validate: Bool()}},
		{"same as built-in", Spec{Pattern: "channel.<code>.weight", Validate: Bool()}},
		{"overlaps built-in", Spec{Pattern: "channel.icbc.<what>", Validate: Bool()}},
		{"overlaps switch", Spec{Pattern: "<any>.payments", Validate: Bool()}},
		{"inside switch's rest", Spec{Pattern: "switch.payments.<x>.<y>.mode", Validate: Bool()}},
		{"rest over a built-in", Spec{Pattern: "channel.<rest...>", Validate: Bool()}},
		{"rest not last", Spec{Pattern: "a.<r...>.b", Validate: Bool()}},
		{"overlaps the new key", Spec{Pattern: "payment.route.<m>.<field>", Validate: Bool()}},
	} {
		if err := r.Register(tc.spec); err == nil {
			t.Errorf("%s: Register(%q) succeeded", tc.name, tc.spec.Pattern)
		}
	}
	// Same length, different literal: no overlap. Nor past a rest placeholder's reach.
	for _, p := range []string{"channel.<code>.cost", "switch.a.b.c.d.e.f", "feature.<x...>"} {
		if err := r.Register(Spec{Pattern: p, Validate: Int(0, 100)}); err != nil {
			t.Fatalf("a distinct pattern %q was refused: %v", p, err)
		}
	}
	specs := r.Specs()
	if len(specs) != len(builtins())+4 {
		t.Fatalf("%d specs", len(specs))
	}
	for i := 1; i < len(specs); i++ {
		if specs[i-1].Pattern >= specs[i].Pattern {
			t.Fatalf("specs not sorted: %q before %q", specs[i-1].Pattern, specs[i].Pattern)
		}
	}
}

func TestBuiltinValues(t *testing.T) {
	r := NewRegistry()
	for _, tc := range []struct {
		key   string
		good  []string
		bad   []string
		bad2x string // a message fragment one of the bad values must produce
	}{
		{"channel.a.enabled", []string{"true", "false"}, []string{"1", `"true"`, "null", "TRUE", "{}"}, "true or false"},
		{"channel.a.weight", []string{"0", "1000", "17"}, []string{"-1", "1001", "1.0", "1e2", `"5"`, "null", "[]"}, "between 0 and 1000"},
		{"channel.a.priority", []string{"-5", "0", "9223372036854775807"}, []string{"9223372036854775808", "0.5", "true"}, "integer"},
		{"risk.ruleset.r.version", []string{"1", "42"}, []string{"0", "-3", "2.5"}, ">= 1"},
		{"ratelimit.default",
			[]string{`{"rate_per_s":100,"burst":200}`, `{"burst":1,"rate_per_s":0.5}`, `{"rate_per_s":1e3,"burst":5}`, `{"rate_per_s":1e9,"burst":1000000000}`},
			[]string{`{"rate_per_s":0,"burst":1}`, `{"rate_per_s":0,"burst":0}`, `{"rate_per_s":-1,"burst":1}`, `{"rate_per_s":1,"burst":0}`, `{"rate_per_s":1,"burst":1000000001}`,
				`{"rate_per_s":1}`, `{"burst":1}`, `{"rate_per_s":1,"burst":1,"x":2}`, `{"rate_per_s":"1","burst":1}`,
				`{"rate_per_s":1,"burst":1.5}`, `{"rate_per_s":1,"burst":1,"burst":2}`, `[1,2]`, `{"rate_per_s":2e9,"burst":1}`},
			"burst"},
		{"ratelimit.key.k1", []string{`{"rate_per_s":3,"burst":3}`}, []string{`3`}, "object"},
		{"switch.payments", []string{`"on"`, `"degraded"`, `"off"`}, []string{`"ON"`, `"paused"`, "true", "1"}, `"on", "degraded", "off"`},
	} {
		spec, _, err := r.Lookup(tc.key)
		if err != nil {
			t.Fatal(err)
		}
		for _, v := range tc.good {
			if err := spec.Validate([]byte(v)); err != nil {
				t.Errorf("%s = %s refused: %v", tc.key, v, err)
			}
		}
		found := false
		for _, v := range tc.bad {
			err := spec.Validate([]byte(v))
			if err == nil {
				t.Errorf("%s = %s accepted", tc.key, v)
				continue
			}
			found = found || strings.Contains(err.Error(), tc.bad2x)
		}
		if !found {
			t.Errorf("%s: no refusal mentions %q", tc.key, tc.bad2x)
		}
	}
	rl, err := ParseRateLimit([]byte(`{"rate_per_s":2.5,"burst":10}`))
	if err != nil || rl != (RateLimit{RatePerS: 2.5, Burst: 10}) {
		t.Fatalf("ParseRateLimit: %+v %v", rl, err)
	}
	if s, err := ParseSwitch([]byte(`"degraded"`)); err != nil || s != SwitchDegraded {
		t.Fatalf("ParseSwitch: %q %v", s, err)
	}
	if n, err := ParseInt([]byte("-12")); err != nil || n != -12 {
		t.Fatalf("ParseInt: %d %v", n, err)
	}
	if b, err := ParseBool([]byte("false")); err != nil || b {
		t.Fatalf("ParseBool: %v %v", b, err)
	}
}

// FuzzValidate feeds arbitrary bytes to every built-in key's validation: it must never panic,
// and a value it accepts must be compact JSON that validates again unchanged.
func FuzzValidate(f *testing.F) {
	for _, s := range []string{"true", "1000", `"on"`, `{"rate_per_s":1,"burst":1}`, ` { "burst" : 2 , "rate_per_s" : 0.1 } `, "1e2", `"\u006fn"`} {
		f.Add(s)
	}
	c := &Center{reg: NewRegistry()}
	keys := []string{"channel.a.enabled", "channel.a.weight", "channel.a.priority", "risk.ruleset.r.version",
		"ratelimit.default", "ratelimit.key.k", "switch.f"}
	f.Fuzz(func(t *testing.T, v string) {
		for _, k := range keys {
			out, err := c.Validate(k, []byte(v))
			if err != nil {
				if !errors.Is(err, ErrValueInvalid) {
					t.Fatalf("%s = %q: error %v is not ErrValueInvalid", k, v, err)
				}
				continue
			}
			again, err := c.Validate(k, out)
			if err != nil || string(again) != string(out) {
				t.Fatalf("%s: accepted %q as %q, which validates as %q, %v", k, v, out, again, err)
			}
		}
	})
}

func TestAddCheck(t *testing.T) {
	r := NewRegistry()
	c := &Center{reg: r}
	before, _, _ := r.Lookup("ratelimit.key.abc")
	err := r.AddCheck("ratelimit.key.<key_id>", func(key string, value []byte) error {
		if !strings.HasPrefix(key, "ratelimit.key.fk_") {
			return errors.New(key + ": not a key id")
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := r.AddCheck("ratelimit.key.<id>", func(string, []byte) error { return nil }); err == nil {
		t.Fatal("AddCheck on an unregistered pattern succeeded")
	}
	v := []byte(`{"rate_per_s":1,"burst":1}`)
	if _, err := c.Validate("ratelimit.key.fk_1", v); err != nil {
		t.Fatalf("value passing both checks refused: %v", err)
	}
	_, err = c.Validate("ratelimit.key.abc", v)
	var ce *Error
	if !errors.As(err, &ce) || ce.Kind != ErrValueInvalid || ce.Detail != "ratelimit.key.abc: not a key id" {
		t.Fatalf("value failing the added check: %v", err)
	}
	if _, err := c.Validate("ratelimit.key.fk_1", []byte(`{"rate_per_s":1}`)); !errors.Is(err, ErrValueInvalid) {
		t.Fatalf("the spec's own validator no longer runs: %v", err)
	}
	if len(before.Checks) != 0 {
		t.Fatal("AddCheck changed a spec returned earlier")
	}
}
