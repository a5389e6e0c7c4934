package obs

import (
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/fincore/fincore/platform/config"
)

// configApplyBuckets are the upper bounds, in seconds, of the set-to-applied histogram: from
// 100 µs (a watcher on loopback) to 10 s (a watcher that was disconnected).
var configApplyBuckets = []float64{0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.03, 0.1, 0.25, 1, 2.5, 10}

// configMetrics observes a config.Center: the changes this instance stored and how long each
// change took to reach this instance's watchers.
type configMetrics struct {
	changes prometheus.Counter
	version prometheus.Gauge
	applied prometheus.Histogram

	mu  sync.Mutex
	top uint64 // the highest version applied, behind the gauge
}

// ConfigObserver returns the observer to set as config.Options.Observer. Its metrics are
// registered on the first call; later calls return the same observer.
func (m *Metrics) ConfigObserver() config.Observer {
	m.configOnce.Do(func() {
		c := &configMetrics{
			changes: prometheus.NewCounter(prometheus.CounterOpts{
				Name: "fincore_config_changes_total",
				Help: "Configuration changes this instance stored.",
			}),
			version: prometheus.NewGauge(prometheus.GaugeOpts{
				Name: "fincore_config_version",
				Help: "The highest configuration version this instance's watchers have applied; instances that agree have the same configuration.",
			}),
			applied: prometheus.NewHistogram(prometheus.HistogramOpts{
				Name:    "fincore_config_apply_seconds",
				Help:    "Time from a configuration change being stored (by any instance) to a watcher of this instance having applied it.",
				Buckets: configApplyBuckets,
			}),
		}
		m.reg.MustRegister(c.changes, c.version, c.applied)
		m.config = c
	})
	return m.config
}

func (c *configMetrics) ConfigChanged(config.Change) { c.changes.Inc() }

func (c *configMetrics) ConfigApplied(_ string, version uint64, latency time.Duration) {
	c.applied.Observe(max(latency, 0).Seconds())
	c.mu.Lock()
	defer c.mu.Unlock()
	if version > c.top {
		c.top = version
		c.version.Set(float64(version))
	}
}
