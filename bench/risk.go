package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"net/http"
	"runtime/metrics"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/fincore/fincore/risk"
	"github.com/fincore/fincore/risk/model"
)

// RiskConfig describes a risk decision load run with the reference workload: 200 rules, 50
// window features over 5 key types, 3 tree models of 300 trees of depth 6, 2 scorecards, 3
// lists, 100,000 users and 20,000 devices.
type RiskConfig struct {
	Clients  int           // concurrent clients
	Duration time.Duration // measured run time
	Warmup   time.Duration // unmeasured run before it, to fill the windows
	Users    int           // default 100,000
	Devices  int           // default 20,000
	Rules    int           // default 200
	Trees    int           // per model, default 300
	Depth    int           // default 6
	// Rate, when positive, offers the measured run's decisions at this many per second,
	// evenly spaced and shared by the clients; each decision's latency counts from its slot,
	// so a backlog shows in it. Zero: each client decides as fast as it can.
	Rate int
}

func (c *RiskConfig) defaults() {
	if c.Clients <= 0 {
		c.Clients = 4
	}
	if c.Duration <= 0 {
		c.Duration = 10 * time.Second
	}
	if c.Users <= 0 {
		c.Users = 100_000
	}
	if c.Devices <= 0 {
		c.Devices = 20_000
	}
	if c.Rules <= 0 {
		c.Rules = 200
	}
	if c.Trees <= 0 {
		c.Trees = 300
	}
	if c.Depth <= 0 {
		c.Depth = 6
	}
}

// RiskResult is the outcome of a run; it is printed as the final JSON line.
type RiskResult struct {
	Transport     string  `json:"transport"`
	Backend       string  `json:"backend"`
	Clients       int     `json:"clients"`
	Rate          int     `json:"rate,omitempty"`
	Rules         int     `json:"rules"`
	Features      int     `json:"features"`
	Models        string  `json:"models"`
	DurationS     float64 `json:"duration_s"`
	Decisions     int64   `json:"decisions"`
	Failed        int64   `json:"failed"`
	DecisionsPerS float64 `json:"decisions_per_s"`
	P50Ms         float64 `json:"p50_ms"`
	P99Ms         float64 `json:"p99_ms"`
	MaxMs         float64 `json:"max_ms"`
	Rejects       int64   `json:"rejects"`
	Reviews       int64   `json:"reviews"`
	// CPUSeconds is the process's CPU time over the run; CPUMicrosPerDecision divides it by
	// the decisions made (estimated for the warm-up from the measured rate).
	CPUSeconds           float64 `json:"cpu_s,omitempty"`
	CPUMicrosPerDecision float64 `json:"cpu_us_per_decision,omitempty"`
	// SchedP99Ms is the 99th percentile of how long goroutines of the process waited, ready
	// to run, for a CPU during the measured run; GCPauseMs is the total of the
	// stop-the-world pauses of the garbage collector in it. A p99 decision latency far above
	// SchedP99Ms times the scheduling steps of a decision points to work queued behind other
	// work rather than to CPU contention alone.
	SchedP99Ms     float64 `json:"sched_p99_ms"`
	GCPauseMs      float64 `json:"gc_pause_ms"`
	StateKeys      int     `json:"state_keys,omitempty"`
	BytesPerKey    float64 `json:"bytes_per_key,omitempty"`
	BytesPerWindow float64 `json:"bytes_per_window,omitempty"`
}

// riskKeys are the key fields of the workload, with how many distinct values each has.
var riskKeys = []string{"user_id", "device_id", "card_id", "ip", "merchant_id"}

