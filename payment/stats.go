package payment

import (
	"cmp"
	"slices"
	"sync"
	"time"

	"github.com/fincore/fincore/bank"
)

// Bank labels that are not bank codes (bank codes are upper case, so these never collide).
const (
	// BankUnknown labels calls for attempts recorded before attempts carried their card's
	// bank code.
	BankUnknown = "unknown"
	// BankOther labels calls for bank codes past Config.MaxBankLabels.
	BankOther = "other"
)

// CallStats are live statistics of bank calls since the process started (P8): calls by
// unified code, the success rate over all of them and over a recent window, and the latency
// distribution of the answers.
type CallStats struct {
	Calls int64            `json:"calls"`
	Codes map[string]int64 `json:"codes"`
	// SuccessRate is calls the bank answered succeeded over calls with a final answer
	// (succeeded or failed: declines included, timeouts and pending answers not).
	SuccessRate  float64          `json:"success_rate"`
	Recent       RecentStats      `json:"recent"`
	LatencyP50Ms float64          `json:"latency_p50_ms"`
	LatencyP99Ms float64          `json:"latency_p99_ms"`
	Latency      LatencyHistogram `json:"latency_histogram"`
}

// RecentStats are the calls of the last WindowS seconds (to a granularity of one slot of
// statsSlot).
type RecentStats struct {
	WindowS     int     `json:"window_s"`
	Calls       int64   `json:"calls"`
	Final       int64   `json:"final"`
	Succeeded   int64   `json:"succeeded"`
	SuccessRate float64 `json:"success_rate"` // Succeeded / Final; 0 without final answers
}

// LatencyHistogram counts calls by latency: Counts[i] are the calls that took more than
// BoundsMs[i-1] and at most BoundsMs[i] milliseconds; the last count is those above the last
// bound.
type LatencyHistogram struct {
	BoundsMs []float64 `json:"bounds_ms"`
	Counts   []int64   `json:"counts"`
}

// ChannelStats are one channel's statistics over every bank, and broken down by the issuing
// bank of the cards (ordered by bank label).
type ChannelStats struct {
	CallStats
	Banks []BankStats `json:"banks"`
}

// BankStats are the statistics of the calls for cards of one issuing bank: on one channel,
// or (in Stats.Banks) on every channel.
type BankStats struct {
	Bank string `json:"bank"`
	CallStats
	// Channels lists the channels that made the calls (only in Stats.Banks).
	Channels []string `json:"channels,omitempty"`
}

// Stats are the live statistics of every channel and every issuing bank.
type Stats struct {
	Channels map[string]ChannelStats `json:"channels"`
	Banks    []BankStats             `json:"banks"`
}

// latencyBounds are the upper bounds of the latency buckets, in milliseconds.
var latencyBounds = [...]float64{1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000, 30000}

// The recent window: statsSlots slots of statsSlot each.
const (
	statsSlot  = 10 * time.Second
	statsSlots = 30
)

// slot counts the calls of one statsSlot; at is its index since the epoch.
type slot struct {
	at               int64
	calls, final, ok int64
}

type counters struct {
	calls     int64
	final, ok int64
	codes     map[bank.Code]int64
	buckets   [len(latencyBounds) + 1]int64
	window    [statsSlots]slot
}

type statsKey struct{ channel, bank string }

type statsBook struct {
	mu sync.Mutex
	by map[statsKey]*counters
	// labels are the bank codes that get a label of their own: the configured ones, then
	// the first extra seen.
	labels map[string]bool
	extra  int // labels added past the configured ones
	max    int // bound on extra
}

func newStatsBook(configured []string, extra int) *statsBook {
	b := &statsBook{by: make(map[statsKey]*counters), labels: make(map[string]bool), max: extra}
	for _, c := range configured {
		b.labels[c] = true
	}
	return b
}

// label returns the label of bankCode. Called with b.mu held.
func (b *statsBook) label(bankCode string) string {
	switch {
	case bankCode == "":
		return BankUnknown
	case b.labels[bankCode]:
		return bankCode
	case b.extra < b.max:
		b.labels[bankCode] = true
		b.extra++
		return bankCode
	}
	return BankOther
}

// observe counts one call and returns the bank label it was counted under.
func (b *statsBook) observe(channel, bankCode string, res bank.Result, d time.Duration, now time.Time) string {
	b.mu.Lock()
	defer b.mu.Unlock()
	lb := b.label(bankCode)
	k := statsKey{channel, lb}
	c := b.by[k]
	if c == nil {
		c = &counters{codes: make(map[bank.Code]int64)}
		b.by[k] = c
	}
	c.codes[res.Code]++
	c.count(res.Status.Final(), res.Status == bank.Succeeded, d, now)
	return lb
}

