package payment

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
)

// Luhn reports whether pan (digits only) passes the Luhn check.
func Luhn(pan string) bool {
	if len(pan) < 12 || len(pan) > 19 {
		return false
	}
	sum := 0
	double := false
	for i := len(pan) - 1; i >= 0; i-- {
		c := pan[i]
		if c < '0' || c > '9' {
			return false
		}
		d := int(c - '0')
		if double {
			d *= 2
			if d > 9 {
				d -= 9
			}
		}
		sum += d
		double = !double
	}
	return sum%10 == 0
}

// Sealer encrypts card data and webhook secrets with AES-256-GCM. The key comes from
// configuration (FINCORE_CARD_KEY, or a key file in embedded mode); ciphertexts carry their
// random nonce and are bound to a purpose and an id (the additional data), so that one
// card's ciphertext cannot be moved onto another.
type Sealer struct{ aead cipher.AEAD }

// KeySize is the size of a sealing key in bytes.
const KeySize = 32

// NewSealer returns a sealer with key (KeySize bytes).
func NewSealer(key []byte) (*Sealer, error) {
	if len(key) != KeySize {
		return nil, fmt.Errorf("payment: the card key must be %d bytes, not %d", KeySize, len(key))
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, err
	}
	return &Sealer{aead: aead}, nil
}

// NewKey returns a random sealing key.
func NewKey() []byte {
	k := make([]byte, KeySize)
	rand.Read(k)
	return k
}

// Seal encrypts plaintext bound to binding (e.g. "card:card_123").
func (s *Sealer) Seal(plaintext []byte, binding string) string {
	nonce := make([]byte, s.aead.NonceSize())
	rand.Read(nonce)
	out := s.aead.Seal(nonce, nonce, plaintext, []byte(binding))
	return base64.RawStdEncoding.EncodeToString(out)
}

// ErrUnseal is the failure to decrypt: a wrong key, a wrong binding or altered data.
var ErrUnseal = errors.New("payment: cannot decrypt (wrong key or altered data)")

// Open decrypts what Seal made with the same binding.
func (s *Sealer) Open(sealed, binding string) ([]byte, error) {
	b, err := base64.RawStdEncoding.DecodeString(sealed)
	if err != nil || len(b) < s.aead.NonceSize() {
		return nil, ErrUnseal
	}
	n := s.aead.NonceSize()
	out, err := s.aead.Open(nil, b[:n], b[n:], []byte(binding))
	if err != nil {
		return nil, ErrUnseal
	}
	return out, nil
}

// openedCard decodes a card's sealed data, {"pan":"…","holder":"…"} as CreateCard writes it
// with encoding/json. The usual form — nothing escaped — is read directly, which is a good
// part of the CPU of a payment's bank call; anything else through encoding/json.
func openedCard(plain []byte) (sealedCard, error) {
	const head, mid, tail = `{"pan":"`, `","holder":"`, `"}`
	s := string(plain)
	if rest, ok := strings.CutPrefix(s, head); ok {
		if pan, rest, ok := strings.Cut(rest, mid); ok {
			if holder, ok := strings.CutSuffix(rest, tail); ok && plainJSON(pan) && plainJSON(holder) {
				return sealedCard{PAN: pan, Holder: holder}, nil
			}
		}
	}
	var sc sealedCard
	err := json.Unmarshal(plain, &sc)
	return sc, err
}

// plainJSON reports whether s stands for itself inside a JSON string: no quote, backslash or
// control character.
func plainJSON(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c == '"' || c == '\\' {
			return false
		}
	}
	return true
}