// RiskRuleSet returns the reference rule set as YAML.
func RiskRuleSet(cfg RiskConfig) string {
	cfg.defaults()
	var b strings.Builder
	b.WriteString("features:\n")
	var feats []string
	for _, k := range riskKeys {
		p := strings.TrimSuffix(k, "_id")
		for _, f := range []struct{ name, agg, field, window string }{
			{"n_10m", "count", "", "10m"}, {"n_1h", "count", "", "1h"}, {"n_24h", "count", "", "24h"},
			{"amt_1h", "sum", "amount", "1h"}, {"amt_24h", "sum", "amount", "24h"}, {"max_24h", "max", "amount", "24h"},
			{"avg_24h", "avg", "amount", "24h"}, {"min_1h", "min", "amount", "1h"}, {"distinct_24h", "distinct", distinctField(k), "24h"},
			{"n_7d", "count", "", "7d"},
		} {
			name := p + "_" + f.name
			feats = append(feats, name)
			fmt.Fprintf(&b, "  - {name: %s, on: [payment], key: %s, agg: %s, window: %s", name, k, f.agg, f.window)
			if f.field != "" {
				fmt.Fprintf(&b, ", field: %s", f.field)
			}
			b.WriteString("}\n")
		}
	}
	b.WriteString("lists: [device_black, user_white, ip_grey]\nmodels:\n")
	for m := range 3 {
		inputs := feats[m*10 : m*10+20]
		src := model.SyntheticLightGBM(int64(m+1), cfg.Trees, cfg.Depth, len(inputs))
		fmt.Fprintf(&b, "  - id: gbm%d\n    type: lightgbm\n    inputs: [%s]\n    source: |\n", m, strings.Join(inputs, ", "))
		for _, line := range strings.Split(strings.TrimRight(src, "\n"), "\n") {
			b.WriteString("      " + line + "\n")
		}
	}
	for s := range 2 {
		fmt.Fprintf(&b, "  - id: card%d\n    type: scorecard\n    scorecard:\n      base: 600\n      features:\n", s)
		for _, in := range feats[s*25 : s*25+3] {
			fmt.Fprintf(&b, "        - {input: %s, missing: 0, bins: [{max: 2, points: 20}, {min: 2, max: 10, points: 0}, {min: 10, points: -40}]}\n", in)
		}
	}
	b.WriteString("rules:\n")
	b.WriteString("  - {id: black, when: 'in_list(\"device_black\", event.device_id)', action: reject, reason: device_black}\n")
	b.WriteString("  - {id: white, when: 'in_list(\"user_white\", event.user_id)', action: accept, reason: user_white}\n")
	b.WriteString("  - {id: grey, when: 'in_list(\"ip_grey\", event.ip)', score: 30, reason: ip_grey}\n")
	b.WriteString("  - {id: gbm, when: models.gbm0 > 0.9 && models.gbm1 > 0.9, score: 40, reason: model_high}\n")
	b.WriteString("  - {id: card, when: models.card0 < 560 || models.card1 < 560, score: 20, reason: scorecard_low}\n")
	for i := 5; i < cfg.Rules; i++ {
		f := feats[i%len(feats)]
		g := feats[(i*7+3)%len(feats)]
		switch i % 4 {
		case 0:
			fmt.Fprintf(&b, "  - {id: r%d, when: features.%s > %d, score: %d, reason: r%d}\n", i, f, 5+i%20, 1+i%10, i)
		case 1:
			fmt.Fprintf(&b, "  - {id: r%d, when: features.%s > %d && event.amount > %d, score: %d, reason: r%d}\n", i, f, 3+i%7, 1000*(1+i%9), 1+i%10, i)
		case 2:
			fmt.Fprintf(&b, "  - {id: r%d, when: features.%s > features.%s * 3 && features.%s > 0, score: %d, reason: r%d}\n", i, f, g, g, 1+i%10, i)
		default:
			fmt.Fprintf(&b, "  - {id: r%d, when: event.channel == \"web\" && features.%s >= %d, score: %d, reason: r%d}\n", i, f, 2+i%5, 1+i%10, i)
		}
	}
	b.WriteString("decision: {review_at: 300, reject_at: 600}\n")
	return b.String()
}

func distinctField(key string) string {
	if key == "user_id" {
		return "device_id"
	}
	return "user_id"
}

// RiskEvents generates the workload's payment events, n at a time, spaced as if they
// arrived at rate per second from start.
type RiskEvents struct {
	cfg   RiskConfig
	start time.Time
	step  time.Duration
	seq   atomic.Int64
	pfx   string
}

// NewRiskEvents returns an event generator.
func NewRiskEvents(cfg RiskConfig, start time.Time, rate int) *RiskEvents {
	cfg.defaults()
	return &RiskEvents{cfg: cfg, start: start, step: time.Second / time.Duration(max(rate, 1)), pfx: fmt.Sprintf("ev%d_", start.UnixNano())}
}

