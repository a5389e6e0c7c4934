// Package obs is fincore's observability: a Prometheus registry with the metrics of the HTTP
// API and the ledger engine (docs/observability.md lists them), and the readiness check.
//
// The packages it observes do not import it: the ledger reports group commits through
// ledger.Observer and the HTTP API reports requests through httpapi.Options.Observe, so the
// dependency points from obs to them and neither depends on a metrics library.
package obs

import (
	"maps"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/fincore/fincore/httpapi"
	"github.com/fincore/fincore/ledger"
)

// durationBuckets are the upper bounds, in seconds, of the latency histograms: from half a
// millisecond (a ledger read, a group commit on a fast disk) to ten seconds.
var durationBuckets = []float64{0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10}

// Metrics holds fincore's Prometheus registry and the collectors that feed it. Create it with
// New; it is safe for concurrent use.
type Metrics struct {
	reg *prometheus.Registry

	httpRequests *prometheus.CounterVec
	httpDuration *prometheus.HistogramVec
	// httpSeries maps a method, route and status to their collectors, resolved once rather
	// than looked up by label values for every request. It is replaced, never changed, when
	// a new combination appears (their number is bounded: routes are patterns).
	httpSeries   atomic.Pointer[map[httpKey]httpCollectors]
	httpSeriesMu sync.Mutex

	groupInputs    prometheus.Histogram
	commitDuration prometheus.Histogram
	records        prometheus.Counter
	groups         prometheus.Counter
	accounts       prometheus.Counter
	commitFailures prometheus.Counter

	engine atomic.Pointer[ledger.Engine] // read by the gauges; nil until WatchEngine
	outbox *outboxCollector
	timers *timerMetrics

	configOnce   sync.Once
	config       *configMetrics // nil until ConfigObserver
	idemRequests *prometheus.CounterVec

	lockOnce sync.Once
	locks    *lockMetrics // nil until LockObserver

	riskOnce sync.Once
	risk     *riskMetrics // nil until RiskObserver or WatchRisk
}

// New returns a registry with the HTTP, ledger, Go runtime and process metrics registered.
func New() *Metrics {
	m := &Metrics{reg: prometheus.NewRegistry()}
	m.httpSeries.Store(&map[httpKey]httpCollectors{})
	m.httpRequests = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "fincore_http_requests_total",
		Help: "HTTP requests served, by method, route pattern and status.",
	}, []string{"method", "route", "status"})
	m.httpDuration = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "fincore_http_request_duration_seconds",
		Help:    "Time to serve an HTTP request, by method and route pattern.",
		Buckets: durationBuckets,
	}, []string{"method", "route"})
	m.groupInputs = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name: "fincore_ledger_group_inputs",
		Help: "Inputs (accounts, transfers, expiries) per ledger group commit.",
		// 1 to 16384, the default group limit.
		Buckets: prometheus.ExponentialBuckets(1, 2, 15),
	})
	m.commitDuration = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:    "fincore_ledger_commit_duration_seconds",
		Help:    "Time storage took to commit a ledger group.",
		Buckets: durationBuckets,
	})
	m.records = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "fincore_ledger_records_total",
		Help: "Journal records (transfers, posts, voids, expiries) committed.",
	})
	m.groups = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "fincore_ledger_groups_total",
		Help: "Ledger group commits that succeeded.",
	})
	m.accounts = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "fincore_ledger_accounts_created_total",
		Help: "Ledger accounts created.",
	})
	m.commitFailures = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "fincore_ledger_commit_failures_total",
		Help: "Ledger group commits that storage refused or failed (fencing included).",
	})
	queueDepth := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "fincore_ledger_queue_depth",
		Help: "Requests waiting for the ledger writer.",
	}, func() float64 {
		if e := m.engine.Load(); e != nil {
			return float64(e.Stats().QueueDepth)
		}
		return 0
	})
	writerUp := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "fincore_ledger_writer_up",
		Help: "1 while the ledger engine can write, 0 once it is closed or fenced.",
	}, func() float64 {
		if e := m.engine.Load(); e != nil && e.Writable() {
			return 1
		}
		return 0
	})
	m.outbox = newOutboxCollector()
	m.reg.MustRegister(m.outbox)
	m.timers = newTimerMetrics()
	m.reg.MustRegister(m.timers)
	m.registerIdempotency()
	m.reg.MustRegister(
		m.httpRequests, m.httpDuration,
		m.groupInputs, m.commitDuration, m.records, m.groups, m.accounts, m.commitFailures,
		queueDepth, writerUp,
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	return m
}

// Registry returns the underlying registry, for registering more collectors.
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// Handler serves the metrics in the Prometheus text format (GET /metrics).
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{})
}

// ObserveHTTP records one served request; its signature is that of httpapi.Options.Observe.
// route must be a route pattern, never a raw path, to keep the label set bounded; methods
// outside the standard set count as "OTHER" for the same reason.
func (m *Metrics) ObserveHTTP(method, route string, status int, d time.Duration) {
	k := httpKey{boundedMethod(method), route, status}
	c, ok := (*m.httpSeries.Load())[k]
	if !ok {
		c = m.resolveHTTP(k)
	}
	c.requests.Inc()
	c.duration.Observe(d.Seconds())
}

// httpKey is the labels of one HTTP series.
type httpKey struct {
	method, route string
	status        int
}

// httpCollectors are the request counter and duration histogram of one httpKey.
type httpCollectors struct {
	requests prometheus.Counter
	duration prometheus.Observer
}

// resolveHTTP looks up the collectors of k and adds them to m.httpSeries.
func (m *Metrics) resolveHTTP(k httpKey) httpCollectors {
	m.httpSeriesMu.Lock()
	defer m.httpSeriesMu.Unlock()
	old := *m.httpSeries.Load()
	if c, ok := old[k]; ok {
		return c
	}
	c := httpCollectors{
		requests: m.httpRequests.WithLabelValues(k.method, k.route, strconv.Itoa(k.status)),
		duration: m.httpDuration.WithLabelValues(k.method, k.route),
	}
	series := maps.Clone(old)
	series[k] = c
	m.httpSeries.Store(&series)
	return c
}

func boundedMethod(m string) string {
	if httpapi.StandardMethod(m) {
		return m
	}
	return "OTHER"
}

// GroupCommitted records one ledger group commit; it makes Metrics a ledger.Observer (set it
// as ledger.Config.Observer).
func (m *Metrics) GroupCommitted(c ledger.GroupCommit) {
	m.commitDuration.Observe(c.Duration.Seconds())
	if c.Err != nil {
		m.commitFailures.Inc()
		return
	}
	m.groupInputs.Observe(float64(c.Inputs))
	m.groups.Inc()
	m.records.Add(float64(c.Records))
	m.accounts.Add(float64(c.Accounts))
}

// WatchEngine makes the queue-depth and writer-up gauges read e (replacing any engine watched
// before). Until it is called they read 0.
func (m *Metrics) WatchEngine(e *ledger.Engine) { m.engine.Store(e) }
