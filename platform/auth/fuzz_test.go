package auth

import "testing"

// FuzzTokenID: any string a client sends maps to a well-formed key id (so a look-up never
// sees a malformed one), the mapping is stable, and the operator check never panics.
func FuzzTokenID(f *testing.F) {
	tok, _ := newToken()
	for _, s := range []string{"", tok, tok[:20], "fk_0123456789abcdef_", "fk_0123456789ABCDEF_x", "fk__", "\xff\xfe"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, token string) {
		id := tokenID(token)
		if !ValidKeyID(id) || id != tokenID(token) {
			t.Fatalf("tokenID(%q) = %q", token, id)
		}
		_ = checkOperatorToken(token)
		if matches(token, nil) {
			t.Fatal("matched an empty hash")
		}
	})
}
