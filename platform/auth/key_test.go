package auth

import (
	"strings"
	"testing"
)

func TestTokenShape(t *testing.T) {
	seen := map[string]bool{}
	for range 100 {
		token, id := newToken()
		if !ValidKeyID(id) || !strings.HasPrefix(token, id+"_") {
			t.Fatalf("token %q id %q", token, id)
		}
		if len(token) != len(id)+1+52 {
			t.Fatalf("token %q has length %d", token, len(token))
		}
		if tokenID(token) != id {
			t.Fatalf("tokenID(%q) = %q, want %q", token, tokenID(token), id)
		}
		if seen[token] {
			t.Fatal("token repeated")
		}
		seen[token] = true
		if err := checkOperatorToken(token); err != nil {
			t.Fatalf("a generated token fails the operator check: %v", err)
		}
	}
}

func TestTokenIDOfOtherStrings(t *testing.T) {
	a := tokenID("correct-horse-battery-staple-0123456789")
	b := tokenID("correct-horse-battery-staple-0123456789x")
	if !ValidKeyID(a) || !ValidKeyID(b) || a == b {
		t.Fatalf("derived ids %q %q", a, b)
	}
	if a != tokenID("correct-horse-battery-staple-0123456789") {
		t.Fatal("derived id is not deterministic")
	}
	// Looks like fk_ but the id part is not hex: derived, not embedded.
	if id := tokenID("fk_zzzzzzzzzzzzzzzz_secretsecretsecretsecretsecretsecret"); id == "fk_zzzzzzzzzzzzzzzz" || !ValidKeyID(id) {
		t.Fatalf("id %q", id)
	}
}

func TestMatchesIsExact(t *testing.T) {
	token, _ := newToken()
	h := hashToken(token)
	if !matches(token, h) {
		t.Fatal("token does not match its own hash")
	}
	for _, other := range []string{token[:len(token)-1], token + "a", strings.ToUpper(token), ""} {
		if matches(other, h) {
			t.Fatalf("%q matches", other)
		}
	}
	if matches(token, h[:16]) || matches(token, nil) {
		t.Fatal("a truncated hash matches")
	}
}

func TestCheckOperatorToken(t *testing.T) {
	for _, tc := range []struct {
		token string
		ok    bool
	}{
		{strings.Repeat("a", 32), true},
		{strings.Repeat("a", 31), false},
		{strings.Repeat("a", 513), false},
		{strings.Repeat("a", 20) + " " + strings.Repeat("a", 20), false},
		{strings.Repeat("a", 20) + "é" + strings.Repeat("a", 20), false},
		{"fk_0123456789abcdef_" + strings.Repeat("s", 32), true},
		{"fk_0123456789abcdef_" + strings.Repeat("s", 31), false},
	} {
		if err := checkOperatorToken(tc.token); (err == nil) != tc.ok {
			t.Errorf("checkOperatorToken(%.30q...) = %v, want ok %v", tc.token, err, tc.ok)
		}
	}
}

func TestAllows(t *testing.T) {
	k := Key{Scopes: []string{"ledger:write", "risk:read"}}
	for scope, want := range map[string]bool{
		"":              true,
		"ledger:write":  true,
		"ledger:read":   true, // write implies read
		"risk:read":     true,
		"risk:write":    false,
		"payments:read": false,
		"admin":         false,
	} {
		if got := k.Allows(scope); got != want {
			t.Errorf("Allows(%q) = %v, want %v", scope, got, want)
		}
	}
	admin := Key{Scopes: []string{ScopeAdmin}}
	for _, scope := range []string{"admin", "ledger:write", "credit:read", "anything:write"} {
		if !admin.Allows(scope) {
			t.Errorf("admin does not allow %q", scope)
		}
	}
}

func TestValidateScopes(t *testing.T) {
	got, err := ValidateScopes([]string{"risk:write", "admin", "ledger:read"})
	if err != nil || strings.Join(got, " ") != "admin ledger:read risk:write" {
		t.Fatalf("got %v %v", got, err)
	}
	for _, bad := range [][]string{
		nil,
		{"ledger"},
		{"ledger:delete"},
		{"Ledger:read"},
		{"ledger:read", "ledger:read"},
		{"root"},
		{":read"},
		make([]string, ScopesMax+1),
	} {
		if _, err := ValidateScopes(bad); err == nil {
			t.Errorf("ValidateScopes(%q) accepted", bad)
		}
	}
}
