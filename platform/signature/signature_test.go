package signature

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"strings"
	"testing"
	"time"
)

func TestSignVerify(t *testing.T) {
	secret := []byte("whsec_test")
	body := []byte(`{"type":"payment.succeeded"}`)
	at := time.Unix(1767225600, 0)
	h := Header(secret, at, body)

	// The header is exactly the documented construction.
	m := hmac.New(sha256.New, secret)
	m.Write([]byte("1767225600." + string(body)))
	if want := "t=1767225600,v1=" + hex.EncodeToString(m.Sum(nil)); h != want {
		t.Fatalf("Header = %s, want %s", h, want)
	}
	if got, err := Verify(secret, h, body, at.Add(time.Minute), 0); err != nil || !got.Equal(at) {
		t.Fatalf("Verify = %v, %v", got, err)
	}
	// Rotation: an old and a new signature, the new one matches.
	other := Header([]byte("old"), at, body)
	rotated := h + "," + other[strings.Index(other, "v1="):]
	if _, err := Verify(secret, rotated, body, at, 0); err != nil {
		t.Fatalf("rotated header: %v", err)
	}
	for name, tc := range map[string]struct {
		secret []byte
		header string
		body   []byte
		now    time.Time
		want   error
	}{
		"other body":    {secret, h, []byte(`{"type":"payment.failed"}`), at, ErrMismatch},
		"other secret":  {[]byte("x"), h, body, at, ErrMismatch},
		"too old":       {secret, h, body, at.Add(6 * time.Minute), ErrExpired},
		"from future":   {secret, h, body, at.Add(-6 * time.Minute), ErrExpired},
		"empty":         {secret, "", body, at, ErrMalformed},
		"no v1":         {secret, "t=1767225600", body, at, ErrMalformed},
		"bad hex":       {secret, "t=1767225600,v1=zz", body, at, ErrMalformed},
		"short mac":     {secret, "t=1767225600,v1=abcd", body, at, ErrMalformed},
		"two t":         {secret, "t=1,t=2,v1=" + strings.Repeat("0", 64), body, at, ErrMalformed},
		"bad t":         {secret, "t=now,v1=" + strings.Repeat("0", 64), body, at, ErrMalformed},
		"no equal sign": {secret, "garbage", body, at, ErrMalformed},
	} {
		if _, err := Verify(tc.secret, tc.header, tc.body, tc.now, 0); !errors.Is(err, tc.want) {
			t.Errorf("%s: Verify = %v, want %v", name, err, tc.want)
		}
	}
}

func FuzzVerify(f *testing.F) {
	f.Add("t=1767225600,v1=00", []byte("x"))
	f.Fuzz(func(t *testing.T, header string, body []byte) {
		Verify([]byte("k"), header, body, time.Unix(1767225600, 0), 0) // must not panic
	})
}