// Next returns the JSON of the next event.
func (g *RiskEvents) Next(rng *rand.Rand) []byte {
	i := g.seq.Add(1)
	ts := g.start.Add(time.Duration(i) * g.step)
	u := rng.IntN(g.cfg.Users)
	dev := u % g.cfg.Devices
	if rng.IntN(10) == 0 {
		dev = rng.IntN(g.cfg.Devices)
	}
	ch := "app"
	if rng.IntN(3) == 0 {
		ch = "web"
	}
	return fmt.Appendf(nil, `{"type":"payment","id":"%s%d","timestamp":"%s","user_id":"u%d","device_id":"d%d","card_id":"c%d","ip":"10.%d.%d.%d","merchant_id":"m%d","amount":%d,"channel":"%s"}`,
		g.pfx, i, ts.UTC().Format(time.RFC3339Nano), u, dev, u*2+rng.IntN(2), u%200, dev%250, rng.IntN(4), rng.IntN(2000), 100+rng.IntN(500_000), ch)
}

// RiskDecider asks for one decision.
type RiskDecider func(ctx context.Context, event []byte) (string, error)

// EngineDecider decides in process.
func EngineDecider(eng *risk.Engine, ruleset string) RiskDecider {
	return func(ctx context.Context, raw []byte) (string, error) {
		ev, err := risk.ParseEvent(raw)
		if err != nil {
			return "", err
		}
		d, err := eng.DecideBrief(ctx, ruleset, ev)
		if err != nil {
			return "", err
		}
		return d.Decision, nil
	}
}

// HTTPDecider decides through POST /v1/risk/decisions, with p posting to that route.
func HTTPDecider(p *HTTPPoster, ruleset string) RiskDecider {
	prefix, suffix := []byte(`{"ruleset":"`+ruleset+`","event":`), []byte("}")
	return func(ctx context.Context, raw []byte) (string, error) {
		var decision string
		err := p.Post(ctx, func(status int, b []byte) error {
			if status != http.StatusOK {
				return fmt.Errorf("status %d: %s", status, b[:min(len(b), 512)])
			}
			var err error
			decision, err = decisionOf(b)
			return err
		}, prefix, raw, suffix)
		return decision, err
	}
}

// decisionOf returns the decision of an answer to POST /v1/risk/decisions. The answer
// starts with it; reading only that keeps the load generator, which shares the process (and
// its CPU time) with the server, cheap.
func decisionOf(b []byte) (string, error) {
	if rest, ok := bytes.CutPrefix(b, []byte(`{"decision":"`)); ok {
		if end := bytes.IndexByte(rest, '"'); end > 0 {
			for _, d := range []string{risk.Accept, risk.Review, risk.Reject} {
				if string(rest[:end]) == d {
					return d, nil
				}
			}
		}
	}
	var d struct {
		Decision string `json:"decision"`
	}
	err := json.Unmarshal(b, &d)
	return d.Decision, err
}

