package obs

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/fincore/fincore/platform/lock"
)

// lockMetrics observes the leases of a lock.Locker, labelled by lock name (a handful, fixed by
// the code that takes locks).
type lockMetrics struct {
	held      *prometheus.GaugeVec
	token     *prometheus.GaugeVec
	acquired  *prometheus.CounterVec
	takeovers *prometheus.CounterVec
	lost      *prometheus.CounterVec
}

// LockObserver returns the observer to set as lock.Options.Observer. Its metrics are
// registered on the first call; later calls return the same observer.
func (m *Metrics) LockObserver() lock.Observer {
	m.lockOnce.Do(func() {
		l := &lockMetrics{
			held: prometheus.NewGaugeVec(prometheus.GaugeOpts{
				Name: "fincore_lock_held",
				Help: "1 while this instance holds the lock's lease, else 0.",
			}, []string{"lock"}),
			token: prometheus.NewGaugeVec(prometheus.GaugeOpts{
				Name: "fincore_lock_token",
				Help: "Fencing token of the latest lease of the lock granted to this instance.",
			}, []string{"lock"}),
			acquired: prometheus.NewCounterVec(prometheus.CounterOpts{
				Name: "fincore_lock_acquisitions_total",
				Help: "Leases of the lock granted to this instance, takeovers included.",
			}, []string{"lock"}),
			takeovers: prometheus.NewCounterVec(prometheus.CounterOpts{
				Name: "fincore_lock_takeovers_total",
				Help: "Leases of the lock this instance took over from a holder whose lease had expired (or from its own previous incarnation).",
			}, []string{"lock"}),
			lost: prometheus.NewCounterVec(prometheus.CounterOpts{
				Name: "fincore_lock_lost_total",
				Help: "Leases of the lock this instance lost: not renewed in time, or superseded.",
			}, []string{"lock"}),
		}
		m.reg.MustRegister(l.held, l.token, l.acquired, l.takeovers, l.lost)
		m.locks = l
	})
	return m.locks
}

func (l *lockMetrics) Acquired(name string, token uint64, takeover bool) {
	l.held.WithLabelValues(name).Set(1)
	l.token.WithLabelValues(name).Set(float64(token))
	l.acquired.WithLabelValues(name).Inc()
	if takeover {
		l.takeovers.WithLabelValues(name).Inc()
	} else {
		l.takeovers.WithLabelValues(name).Add(0) // present from the first grant on
	}
}

func (l *lockMetrics) Lost(name string, _ uint64) {
	l.held.WithLabelValues(name).Set(0)
	l.lost.WithLabelValues(name).Inc()
}

func (l *lockMetrics) Released(name string, _ uint64) {
	l.held.WithLabelValues(name).Set(0)
	l.lost.WithLabelValues(name).Add(0)
}
