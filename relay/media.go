package relay

import (
	"strconv"
	"sync"
	"time"

	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h264"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/mpeg4audio"
)

// Kind says whether a frame is video or audio.
type Kind uint8

// Frame kinds.
const (
	KindVideo Kind = iota
	KindAudio
)

// String returns "video" or "audio", the value of the metrics' kind label.
func (k Kind) String() string {
	if k == KindVideo {
		return "video"
	}
	return "audio"
}

// Frame is one access unit on the channel's timeline. A frame is immutable
// once published: every subscriber shares the same *Frame, so sinks must not
// modify it.
type Frame struct {
	Kind Kind
	// PTS and DTS are on the channel's continuous timeline: they start near
	// zero when the channel goes live and keep increasing across publisher
	// reconnects within the grace period.
	PTS time.Duration
	DTS time.Duration
	// Key is true for a video IDR access unit (SPS and PPS are prepended).
	Key bool
	// NALUs is the H.264 access unit without start codes (video only).
	NALUs [][]byte
	// AVCC is NALUs in length-prefixed form, computed once per channel for
	// every FLV/MP4 sink (video only).
	AVCC []byte
	// AU is one raw AAC access unit (audio only).
	AU []byte
	// Tracks is the channel's track description in force for this frame.
	// It changes (new pointer) when the publisher changes parameters, and
	// while the slate is on air: slate frames carry the slate's VideoTrack
	// (its own SPS/PPS, maybe another size) with the live AudioTrack (the
	// same pointer, same configuration).
	Tracks *Tracks
	// Arrived is when the relay received the frame; sinks use it to tell
	// cached frames (fast start) from live ones.
	Arrived time.Time
	// Opus holds the audio frame transcoded to Opus (20 ms packets), set
	// while a sink asked for it with Channel.WantOpus (audio only).
	Opus []OpusPacket

	rtpOnce sync.Once
	rtp     [][]byte
}

// OpusPacket is one Opus packet on the channel timeline.
type OpusPacket struct {
	PTS  time.Duration
	Data []byte
}

// RTPPayloads returns a video frame's H.264 RTP payloads (RFC 6184, at
// most MaxRTPPayload bytes each), computed once for every RTP sink of the
// channel.
func (f *Frame) RTPPayloads() [][]byte {
	f.rtpOnce.Do(func() { f.rtp = packetizeH264(f) })
	return f.rtp
}

// Tracks describes what a publisher sends. Either field may be nil.
type Tracks struct {
	Video *VideoTrack
	Audio *AudioTrack
}

// VideoTrack is an H.264 track.
type VideoTrack struct {
	SPS []byte
	PPS []byte
}

// AudioTrack is an AAC track.
type AudioTrack struct {
	Config *mpeg4audio.AudioSpecificConfig
}

// PublisherInfo identifies a publisher for health and logs.
type PublisherInfo struct {
	// Protocol is the ingest protocol: "rtmp", "rtsp", "whip", "demo".
	Protocol string
	// RemoteAddr is the publisher's address, for the dashboard only (never
	// a metric label).
	RemoteAddr string
}

// videoInfo is what the SPS says about a video track.
type videoInfo struct {
	Codec   string  `json:"codec"`
	Profile string  `json:"profile"`
	Level   string  `json:"level"`
	Width   int     `json:"width"`
	Height  int     `json:"height"`
	FPS     float64 `json:"sps_fps,omitempty"`
}

func parseVideoInfo(t *VideoTrack) videoInfo {
	vi := videoInfo{Codec: "H.264"}
	var sps h264.SPS
	if t == nil || sps.Unmarshal(t.SPS) != nil {
		return vi
	}
	vi.Profile = h264ProfileName(sps.ProfileIdc, sps.ConstraintSet1Flag)
	vi.Level = h264LevelName(sps.LevelIdc)
	vi.Width = sps.Width()
	vi.Height = sps.Height()
	vi.FPS = sps.FPS()
	return vi
}

func h264ProfileName(idc uint8, cs1 bool) string {
	switch idc {
	case 66:
		if cs1 {
			return "Constrained Baseline"
		}
		return "Baseline"
	case 77:
		return "Main"
	case 88:
		return "Extended"
	case 100:
		return "High"
	case 110:
		return "High 10"
	case 122:
		return "High 4:2:2"
	case 244:
		return "High 4:4:4"
	}
	return "unknown"
}

func h264LevelName(idc uint8) string {
	if idc == 9 {
		return "1b"
	}
	if idc%10 == 0 {
		return strconv.Itoa(int(idc / 10))
	}
	return strconv.Itoa(int(idc/10)) + "." + strconv.Itoa(int(idc%10))
}
