package hls

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/seance-relay/seance/relay"
)

// metrics are the HLS output's metrics. seance_viewers and
// seance_viewer_sessions_total are shared with publish/webrtc and
// publish/rtsp (label protocol="hls"): their options must stay identical,
// and the family registered first is reused.
type metrics struct {
	viewers *prometheus.GaugeVec
	// byQuality is seance_viewers_by_quality, shared with WebRTC.
	byQuality *prometheus.GaugeVec
	sessions  *prometheus.CounterVec
	requests  *prometheus.CounterVec
	bytes     *prometheus.CounterVec
	refused   *prometheus.CounterVec
	errors    *prometheus.CounterVec
	muxers    prometheus.Gauge
	held      prometheus.Gauge
}

// Reasons a request is refused, the values of seance_hls_refused_total's
// reason label.
const (
	refusedBadRequest     = "bad_request"     // not an HLS path or method
	refusedUnknownChannel = "unknown_channel" // no such channel
	refusedNotLive        = "not_live"        // the channel is idle
	refusedNotFound       = "not_found"       // no such file (yet, or any more)
	refusedTimeout        = "timeout"         // a held request was not satisfied in time
	refusedBusy           = "busy"            // too many held requests on the channel
	refusedError          = "error"           // gohlslib failed to answer (500)
)

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	var m metrics
	var err error
	if m.byQuality, err = relay.ViewersByQuality(reg); err != nil {
		return nil, err
	}
	if m.viewers, m.sessions, err = relay.ViewerMetrics(reg); err != nil {
		return nil, fmt.Errorf("hls metrics: %w", err)
	}
	if m.requests, err = relay.RegisterShared(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "seance_hls_requests_total",
		Help: "HLS files served, by kind (playlist, segment, part, init).",
	}, []string{"channel", "kind"})); err != nil {
		return nil, err
	}
	if m.bytes, err = relay.RegisterShared(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "seance_hls_sent_bytes_total",
		Help: "Bytes of HLS playlists and media sent.",
	}, []string{"channel"})); err != nil {
		return nil, err
	}
	if m.refused, err = relay.RegisterShared(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "seance_hls_refused_total",
		Help: "HLS requests not served, by reason (bad_request, unknown_channel, not_live, not_found, timeout, busy, error).",
	}, []string{"reason"})); err != nil {
		return nil, err
	}
	if m.errors, err = relay.RegisterShared(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "seance_hls_muxer_errors_total",
		Help: "Frames the HLS muxer could not take, and muxers that could not start.",
	}, []string{"channel"})); err != nil {
		return nil, err
	}
	if m.muxers, err = relay.RegisterShared(reg, prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "seance_hls_muxers",
		Help: "Channels served over HLS now (one muxer each).",
	})); err != nil {
		return nil, err
	}
	if m.held, err = relay.RegisterShared(reg, prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "seance_hls_held_requests",
		Help: "HLS requests waiting now for what they ask (the first segment, a low-latency part).",
	})); err != nil {
		return nil, err
	}
	for _, r := range []string{refusedBadRequest, refusedUnknownChannel, refusedNotLive, refusedNotFound, refusedTimeout, refusedBusy, refusedError} {
		m.refused.WithLabelValues(r)
	}
	return &m, nil
}
