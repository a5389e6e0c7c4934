// Package config is fincore's configuration center (DESIGN.md requirement F3): typed,
// validated keys stored in a NATS JetStream key-value bucket, changed by compare-and-set with
// a record of who changed what, when and why, and pushed to every instance that watches them.
//
// Keys are declared in a Registry (built-in ones: channel switches and weights, risk rule-set
// versions, rate limits, degradation switches; modules register more). A value is refused
// before anything is stored when its key is unknown or its validator rejects it. Each stored
// revision carries its metadata (actor, reason, time, previous value), so the bucket's history
// (the last HistoryDefault revisions of each key) is the change log; an Auditor, if set, gets
// every change as well, for a permanent audit trail.
//
// Every instance applies changes through Watch: it delivers the current values under a prefix
// when it starts, then every change, in order, exactly once per revision, surviving
// reconnections to an external NATS cluster. docs/config.md describes keys, API and semantics.
package config

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Limits and defaults.
const (
	// DefaultBucket is the key-value bucket that holds the configuration.
	DefaultBucket = "fincore_config"
	// HistoryDefault is how many revisions of each key the bucket keeps (JetStream's maximum).
	HistoryDefault = jetstream.KeyValueMaxHistory
	// ValueMaxBytes bounds a value (compact JSON).
	ValueMaxBytes = 16 << 10
	// ReasonMaxBytes and ActorMaxBytes bound a change's metadata.
	ReasonMaxBytes = 1024
	ActorMaxBytes  = 256
	// DefaultBucketMaxBytes bounds the bucket; writes fail when it is full.
	DefaultBucketMaxBytes = 256 << 20

	// AnonymousActor is recorded when a change names no actor (requests before
	// authentication is switched on).
	AnonymousActor = "anonymous"

	// casAttempts bounds the retries of a Set that keeps losing the compare-and-set to
	// concurrent writers; casBackoff is the most it waits, at random, before each retry (so
	// that contending writers spread out instead of colliding again).
	casAttempts = 32
	casBackoff  = 2 * time.Millisecond
)

// Auditor receives every change a Center made, after it is stored. A permanent audit log
// implements it.
type Auditor interface {
	AuditConfigChange(ctx context.Context, c Change) error
}

// Observer receives what metrics need. Calls are synchronous and must be fast.
type Observer interface {
	// ConfigChanged is called after this Center stored a change.
	ConfigChanged(c Change)
	// ConfigApplied is called after a watcher's function returned for a revision; latency
	// is the time from the change's timestamp (taken by the Center that stored it, just
	// before storing) to then. Across machines it includes their clock difference.
	ConfigApplied(key string, version uint64, latency time.Duration)
}

// Options configures Open.
type Options struct {
	// Bucket is the key-value bucket's name (default DefaultBucket). Tests sharing an
	// external server use their own.
	Bucket string
	// Replicas is how many servers of a cluster hold the bucket (default 1; the embedded
	// server accepts only 1).
	Replicas int
	// MaxBytes bounds the bucket's storage (default DefaultBucketMaxBytes).
	MaxBytes int64
	// Registry declares the accepted keys (default NewRegistry()).
	Registry *Registry
	// Auditor, if set, receives every change after it is stored.
	Auditor Auditor
	// Observer, if set, receives changes and apply latencies for metrics.
	Observer Observer
	// Logger receives changes (info) and failures (default slog.Default()).
	Logger *slog.Logger
	// Now is the clock for change timestamps (default time.Now).
	Now func() time.Time
	// WatchQueueMax bounds the changes queued for one watch (default DefaultWatchQueueMax).
	WatchQueueMax int
}

// Meta is who makes a change and on what terms.
type Meta struct {
	// Actor is who makes the change (an API key id, "cli:<user>"); "" records AnonymousActor.
	Actor string
	// Reason is free text recorded with the change (optional).
	Reason string
	// ExpectVersion, if not nil, makes the change conditional: it is stored only if the key's
	// current version is this one (0: the key has no value yet); otherwise Set fails with
	// ErrConflict.
	ExpectVersion *uint64
}

// Entry is a key's current value.
type Entry struct {
	Key     string          `json:"key"`
	Value   json.RawMessage `json:"value"`
	Version uint64          `json:"version"`
	// Who set it, when and why.
	Actor  string    `json:"updated_by"`
	Reason string    `json:"reason"`
	At     time.Time `json:"updated_at"`
}

