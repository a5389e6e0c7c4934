package auth

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Limit is a token bucket's setting: requests per second on average, and the burst a key
// may spend at once. A zero RatePerS means no limit. It is also the JSON value of the
// configuration keys ratelimit.default and ratelimit.key.<key_id>.
type Limit struct {
	RatePerS float64 `json:"rate_per_s"`
	Burst    int     `json:"burst"`
}

// Bounds of a Limit (the config center's validator accepts the same range).
const (
	RatePerSMax = 1_000_000_000
	BurstMax    = 1_000_000_000
)

// Unlimited reports whether l lets every request through.
func (l Limit) Unlimited() bool { return l.RatePerS == 0 }

// Validate checks l: 0 (no limit) or a rate in (0, RatePerSMax] with a burst in
// [1, BurstMax].
func (l Limit) Validate() error {
	if math.IsNaN(l.RatePerS) || l.RatePerS < 0 || l.RatePerS > RatePerSMax {
		return fmt.Errorf("rate_per_s must be between 0 (no limit) and %d", RatePerSMax)
	}
	if l.RatePerS == 0 {
		if l.Burst != 0 {
			return fmt.Errorf("burst must be 0 when rate_per_s is 0 (no limit)")
		}
		return nil
	}
	if l.Burst < 1 || l.Burst > BurstMax {
		return fmt.Errorf("burst must be between 1 and %d", BurstMax)
	}
	return nil
}

// ParseLimit parses "RATE[:BURST]" (requests per second, burst), as flags give it: "100:200"
// is 100/s with bursts of 200; "100" takes a burst of max(1, RATE); "0" is no limit.
func ParseLimit(s string) (Limit, error) {
	rate, burst, hasBurst := strings.Cut(s, ":")
	var l Limit
	var err error
	if l.RatePerS, err = strconv.ParseFloat(rate, 64); err != nil {
		return Limit{}, fmt.Errorf("limit %q: rate %q is not a number", s, rate)
	}
	switch {
	case hasBurst:
		if l.Burst, err = strconv.Atoi(burst); err != nil {
			return Limit{}, fmt.Errorf("limit %q: burst %q is not an integer", s, burst)
		}
	case l.RatePerS > 0:
		l.Burst = int(math.Max(1, math.Ceil(l.RatePerS)))
	}
	if err := l.Validate(); err != nil {
		return Limit{}, fmt.Errorf("limit %q: %w", s, err)
	}
	return l, nil
}

// LimitSetter is what drives a Limiter's settings: flags at start (StaticLimits), the config
// center as its keys change.
type LimitSetter interface {
	// SetDefault sets the limit of keys without a limit of their own.
	SetDefault(l Limit) error
	// SetKey gives key id its own limit.
	SetKey(id string, l Limit) error
	// DeleteKey returns key id to the default limit.
	DeleteKey(id string)
}

// bucketsMax bounds the buckets a Limiter holds; beyond it, full buckets (which are the same
// as fresh ones) are dropped.
const bucketsMax = 4 * ActiveKeysMax

// Limiter holds one token bucket per key, in memory: each instance limits what it serves,
// so a deployment of n instances behind a balancer lets a key through up to n times its
// rate. It is safe for concurrent use.
type Limiter struct {
	now func() time.Time

	mu      sync.Mutex
	def     Limit
	perKey  map[string]Limit
	buckets map[string]*bucket
}

type bucket struct {
	tokens float64
	last   time.Time
}

var _ LimitSetter = (*Limiter)(nil)

// NewLimiter returns a limiter with default limit def, on the clock now (time.Now if nil).
func NewLimiter(def Limit, now func() time.Time) (*Limiter, error) {
	if err := def.Validate(); err != nil {
		return nil, err
	}
	if now == nil {
		now = time.Now
	}
	return &Limiter{now: now, def: def, perKey: map[string]Limit{}, buckets: map[string]*bucket{}}, nil
}

// SetDefault implements LimitSetter.
func (l *Limiter) SetDefault(lim Limit) error {
	if err := lim.Validate(); err != nil {
		return err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.def = lim
	return nil
}

// SetKey implements LimitSetter.
func (l *Limiter) SetKey(id string, lim Limit) error {
	if err := lim.Validate(); err != nil {
		return err
	}
	if !ValidKeyID(id) {
		return fmt.Errorf("%q is not a key id", clip(id))
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.perKey[id] = lim
	return nil
}

// DeleteKey implements LimitSetter.
func (l *Limiter) DeleteKey(id string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	delete(l.perKey, id)
}

// Limits returns the default limit and the per-key limits.
func (l *Limiter) Limits() (Limit, map[string]Limit) {
	l.mu.Lock()
	defer l.mu.Unlock()
	m := make(map[string]Limit, len(l.perKey))
	for k, v := range l.perKey {
		m[k] = v
	}
	return l.def, m
}

// Allow takes one token from key id's bucket. If the bucket is empty it reports false and
// how long until a token is back. A bucket starts full; a lowered burst caps the tokens it
// holds.
func (l *Limiter) Allow(id string) (bool, time.Duration) {
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	lim, ok := l.perKey[id]
	if !ok {
		lim = l.def
	}
	if lim.Unlimited() {
		return true, 0
	}
	b := l.buckets[id]
	if b == nil {
		if len(l.buckets) >= bucketsMax {
			l.sweep(now)
		}
		b = &bucket{tokens: float64(lim.Burst), last: now}
		l.buckets[id] = b
	}
	if dt := now.Sub(b.last).Seconds(); dt > 0 {
		b.tokens += dt * lim.RatePerS
		b.last = now
	}
	b.tokens = min(b.tokens, float64(lim.Burst))
	// The epsilon absorbs the rounding of many small refills (ten 1 ms refills at 100/s
	// add up to 0.9999999999999999).
	if b.tokens >= 1-1e-9 {
		b.tokens = max(b.tokens-1, 0)
		return true, 0
	}
	wait := time.Duration((1 - b.tokens) / lim.RatePerS * float64(time.Second))
	return false, max(wait, time.Millisecond)
}

// sweep drops the buckets that have refilled completely, which behave like fresh ones; if
// none has, it drops all of them (a burst of grace rather than unbounded memory).
func (l *Limiter) sweep(now time.Time) {
	for id, b := range l.buckets {
		lim, ok := l.perKey[id]
		if !ok {
			lim = l.def
		}
		if lim.Unlimited() || b.tokens+now.Sub(b.last).Seconds()*lim.RatePerS >= float64(lim.Burst) {
			delete(l.buckets, id)
		}
	}
	if len(l.buckets) >= bucketsMax {
		clear(l.buckets)
	}
}
