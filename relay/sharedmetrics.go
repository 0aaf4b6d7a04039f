package relay

import (
	"errors"
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

// RegisterShared registers c, or returns the identical collector already
// registered under the same name: metric families several sinks share
// (seance_viewers…) are registered by whichever comes first.
func RegisterShared[C prometheus.Collector](reg prometheus.Registerer, c C) (C, error) {
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
	return c, fmt.Errorf("metrics: %w", err)
}

// ViewerMetrics returns seance_viewers and seance_viewer_sessions_total,
// the families every viewer protocol (webrtc, rtsp, hls) shares through
// its protocol label, registering them if no sink has yet.
func ViewerMetrics(reg prometheus.Registerer) (*prometheus.GaugeVec, *prometheus.CounterVec, error) {
	viewers, err := RegisterShared(reg, prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "seance_viewers",
		Help: "Viewers connected now, by protocol.",
	}, []string{"channel", "protocol"}))
	if err != nil {
		return nil, nil, err
	}
	sessions, err := RegisterShared(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "seance_viewer_sessions_total",
		Help: "Viewer sessions started, by protocol.",
	}, []string{"channel", "protocol"}))
	if err != nil {
		return nil, nil, err
	}
	return viewers, sessions, nil
}

// QualityFull is the quality label of viewers of a channel's full
// rendition in seance_viewers_by_quality; reduced renditions use their
// names.
const QualityFull = "full"

// ViewersByQuality returns seance_viewers_by_quality, the viewers by the
// rendition they receive, shared by the viewer protocols like
// seance_viewers.
func ViewersByQuality(reg prometheus.Registerer) (*prometheus.GaugeVec, error) {
	return RegisterShared(reg, prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "seance_viewers_by_quality",
		Help: "Viewers connected now, by protocol and by the rendition they receive (full, or a reduced rendition's name).",
	}, []string{"channel", "protocol", "quality"}))
}
