package rtsp

import (
	"errors"
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the RTSP readers' metrics. seance_viewers and
// seance_viewer_sessions_total are shared with publish/webrtc (label
// protocol="rtsp"): their options must stay identical to webrtc's, and
// the family registered first is reused (TestMetricsSharedWithWebRTC).
type metrics struct {
	viewers  *prometheus.GaugeVec
	sessions *prometheus.CounterVec
	dropped  *prometheus.CounterVec
	refused  *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	var m metrics
	var err error
	if m.viewers, err = registerShared(reg, prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "seance_viewers",
		Help: "Viewers connected now, by protocol.",
	}, []string{"channel", "protocol"})); err != nil {
		return nil, err
	}
	if m.sessions, err = registerShared(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "seance_viewer_sessions_total",
		Help: "Viewer sessions started, by protocol.",
	}, []string{"channel", "protocol"})); err != nil {
		return nil, err
	}
	if m.dropped, err = registerShared(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "seance_rtsp_dropped_packets_total",
		Help: "RTP packets not sent to slow RTSP readers because their write queue was full.",
	}, []string{"channel"})); err != nil {
		return nil, err
	}
	if m.refused, err = registerShared(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "seance_rtsp_refused_total",
		Help: "RTSP requests refused, by reason (unauthorized, not_live).",
	}, []string{"reason"})); err != nil {
		return nil, err
	}
	return &m, nil
}

// registerShared registers c, or returns the identical collector already
// registered under the same name.
func registerShared[C prometheus.Collector](reg prometheus.Registerer, c C) (C, error) {
	err := reg.Register(c)
	if err == nil {
		return c, nil
	}
	var are prometheus.AlreadyRegisteredError
	if errors.As(err, &are) {
		if existing, ok := are.ExistingCollector.(C); ok {
			return existing, nil
		}
	}
	return c, fmt.Errorf("rtsp metrics: %w", err)
}
