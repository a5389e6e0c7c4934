// Package natskv keeps fincore's locks (platform/lock) in a JetStream key-value bucket, one
// key per lock, changed only by compare-and-set on the key's revision.
//
// A key's value holds the holder, the fencing token and the holder's TTL. Acquiring writes
// the token plus one, so tokens count up per lock through every change of hands; they are
// never reset because a lock's key is never deleted (a release writes an empty holder). If a
// key is lost anyway (deleted or purged by hand), the next grant starts above the bucket's
// last revision, which no earlier token of that key can exceed (each grant was a write).
//
// Expiry needs no shared clock: a contender times how long it has seen the same revision of
// the key, with its own monotonic clock, and takes the lock over once that exceeds the
// holder's TTL. The holder's own deadline runs from before its write, so it always ends
// first. A Backend therefore remembers what it has seen: use one per process.
package natskv

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/fincore/fincore/platform/lock"
)

// DefaultBucket is the bucket fincore keeps its locks in.
const DefaultBucket = "fincore_locks"

// Backend is a lock.Backend on a JetStream key-value bucket.
type Backend struct {
	kv jetstream.KeyValue

	mu   sync.Mutex
	seen map[string]sighting // by lock name: the revision last seen and since when
}

type sighting struct {
	rev   uint64
	since time.Time
}

// value is a key's JSON value.
type value struct {
	Holder string `json:"holder"` // "" when released
	Token  uint64 `json:"token"`
	TTLMs  int64  `json:"ttl_ms"`
}

var _ lock.Backend = (*Backend)(nil)

// Open creates the bucket if needed (file storage, one value per key, replicas as given: 1
// for a single server, 3 on a cluster) and returns a backend on it.
func Open(ctx context.Context, js jetstream.JetStream, bucket string, replicas int) (*Backend, error) {
	if bucket == "" {
		bucket = DefaultBucket
	}
	kv, err := js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket:      bucket,
		Description: "fincore locks with fencing tokens",
		History:     1,
		Storage:     jetstream.FileStorage,
		Replicas:    max(replicas, 1),
	})
	if err != nil {
		return nil, fmt.Errorf("natskv: bucket %s: %w", bucket, err)
	}
	return &Backend{kv: kv, seen: map[string]sighting{}}, nil
}

// TryAcquire implements lock.Backend.
func (b *Backend) TryAcquire(ctx context.Context, name, holder string, ttl time.Duration) (lock.Grant, error) {
	e, err := b.kv.Get(ctx, name)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return b.create(ctx, name, holder, ttl)
	}
	if err != nil {
		return lock.Grant{}, err
	}
	var v value
	if err := json.Unmarshal(e.Value(), &v); err != nil {
		return lock.Grant{}, fmt.Errorf("natskv: lock %q: %w", name, err)
	}
	if v.Holder != "" && v.Holder != holder && !b.expired(name, e.Revision(), time.Duration(v.TTLMs)*time.Millisecond) {
		return lock.Grant{}, lock.ErrHeld
	}
	g := lock.Grant{Token: v.Token + 1, Previous: v.Holder}
	if _, err := b.kv.Update(ctx, name, encode(holder, g.Token, ttl), e.Revision()); err != nil {
		if errors.Is(err, jetstream.ErrKeyRevisionMismatch) {
			return lock.Grant{}, lock.ErrHeld // someone else changed it first
		}
		return lock.Grant{}, err
	}
	return g, nil
}

// create writes a lock's first value. Its token starts above the bucket's last revision, in
// case the key existed once and was deleted.
func (b *Backend) create(ctx context.Context, name, holder string, ttl time.Duration) (lock.Grant, error) {
	st, err := b.kv.Status(ctx)
	if err != nil {
		return lock.Grant{}, err
	}
	var last uint64
	if bs, ok := st.(*jetstream.KeyValueBucketStatus); ok {
		last = bs.StreamInfo().State.LastSeq
	}
	g := lock.Grant{Token: last + 1}
	if _, err := b.kv.Create(ctx, name, encode(holder, g.Token, ttl)); err != nil {
		if errors.Is(err, jetstream.ErrKeyExists) {
			return lock.Grant{}, lock.ErrHeld
		}
		return lock.Grant{}, err
	}
	return g, nil
}

// expired reports whether this backend has seen revision rev of the lock unchanged for at
// least ttl.
func (b *Backend) expired(name string, rev uint64, ttl time.Duration) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	s, ok := b.seen[name]
	if !ok || s.rev != rev {
		b.seen[name] = sighting{rev: rev, since: time.Now()}
		return false
	}
	return time.Since(s.since) >= ttl
}

// Renew implements lock.Backend.
func (b *Backend) Renew(ctx context.Context, name, holder string, token uint64, ttl time.Duration) error {
	return b.rewrite(ctx, name, holder, token, encode(holder, token, ttl))
}

// Release implements lock.Backend.
func (b *Backend) Release(ctx context.Context, name, holder string, token uint64) error {
	return b.rewrite(ctx, name, holder, token, encode("", token, 0))
}

// rewrite replaces the value of a lock whose current lease is (holder, token). A concurrent
// change makes it look again: if that change was a takeover, the lease is no longer held.
func (b *Backend) rewrite(ctx context.Context, name, holder string, token uint64, val []byte) error {
	for range 3 {
		e, err := b.kv.Get(ctx, name)
		if errors.Is(err, jetstream.ErrKeyNotFound) {
			return lock.ErrNotHeld
		}
		if err != nil {
			return err
		}
		var v value
		if err := json.Unmarshal(e.Value(), &v); err != nil {
			return fmt.Errorf("natskv: lock %q: %w", name, err)
		}
		if v.Holder != holder || v.Token != token {
			return lock.ErrNotHeld
		}
		_, err = b.kv.Update(ctx, name, val, e.Revision())
		if !errors.Is(err, jetstream.ErrKeyRevisionMismatch) {
			return err
		}
	}
	return fmt.Errorf("natskv: lock %q keeps changing under this holder", name)
}

func encode(holder string, token uint64, ttl time.Duration) []byte {
	b, err := json.Marshal(value{Holder: holder, Token: token, TTLMs: ttl.Milliseconds()})
	if err != nil {
		panic(err) // a struct of strings and integers always marshals
	}
	return b
}
