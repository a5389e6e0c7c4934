package payment

import (
	"context"
	"slices"
	"sync"
	"time"

	"github.com/fincore/fincore/bank"
)

// Default bounds of the per-merchant statistics (Config.MerchantStatsMax and
// Config.MerchantStatsIdle).
const (
	DefaultMerchantStatsMax  = 10_000
	DefaultMerchantStatsIdle = 24 * time.Hour
)

// MerchantStats are the live statistics of one merchant's payments (P8), counted by this
// process as each payment reaches its final state: since Since (when the process began
// counting the merchant: its first final payment since the process started, or since the
// merchant's statistics were last dropped for being idle or past the cap), and over the
// recent window.
type MerchantStats struct {
	MerchantID string `json:"merchant_id"`
	// Since is when counting began; null while nothing is counted.
	Since *time.Time `json:"since"`
	// Payments that reached a final state: Succeeded + Failed + Closed.
	Payments  int64 `json:"payments"`
	Succeeded int64 `json:"succeeded"`
	Failed    int64 `json:"failed"`
	Closed    int64 `json:"closed"`
	// SuccessRate is Succeeded / (Succeeded + Failed); closed payments were cancelled before
	// any bank saw them and are left out. 0 without such payments.
	SuccessRate float64 `json:"success_rate"`
	// FailureCodes counts failed payments by failure code: the unified bank code of the last
	// attempt, risk_rejected or no_channel_available.
	FailureCodes map[string]int64 `json:"failure_codes"`
	Recent       MerchantRecent   `json:"recent"`
	// Latency of completion, from acceptance to the final state (bank calls, retries on
	// other channels and queries of unknown outcomes included).
	LatencyP50Ms float64          `json:"latency_p50_ms"`
	LatencyP99Ms float64          `json:"latency_p99_ms"`
	Latency      LatencyHistogram `json:"latency_histogram"`
}

// MerchantRecent are the payments that reached a final state in the last WindowS seconds (to
// a granularity of one slot of statsSlot).
type MerchantRecent struct {
	WindowS     int     `json:"window_s"`
	Payments    int64   `json:"payments"`
	Succeeded   int64   `json:"succeeded"`
	Failed      int64   `json:"failed"`
	SuccessRate float64 `json:"success_rate"` // Succeeded / (Succeeded + Failed)
}

// merchantCounters are one merchant's counters: calls are final payments, final those that
// succeeded or failed, ok those that succeeded, codes the failure codes, buckets the
// completion latency.
type merchantCounters struct {
	counters
	since, last int64 // unix nanoseconds of the first and the latest payment counted
}

// merchantBook holds the statistics of at most max merchants; a merchant without a final
// payment for idle is dropped (by a sweep at most every merchantSweep, or idle if shorter).
// When a new merchant would exceed max, the idle ones are dropped and, if that is not
// enough, the eighth of the merchants idle the longest.
type merchantBook struct {
	mu    sync.Mutex
	by    map[string]*merchantCounters
	max   int
	idle  int64
	swept int64 // when idle merchants were last dropped
}

// merchantSweep is how often idle merchants are looked for.
const merchantSweep = int64(time.Hour)

func newMerchantBook(max int, idle time.Duration) *merchantBook {
	return &merchantBook{by: make(map[string]*merchantCounters), max: max, idle: int64(idle)}
}

// observe counts p, which has just reached its final state.
func (b *merchantBook) observe(p Payment, now time.Time) {
	var code bank.Code
	switch p.Status {
	case StatusSucceeded, StatusClosed:
	case StatusFailed:
		code = bank.Code(p.FailureCode)
		if code == "" {
			code = BankUnknown
		}
	default:
		return
	}
	d := max(p.Updated.Sub(p.Created), 0)
	t := now.UnixNano()
	b.mu.Lock()
	defer b.mu.Unlock()
	if t-b.swept >= min(merchantSweep, b.idle) {
		b.dropIdle(t)
	}
	c := b.by[p.MerchantID]
	if c == nil {
		if len(b.by) >= b.max {
			b.shrink(t)
		}
		c = &merchantCounters{counters: counters{codes: make(map[bank.Code]int64)}, since: t}
		b.by[p.MerchantID] = c
	}
	c.last = t
	if code != "" {
		c.codes[code]++
	}
	c.count(p.Status != StatusClosed, p.Status == StatusSucceeded, d, now)
}

// dropIdle drops the merchants idle for longer than b.idle. Called with b.mu held.
func (b *merchantBook) dropIdle(t int64) {
	b.swept = t
	for id, c := range b.by {
		if t-c.last > b.idle {
			delete(b.by, id)
		}
	}
}

// shrink makes room for a merchant: it drops the idle ones, then if need be the eighth
// (at least one) idle the longest. Called with b.mu held.
func (b *merchantBook) shrink(t int64) {
	b.dropIdle(t)
	if len(b.by) < b.max {
		return
	}
	last := make([]int64, 0, len(b.by))
	for _, c := range b.by {
		last = append(last, c.last)
	}
	slices.Sort(last)
	cut := last[max(len(last)/8, 1)-1]
	for id, c := range b.by {
		if c.last <= cut {
			delete(b.by, id)
		}
	}
}

// snapshot returns the statistics of merchant id (all zero if none are held).
func (b *merchantBook) snapshot(id string, now time.Time) MerchantStats {
	sum := counters{codes: make(map[bank.Code]int64)}
	var since *time.Time
	b.mu.Lock()
	if c := b.by[id]; c != nil {
		sum.add(&c.counters, now.UnixNano()/int64(statsSlot))
		at := time.Unix(0, c.since).UTC()
		since = &at
	}
	b.mu.Unlock()
	cs := sum.stats()
	w := sum.window[0]
	return MerchantStats{MerchantID: id, Since: since, Payments: sum.calls, Succeeded: sum.ok, Failed: sum.final - sum.ok,
		Closed: sum.calls - sum.final, SuccessRate: cs.SuccessRate, FailureCodes: cs.Codes,
		Recent:       MerchantRecent{WindowS: cs.Recent.WindowS, Payments: w.calls, Succeeded: w.ok, Failed: w.final - w.ok, SuccessRate: cs.Recent.SuccessRate},
		LatencyP50Ms: cs.LatencyP50Ms, LatencyP99Ms: cs.LatencyP99Ms, Latency: cs.Latency}
}

// len is the number of merchants held.
func (b *merchantBook) len() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.by)
}

// MerchantStats returns the live statistics of a merchant's payments, counted by this
// process (merchant_not_found for an unknown merchant).
func (s *Service) MerchantStats(ctx context.Context, id string) (MerchantStats, error) {
	if _, err := s.GetMerchant(ctx, id); err != nil {
		return MerchantStats{}, err
	}
	return s.merchantStats.snapshot(id, s.cfg.Now()), nil
}

// finalized is told of every payment whose final state has just committed, once.
func (s *Service) finalized(p Payment) {
	s.merchantStats.observe(p, s.cfg.Now())
	if s.cfg.Finalized != nil {
		s.cfg.Finalized(p.public())
	}
}
