package rtmp

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

// Metrics are the destinations' Prometheus metrics; create one per
// registry and share it between destinations.
type Metrics struct {
	up         *prometheus.GaugeVec
	bytes      *prometheus.CounterVec
	reconnects *prometheus.CounterVec
	connected  *prometheus.CounterVec
	state      *prometheus.GaugeVec
}

// NewMetrics registers the destination metrics on reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	f := promauto.With(reg)
	return &Metrics{
		up: f.NewGaugeVec(prometheus.GaugeOpts{
			Name: "seance_destination_up",
			Help: "1 while the destination is connected and receiving the stream, else 0.",
		}, []string{"channel", "destination"}),
		bytes: f.NewCounterVec(prometheus.CounterOpts{
			Name: "seance_destination_bytes_total",
			Help: "Bytes sent to the destination (RTMP framing included).",
		}, []string{"channel", "destination"}),
		reconnects: f.NewCounterVec(prometheus.CounterOpts{
			Name: "seance_destination_reconnects_total",
			Help: "Connection attempts to the destination after a failure or a drop.",
		}, []string{"channel", "destination"}),
		connected: f.NewCounterVec(prometheus.CounterOpts{
			Name: "seance_destination_connected_seconds_total",
			Help: "Seconds the destination has been connected and receiving the stream.",
		}, []string{"channel", "destination"}),
		state: f.NewGaugeVec(prometheus.GaugeOpts{
			Name: "seance_destination_state",
			Help: "1 for the destination's current state (idle, connecting, live, retrying, failed), 0 for the others.",
		}, []string{"channel", "destination", "state"}),
	}
}

// destMetrics are one destination's pre-resolved children.
type destMetrics struct {
	up         prometheus.Gauge
	bytes      prometheus.Counter
	reconnects prometheus.Counter
	connected  prometheus.Counter
	state      map[State]prometheus.Gauge
}

func (m *Metrics) forDestination(channel, name string) *destMetrics {
	dm := &destMetrics{
		up:         m.up.WithLabelValues(channel, name),
		bytes:      m.bytes.WithLabelValues(channel, name),
		reconnects: m.reconnects.WithLabelValues(channel, name),
		connected:  m.connected.WithLabelValues(channel, name),
		state:      make(map[State]prometheus.Gauge),
	}
	for _, s := range []State{StateIdle, StateConnecting, StateLive, StateRetrying, StateFailed} {
		dm.state[s] = m.state.WithLabelValues(channel, name, s.String())
	}
	dm.up.Set(0)
	return dm
}