// Change is one stored revision of a key: the new value, the one it replaced, and who, when
// and why.
type Change struct {
	Key        string          `json:"key"`
	Version    uint64          `json:"version"`
	Value      json.RawMessage `json:"value"`
	OldValue   json.RawMessage `json:"old_value"`   // null when the key had no value
	OldVersion uint64          `json:"old_version"` // 0 when the key had no value
	Actor      string          `json:"actor"`
	Reason     string          `json:"reason"`
	At         time.Time       `json:"at"`
}

// record is what the bucket stores for a revision: the value and its change metadata.
type record struct {
	Value      json.RawMessage `json:"value"`
	OldValue   json.RawMessage `json:"old_value,omitempty"`
	OldVersion uint64          `json:"old_version,omitempty"`
	Actor      string          `json:"actor"`
	Reason     string          `json:"reason,omitempty"`
	At         time.Time       `json:"at"`
}

func decodeRecord(data []byte) (record, error) {
	var r record
	if err := json.Unmarshal(data, &r); err != nil {
		return r, fmt.Errorf("config: stored record is not JSON: %w", err)
	}
	if len(r.Value) == 0 {
		return r, errors.New("config: stored record has no value")
	}
	return r, nil
}

func (r record) change(key string, version uint64) Change {
	old := r.OldValue
	if len(old) == 0 {
		old = nil
	}
	return Change{Key: key, Version: version, Value: r.Value, OldValue: old, OldVersion: r.OldVersion,
		Actor: r.Actor, Reason: r.Reason, At: r.At}
}

// Center reads, writes and watches the configuration. It is safe for concurrent use.
type Center struct {
	kv       jetstream.KeyValue
	nc       *nats.Conn
	reg      *Registry
	auditor  Auditor
	observer Observer
	log      *slog.Logger
	now      func() time.Time
	queueMax int

	mu       sync.Mutex
	hub      *hub // the watches' shared subscription; nil until the first Watch
	watchers map[*watcher]struct{}
	closed   bool
	stopConn func() // stops following the connection's status
}

// Open creates the bucket if it does not exist (or updates its limits) and returns a Center
// on it. js is the bus's JetStream (bus.Bus.JetStream), embedded or external. Close the Center
// before the bus.
func Open(ctx context.Context, js jetstream.JetStream, opts Options) (*Center, error) {
	if opts.Bucket == "" {
		opts.Bucket = DefaultBucket
	}
	if opts.Replicas == 0 {
		opts.Replicas = 1
	}
	if opts.MaxBytes == 0 {
		opts.MaxBytes = DefaultBucketMaxBytes
	}
	if opts.MaxBytes < 0 || opts.Replicas < 0 {
		return nil, errors.New("config: max bytes and replicas must not be negative")
	}
	if opts.Registry == nil {
		opts.Registry = NewRegistry()
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.WatchQueueMax <= 0 {
		opts.WatchQueueMax = DefaultWatchQueueMax
	}
	kv, err := js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket:      opts.Bucket,
		Description: "fincore configuration (platform/config)",
		History:     HistoryDefault,
		Storage:     jetstream.FileStorage,
		Replicas:    opts.Replicas,
		MaxBytes:    opts.MaxBytes,
		// A record holds the value, the previous value and the metadata.
		MaxValueSize: 2*ValueMaxBytes + 4*(ReasonMaxBytes+ActorMaxBytes),
	})
	if err != nil {
		return nil, fmt.Errorf("config: open bucket %s: %w", opts.Bucket, err)
	}
	c := &Center{
		kv: kv, nc: js.Conn(), reg: opts.Registry, auditor: opts.Auditor, observer: opts.Observer,
		log: opts.Logger.With("component", "config"), now: opts.Now, queueMax: opts.WatchQueueMax,
		watchers: map[*watcher]struct{}{},
	}
	c.followConnection()
	return c, nil
}

// Registry returns the Center's key registry, for modules to register their keys.
func (c *Center) Registry() *Registry { return c.reg }

// Close stops every watcher. It does not close the bus. Calling it again does nothing.
func (c *Center) Close() {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return
	}
	c.closed = true
	ws := make([]*watcher, 0, len(c.watchers))
	for w := range c.watchers {
		ws = append(ws, w)
	}
	h := c.hub
	c.mu.Unlock()
	for _, w := range ws {
		w.stop()
	}
	if h != nil {
		h.stop()
	}
	c.stopConn()
}

