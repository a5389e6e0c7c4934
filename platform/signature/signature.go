// Package signature signs and verifies HTTP message bodies with the scheme fincore uses for
// its webhooks (DESIGN.md section 5) and expects of bank notifications:
//
//	Fincore-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, t + "." + body)>
//
// The timestamp is inside the MAC, so a captured message cannot be replayed after the
// tolerance window; several v1 values may be present (secret rotation), any one matching is
// enough.
package signature

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"strconv"
	"strings"
	"time"
)

// Errors of Verify.
var (
	ErrMalformed = errors.New("signature: malformed header")
	ErrExpired   = errors.New("signature: timestamp outside the tolerance")
	ErrMismatch  = errors.New("signature: no signature matches")
)

// DefaultTolerance is how far a signature's timestamp may be from now (either way).
const DefaultTolerance = 5 * time.Minute

func mac(secret []byte, ts string, body []byte) []byte {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(ts))
	m.Write([]byte{'.'})
	m.Write(body)
	return m.Sum(nil)
}

// Header returns the signature header value for body signed at t.
func Header(secret []byte, t time.Time, body []byte) string {
	ts := strconv.FormatInt(t.Unix(), 10)
	return "t=" + ts + ",v1=" + hex.EncodeToString(mac(secret, ts, body))
}

// Verify checks header against body and secret, with the timestamp within tolerance of now
// (DefaultTolerance if tolerance ≤ 0). It returns the signed time.
func Verify(secret []byte, header string, body []byte, now time.Time, tolerance time.Duration) (time.Time, error) {
	if tolerance <= 0 {
		tolerance = DefaultTolerance
	}
	if len(header) > 1024 {
		return time.Time{}, ErrMalformed
	}
	var ts string
	var sigs [][]byte
	for _, part := range strings.Split(header, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok {
			return time.Time{}, ErrMalformed
		}
		switch k {
		case "t":
			if ts != "" {
				return time.Time{}, ErrMalformed
			}
			ts = v
		case "v1":
			b, err := hex.DecodeString(v)
			if err != nil || len(b) != sha256.Size {
				return time.Time{}, ErrMalformed
			}
			sigs = append(sigs, b)
		}
	}
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil || len(sigs) == 0 {
		return time.Time{}, ErrMalformed
	}
	at := time.Unix(sec, 0)
	if d := now.Sub(at); d > tolerance || d < -tolerance {
		return at, ErrExpired
	}
	want := mac(secret, ts, body)
	for _, s := range sigs {
		if hmac.Equal(s, want) {
			return at, nil
		}
	}
	return at, ErrMismatch
}
