package obs

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// BankCallObserver registers the bank channel metrics and returns the function that records
// one call (give it to payment.Config.Observe): fincore_bank_calls_total by channel, issuing
// bank and unified result code, and fincore_bank_call_duration_seconds by channel and issuing
// bank. The caller bounds the bank labels (payment.Config.MaxBankLabels). Call it once per
// Metrics.
func (m *Metrics) BankCallObserver() func(channel, bank, code string, d time.Duration) {
	calls := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "fincore_bank_calls_total",
		Help: "Calls to bank channels (pay, query, refund) by channel, issuing bank of the card and unified result code.",
	}, []string{"channel", "bank", "code"})
	dur := prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "fincore_bank_call_duration_seconds",
		Help:    "Latency of bank channel calls by channel and issuing bank of the card.",
		Buckets: durationBuckets,
	}, []string{"channel", "bank"})
	m.reg.MustRegister(calls, dur)
	return func(channel, bank, code string, d time.Duration) {
		calls.WithLabelValues(channel, bank, code).Inc()
		dur.WithLabelValues(channel, bank).Observe(d.Seconds())
	}
}