// Validate checks key and value as Set would, without storing anything, and returns the value
// in the compact form Set stores.
func (c *Center) Validate(key string, value []byte) ([]byte, error) {
	spec, _, err := c.reg.Lookup(key)
	if err != nil {
		return nil, err
	}
	if len(value) > ValueMaxBytes {
		return nil, refuse(ErrValueInvalid, "the value of %s is larger than %d bytes", key, ValueMaxBytes)
	}
	if !json.Valid(value) {
		return nil, refuse(ErrValueInvalid, "the value of %s is not valid JSON", key)
	}
	var buf bytes.Buffer
	if err := json.Compact(&buf, value); err != nil {
		return nil, refuse(ErrValueInvalid, "the value of %s is not valid JSON", key)
	}
	compact := buf.Bytes()
	if err := spec.Validate(compact); err != nil {
		return nil, refuse(ErrValueInvalid, "%s (%s) %v", key, spec.Type, err)
	}
	for _, check := range spec.Checks {
		if err := check(key, compact); err != nil {
			return nil, refuse(ErrValueInvalid, "%v", err)
		}
	}
	return compact, nil
}

// Get returns key's current value. It fails with ErrKeyUnknown for a key no spec matches and
// ErrNotSet for a valid key without a value.
func (c *Center) Get(ctx context.Context, key string) (Entry, error) {
	if _, _, err := c.reg.Lookup(key); err != nil {
		return Entry{}, err
	}
	e, err := c.kv.Get(ctx, key)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return Entry{}, refuse(ErrNotSet, "%s has no value", key)
	}
	if err != nil {
		return Entry{}, fmt.Errorf("config: get %s: %w", key, err)
	}
	r, err := decodeRecord(e.Value())
	if err != nil {
		return Entry{}, fmt.Errorf("config: get %s (version %d): %w", key, e.Revision(), err)
	}
	return Entry{Key: key, Value: r.Value, Version: e.Revision(), Actor: r.Actor, Reason: r.Reason, At: r.At}, nil
}

// Set validates value for key and stores it as the key's next version, recording meta, then
// hands the change to the Auditor. Nothing is stored if the key is unknown (ErrKeyUnknown),
// the value invalid (ErrValueInvalid), the metadata invalid (ErrMetaInvalid) or the current
// version is not meta.ExpectVersion (ErrConflict). Without ExpectVersion the write is still a
// compare-and-set on the version it read, retried when a concurrent writer got in between, so
// the recorded old value is always the one replaced.
//
// The change is stored before the Auditor sees it: if the Auditor fails, Set logs the change
// and the failure, and returns the change together with an error wrapping ErrAuditFailed.
func (c *Center) Set(ctx context.Context, key string, value []byte, meta Meta) (Change, error) {
	val, err := c.Validate(key, value)
	if err != nil {
		return Change{}, err
	}
	if meta.Actor == "" {
		meta.Actor = AnonymousActor
	}
	switch {
	case len(meta.Actor) > ActorMaxBytes || !utf8.ValidString(meta.Actor):
		return Change{}, refuse(ErrMetaInvalid, "the actor must be valid UTF-8 of at most %d bytes", ActorMaxBytes)
	case len(meta.Reason) > ReasonMaxBytes || !utf8.ValidString(meta.Reason):
		return Change{}, refuse(ErrMetaInvalid, "the reason must be valid UTF-8 of at most %d bytes", ReasonMaxBytes)
	}

	for attempt := range casAttempts {
		if attempt > 0 {
			select {
			case <-ctx.Done():
				return Change{}, fmt.Errorf("config: set %s: %w", key, ctx.Err())
			case <-time.After(rand.N(casBackoff)):
			}
		}
		var cur record
		var curVersion uint64
		e, err := c.kv.Get(ctx, key)
		switch {
		case errors.Is(err, jetstream.ErrKeyNotFound):
		case err != nil:
			return Change{}, fmt.Errorf("config: set %s: read current version: %w", key, err)
		default:
			curVersion = e.Revision()
			if cur, err = decodeRecord(e.Value()); err != nil {
				// An unreadable revision (written by some other tool) is replaced; its raw
				// bytes are not a value worth carrying as the old one.
				c.log.Warn("replacing an unreadable stored value", "key", key, "version", curVersion, "err", err)
			}
		}
		if meta.ExpectVersion != nil && *meta.ExpectVersion != curVersion {
			return Change{}, conflict(key, *meta.ExpectVersion, curVersion)
		}
		rec := record{Value: val, OldValue: cur.Value, OldVersion: curVersion, Actor: meta.Actor, Reason: meta.Reason, At: c.now().UTC()}
		data, err := json.Marshal(rec)
		if err != nil {
			return Change{}, fmt.Errorf("config: set %s: %w", key, err)
		}
		var version uint64
		if curVersion == 0 {
			version, err = c.kv.Create(ctx, key, data)
		} else {
			version, err = c.kv.Update(ctx, key, data, curVersion)
		}
		if errors.Is(err, jetstream.ErrKeyExists) || errors.Is(err, jetstream.ErrKeyRevisionMismatch) {
			// Someone else wrote first: read again (with ExpectVersion, the next round
			// fails its check with the version that won).
			continue
		}
		if err != nil {
			return Change{}, fmt.Errorf("config: set %s: %w", key, err)
		}
		ch := rec.change(key, version)
		c.log.Info("configuration changed", "key", key, "version", version, "old_version", curVersion,
			"value", string(val), "old_value", string(cur.Value), "actor", meta.Actor, "reason", meta.Reason)
		if c.observer != nil {
			c.observer.ConfigChanged(ch)
		}
		if c.auditor != nil {
			if err := c.auditor.AuditConfigChange(ctx, ch); err != nil {
				c.log.Error("configuration change stored but not audited", "key", key, "version", version,
					"actor", meta.Actor, "err", err)
				return ch, fmt.Errorf("%w: %s version %d: %w", ErrAuditFailed, key, version, err)
			}
		}
		return ch, nil
	}
	return Change{}, fmt.Errorf("config: set %s: lost the compare-and-set %d times to concurrent writers", key, casAttempts)
}