// RunRisk drives decide from cfg.Clients goroutines: a warm-up, then the measured run.
func RunRisk(ctx context.Context, cfg RiskConfig, gen *RiskEvents, decide RiskDecider) (RiskResult, error) {
	cfg.defaults()
	run := func(d time.Duration, measure bool) (RiskResult, []time.Duration) {
		var res RiskResult
		var mu sync.Mutex
		var lat []time.Duration
		var ok, failed, rejects, reviews atomic.Int64
		deadline := time.Now().Add(d)
		var wg sync.WaitGroup
		var firstErr atomic.Value
		// With a rate, the measured run's decisions have slots start + i/rate, handed out in
		// order; a client waits for its slot and counts the latency from it.
		var slots atomic.Int64
		start := time.Now()
		paced := measure && cfg.Rate > 0
		for c := range cfg.Clients {
			wg.Add(1)
			go func() {
				defer wg.Done()
				rng := rand.New(rand.NewPCG(uint64(c), uint64(time.Now().UnixNano())))
				local := make([]time.Duration, 0, 1<<16)
				for time.Now().Before(deadline) && ctx.Err() == nil {
					raw := gen.Next(rng)
					t0 := time.Now()
					if paced {
						slot := start.Add(time.Duration(slots.Add(1)-1) * time.Second / time.Duration(cfg.Rate))
						if !slot.Before(deadline) {
							break
						}
						if w := time.Until(slot); w > 0 {
							time.Sleep(w)
						}
						t0 = slot
					}
					out, err := decide(ctx, raw)
					el := time.Since(t0)
					if err != nil {
						failed.Add(1)
						firstErr.CompareAndSwap(nil, err.Error())
						continue
					}
					ok.Add(1)
					switch out {
					case risk.Reject:
						rejects.Add(1)
					case risk.Review:
						reviews.Add(1)
					}
					if measure {
						local = append(local, el)
					}
				}
				mu.Lock()
				lat = append(lat, local...)
				mu.Unlock()
			}()
		}
		wg.Wait()
		if e, _ := firstErr.Load().(string); e != "" && ok.Load() == 0 {
			res.Failed = failed.Load()
			return res, nil
		}
		res.Decisions, res.Failed, res.Rejects, res.Reviews = ok.Load(), failed.Load(), rejects.Load(), reviews.Load()
		res.DurationS = d.Seconds()
		return res, lat
	}
	if cfg.Warmup > 0 {
		run(cfg.Warmup, false)
	}
	rt0 := readRuntimeStats()
	res, lat := run(cfg.Duration, true)
	res.SchedP99Ms, res.GCPauseMs = readRuntimeStats().since(rt0)
	if res.Decisions == 0 {
		return res, fmt.Errorf("no decision succeeded (%d failed)", res.Failed)
	}
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
	res.Clients, res.Rules, res.Rate = cfg.Clients, cfg.Rules, cfg.Rate
	res.Features = len(riskKeys) * 10
	res.Models = fmt.Sprintf("3 lightgbm x %d trees depth %d, 2 scorecards", cfg.Trees, cfg.Depth)
	res.DecisionsPerS = float64(int64(float64(res.Decisions)/res.DurationS*10)) / 10
	res.P50Ms, res.P99Ms, res.MaxMs = ms(lat[len(lat)/2]), ms(lat[len(lat)*99/100]), ms(lat[len(lat)-1])
	return res, nil
}

// runtimeStats are the scheduler latency and GC pause histograms of the Go runtime.
type runtimeStats struct {
	sched, pauses *metrics.Float64Histogram
}

func readRuntimeStats() runtimeStats {
	ms := []metrics.Sample{{Name: "/sched/latencies:seconds"}, {Name: "/sched/pauses/total/gc:seconds"}}
	metrics.Read(ms)
	var rs runtimeStats
	if ms[0].Value.Kind() == metrics.KindFloat64Histogram {
		rs.sched = ms[0].Value.Float64Histogram()
	}
	if ms[1].Value.Kind() == metrics.KindFloat64Histogram {
		rs.pauses = ms[1].Value.Float64Histogram()
	}
	return rs
}

// since returns, for what happened after before, the 99th percentile of the scheduler
// latency (the upper bound of its bucket) and the total of the GC pauses (from bucket
// midpoints), in milliseconds.
func (rs runtimeStats) since(before runtimeStats) (schedP99, pauses float64) {
	if rs.sched == nil || before.sched == nil || rs.pauses == nil || before.pauses == nil {
		return 0, 0
	}
	counts := make([]uint64, len(rs.sched.Counts))
	var total uint64
	for i, c := range rs.sched.Counts {
		counts[i] = c - before.sched.Counts[i]
		total += counts[i]
	}
	var cum uint64
	for i, c := range counts {
		cum += c
		if total > 0 && cum*100 >= total*99 {
			schedP99 = rs.sched.Buckets[i+1] * 1000
			break
		}
	}
	for i, c := range rs.pauses.Counts {
		lo, hi := rs.pauses.Buckets[i], rs.pauses.Buckets[i+1]
		if math.IsInf(lo, -1) {
			lo = 0
		}
		if math.IsInf(hi, 1) {
			hi = lo
		}
		pauses += float64(c-before.pauses.Counts[i]) * (lo + hi) / 2 * 1000
	}
	round := func(f float64) float64 { return math.Round(f*1000) / 1000 }
	return round(schedP99), round(pauses)
}
