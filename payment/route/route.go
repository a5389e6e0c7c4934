// Package route chooses the bank channel for a payment. Candidates come from the bank
// registry (bank code, currency, amount limits); this package ranks them by what operators
// configure — enabled flag, priority, weight, cost — and by each channel's live success rate,
// learned online with a non-stationary bandit: discounted Thompson sampling, where every
// observation's weight decays with a half-life, so a channel that degrades loses traffic in
// seconds and one that recovers is found again by exploration.
//
// The router holds no goroutines and reads no clock: callers pass the time, which keeps it
// exact under test and lets the routing benchmark run in simulated time.
package route

import (
	"cmp"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"sort"
	"sync"
	"time"
)

// ChannelConfig is what operators set for a channel (through the config center).
type ChannelConfig struct {
	// Enabled: a disabled channel gets no traffic.
	Enabled bool
	// Priority: among channels whose expected value is within Options.Tolerance of the best,
	// the highest priority wins.
	Priority int
	// Weight splits traffic among equally good channels of the same priority (0..1000); 0
	// drains the channel: it gets no traffic, as if disabled.
	Weight int
	// CostBps is the channel's fee in basis points of the amount.
	CostBps int
}

// DefaultConfig is the configuration of a channel nobody configured: enabled, priority 0,
// weight 100, no cost.
var DefaultConfig = ChannelConfig{Enabled: true, Weight: 100}

// Options tune the router. Zero values take the defaults.
type Options struct {
	// HalfLife is how long an observation takes to lose half its weight (default 10 s).
	HalfLife time.Duration
	// Tolerance is how close (in success probability) a channel's sampled value must be to
	// the best for priority and weight to decide between them (default 0.01).
	Tolerance float64
	// CostWeight converts cost into success probability: utility = success − CostWeight ×
	// CostBps/10,000 (default 1: a 1% fee weighs as much as one point of success rate).
	CostWeight float64
	// Seed seeds the sampler (default: random).
	Seed uint64
}

// Router ranks channels. It is safe for concurrent use.
type Router struct {
	halfLife   float64 // seconds
	tolerance  float64
	costWeight float64

	mu   sync.Mutex
	rng  *rand.Rand
	chs  map[string]*channelState
	keys []string // sorted channel codes, for deterministic iteration
}

type channelState struct {
	cfg        ChannelConfig
	configured bool
	succ, fail float64   // decayed counts
	at         time.Time // time the counts were last decayed to
	// lifetime counters, for the view
	attempts, successes uint64
}

// New returns a router with no channel configured; channels appear when configured or
// observed, with DefaultConfig.
func New(opts Options) *Router {
	if opts.HalfLife <= 0 {
		opts.HalfLife = 10 * time.Second
	}
	if opts.Tolerance <= 0 {
		opts.Tolerance = 0.01
	}
	if opts.CostWeight == 0 {
		opts.CostWeight = 1
	}
	seed := opts.Seed
	if seed == 0 {
		seed = rand.Uint64()
	}
	return &Router{
		halfLife:   opts.HalfLife.Seconds(),
		tolerance:  opts.Tolerance,
		costWeight: opts.CostWeight,
		rng:        rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)),
		chs:        make(map[string]*channelState),
	}
}

// Validate checks a channel configuration.
func (c ChannelConfig) Validate() error {
	if c.Weight < 0 || c.Weight > 1000 {
		return fmt.Errorf("route: weight %d outside 0..1000", c.Weight)
	}
	if c.CostBps < 0 || c.CostBps > 10000 {
		return fmt.Errorf("route: cost %d bps outside 0..10000", c.CostBps)
	}
	return nil
}

