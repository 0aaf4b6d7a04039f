package meeting

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

// Metrics are the meeting captures' Prometheus metrics; create one per
// registry and share it between captures.
type Metrics struct {
	state      *prometheus.GaugeVec
	restarts   *prometheus.CounterVec
	cpu        *prometheus.CounterVec
	memory     *prometheus.GaugeVec
	fps        *prometheus.GaugeVec
	pageErrors *prometheus.CounterVec
}

// NewMetrics registers the meeting capture metrics on reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	f := promauto.With(reg)
	return &Metrics{
		state: f.NewGaugeVec(prometheus.GaugeOpts{
			Name: "seance_meeting_state",
			Help: "1 for the meeting capture's current state (idle, waiting, launching, joining, capturing, retrying, removed, alone), 0 for the others.",
		}, []string{"channel", "state"}),
		restarts: f.NewCounterVec(prometheus.CounterOpts{
			Name: "seance_meeting_restarts_total",
			Help: "Browser restarts after a crash, a hang, a failed join or being thrown out of the meeting.",
		}, []string{"channel"}),
		cpu: f.NewCounterVec(prometheus.CounterOpts{
			Name: "seance_meeting_browser_cpu_seconds_total",
			Help: "CPU time used by the capturing browser's process tree.",
		}, []string{"channel"}),
		memory: f.NewGaugeVec(prometheus.GaugeOpts{
			Name: "seance_meeting_browser_memory_bytes",
			Help: "Memory of the capturing browser's process tree (proportional set size, summed).",
		}, []string{"channel"}),
		fps: f.NewGaugeVec(prometheus.GaugeOpts{
			Name: "seance_meeting_capture_frames_per_second",
			Help: "Frames per second captured from the meeting page.",
		}, []string{"channel"}),
		pageErrors: f.NewCounterVec(prometheus.CounterOpts{
			Name: "seance_meeting_page_errors_total",
			Help: "Errors the meeting page logged to its console or threw.",
		}, []string{"channel"}),
	}
}

// captureMetrics are one capture's pre-resolved children.
type captureMetrics struct {
	state      map[State]prometheus.Gauge
	restarts   prometheus.Counter
	cpu        prometheus.Counter
	memory     prometheus.Gauge
	fps        prometheus.Gauge
	pageErrors prometheus.Counter
}

func (m *Metrics) forChannel(channel string) *captureMetrics {
	cm := &captureMetrics{
		state:      map[State]prometheus.Gauge{},
		restarts:   m.restarts.WithLabelValues(channel),
		cpu:        m.cpu.WithLabelValues(channel),
		memory:     m.memory.WithLabelValues(channel),
		fps:        m.fps.WithLabelValues(channel),
		pageErrors: m.pageErrors.WithLabelValues(channel),
	}
	for s := range State(len(stateNames)) {
		cm.state[s] = m.state.WithLabelValues(channel, s.String())
	}
	return cm
}
