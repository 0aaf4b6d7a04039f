package relay

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

// Warnings is the closed set of health warning names (the warning label of
// seance_health_warning). Keeping it closed keeps the label low-cardinality.
var Warnings = []string{
	WarnKeyframeInterval,
	WarnBFrames,
	WarnAudioCodec,
	WarnAudioSampleRate,
	WarnNoAudio,
	WarnTimestampJumps,
	WarnStalled,
}

// Health warning names, checked against YouTube's ingestion rules.
const (
	// WarnKeyframeInterval: keyframes more than 4 s apart (YouTube rejects them).
	WarnKeyframeInterval = "keyframe_interval"
	// WarnBFrames: the video has B-frames (WebRTC cannot carry them cleanly).
	WarnBFrames = "b_frames"
	// WarnAudioCodec: the audio is not AAC-LC.
	WarnAudioCodec = "audio_codec"
	// WarnAudioSampleRate: the audio is not 44.1 or 48 kHz.
	WarnAudioSampleRate = "audio_sample_rate"
	// WarnNoAudio: the publisher sends no audio track.
	WarnNoAudio = "no_audio"
	// WarnTimestampJumps: the publisher's timestamps jumped in the last minute.
	WarnTimestampJumps = "timestamp_jumps"
	// WarnStalled: the publisher is connected but sent no frame for 5 s.
	WarnStalled = "stalled"
)

// Metrics are the relay's Prometheus metrics. Create one per registry.
type Metrics struct {
	live        *prometheus.GaugeVec
	bytes       *prometheus.CounterVec
	frames      *prometheus.CounterVec
	bitrate     *prometheus.GaugeVec
	fps         *prometheus.GaugeVec
	keyint      *prometheus.GaugeVec
	reconnects  *prometheus.CounterVec
	jumps       *prometheus.CounterVec
	warning     *prometheus.GaugeVec
	sinkDropped *prometheus.CounterVec
	liveSeconds *prometheus.CounterVec
	publishers  *prometheus.CounterVec
	transcode   *prometheus.CounterVec
	slateActive *prometheus.GaugeVec
	slateSecs   *prometheus.CounterVec

	derivedState
}

// NewMetrics registers the relay's metrics on reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	f := promauto.With(reg)
	return &Metrics{
		live: f.NewGaugeVec(prometheus.GaugeOpts{
			Name: "seance_channel_live",
			Help: "1 while the channel is live (a publisher is sending, or the channel is within its grace period after the publisher left), else 0.",
		}, []string{"channel"}),
		bytes: f.NewCounterVec(prometheus.CounterOpts{
			Name: "seance_ingest_bytes_total",
			Help: "Media payload bytes received from the channel's publishers, by kind (video/audio).",
		}, []string{"channel", "kind"}),
		frames: f.NewCounterVec(prometheus.CounterOpts{
			Name: "seance_ingest_frames_total",
			Help: "Access units received from the channel's publishers, by kind (video/audio).",
		}, []string{"channel", "kind"}),
		bitrate: f.NewGaugeVec(prometheus.GaugeOpts{
			Name: "seance_ingest_bitrate_bits_per_second",
			Help: "Ingest bitrate (video + audio payload) over the last second.",
		}, []string{"channel"}),
		fps: f.NewGaugeVec(prometheus.GaugeOpts{
			Name: "seance_ingest_frames_per_second",
			Help: "Video frames received over the last second.",
		}, []string{"channel"}),
		keyint: f.NewGaugeVec(prometheus.GaugeOpts{
			Name: "seance_ingest_keyframe_interval_seconds",
			Help: "Time between the last two video keyframes (YouTube requires 4 s or less).",
		}, []string{"channel"}),
		reconnects: f.NewCounterVec(prometheus.CounterOpts{
			Name: "seance_ingest_reconnects_total",
			Help: "Publishers that came back within the channel's grace period (same session downstream).",
		}, []string{"channel"}),
		jumps: f.NewCounterVec(prometheus.CounterOpts{
			Name: "seance_ingest_timestamp_jumps_total",
			Help: "Publisher timestamp jumps (backwards or more than 5 s forwards) smoothed over by the relay.",
		}, []string{"channel"}),
		warning: f.NewGaugeVec(prometheus.GaugeOpts{
			Name: "seance_health_warning",
			Help: "1 while the health warning is active for the channel (see the README for each warning).",
		}, []string{"channel", "warning"}),
		sinkDropped: f.NewCounterVec(prometheus.CounterOpts{
			Name: "seance_sink_dropped_frames_total",
			Help: "Frames a slow sink (destination, viewer, recorder) could not take and skipped to the next keyframe.",
		}, []string{"channel", "sink"}),
		liveSeconds: f.NewCounterVec(prometheus.CounterOpts{
			Name: "seance_channel_live_seconds_total",
			Help: "Seconds the channel has been live.",
		}, []string{"channel"}),
		publishers: f.NewCounterVec(prometheus.CounterOpts{
			Name: "seance_ingest_publishers_total",
			Help: "Publisher sessions accepted, by ingest protocol.",
		}, []string{"channel", "protocol"}),
		transcode: f.NewCounterVec(prometheus.CounterOpts{
			Name: "seance_transcode_frames_total",
			Help: "Audio frames transcoded for WebRTC viewers (AAC to Opus), by result (ok, error). Errors are skipped frames.",
		}, []string{"channel", "result"}),
		slateActive: f.NewGaugeVec(prometheus.GaugeOpts{
			Name: "seance_slate_active",
			Help: "1 while the channel sends its slate (picture and silence) because the publisher is gone, else 0.",
		}, []string{"channel"}),
		slateSecs: f.NewCounterVec(prometheus.CounterOpts{
			Name: "seance_slate_seconds_total",
			Help: "Seconds of slate sent in place of the publisher's stream.",
		}, []string{"channel"}),
	}
}

