package obs

import "github.com/prometheus/client_golang/prometheus"

// RejectCounter registers fincore_http_rejected_total, requests the authentication layer
// refused before their handler, by reason, with every reason in reasons starting at 0, and
// returns the function that counts one (give it to httpapi.Guard.Rejected). Call it once
// per Metrics.
func (m *Metrics) RejectCounter(reasons []string) func(reason string) {
	c := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "fincore_http_rejected_total",
		Help: "Requests refused before their handler, by reason (unauthenticated, forbidden, rate_limited, degraded).",
	}, []string{"reason"})
	m.reg.MustRegister(c)
	for _, r := range reasons {
		c.WithLabelValues(r)
	}
	return func(reason string) { c.WithLabelValues(reason).Inc() }
}
