package obs

import (
	"sync"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/fincore/fincore/risk"
)

// riskRuleSetLabelsMax bounds the distinct values of the ruleset label: rule set names are
// created through the API, so past the first riskRuleSetLabelsMax seen they count as "other".
const riskRuleSetLabelsMax = 64

// riskDecisionBuckets are the upper bounds, in seconds, of the decision latency histogram: a
// decision takes a fraction of a millisecond, and the targets are 2 ms (in process) and 20 ms
// (over HTTP).
var riskDecisionBuckets = []float64{0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 1}

// RiskSource is what the risk metrics read at each scrape; *risk.Engine is one.
type RiskSource interface {
	// Counters returns the engine's counters and state sizes without taking locks.
	Counters() risk.Stats
	// LogQueue returns the records waiting for the decision log writer, and the bound.
	LogQueue() (depth, capacity int)
}

// riskMetrics are the risk engine's metrics: counted as decisions are answered (risk.Observer)
// and read from the engine at each scrape (RiskSource).
type riskMetrics struct {
	decisions *prometheus.CounterVec
	shadow    *prometheus.CounterVec
	repeats   *prometheus.CounterVec
	latency   prometheus.Histogram

	mu       sync.Mutex
	rulesets map[string]struct{} // ruleset label values in use

	src                            atomic.Pointer[RiskSource]
	windows, keys, queue, queueMax *prometheus.Desc
	counter                        []riskCounter
}

// riskCounter is an engine counter exported as a Prometheus counter.
type riskCounter struct {
	desc *prometheus.Desc
	get  func(risk.Stats) int64
}

func newRiskMetrics() *riskMetrics {
	rm := &riskMetrics{
		decisions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "fincore_risk_decisions_total",
			Help: "Risk decisions evaluated and answered, by rule set and decision (accept, review, reject).",
		}, []string{"ruleset", "decision"}),
		shadow: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "fincore_risk_shadow_decisions_total",
			Help: "Decisions of shadow rule set versions (logged, never answered), by rule set and decision.",
		}, []string{"ruleset", "decision"}),
		repeats: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "fincore_risk_repeated_decisions_total",
			Help: "Decision requests that repeated an event id and got its first decision again, by rule set.",
		}, []string{"ruleset"}),
		latency: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "fincore_risk_decision_duration_seconds",
			Help:    "Time the risk engine took to answer a decision request.",
			Buckets: riskDecisionBuckets,
		}),
		rulesets: map[string]struct{}{},
	}
	rm.windows = prometheus.NewDesc("fincore_risk_windows", "Sliding-window states held in memory (one per feature and key value).", nil, nil)
	rm.keys = prometheus.NewDesc("fincore_risk_key_values", "Key values (users, devices, cards ...) with window states in memory.", nil, nil)
	rm.queue = prometheus.NewDesc("fincore_risk_log_queue_depth", "Events and decisions waiting for the decision log writer.", nil, nil)
	rm.queueMax = prometheus.NewDesc("fincore_risk_log_queue_capacity", "The bound on the decision log queue (decisions fail with risk_overloaded when it is nearly full).", nil, nil)
	for _, c := range []struct {
		name, help string
		get        func(risk.Stats) int64
	}{
		{"fincore_risk_events_total", "Events counted into the feature state (decided or ingested), each event id once.", func(s risk.Stats) int64 { return s.Counted }},
		{"fincore_risk_events_ingested_total", "Events received without a decision (POST /v1/risk/events), each event id once.", func(s risk.Stats) int64 { return s.Events }},
		{"fincore_risk_events_too_old_total", "Events older than the feature state keeps: decided, not counted.", func(s risk.Stats) int64 { return s.TooOld }},
		{"fincore_risk_duplicates_total", "Requests (decisions and ingests) that repeated an event id.", func(s risk.Stats) int64 { return s.Duplicates }},
		{"fincore_risk_rule_errors_total", "Rule evaluations that failed for an event (the rule counts as not hit).", func(s risk.Stats) int64 { return s.RuleErrors }},
		{"fincore_risk_overloaded_total", "Requests refused because the decision log queue was nearly full.", func(s risk.Stats) int64 { return s.Overloaded }},
		{"fincore_risk_log_errors_total", "Failed writes of a decision log batch (retried).", func(s risk.Stats) int64 { return s.LogErrors }},
		{"fincore_risk_windows_evicted_total", "Window states dropped as idle or no longer used by any rule set.", func(s risk.Stats) int64 { return s.Evicted }},
		{"fincore_risk_backfilled_events_total", "Logged events replayed into features new to an activated rule set version (back-filling).", func(s risk.Stats) int64 { return s.Backfilled }},
	} {
		rm.counter = append(rm.counter, riskCounter{prometheus.NewDesc(c.name, c.help, nil, nil), c.get})
	}
	return rm
}

