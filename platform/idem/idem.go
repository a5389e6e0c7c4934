package idem

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"time"
)

// Limits and defaults.
const (
	// KeyMax is the longest key accepted, in bytes.
	KeyMax = 255
	// DefaultTTL is how long a key is remembered after its first use.
	DefaultTTL = 24 * time.Hour
	// DefaultLease is how long a request may execute before its key is presumed lost and a
	// retry with the same request may take it over. It exceeds the server's write timeout, so
	// a request still running keeps its key.
	DefaultLease = 5 * time.Minute
	// DefaultPurgeInterval is how often expired records are deleted.
	DefaultPurgeInterval = time.Minute
	// DefaultResponseMax bounds a stored response body. A larger response is sent but not
	// stored: the key is released and a retry executes again.
	DefaultResponseMax = 8 << 20
	// purgeBatch bounds the records one purge statement deletes.
	purgeBatch = 1000
	// claimAttempts bounds the retries of a claim that raced with a release or a purge.
	claimAttempts = 3
)

// ErrInvalidKey is returned by ValidKey.
var ErrInvalidKey = fmt.Errorf("an idempotency key must be 1 to %d printable ASCII characters without spaces", KeyMax)

// ValidKey checks a client's key: 1 to KeyMax bytes, each a printable ASCII character other
// than space (a UUID, a ULID, base64 and the like all qualify).
func ValidKey(key string) error {
	if len(key) == 0 || len(key) > KeyMax {
		return ErrInvalidKey
	}
	for i := 0; i < len(key); i++ {
		if key[i] < 0x21 || key[i] > 0x7e {
			return ErrInvalidKey
		}
	}
	return nil
}

// Outcome is what Begin decided for a request.
type Outcome int

const (
	// Execute: the key is new (or free again); the request runs under the returned claim.
	Execute Outcome = iota
	// Replay: the key was used with the same request; answer with the stored response.
	Replay
	// Conflict: the key was used with a different request.
	Conflict
	// InProgress: the key's first request is still executing.
	InProgress
)

func (o Outcome) String() string {
	switch o {
	case Execute:
		return "executed"
	case Replay:
		return "replayed"
	case Conflict:
		return "conflict"
	case InProgress:
		return "in_progress"
	}
	return "unknown"
}

// Config tunes a Service. Zero values take the defaults.
type Config struct {
	TTL           time.Duration
	Lease         time.Duration
	PurgeInterval time.Duration
	ResponseMax   int
	Now           func() time.Time
	Logger        *slog.Logger
	// Observe, if set, is told the outcome of every Begin (for metrics).
	Observe func(Outcome)
}

func (c *Config) defaults() {
	if c.TTL <= 0 {
		c.TTL = DefaultTTL
	}
	if c.Lease <= 0 {
		c.Lease = DefaultLease
	}
	if c.PurgeInterval <= 0 {
		c.PurgeInterval = DefaultPurgeInterval
	}
	if c.ResponseMax <= 0 {
		c.ResponseMax = DefaultResponseMax
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
}

// Service applies idempotency keys over a Store. It is safe for concurrent use.
type Service struct {
	st  Store
	cfg Config
}

// New returns a service over st.
func New(st Store, cfg Config) *Service {
	cfg.defaults()
	return &Service{st: st, cfg: cfg}
}

// ResponseMax is the largest response body the service stores.
func (s *Service) ResponseMax() int { return s.cfg.ResponseMax }

// Claim is the right to execute one request under a key; give it back with Finish or
// Abandon.
type Claim struct {
	scope, key, owner string
}

// Begin decides what to do with a request carrying key (already checked by ValidKey) for the
// caller scope, whose fingerprint identifies it. With Execute it returns the claim to finish;
// with Replay the stored response.
func (s *Service) Begin(ctx context.Context, scope, key string, fingerprint []byte) (Outcome, *Response, *Claim, error) {
	var tok [16]byte
	rand.Read(tok[:])
	now := s.cfg.Now()
	rec := Record{
		Scope: scope, Key: key, Fingerprint: fingerprint, Owner: hex.EncodeToString(tok[:]),
		CreatedAt: now, LockedUntil: now.Add(s.cfg.Lease), ExpiresAt: now.Add(s.cfg.TTL),
	}
	for range claimAttempts {
		existing, claimed, err := s.st.Claim(ctx, rec, now)
		if err != nil {
			return 0, nil, nil, fmt.Errorf("claim idempotency key: %w", err)
		}
		var o Outcome
		switch {
		case claimed:
			s.observe(Execute)
			return Execute, nil, &Claim{scope: scope, key: key, owner: rec.Owner}, nil
		case existing.Key == "":
			continue // released or purged since the claim looked: look again
		case !bytes.Equal(existing.Fingerprint, fingerprint):
			o = Conflict
		case existing.InFlight():
			o = InProgress
		default:
			s.observe(Replay)
			return Replay, existing.Response, nil, nil
		}
		s.observe(o)
		return o, nil, nil, nil
	}
	return 0, nil, nil, errors.New("claim idempotency key: the record kept changing")
}

func (s *Service) observe(o Outcome) {
	if s.cfg.Observe != nil {
		s.cfg.Observe(o)
	}
}

// Storable reports whether a response with this status is stored for replay. Server errors
// (5xx) and 429 Too Many Requests are not: they say nothing about the request, and its retry
// should execute.
func Storable(status int) bool { return status < 500 && status != 429 }

// Finish stores resp under the claim, or releases the key when resp is not Storable or its
// body exceeds the limit.
func (s *Service) Finish(ctx context.Context, c *Claim, resp Response) error {
	if !Storable(resp.Status) || len(resp.Body) > s.cfg.ResponseMax {
		if len(resp.Body) > s.cfg.ResponseMax {
			s.cfg.Logger.WarnContext(ctx, "idempotency: response too large to store; key released",
				"bytes", len(resp.Body), "limit", s.cfg.ResponseMax)
		}
		return s.Abandon(ctx, c)
	}
	ok, err := s.st.Complete(ctx, c.scope, c.key, c.owner, resp)
	if err != nil {
		return fmt.Errorf("store idempotent response: %w", err)
	}
	if !ok {
		s.cfg.Logger.WarnContext(ctx, "idempotency: the key was taken over before its response was stored; the lease is too short for this request")
	}
	return nil
}

// Abandon releases the claim's key so that a retry executes.
func (s *Service) Abandon(ctx context.Context, c *Claim) error {
	if err := s.st.Release(ctx, c.scope, c.key, c.owner); err != nil {
		return fmt.Errorf("release idempotency key: %w", err)
	}
	return nil
}

// Purge deletes every expired record, in bounded batches, and returns how many it deleted.
func (s *Service) Purge(ctx context.Context) (int, error) {
	total := 0
	for {
		n, err := s.st.Purge(ctx, s.cfg.Now(), purgeBatch)
		total += n
		if err != nil || n < purgeBatch {
			return total, err
		}
	}
}

// Run purges expired records every PurgeInterval until ctx is done.
func (s *Service) Run(ctx context.Context) {
	t := time.NewTicker(s.cfg.PurgeInterval)
	defer t.Stop()
	for {
		if _, err := s.Purge(ctx); err != nil && ctx.Err() == nil {
			s.cfg.Logger.Warn("idempotency purge", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