// Configure sets a channel's configuration; it takes effect for the next decision.
func (r *Router) Configure(code string, cfg ChannelConfig) error {
	if err := cfg.Validate(); err != nil {
		return err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	st := r.state(code)
	st.cfg = cfg
	st.configured = true
	return nil
}

// Config returns a channel's configuration (DefaultConfig if never configured).
func (r *Router) Config(code string) ChannelConfig {
	r.mu.Lock()
	defer r.mu.Unlock()
	if st, ok := r.chs[code]; ok {
		return st.cfg
	}
	return DefaultConfig
}

func (r *Router) state(code string) *channelState {
	st, ok := r.chs[code]
	if !ok {
		st = &channelState{cfg: DefaultConfig}
		r.chs[code] = st
		i := sort.SearchStrings(r.keys, code)
		r.keys = append(r.keys, "")
		copy(r.keys[i+1:], r.keys[i:])
		r.keys[i] = code
	}
	return st
}

// decay brings st's counts forward to now.
func (r *Router) decay(st *channelState, now time.Time) {
	if st.at.IsZero() {
		st.at = now
		return
	}
	dt := now.Sub(st.at).Seconds()
	if dt <= 0 {
		return
	}
	f := math.Exp2(-dt / r.halfLife)
	st.succ *= f
	st.fail *= f
	st.at = now
}

// Observe records the outcome of an attempt on a channel at now. Only outcomes that say
// something about the channel belong here: approvals (success) and channel-side failures —
// timeouts, unavailability, bank system errors (failure). A card declined for insufficient
// funds says nothing about the channel and should be recorded as a success of the channel or
// not at all.
func (r *Router) Observe(now time.Time, code string, success bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	st := r.state(code)
	r.decay(st, now)
	st.attempts++
	if success {
		st.succ++
		st.successes++
	} else {
		st.fail++
	}
}

// Rank orders the candidate channel codes for a payment of amount at now: the first is the
// choice, the rest the fallbacks in order (used when the first fails in a way that certainly
// did not charge). Disabled and zero-weight channels are left out; the result may be empty.
func (r *Router) Rank(now time.Time, candidates []string) []string {
	type scored struct {
		code string
		u    float64
		st   *channelState
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	var buf [8]scored // candidates are a handful of channels: no allocation
	list := buf[:0]
	for _, code := range candidates {
		st := r.state(code)
		if !st.cfg.Enabled || st.cfg.Weight == 0 {
			continue
		}
		r.decay(st, now)
		// Beta(1+s, 1+f) posterior sample of the success probability.
		theta := r.beta(1+st.succ, 1+st.fail)
		u := theta - r.costWeight*float64(st.cfg.CostBps)/10000
		list = append(list, scored{code, u, st})
	}
	if len(list) == 0 {
		return nil
	}
	slices.SortStableFunc(list, func(a, b scored) int { return cmp.Compare(b.u, a.u) })
	// The near-tie set: within tolerance of the best sample; the highest priority in it wins,
	// then a weighted draw among those.
	best := list[0].u
	topPrio := math.MinInt
	for _, s := range list {
		if s.u < best-r.tolerance {
			break
		}
		topPrio = max(topPrio, s.st.cfg.Priority)
	}
	total := 0
	for _, s := range list {
		if s.u < best-r.tolerance {
			break
		}
		if s.st.cfg.Priority == topPrio {
			total += s.st.cfg.Weight
		}
	}
	pick := r.rng.IntN(total)
	chosen := 0
	for i, s := range list {
		if s.u < best-r.tolerance {
			break
		}
		if s.st.cfg.Priority != topPrio {
			continue
		}
		if pick < s.st.cfg.Weight {
			chosen = i
			break
		}
		pick -= s.st.cfg.Weight
	}
	out := make([]string, 0, len(list))
	out = append(out, list[chosen].code)
	for i, s := range list {
		if i != chosen {
			out = append(out, s.code)
		}
	}
	return out
}

// View is the router's current opinion of a channel.
type View struct {
	Code   string        `json:"code"`
	Config ChannelConfig `json:"-"`
	// SuccessRate is the posterior mean of the channel's success probability, over recent
	// (decayed) observations; 0.5 when nothing is known.
	SuccessRate float64 `json:"success_rate"`
	// Evidence is the decayed number of recent observations behind SuccessRate.
	Evidence  float64 `json:"evidence"`
	Attempts  uint64  `json:"attempts"`
	Successes uint64  `json:"successes"`
}

// Views returns the router's view of every channel it knows, by code.
func (r *Router) Views(now time.Time) []View {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]View, 0, len(r.keys))
	for _, code := range r.keys {
		st := r.chs[code]
		r.decay(st, now)
		out = append(out, View{
			Code:        code,
			Config:      st.cfg,
			SuccessRate: (1 + st.succ) / (2 + st.succ + st.fail),
			Evidence:    st.succ + st.fail,
			Attempts:    st.attempts,
			Successes:   st.successes,
		})
	}
	return out
}

// beta draws from Beta(a, b) as X/(X+Y) with X ~ Gamma(a), Y ~ Gamma(b).
func (r *Router) beta(a, b float64) float64 {
	x := r.gamma(a)
	y := r.gamma(b)
	return x / (x + y)
}

// gamma draws from Gamma(shape, 1) for shape ≥ 1 (Marsaglia and Tsang's method); the
// router's shapes are always ≥ 1 because of the uniform prior.
func (r *Router) gamma(shape float64) float64 {
	d := shape - 1.0/3
	c := 1 / math.Sqrt(9*d)
	for {
		x := r.rng.NormFloat64()
		v := 1 + c*x
		if v <= 0 {
			continue
		}
		v = v * v * v
		u := r.rng.Float64()
		if u < 1-0.0331*x*x*x*x || math.Log(u) < 0.5*x*x+d*(1-v+math.Log(v)) {
			return d * v
		}
	}
}
