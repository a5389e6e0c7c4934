// Package idem makes requests idempotent by a key the client chooses (the API's
// Idempotency-Key header): the first request with a key executes and its response is stored;
// a repetition gets the stored response without executing again; the same key with a
// different request is refused. It knows nothing of HTTP beyond a status code and headers: the
// HTTP layer computes the request's fingerprint and applies the outcome.
package idem

import (
	"context"
	"encoding/json"
	"fmt"
	"time"
)

// Response is a stored response.
type Response struct {
	Status int
	// Header holds the response headers worth replaying (Content-Type, Location, ...), one
	// value each.
	Header map[string]string
	Body   []byte
}

// Record is a key as stored.
type Record struct {
	// Scope separates the keys of different callers (the API key id); "" when the API has no
	// authentication. Key is the client's key. Together they are the record's identity.
	Scope string
	Key   string
	// Fingerprint identifies the request (a hash of its method, path and body).
	Fingerprint []byte
	// Owner is the claim of the request executing now (a random token), "" once the
	// response is stored.
	Owner string
	// Response is the stored response; nil while the request executes.
	Response *Response
	// CreatedAt is when the key was first claimed. LockedUntil ends the claim of a request
	// still executing: after it, the request is presumed lost (its process died) and another
	// with the same fingerprint may take the key over. ExpiresAt ends the record's life: after
	// it the key is free again and Purge deletes the record.
	CreatedAt   time.Time
	LockedUntil time.Time
	ExpiresAt   time.Time
}

// InFlight reports whether the record's request has not finished.
func (r *Record) InFlight() bool { return r.Response == nil }

// Store keeps idempotency records durably. Implementations: store/sqlite and store/postgres,
// held to the same behaviour by store/storetest.TestIdemStore. Times are stored with
// nanosecond precision.
type Store interface {
	// Claim makes rec (in flight: Owner set, Response nil) the record of its scope and key
	// unless a live record holds them, and reports whether it did. A record is dead, and
	// replaced, when its ExpiresAt is not after now, or when it is in flight, its LockedUntil
	// is not after now and its fingerprint equals rec's (a lost request's retry takes it
	// over). When Claim does not claim, it returns the live record, or a zero Record if that
	// record vanished (released, purged) before it could be read. Claims of one key are
	// serialised: of concurrent claims at most one succeeds.
	Claim(ctx context.Context, rec Record, now time.Time) (existing Record, claimed bool, err error)
	// Complete stores resp for the key held by owner and ends the claim. It reports false,
	// and stores nothing, if owner no longer holds the key (it was taken over).
	Complete(ctx context.Context, scope, key, owner string, resp Response) (bool, error)
	// Release deletes the record held by owner, so that the key can be used again (the
	// request failed in a way worth retrying). It is a no-op if owner no longer holds it.
	Release(ctx context.Context, scope, key, owner string) error
	// Purge deletes up to limit records whose ExpiresAt is not after now and returns how
	// many it deleted.
	Purge(ctx context.Context, now time.Time, limit int) (int, error)
}

// Provider is implemented by storage handles (such as a ledger store) that also hold
// idempotency records: it returns the idempotency store of the same database.
type Provider interface {
	Idempotency() Store
}

// EncodeHeader encodes a response's header for storage (a JSON object; "{}" for none).
func EncodeHeader(h map[string]string) string {
	if len(h) == 0 {
		return "{}"
	}
	b, _ := json.Marshal(h) // a map of strings always marshals
	return string(b)
}

// DecodeHeader decodes what EncodeHeader encoded.
func DecodeHeader(s string) (map[string]string, error) {
	var h map[string]string
	if err := json.Unmarshal([]byte(s), &h); err != nil {
		return nil, fmt.Errorf("stored idempotent response header: %w", err)
	}
	return h, nil
}

// Stored is a record's columns as storage adapters keep them (times in Unix nanoseconds, the
// header encoded by EncodeHeader); Record converts it.
type Stored struct {
	Scope, Key, Owner, Header         string
	Fingerprint, Body                 []byte
	Status                            int
	CreatedAt, LockedUntil, ExpiresAt int64
}

// Record converts s; a record with no owner holds its response.
func (s *Stored) Record() (Record, error) {
	r := Record{
		Scope: s.Scope, Key: s.Key, Fingerprint: s.Fingerprint, Owner: s.Owner,
		CreatedAt: time.Unix(0, s.CreatedAt).UTC(), LockedUntil: time.Unix(0, s.LockedUntil).UTC(), ExpiresAt: time.Unix(0, s.ExpiresAt).UTC(),
	}
	if s.Owner == "" {
		h, err := DecodeHeader(s.Header)
		if err != nil {
			return Record{}, err
		}
		body := s.Body
		if body == nil {
			body = []byte{}
		}
		r.Response = &Response{Status: s.Status, Header: h, Body: body}
	}
	return r, nil
}