// RiskObserver returns the observer to set as risk.Config.Observer. The risk metrics are
// registered on the first call (of this or WatchRisk); later calls return the same observer.
func (m *Metrics) RiskObserver() risk.Observer { return m.riskMetrics() }

// WatchRisk makes each scrape read the engine's counters, state sizes and log queue.
func (m *Metrics) WatchRisk(src RiskSource) { m.riskMetrics().src.Store(&src) }

func (m *Metrics) riskMetrics() *riskMetrics {
	m.riskOnce.Do(func() {
		m.risk = newRiskMetrics()
		m.reg.MustRegister(m.risk)
	})
	return m.risk
}

func (rm *riskMetrics) rulesetLabel(name string) string {
	rm.mu.Lock()
	defer rm.mu.Unlock()
	if _, ok := rm.rulesets[name]; ok {
		return name
	}
	if len(rm.rulesets) >= riskRuleSetLabelsMax {
		return "other"
	}
	rm.rulesets[name] = struct{}{}
	return name
}

// Decided counts an answered decision.
func (rm *riskMetrics) Decided(o risk.Observation) {
	rs := rm.rulesetLabel(o.RuleSet)
	rm.latency.Observe(o.Duration.Seconds())
	if o.Repeat {
		rm.repeats.WithLabelValues(rs).Inc()
		return
	}
	rm.decisions.WithLabelValues(rs, o.Decision).Inc()
	if o.Shadow != "" {
		rm.shadow.WithLabelValues(rs, o.Shadow).Inc()
	}
}

func (rm *riskMetrics) Describe(ch chan<- *prometheus.Desc) {
	rm.decisions.Describe(ch)
	rm.shadow.Describe(ch)
	rm.repeats.Describe(ch)
	rm.latency.Describe(ch)
	ch <- rm.windows
	ch <- rm.keys
	ch <- rm.queue
	ch <- rm.queueMax
	for _, c := range rm.counter {
		ch <- c.desc
	}
}

// Collect reports the decision counters and histogram, and, once WatchRisk has been called,
// the engine's counters and gauges.
func (rm *riskMetrics) Collect(ch chan<- prometheus.Metric) {
	rm.decisions.Collect(ch)
	rm.shadow.Collect(ch)
	rm.repeats.Collect(ch)
	rm.latency.Collect(ch)
	p := rm.src.Load()
	if p == nil {
		return
	}
	src := *p
	st := src.Counters()
	for _, c := range rm.counter {
		ch <- prometheus.MustNewConstMetric(c.desc, prometheus.CounterValue, float64(c.get(st)))
	}
	depth, capacity := src.LogQueue()
	ch <- prometheus.MustNewConstMetric(rm.windows, prometheus.GaugeValue, float64(st.Keys))
	ch <- prometheus.MustNewConstMetric(rm.keys, prometheus.GaugeValue, float64(st.KeyValues))
	ch <- prometheus.MustNewConstMetric(rm.queue, prometheus.GaugeValue, float64(depth))
	ch <- prometheus.MustNewConstMetric(rm.queueMax, prometheus.GaugeValue, float64(capacity))
}
