package rtsp

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/seance-relay/seance/relay"
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
	if m.viewers, m.sessions, err = relay.ViewerMetrics(reg); err != nil {
		return nil, fmt.Errorf("rtsp metrics: %w", err)
	}
	if m.dropped, err = relay.RegisterShared(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "seance_rtsp_dropped_packets_total",
		Help: "RTP packets not sent to slow RTSP readers because their write queue was full.",
	}, []string{"channel"})); err != nil {
		return nil, err
	}
	if m.refused, err = relay.RegisterShared(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "seance_rtsp_refused_total",
		Help: "RTSP requests refused, by reason (unauthorized, not_live; address_busy, overloaded: connections closed at accept past rtsp.max_connections_per_address or rtsp.max_connections).",
	}, []string{"reason"})); err != nil {
		return nil, err
	}
	return &m, nil
}