// ErrAuditFailed is returned (with the change) by a Set whose change was stored but which the
// Auditor refused.
var ErrAuditFailed = errors.New("config: change stored but the audit log refused it")

func conflict(key string, expected, current uint64) error {
	switch {
	case expected == 0:
		return refuse(ErrConflict, "%s already has a value (version %d); expected none", key, current)
	case current == 0:
		return refuse(ErrConflict, "%s has no value; expected version %d", key, expected)
	}
	return refuse(ErrConflict, "%s is at version %d, not the expected %d", key, current, expected)
}

// List returns the current values of the keys that start with prefix ("" for all), sorted by
// key.
func (c *Center) List(ctx context.Context, prefix string) ([]Entry, error) {
	filters, match := watchFilter(prefix)
	ctx, cancel := context.WithTimeout(ctx, watchStartTimeout)
	defer cancel()
	w, err := c.kv.WatchFiltered(ctx, filters, jetstream.IgnoreDeletes())
	if err != nil {
		return nil, fmt.Errorf("config: list %q: %w", prefix, err)
	}
	defer w.Stop()
	var out []Entry
	for {
		var e jetstream.KeyValueEntry
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("config: list %q: %w", prefix, ctx.Err())
		case u, ok := <-w.Updates():
			if !ok {
				return nil, fmt.Errorf("config: list %q: the watch ended early", prefix)
			}
			e = u
		}
		if e == nil {
			break // all current values delivered
		}
		if !match(e.Key()) {
			continue
		}
		r, err := decodeRecord(e.Value())
		if err != nil {
			c.log.Warn("skipping an unreadable stored value", "key", e.Key(), "version", e.Revision(), "err", err)
			continue
		}
		out = append(out, Entry{Key: e.Key(), Value: r.Value, Version: e.Revision(), Actor: r.Actor, Reason: r.Reason, At: r.At})
	}
	slices.SortFunc(out, func(a, b Entry) int { return strings.Compare(a.Key, b.Key) })
	return out, nil
}

// History returns the changes of key that the bucket still holds (the last HistoryDefault),
// newest first. A key without changes has an empty history.
func (c *Center) History(ctx context.Context, key string) ([]Change, error) {
	if _, _, err := c.reg.Lookup(key); err != nil {
		return nil, err
	}
	es, err := c.kv.History(ctx, key)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return []Change{}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("config: history of %s: %w", key, err)
	}
	out := make([]Change, 0, len(es))
	for i := len(es) - 1; i >= 0; i-- {
		e := es[i]
		if e.Operation() != jetstream.KeyValuePut {
			continue
		}
		r, err := decodeRecord(e.Value())
		if err != nil {
			c.log.Warn("skipping an unreadable stored value", "key", key, "version", e.Revision(), "err", err)
			continue
		}
		out = append(out, r.change(key, e.Revision()))
	}
	return out, nil
}
