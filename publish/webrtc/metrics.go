package webrtc

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

// metrics are the WebRTC viewers' metrics. Per-viewer figures are
// aggregated per channel: no session id or address is ever a label.
type metrics struct {
	viewers   *prometheus.GaugeVec
	sessions  *prometheus.CounterVec
	ended     *prometheus.CounterVec
	ttff      prometheus.Observer
	rttVec    *prometheus.HistogramVec
	lostVec   *prometheus.CounterVec
	dropVec   *prometheus.CounterVec
	packetVec *prometheus.CounterVec
	nackVec   *prometheus.CounterVec
	plis      prometheus.Counter
	refused   *prometheus.CounterVec
	byQuality *prometheus.GaugeVec // shared with the other viewer protocols
}

func newMetrics(reg prometheus.Registerer) *metrics {
	f := promauto.With(reg)
	return &metrics{
		viewers: f.NewGaugeVec(prometheus.GaugeOpts{
			Name: "seance_viewers",
			Help: "Viewers connected now, by protocol.",
		}, []string{"channel", "protocol"}),
		sessions: f.NewCounterVec(prometheus.CounterOpts{
			Name: "seance_viewer_sessions_total",
			Help: "Viewer sessions started, by protocol.",
		}, []string{"channel", "protocol"}),
		ended: f.NewCounterVec(prometheus.CounterOpts{
			Name: "seance_viewer_sessions_ended_total",
			Help: "Viewer sessions ended, by reason (deleted, ice_failed, ice_timeout, stream_ended, write_error, shutdown, closed; channel_full, server_full, address_busy: refused a seat when ICE connected).",
		}, []string{"channel", "protocol", "reason"}),
		ttff: f.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "seance_viewer_time_to_first_frame_seconds",
			Help:    "Time from a viewer's request (WHEP offer) to the first video keyframe sent to it.",
			Buckets: []float64{.05, .1, .2, .3, .4, .6, .8, 1, 1.5, 2, 3, 5},
		}, []string{"protocol"}).WithLabelValues("webrtc"),
		rttVec: f.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "seance_viewer_rtt_seconds",
			Help:    "Round-trip time to WebRTC viewers, from their RTCP receiver reports.",
			Buckets: []float64{.005, .01, .025, .05, .1, .2, .4, .8, 1.6},
		}, []string{"channel"}),
		lostVec: f.NewCounterVec(prometheus.CounterOpts{
			Name: "seance_viewer_packets_lost_total",
			Help: "RTP packets WebRTC viewers report lost (before retransmission).",
		}, []string{"channel"}),
		dropVec: f.NewCounterVec(prometheus.CounterOpts{
			Name: "seance_viewer_dropped_packets_total",
			Help: "Frames (one or more RTP packets each) slow WebRTC viewers skipped to catch up at the next keyframe.",
		}, []string{"channel"}),
		packetVec: f.NewCounterVec(prometheus.CounterOpts{
			Name: "seance_viewer_packets_sent_total",
			Help: "RTP packets sent to WebRTC viewers (retransmissions excluded).",
		}, []string{"channel"}),
		nackVec: f.NewCounterVec(prometheus.CounterOpts{
			Name: "seance_viewer_retransmitted_packets_total",
			Help: "RTP packets retransmitted to WebRTC viewers after a NACK.",
		}, []string{"channel"}),
		plis: f.NewCounter(prometheus.CounterOpts{
			Name: "seance_viewer_picture_loss_total",
			Help: "Picture loss indications (PLI/FIR) from WebRTC viewers, each answered from the keyframe cache.",
		}),
		refused: f.NewCounterVec(prometheus.CounterOpts{
			Name: "seance_viewer_refused_total",
			Help: "WHEP requests refused, by reason (not_live, channel_full, server_full, address_busy, too_many_candidates, bad_request).",
		}, []string{"reason"}),
	}
}

func (m *metrics) rtt(ch string) prometheus.Observer    { return m.rttVec.WithLabelValues(ch) }
func (m *metrics) lost(ch string) prometheus.Counter    { return m.lostVec.WithLabelValues(ch) }
func (m *metrics) dropped(ch string) prometheus.Counter { return m.dropVec.WithLabelValues(ch) }
func (m *metrics) packets(ch string) prometheus.Counter { return m.packetVec.WithLabelValues(ch) }
func (m *metrics) nacks(ch string) prometheus.Counter   { return m.nackVec.WithLabelValues(ch) }

// quality is the gauge of the channel's WebRTC viewers receiving a
// rendition (relay.QualityFull or a reduced rendition's name).
func (m *metrics) quality(ch, q string) prometheus.Gauge {
	return m.byQuality.WithLabelValues(ch, "webrtc", q)
}
