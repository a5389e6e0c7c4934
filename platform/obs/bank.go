package obs

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// BankCallObserver registers the bank channel metrics and returns the function that records
// one call (give it to payment.Config.Observe): fincore_bank_calls_total by channel and
// unified result code, and fincore_bank_call_duration_seconds by channel. Call it once per
// Metrics.
func (m *Metrics) BankCallObserver() func(channel, code string, d time.Duration) {
	calls := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "fincore_bank_calls_total",
		Help: "Calls to bank channels (pay, query, refund) by channel and unified result code.",
	}, []string{"channel", "code"})
	dur := prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "fincore_bank_call_duration_seconds",
		Help:    "Latency of bank channel calls by channel.",
		Buckets: durationBuckets,
	}, []string{"channel"})
	m.reg.MustRegister(calls, dur)
	return func(channel, code string, d time.Duration) {
		calls.WithLabelValues(channel, code).Inc()
		dur.WithLabelValues(channel).Observe(d.Seconds())
	}
}
