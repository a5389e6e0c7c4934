package payment

import (
	"sync"
	"time"

	"github.com/fincore/fincore/bank"
)

// ChannelStats are a channel's live statistics since the process started (P8): calls by
// unified code and the latency distribution of its answers.
type ChannelStats struct {
	Calls int64            `json:"calls"`
	Codes map[string]int64 `json:"codes"`
	// SuccessRate is approvals over calls with a final answer (declines included).
	SuccessRate  float64 `json:"success_rate"`
	LatencyP50Ms float64 `json:"latency_p50_ms"`
	LatencyP99Ms float64 `json:"latency_p99_ms"`
}

// latencyBounds are the upper bounds of the latency buckets, in milliseconds.
var latencyBounds = []float64{1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000, 30000}

type channelCounters struct {
	calls   int64
	codes   map[bank.Code]int64
	buckets []int64 // len(latencyBounds)+1
}

type statsBook struct {
	mu sync.Mutex
	by map[string]*channelCounters
}

func (b *statsBook) observe(channel string, code bank.Code, d time.Duration) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.by == nil {
		b.by = make(map[string]*channelCounters)
	}
	c := b.by[channel]
	if c == nil {
		c = &channelCounters{codes: make(map[bank.Code]int64), buckets: make([]int64, len(latencyBounds)+1)}
		b.by[channel] = c
	}
	c.calls++
	c.codes[code]++
	ms := float64(d) / float64(time.Millisecond)
	i := 0
	for i < len(latencyBounds) && ms > latencyBounds[i] {
		i++
	}
	c.buckets[i]++
}

// quantile estimates the q-quantile from the buckets as the upper bound of the bucket it
// falls in (the overflow bucket reports the last bound).
func quantile(buckets []int64, total int64, q float64) float64 {
	if total == 0 {
		return 0
	}
	target := int64(q*float64(total) + 0.5)
	var seen int64
	for i, n := range buckets {
		seen += n
		if seen >= target && n > 0 {
			if i < len(latencyBounds) {
				return latencyBounds[i]
			}
			return latencyBounds[len(latencyBounds)-1]
		}
	}
	return latencyBounds[len(latencyBounds)-1]
}

func (b *statsBook) snapshot() map[string]ChannelStats {
	b.mu.Lock()
	defer b.mu.Unlock()
	out := make(map[string]ChannelStats, len(b.by))
	for ch, c := range b.by {
		st := ChannelStats{Calls: c.calls, Codes: make(map[string]int64, len(c.codes))}
		var final, ok int64
		for code, n := range c.codes {
			st.Codes[string(code)] = n
			if info := code.Info(); !info.Unknown {
				final += n
			}
			if code == bank.CodeApproved {
				ok += n
			}
		}
		if final > 0 {
			st.SuccessRate = float64(ok) / float64(final)
		}
		st.LatencyP50Ms = quantile(c.buckets, c.calls, 0.5)
		st.LatencyP99Ms = quantile(c.buckets, c.calls, 0.99)
		out[ch] = st
	}
	return out
}

// Stats returns every channel's live statistics.
func (s *Service) Stats() map[string]ChannelStats { return s.stats.snapshot() }
