package obs

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/fincore/fincore/platform/timer"
)

// timerHandlerLabelsMax bounds the distinct values of the handler label of the timer
// metrics. Handler names come from stored timers, so a module that put ids into them (a bus
// subject per payment, say) could otherwise grow the label set without bound; handlers
// beyond the first timerHandlerLabelsMax seen count as "other".
const timerHandlerLabelsMax = 64

// latenessBuckets are the upper bounds, in seconds, of the timer lateness histogram: from
// 0.1 ms (the service's p50 under load) past the 10 ms target to a minute (timers that came
// due while the process was down are as late as the downtime, and land in +Inf beyond).
var latenessBuckets = []float64{0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60}

// TimerSource is what the timer gauges read at each scrape; *timer.Service is one.
type TimerSource interface {
	Stats() timer.Stats
	Backlog(ctx context.Context) (timer.Backlog, error)
}

// timerMetrics are the durable timer service's metrics.
type timerMetrics struct {
	fires    *prometheus.CounterVec
	retries  *prometheus.CounterVec
	lateness prometheus.Histogram

	mu       sync.Mutex
	handlers map[string]struct{} // handler label values in use

	src         atomic.Pointer[TimerSource]
	window      *prometheus.Desc
	windowMax   *prometheus.Desc
	pending     *prometheus.Desc
	overdue     *prometheus.Desc
	backlogRead time.Duration // bound on the storage read of a scrape
	now         func() time.Time
}

func newTimerMetrics() *timerMetrics {
	return &timerMetrics{
		fires: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "fincore_timer_fires_total",
			Help: "Timer delivery attempts, by handler and outcome (ok, error).",
		}, []string{"handler", "outcome"}),
		retries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "fincore_timer_retries_total",
			Help: "Timer delivery attempts that retried an earlier failed one, by handler.",
		}, []string{"handler"}),
		lateness: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "fincore_timer_lateness_seconds",
			Help:    "Start of a timer delivery attempt minus the time it was due.",
			Buckets: latenessBuckets,
		}),
		handlers: map[string]struct{}{},
		window: prometheus.NewDesc("fincore_timer_window",
			"Timers held in memory (the window of the near future), waiting or being delivered.", nil, nil),
		windowMax: prometheus.NewDesc("fincore_timer_window_max",
			"The bound on timers held in memory.", nil, nil),
		pending: prometheus.NewDesc("fincore_timer_pending",
			"Timers in storage not yet delivered successfully.", nil, nil),
		overdue: prometheus.NewDesc("fincore_timer_overdue_seconds",
			"How long the earliest pending timer has been due (0 when none is due).", nil, nil),
		backlogRead: 2 * time.Second,
		now:         time.Now,
	}
}

func (tm *timerMetrics) handlerLabel(h string) string {
	tm.mu.Lock()
	defer tm.mu.Unlock()
	if _, ok := tm.handlers[h]; ok {
		return h
	}
	if len(tm.handlers) >= timerHandlerLabelsMax {
		return "other"
	}
	tm.handlers[h] = struct{}{}
	return h
}

func (tm *timerMetrics) Describe(ch chan<- *prometheus.Desc) {
	tm.fires.Describe(ch)
	tm.retries.Describe(ch)
	tm.lateness.Describe(ch)
	ch <- tm.window
	ch <- tm.windowMax
	ch <- tm.pending
	ch <- tm.overdue
}

// Collect reports the counters, and the gauges once WatchTimers has been called; the storage
// gauges are left out of a scrape whose read fails.
func (tm *timerMetrics) Collect(ch chan<- prometheus.Metric) {
	tm.fires.Collect(ch)
	tm.retries.Collect(ch)
	tm.lateness.Collect(ch)
	p := tm.src.Load()
	if p == nil {
		return
	}
	src := *p
	st := src.Stats()
	ch <- prometheus.MustNewConstMetric(tm.window, prometheus.GaugeValue, float64(st.InMemory))
	ch <- prometheus.MustNewConstMetric(tm.windowMax, prometheus.GaugeValue, float64(st.WindowMax))
	ctx, cancel := context.WithTimeout(context.Background(), tm.backlogRead)
	defer cancel()
	b, err := src.Backlog(ctx)
	if err != nil {
		return
	}
	overdue := 0.0
	if !b.Earliest.IsZero() {
		overdue = max(0, tm.now().Sub(b.Earliest).Seconds())
	}
	ch <- prometheus.MustNewConstMetric(tm.pending, prometheus.GaugeValue, float64(b.Pending))
	ch <- prometheus.MustNewConstMetric(tm.overdue, prometheus.GaugeValue, overdue)
}

// TimerDelivered records one timer delivery attempt; it makes Metrics a timer.Observer (set
// it as timer.Config.Observer).
func (m *Metrics) TimerDelivered(d timer.Delivery) {
	h := m.timers.handlerLabel(d.Handler)
	outcome := "ok"
	if d.Err != nil {
		outcome = "error"
	}
	m.timers.fires.WithLabelValues(h, outcome).Inc()
	if d.Attempt > 1 {
		m.timers.retries.WithLabelValues(h).Inc()
	}
	m.timers.lateness.Observe(max(0, d.Lateness.Seconds()))
}

// WatchTimers makes the timer gauges read src at each scrape: the window from its Stats, the
// pending count and the earliest due time from its Backlog (a storage read bounded to 2 s).
// Until it is called they are absent.
func (m *Metrics) WatchTimers(src TimerSource) { m.timers.src.Store(&src) }
