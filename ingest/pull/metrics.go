package pull

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

// Metrics are the pullers' Prometheus metrics; create one per registry and
// share it between pullers.
type Metrics struct {
	reconnects *prometheus.CounterVec
	state      *prometheus.GaugeVec
}

// NewMetrics registers the pull metrics on reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	f := promauto.With(reg)
	return &Metrics{
		reconnects: f.NewCounterVec(prometheus.CounterOpts{
			Name: "seance_ingest_pull_reconnects_total",
			Help: "Connection attempts to a pulled source after a failure or a drop.",
		}, []string{"channel"}),
		state: f.NewGaugeVec(prometheus.GaugeOpts{
			Name: "seance_ingest_pull_state",
			Help: "1 for the pull's current state (idle, connecting, live, retrying), 0 for the others.",
		}, []string{"channel", "state"}),
	}
}

// pullMetrics are one puller's pre-resolved children.
type pullMetrics struct {
	reconnects prometheus.Counter
	state      map[State]prometheus.Gauge
}

func (m *Metrics) forChannel(channel string) *pullMetrics {
	pm := &pullMetrics{
		reconnects: m.reconnects.WithLabelValues(channel),
		state:      make(map[State]prometheus.Gauge),
	}
	for _, s := range []State{StateIdle, StateConnecting, StateLive, StateRetrying} {
		pm.state[s] = m.state.WithLabelValues(channel, s.String())
	}
	return pm
}