// count counts one call (or payment) that took d: final if it has a final answer, ok if it
// succeeded. Codes are the caller's to count.
func (c *counters) count(isFinal, isOK bool, d time.Duration, now time.Time) {
	final, ok := int64(0), int64(0)
	if isFinal {
		final = 1
	}
	if isOK {
		ok = 1
	}
	c.calls++
	c.final += final
	c.ok += ok
	ms := float64(d) / float64(time.Millisecond)
	i := 0
	for i < len(latencyBounds) && ms > latencyBounds[i] {
		i++
	}
	c.buckets[i]++
	at := now.UnixNano() / int64(statsSlot)
	s := &c.window[at%statsSlots]
	if s.at != at {
		*s = slot{at: at}
	}
	s.calls++
	s.final += final
	s.ok += ok
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

// add adds c's counts to sum, with the window slots of the last statsSlots slots up to now.
func (sum *counters) add(c *counters, now int64) {
	sum.calls += c.calls
	sum.final += c.final
	sum.ok += c.ok
	for code, n := range c.codes {
		sum.codes[code] += n
	}
	for i, n := range c.buckets {
		sum.buckets[i] += n
	}
	for _, s := range c.window {
		if s.at > now-statsSlots && s.at <= now {
			sum.window[0].calls += s.calls
			sum.window[0].final += s.final
			sum.window[0].ok += s.ok
		}
	}
}

func rate(ok, final int64) float64 {
	if final == 0 {
		return 0
	}
	return float64(ok) / float64(final)
}

// stats reads counters summed by add (the recent window in window[0]).
func (sum *counters) stats() CallStats {
	st := CallStats{Calls: sum.calls, Codes: make(map[string]int64, len(sum.codes)), SuccessRate: rate(sum.ok, sum.final),
		LatencyP50Ms: quantile(sum.buckets[:], sum.calls, 0.5), LatencyP99Ms: quantile(sum.buckets[:], sum.calls, 0.99),
		Latency: LatencyHistogram{BoundsMs: slices.Clone(latencyBounds[:]), Counts: slices.Clone(sum.buckets[:])}}
	for code, n := range sum.codes {
		st.Codes[string(code)] = n
	}
	w := sum.window[0]
	st.Recent = RecentStats{WindowS: int(statsSlots * statsSlot / time.Second), Calls: w.calls, Final: w.final, Succeeded: w.ok,
		SuccessRate: rate(w.ok, w.final)}
	return st
}

func (b *statsBook) snapshot(now time.Time) Stats {
	at := now.UnixNano() / int64(statsSlot)
	type agg struct {
		sum      counters
		channels []string
	}
	newAgg := func() *agg { return &agg{sum: counters{codes: make(map[bank.Code]int64)}} }
	chans, banks := map[string]*agg{}, map[string]*agg{}
	perChannel := map[string][]BankStats{}
	get := func(m map[string]*agg, key string) *agg {
		a := m[key]
		if a == nil {
			a = newAgg()
			m[key] = a
		}
		return a
	}
	b.mu.Lock()
	for k, c := range b.by {
		one := newAgg()
		one.sum.add(c, at)
		perChannel[k.channel] = append(perChannel[k.channel], BankStats{Bank: k.bank, CallStats: one.sum.stats()})
		get(chans, k.channel).sum.add(c, at)
		a := get(banks, k.bank)
		a.sum.add(c, at)
		a.channels = append(a.channels, k.channel)
	}
	b.mu.Unlock()
	out := Stats{Channels: make(map[string]ChannelStats, len(chans)), Banks: make([]BankStats, 0, len(banks))}
	byBank := func(x, y BankStats) int { return cmp.Compare(x.Bank, y.Bank) }
	for ch, a := range chans {
		list := perChannel[ch]
		slices.SortFunc(list, byBank)
		out.Channels[ch] = ChannelStats{CallStats: a.sum.stats(), Banks: list}
	}
	for bk, a := range banks {
		slices.Sort(a.channels)
		out.Banks = append(out.Banks, BankStats{Bank: bk, CallStats: a.sum.stats(), Channels: a.channels})
	}
	slices.SortFunc(out.Banks, byBank)
	return out
}

// Stats returns the live statistics of every channel, broken down by issuing bank, and of
// every issuing bank across channels.
func (s *Service) Stats() Stats { return s.stats.snapshot(s.cfg.Now()) }
