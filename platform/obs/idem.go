package obs

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/fincore/fincore/platform/idem"
)

// idemOutcomes are the values of the outcome label, each present from the start.
var idemOutcomes = []idem.Outcome{idem.Execute, idem.Replay, idem.Conflict, idem.InProgress}

func (m *Metrics) registerIdempotency() {
	m.idemRequests = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "fincore_idempotency_requests_total",
		Help: "Requests with an Idempotency-Key, by outcome: executed, replayed, conflict, in_progress.",
	}, []string{"outcome"})
	for _, o := range idemOutcomes {
		m.idemRequests.WithLabelValues(o.String())
	}
	m.reg.MustRegister(m.idemRequests)
}

// ObserveIdempotency counts one request with an Idempotency-Key by its outcome; its signature
// is that of idem.Config.Observe.
func (m *Metrics) ObserveIdempotency(o idem.Outcome) {
	m.idemRequests.WithLabelValues(o.String()).Inc()
}
