package obs

import (
	"context"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/fincore/fincore/platform/outbox"
)

// outboxLagTimeout bounds the storage read a scrape makes for the outbox backlog.
const outboxLagTimeout = 2 * time.Second

// outboxCollector reads an outbox's backlog once per scrape: the unpublished rows and the age
// of the oldest. Until WatchOutbox is called, or when the read fails, it reports nothing.
type outboxCollector struct {
	lag         atomic.Pointer[func(context.Context) (outbox.Lag, error)]
	unpublished *prometheus.Desc
	oldestAge   *prometheus.Desc
}

func newOutboxCollector() *outboxCollector {
	return &outboxCollector{
		unpublished: prometheus.NewDesc("fincore_outbox_unpublished",
			"Events committed to the outbox and not yet published to the bus.", nil, nil),
		oldestAge: prometheus.NewDesc("fincore_outbox_oldest_unpublished_age_seconds",
			"Age of the oldest unpublished event (0 when none): how far the bus lags the ledger.", nil, nil),
	}
}

func (c *outboxCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.unpublished
	ch <- c.oldestAge
}

func (c *outboxCollector) Collect(ch chan<- prometheus.Metric) {
	f := c.lag.Load()
	if f == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), outboxLagTimeout)
	defer cancel()
	l, err := (*f)(ctx)
	if err != nil {
		return
	}
	ch <- prometheus.MustNewConstMetric(c.unpublished, prometheus.GaugeValue, float64(l.Unpublished))
	ch <- prometheus.MustNewConstMetric(c.oldestAge, prometheus.GaugeValue, l.OldestAge.Seconds())
}

// WatchOutbox makes the outbox gauges read lag (typically (*outbox.Relay).Lag) at each scrape.
func (m *Metrics) WatchOutbox(lag func(context.Context) (outbox.Lag, error)) {
	m.outbox.lag.Store(&lag)
}
