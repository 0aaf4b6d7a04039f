package record

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

// Metrics are the recorders' Prometheus metrics; create one per registry
// and share it between the channels' recorders.
type Metrics struct {
	up       *prometheus.GaugeVec
	bytes    *prometheus.CounterVec
	errors   *prometheus.CounterVec
	deleted  *prometheus.CounterVec
	files    *prometheus.CounterVec
	repaired *prometheus.CounterVec
}

// NewMetrics registers the recording metrics on reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	f := promauto.With(reg)
	return &Metrics{
		up: f.NewGaugeVec(prometheus.GaugeOpts{
			Name: "seance_recording_up",
			Help: "1 while the channel's recorder is writing a file, else 0 (idle, or failed and retrying).",
		}, []string{"channel"}),
		bytes: f.NewCounterVec(prometheus.CounterOpts{
			Name: "seance_recording_bytes_total",
			Help: "Bytes written to the channel's recording files.",
		}, []string{"channel"}),
		errors: f.NewCounterVec(prometheus.CounterOpts{
			Name: "seance_recording_errors_total",
			Help: "Errors creating, writing or finishing the channel's recording files (disk full, permissions…).",
		}, []string{"channel"}),
		deleted: f.NewCounterVec(prometheus.CounterOpts{
			Name: "seance_recording_files_deleted_total",
			Help: "Recording files deleted, by reason: max_age, max_size (retention), api (admin API), empty (nothing playable after a crash).",
		}, []string{"channel", "reason"}),
		files: f.NewCounterVec(prometheus.CounterOpts{
			Name: "seance_recording_files_total",
			Help: "Recording files started.",
		}, []string{"channel"}),
		repaired: f.NewCounterVec(prometheus.CounterOpts{
			Name: "seance_recording_files_repaired_total",
			Help: "Recording files left unfinished (crash, write error) that seance finished when it found them.",
		}, []string{"channel"}),
	}
}

// Reasons a recording file is deleted (the reason label).
const (
	deletedMaxAge  = "max_age"
	deletedMaxSize = "max_size"
	deletedAPI     = "api"
	deletedEmpty   = "empty"
)

// chanMetrics are one channel's pre-resolved children.
type chanMetrics struct {
	up       prometheus.Gauge
	bytes    prometheus.Counter
	errors   prometheus.Counter
	files    prometheus.Counter
	repaired prometheus.Counter
	deleted  map[string]prometheus.Counter
}

func (m *Metrics) forChannel(channel string) *chanMetrics {
	cm := &chanMetrics{
		up:       m.up.WithLabelValues(channel),
		bytes:    m.bytes.WithLabelValues(channel),
		errors:   m.errors.WithLabelValues(channel),
		files:    m.files.WithLabelValues(channel),
		repaired: m.repaired.WithLabelValues(channel),
		deleted:  map[string]prometheus.Counter{},
	}
	for _, r := range []string{deletedMaxAge, deletedMaxSize, deletedAPI, deletedEmpty} {
		cm.deleted[r] = m.deleted.WithLabelValues(channel, r)
	}
	cm.up.Set(0)
	return cm
}
