package route

import (
	"fmt"
	"math/rand/v2"
	"time"
)

// SimChannel is a simulated channel for Simulate: its success probability as a function of
// the time since the start of the run.
type SimChannel struct {
	Code        string
	Config      ChannelConfig
	SuccessRate func(elapsed time.Duration) float64
}

// Scenario is a routing simulation in simulated time: Rate payments a second for Duration,
// each routed by a Router with Options and attempted once on the chosen channel.
type Scenario struct {
	Channels []SimChannel
	Rate     int // payments per second
	Duration time.Duration
	Options  Options
	// ChangeAt is when the scenario's change happens (for the shift measurement); zero means
	// no change.
	ChangeAt time.Duration
	// Watch is the channel whose share of traffic after ChangeAt is measured.
	Watch string
	// ShiftShare is the share below which Watch counts as shifted away (default 0.1).
	ShiftShare float64
	Seed       uint64
}

// SimResult is what a simulation measured.
type SimResult struct {
	Payments  int     `json:"payments"`
	Successes int     `json:"successes"`
	Rate      float64 `json:"success_rate"` // realised
	Expected  float64 `json:"expected_rate"`
	// Oracle is the expected success rate of always choosing the channel with the highest
	// true success rate at each moment.
	Oracle float64 `json:"oracle_rate"`
	// GapPP is Oracle − Rate in percentage points.
	GapPP float64 `json:"gap_pp"`
	// ShiftSeconds is the time from ChangeAt to the end of the first one-second window in
	// which Watch got less than ShiftShare of the traffic (-1 if it never did).
	ShiftSeconds float64        `json:"shift_s"`
	Shares       map[string]int `json:"choices"`
}

// Simulate runs the scenario.
func Simulate(s Scenario) (SimResult, error) {
	if s.Rate <= 0 || s.Duration <= 0 || len(s.Channels) == 0 {
		return SimResult{}, fmt.Errorf("route: scenario needs a rate, a duration and channels")
	}
	if s.ShiftShare <= 0 {
		s.ShiftShare = 0.1
	}
	if s.Options.Seed == 0 {
		s.Options.Seed = s.Seed + 1
	}
	r := New(s.Options)
	codes := make([]string, len(s.Channels))
	byCode := make(map[string]SimChannel, len(s.Channels))
	for i, c := range s.Channels {
		if err := r.Configure(c.Code, c.Config); err != nil {
			return SimResult{}, err
		}
		codes[i] = c.Code
		byCode[c.Code] = c
	}
	rng := rand.New(rand.NewPCG(s.Seed, s.Seed^0x5bd1e995))
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	step := time.Second / time.Duration(s.Rate)
	n := int(s.Duration / step)
	res := SimResult{Payments: n, ShiftSeconds: -1, Shares: make(map[string]int)}
	var expected, oracle float64
	// Per-second window after the change.
	var winTotal, winWatch int
	winEnd := s.ChangeAt + time.Second
	for i := 0; i < n; i++ {
		elapsed := time.Duration(i) * step
		now := start.Add(elapsed)
		ranked := r.Rank(now, codes)
		if len(ranked) == 0 {
			return SimResult{}, fmt.Errorf("route: no channel enabled")
		}
		ch := byCode[ranked[0]]
		p := ch.SuccessRate(elapsed)
		ok := rng.Float64() < p
		r.Observe(now, ch.Code, ok)
		res.Shares[ch.Code]++
		if ok {
			res.Successes++
		}
		expected += p
		best := 0.0
		for _, c := range s.Channels {
			if c.Config.Enabled {
				best = max(best, c.SuccessRate(elapsed))
			}
		}
		oracle += best
		if s.ChangeAt > 0 && elapsed >= s.ChangeAt && res.ShiftSeconds < 0 {
			if elapsed >= winEnd {
				if winTotal > 0 && float64(winWatch)/float64(winTotal) < s.ShiftShare {
					res.ShiftSeconds = (winEnd - s.ChangeAt).Seconds()
				}
				winTotal, winWatch = 0, 0
				winEnd += time.Second
			}
			winTotal++
			if ch.Code == s.Watch {
				winWatch++
			}
		}
	}
	res.Rate = float64(res.Successes) / float64(n)
	res.Expected = expected / float64(n)
	res.Oracle = oracle / float64(n)
	res.GapPP = (res.Oracle - res.Rate) * 100
	return res, nil
}

// DropScenario is the benchmark scenario of the payments issue: three channels with success
// rates 95%, 90% and 80%; after dropAt the best one drops to 40%.
func DropScenario(rate int, duration, dropAt time.Duration, seed uint64) Scenario {
	constant := func(p float64) func(time.Duration) float64 {
		return func(time.Duration) float64 { return p }
	}
	return Scenario{
		Channels: []SimChannel{
			{Code: "bank-a", Config: DefaultConfig, SuccessRate: func(e time.Duration) float64 {
				if e >= dropAt {
					return 0.40
				}
				return 0.95
			}},
			{Code: "bank-b", Config: DefaultConfig, SuccessRate: constant(0.90)},
			{Code: "bank-c", Config: DefaultConfig, SuccessRate: constant(0.80)},
		},
		Rate:     rate,
		Duration: duration,
		ChangeAt: dropAt,
		Watch:    "bank-a",
		Seed:     seed,
	}
}
