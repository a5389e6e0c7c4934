package auth

import (
	"strings"
	"testing"
)

func TestSwitchesForScope(t *testing.T) {
	s := NewSwitches()
	if _, _, refused := s.ForScope("ledger:write"); refused {
		t.Fatal("an unset switch refuses")
	}
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(s.Set("ledger", Degraded))
	must(s.Set("risk", Off))
	for _, tc := range []struct {
		scope   string
		state   State
		refused bool
	}{
		{"ledger:write", Degraded, true},
		{"ledger:read", Degraded, false},
		{"risk:read", Off, true},
		{"risk:write", Off, true},
		{"credit:write", On, false},
		{"admin", On, false},
		{"", On, false},
	} {
		_, st, refused := s.ForScope(tc.scope)
		if st != tc.state || refused != tc.refused {
			t.Errorf("ForScope(%q) = %s %v, want %s %v", tc.scope, st, refused, tc.state, tc.refused)
		}
	}
	must(s.Set("ledger", On))
	s.Delete("risk")
	if len(s.All()) != 0 {
		t.Fatalf("All() = %v after resetting", s.All())
	}
	for _, bad := range []string{"", "a..b", ".a", "a b", "a/b", "a.b.c.d.e.f", strings.Repeat("x", 65)} {
		if s.Set(bad, Off) == nil {
			t.Errorf("switch name %q accepted", bad)
		}
	}
	if s.Set("ledger", "half") == nil {
		t.Fatal("bad state accepted")
	}
	must(s.Set("payments-channel-ICBC", Off))
	must(s.Set("payments.channel.icbc", Degraded))
	if s.State("payments-channel-ICBC") != Off || s.State("payments.channel.icbc") != Degraded || s.State("payments") != On {
		t.Fatal("a feature switch leaked to its module")
	}
}

func TestSettingsApply(t *testing.T) {
	l, _ := newTestLimiter(t, Limit{})
	sw := NewSwitches()
	s := Settings{Limits: l, Switches: sw, Default: Limit{RatePerS: 7, Burst: 7}}
	ok := func(key, value string) {
		t.Helper()
		var v []byte
		if value != "" {
			v = []byte(value)
		}
		if err := s.Apply(key, v); err != nil {
			t.Fatalf("Apply(%s, %s): %v", key, value, err)
		}
	}
	bad := func(key, value string) {
		t.Helper()
		var v []byte
		if value != "" {
			v = []byte(value)
		}
		if s.Validate(key, v) == nil || s.Apply(key, v) == nil {
			t.Fatalf("Apply(%s, %s) accepted", key, value)
		}
	}
	ok("ratelimit.default", `{"rate_per_s": 5, "burst": 10}`)
	ok("ratelimit.key."+keyA, `{"rate_per_s": 0.5, "burst": 1}`)
	ok("switch.ledger", `"degraded"`)
	def, per := l.Limits()
	if def != (Limit{5, 10}) || per[keyA] != (Limit{0.5, 1}) || sw.State("ledger") != Degraded {
		t.Fatalf("applied: %v %v %s", def, per, sw.State("ledger"))
	}
	bad("ratelimit.default", `{"rate_per_s": 5}`)
	bad("ratelimit.default", `{"rate_per_s": 5, "burst": 10, "x": 1}`)
	bad("ratelimit.default", `{"rate_per_s": -5, "burst": 10}`)
	bad("ratelimit.default", `{"rate_per_s": 5, "burst": 1.5}`)
	bad("ratelimit.default", `{"rate_per_s": 5, "burst": 10} {}`)
	bad("ratelimit.key.bob", `{"rate_per_s": 1, "burst": 1}`)
	bad("switch.ledger", `degraded`)
	bad("switch.ledger", `"sideways"`)
	bad("switch.a/b", `"off"`)
	bad("other.key", `1`)
	if def, _ := l.Limits(); def != (Limit{5, 10}) || sw.State("ledger") != Degraded {
		t.Fatal("a refused value changed a setting")
	}
	ok("ratelimit.key."+keyA, "") // deleted
	ok("switch.ledger", "")
	ok("ratelimit.default", "")
	if def, per := l.Limits(); len(per) != 0 || sw.State("ledger") != On || def != (Limit{7, 7}) {
		t.Fatalf("deletions not applied: default %v", def)
	}
	if !s.Handles("switch.x") || !s.Handles("ratelimit.default") || s.Handles("ratelimit") || s.Handles("payments.x") {
		t.Fatal("Handles")
	}
}
