package rendition

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

// states is the closed set of the state label.
var states = []State{StateIdle, StateStarting, StateLive, StateRetrying}

// Metrics are the renditions' Prometheus metrics. Create one per registry.
type Metrics struct {
	state        *prometheus.GaugeVec
	restarts     *prometheus.CounterVec
	fps          *prometheus.GaugeVec
	cpu          *prometheus.CounterVec
	bytes        *prometheus.CounterVec
	decodeErrors *prometheus.CounterVec
}

// NewMetrics registers the renditions' metrics on reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	f := promauto.With(reg)
	labels := []string{"channel", "rendition"}
	return &Metrics{
		state: f.NewGaugeVec(prometheus.GaugeOpts{
			Name: "seance_rendition_state",
			Help: "1 for the reduced rendition's current state (idle, starting, live, retrying), 0 for the others.",
		}, []string{"channel", "rendition", "state"}),
		restarts: f.NewCounterVec(prometheus.CounterOpts{
			Name: "seance_rendition_restarts_total",
			Help: "Times the reduced rendition's ffmpeg stopped while the channel was live and was started again.",
		}, labels),
		fps: f.NewGaugeVec(prometheus.GaugeOpts{
			Name: "seance_rendition_frames_per_second",
			Help: "Video frames the reduced rendition's ffmpeg sent over the last second.",
		}, labels),
		cpu: f.NewCounterVec(prometheus.CounterOpts{
			Name: "seance_rendition_cpu_seconds_total",
			Help: "CPU time (user + system) used by the reduced rendition's ffmpeg.",
		}, labels),
		bytes: f.NewCounterVec(prometheus.CounterOpts{
			Name: "seance_rendition_bytes_total",
			Help: "H.264 bytes the reduced rendition's ffmpeg sent.",
		}, labels),
		decodeErrors: f.NewCounterVec(prometheus.CounterOpts{
			Name: "seance_rendition_output_errors_total",
			Help: "Parts of ffmpeg's output that could not be read (skipped).",
		}, labels),
	}
}

// makerMetrics are one rendition's metric children.
type makerMetrics struct {
	state        map[State]prometheus.Gauge
	restarts     prometheus.Counter
	fps          prometheus.Gauge
	cpu          prometheus.Counter
	bytes        prometheus.Counter
	decodeErrors prometheus.Counter
}

func (m *Metrics) forRendition(channel, name string) *makerMetrics {
	mm := &makerMetrics{
		state:        map[State]prometheus.Gauge{},
		restarts:     m.restarts.WithLabelValues(channel, name),
		fps:          m.fps.WithLabelValues(channel, name),
		cpu:          m.cpu.WithLabelValues(channel, name),
		bytes:        m.bytes.WithLabelValues(channel, name),
		decodeErrors: m.decodeErrors.WithLabelValues(channel, name),
	}
	for _, s := range states {
		mm.state[s] = m.state.WithLabelValues(channel, name, string(s))
	}
	mm.setState(StateIdle)
	mm.fps.Set(0)
	return mm
}

func (mm *makerMetrics) setState(s State) {
	for k, g := range mm.state {
		if k == s {
			g.Set(1)
		} else {
			g.Set(0)
		}
	}
}