// channelMetrics are one channel's pre-resolved metric children, so the
// per-frame path does no label lookup.
type channelMetrics struct {
	m           *Metrics
	name        string
	live        prometheus.Gauge
	bytes       [2]prometheus.Counter
	frames      [2]prometheus.Counter
	bitrate     prometheus.Gauge
	fps         prometheus.Gauge
	keyint      prometheus.Gauge
	reconnects  prometheus.Counter
	jumps       prometheus.Counter
	liveSeconds prometheus.Counter
	warning     map[string]prometheus.Gauge

	transcodeFrames prometheus.Counter
	transcodeErrors prometheus.Counter
	slateActive     prometheus.Gauge
	slateSeconds    prometheus.Counter
}

func (m *Metrics) forChannel(name string) *channelMetrics {
	cm := &channelMetrics{
		m:           m,
		name:        name,
		live:        m.live.WithLabelValues(name),
		bitrate:     m.bitrate.WithLabelValues(name),
		fps:         m.fps.WithLabelValues(name),
		keyint:      m.keyint.WithLabelValues(name),
		reconnects:  m.reconnects.WithLabelValues(name),
		jumps:       m.jumps.WithLabelValues(name),
		liveSeconds: m.liveSeconds.WithLabelValues(name),
		warning:     make(map[string]prometheus.Gauge, len(Warnings)),

		transcodeFrames: m.transcode.WithLabelValues(name, "ok"),
		transcodeErrors: m.transcode.WithLabelValues(name, "error"),
		slateActive:     m.slateActive.WithLabelValues(name),
		slateSeconds:    m.slateSecs.WithLabelValues(name),
	}
	for _, k := range []Kind{KindVideo, KindAudio} {
		cm.bytes[k] = m.bytes.WithLabelValues(name, k.String())
		cm.frames[k] = m.frames.WithLabelValues(name, k.String())
	}
	for _, w := range Warnings {
		cm.warning[w] = m.warning.WithLabelValues(name, w)
	}
	return cm
}

// knownSinks bounds the sink label.
var knownSinks = map[string]bool{"rtmp": true, "webrtc": true, "hls": true, "record": true, "rtsp": true, "rendition": true}

func (cm *channelMetrics) sinkDropped(sink string) prometheus.Counter {
	if !knownSinks[sink] {
		sink = "_other"
	}
	return cm.m.sinkDropped.WithLabelValues(cm.name, sink)
}
