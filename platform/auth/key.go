// Package auth is fincore's access control: API keys with scopes (stored hashed), per-key
// rate limits (token buckets), degradation switches and the append-only audit log.
//
// It knows neither HTTP nor any storage driver: httpapi turns its answers into status codes
// and headers, and store/sqlite and store/postgres implement its Store, held to one
// behaviour by store/storetest. docs/auth.md is the operator's guide.
package auth

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base32"
	"encoding/hex"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"
)

// A token is what a client sends: "fk_<id>_<secret>", where <id> is 16 lowercase hex digits
// (the key's public id is "fk_<id>") and <secret> is 32 random bytes in lowercase base32
// without padding (52 characters). Only the SHA-256 of the whole token is stored: the secret
// has 256 bits of entropy, so a fast hash is enough, and a lookup costs one hash.
const (
	tokenPrefix     = "fk_"
	idHexLen        = 16
	secretBytes     = 32
	secretMin       = 32  // shortest secret part accepted in a client-chosen fk_ token
	tokenMin        = 32  // shortest token accepted at all (FINCORE_API_KEY)
	tokenMax        = 512 // longest token looked at; longer Authorization values are refused unread
	NameMax         = 100 // longest key name, in bytes
	ScopesMax       = 32  // most scopes on one key
	TenantMax       = 64  // longest tenant id
	scopeModuleMax  = 32
	hashLen         = sha256.Size
	keyIDPatternStr = `^fk_[0-9a-f]{16}$`
)

var (
	keyIDPattern  = regexp.MustCompile(keyIDPatternStr)
	scopePattern  = regexp.MustCompile(`^[a-z][a-z0-9_]{0,31}:(read|write)$`)
	tenantPattern = regexp.MustCompile(`^[A-Za-z0-9_.:\-]{1,64}$`)
	secretEncode  = base32.StdEncoding.WithPadding(base32.NoPadding)
)

// ScopeAdmin grants every scope: configuration, keys, the audit log and every module's routes.
const ScopeAdmin = "admin"

// Key is an API key as stored. The API and the audit log show it as a KeyView, without the
// hash.
type Key struct {
	ID        string
	Name      string
	Scopes    []string
	TenantID  string
	CreatedAt time.Time
	CreatedBy string
	// RevokedAt is zero while the key is active.
	RevokedAt time.Time
	// Hash is the SHA-256 of the key's token.
	Hash []byte `json:"-"`
}

// Active reports whether the key has not been revoked.
func (k Key) Active() bool { return k.RevokedAt.IsZero() }

// Allows reports whether the key may use a route that needs scope. "admin" allows
// everything; "<module>:write" also allows "<module>:read"; "" (a public route) is allowed
// to every key.
func (k Key) Allows(scope string) bool {
	if scope == "" {
		return true
	}
	for _, s := range k.Scopes {
		if s == ScopeAdmin || s == scope {
			return true
		}
		if mod, ok := strings.CutSuffix(scope, ":read"); ok && s == mod+":write" {
			return true
		}
	}
	return false
}

// ValidateScopes checks a key's scope list: 1 to ScopesMax entries, each "admin" or
// "<module>:read" / "<module>:write" with a lowercase module name, no repeats. It returns the
// list sorted.
func ValidateScopes(scopes []string) ([]string, error) {
	if len(scopes) == 0 {
		return nil, fmt.Errorf("a key needs at least one scope")
	}
	if len(scopes) > ScopesMax {
		return nil, fmt.Errorf("a key may hold at most %d scopes", ScopesMax)
	}
	out := slices.Clone(scopes)
	for _, s := range out {
		if s != ScopeAdmin && !scopePattern.MatchString(s) {
			return nil, fmt.Errorf("scope %q is not admin or <module>:read or <module>:write", clip(s))
		}
	}
	slices.Sort(out)
	if len(slices.Compact(slices.Clone(out))) != len(out) {
		return nil, fmt.Errorf("scopes repeat")
	}
	return out, nil
}

// ValidKeyID reports whether id has the shape of a key id ("fk_" and 16 hex digits).
func ValidKeyID(id string) bool { return keyIDPattern.MatchString(id) }

// newToken returns a fresh token and its key id.
func newToken() (token, id string) {
	var idb [idHexLen / 2]byte
	var sec [secretBytes]byte
	rand.Read(idb[:]) // never fails (crypto/rand panics rather than return an error)
	rand.Read(sec[:])
	id = tokenPrefix + hex.EncodeToString(idb[:])
	return id + "_" + strings.ToLower(secretEncode.EncodeToString(sec[:])), id
}

// tokenID returns the key id a token names: the id it embeds if it has the fk_ shape, or one
// derived from its hash for any other string (a FINCORE_API_KEY chosen by an operator).
func tokenID(token string) string {
	if len(token) > len(tokenPrefix)+idHexLen+1 && token[len(tokenPrefix)+idHexLen] == '_' {
		if id := token[:len(tokenPrefix)+idHexLen]; keyIDPattern.MatchString(id) {
			return id
		}
	}
	h := sha256.Sum256([]byte("fincore api key id\x00" + token))
	return tokenPrefix + hex.EncodeToString(h[:idHexLen/2])
}

// hashToken is what is stored for a token.
func hashToken(token string) []byte {
	h := sha256.Sum256([]byte(token))
	return h[:]
}

// matches compares a token's hash with a stored one in constant time.
func matches(token string, stored []byte) bool {
	return len(stored) == hashLen && subtle.ConstantTimeCompare(hashToken(token), stored) == 1
}

// checkOperatorToken checks a token chosen by an operator (FINCORE_API_KEY): printable ASCII
// without spaces, tokenMin to tokenMax bytes, and if it has the fk_ shape, a secret part of
// at least secretMin characters.
func checkOperatorToken(token string) error {
	if len(token) < tokenMin || len(token) > tokenMax {
		return fmt.Errorf("an API key must be %d to %d characters long", tokenMin, tokenMax)
	}
	for i := 0; i < len(token); i++ {
		if c := token[i]; c <= ' ' || c > '~' {
			return fmt.Errorf("an API key must be printable ASCII without spaces")
		}
	}
	if id := tokenID(token); strings.HasPrefix(token, id+"_") && len(token)-len(id)-1 < secretMin {
		return fmt.Errorf("the secret part of an fk_ API key must be at least %d characters", secretMin)
	}
	return nil
}

// clip shortens s for an error message.
func clip(s string) string {
	if len(s) > 64 {
		return s[:64] + "..."
	}
	return s
}
