package whip

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

// Results of seance_whip_sessions_total.
const (
	resultAccepted       = "accepted"
	resultUnauthorized   = "unauthorized"
	resultUnknownChannel = "unknown_channel"
	resultBusy           = "busy"
	resultBadRequest     = "bad_request"
	resultUnsupported    = "unsupported"
	resultUnavailable    = "unavailable"
	resultError          = "error"
	resultThrottled      = "throttled"
)

type metrics struct {
	sessions   *prometheus.CounterVec
	ended      *prometheus.CounterVec
	keyframes  *prometheus.CounterVec
	rtt        *prometheus.GaugeVec
	lost       *prometheus.CounterVec
	badPackets *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer) *metrics {
	f := promauto.With(reg)
	return &metrics{
		sessions: f.NewCounterVec(prometheus.CounterOpts{
			Name: "seance_whip_sessions_total",
			Help: "WHIP publish requests by result (accepted, unauthorized, throttled, unknown_channel, busy, bad_request, unsupported, unavailable, error).",
		}, []string{"result"}),
		ended: f.NewCounterVec(prometheus.CounterOpts{
			Name: "seance_whip_sessions_ended_total",
			Help: "WHIP sessions ended, by reason (deleted, ice_failed, ice_timeout, closed, busy, replaced, kicked, shutdown).",
		}, []string{"channel", "reason"}),
		keyframes: f.NewCounterVec(prometheus.CounterOpts{
			Name: "seance_ingest_keyframe_requests_total",
			Help: "Keyframe requests (RTCP PLI) sent to publishers that make keyframes on demand (WHIP).",
		}, []string{"channel"}),
		rtt: f.NewGaugeVec(prometheus.GaugeOpts{
			Name: "seance_ingest_rtt_seconds",
			Help: "Round-trip time to the publisher (WHIP: ICE consent checks on the selected candidate pair).",
		}, []string{"channel"}),
		lost: f.NewCounterVec(prometheus.CounterOpts{
			Name: "seance_ingest_packets_lost_total",
			Help: "RTP packets from the publisher that never arrived, after NACK retransmissions (WHIP).",
		}, []string{"channel"}),
		badPackets: f.NewCounterVec(prometheus.CounterOpts{
			Name: "seance_ingest_bad_packets_total",
			Help: "RTP payloads from the publisher that could not be decoded and were skipped (WHIP), by kind.",
		}, []string{"channel", "kind"}),
	}
}
