package relay

import (
	"time"

	"github.com/bluenviron/mediacommon/v2/pkg/codecs/mpeg4audio"
)

// Health is a snapshot of a channel's stream health, for the admin API and
// the dashboard. Rates are over the last second.
type Health struct {
	State            State      `json:"state"`
	Since            time.Time  `json:"since"`
	Protocol         string     `json:"protocol,omitempty"`
	RemoteAddr       string     `json:"remote_addr,omitempty"`
	Video            *videoInfo `json:"video,omitempty"`
	Audio            *audioInfo `json:"audio,omitempty"`
	Bitrate          float64    `json:"bitrate_bps"`
	FPS              float64    `json:"fps"`
	KeyframeInterval float64    `json:"keyframe_interval_s"`
	BFrames          bool       `json:"b_frames"`
	TimestampJumps   uint64     `json:"timestamp_jumps"`
	Reconnects       uint64     `json:"publisher_reconnects"`
	// Slate is true while the slate is on air (the publisher is gone, or
	// back but its first keyframe has not come yet).
	Slate    bool     `json:"slate"`
	Warnings []string `json:"warnings"`
}

// audioInfo is what the AudioSpecificConfig says about an audio track.
type audioInfo struct {
	Codec      string `json:"codec"`
	SampleRate int    `json:"sample_rate"`
	Channels   int    `json:"channels"`
}

// health accumulates a channel's figures; it lives under Channel.mu.
type health struct {
	Health
	startedAt   time.Time
	lastFrameAt time.Time
	winStart    time.Time
	winBytes    int
	winFrames   int
	lastKeyDTS  time.Duration
	haveKey     bool
	lastJumpAt  time.Time
	warn        map[string]bool
}

func (h *health) onPublish(info PublisherInfo, t *Tracks) {
	h.Protocol, h.RemoteAddr = info.Protocol, info.RemoteAddr
	h.lastFrameAt = time.Now()
	if h.winStart.IsZero() {
		// The first rate window starts when the channel goes live, so the
		// first tick already reports the first second's frames.
		h.winStart = h.lastFrameAt
	}
	h.haveKey = false
	h.onTracks(t)
}

func (h *health) onTracks(t *Tracks) {
	vi := parseVideoInfo(t.Video)
	h.Video = &vi
	h.Audio = nil
	if t.Audio != nil && t.Audio.Config != nil {
		cfg := t.Audio.Config
		ai := audioInfo{Codec: aacName(cfg.Type), SampleRate: cfg.SampleRate, Channels: int(cfg.ChannelConfig)}
		if cfg.ChannelConfig == 7 {
			ai.Channels = 8
		}
		h.Audio = &ai
	}
}

func aacName(t mpeg4audio.ObjectType) string {
	switch t {
	case mpeg4audio.ObjectTypeAACLC:
		return "AAC-LC"
	case mpeg4audio.ObjectTypeSBR:
		return "HE-AAC"
	case mpeg4audio.ObjectTypePS:
		return "HE-AACv2"
	}
	return "AAC (other profile)"
}

func (h *health) onFrame(f *Frame, size int, jump bool) {
	now := f.Arrived
	h.lastFrameAt = now
	h.winBytes += size
	if jump {
		h.TimestampJumps++
		h.lastJumpAt = now
	}
	if f.Kind != KindVideo {
		return
	}
	h.winFrames++
	if f.PTS != f.DTS {
		h.BFrames = true
	}
	if f.Key {
		if h.haveKey && !jump {
			h.KeyframeInterval = (f.DTS - h.lastKeyDTS).Seconds()
		}
		h.lastKeyDTS, h.haveKey = f.DTS, true
	} else if h.haveKey {
		// A keyframe that is late already counts: do not wait for it to
		// arrive to say the interval is too long.
		if d := (f.DTS - h.lastKeyDTS).Seconds(); d > h.KeyframeInterval {
			h.KeyframeInterval = d
		}
	}
}

func (h *health) tick(now time.Time, publishing bool) {
	if !h.winStart.IsZero() {
		if el := now.Sub(h.winStart).Seconds(); el > 0 {
			h.Bitrate = float64(h.winBytes*8) / el
			h.FPS = float64(h.winFrames) / el
		}
	}
	h.winStart, h.winBytes, h.winFrames = now, 0, 0
	if h.warn == nil {
		h.warn = make(map[string]bool, len(Warnings))
	}
	h.warn[WarnKeyframeInterval] = h.KeyframeInterval > 4
	h.warn[WarnBFrames] = h.BFrames
	h.warn[WarnNoAudio] = h.Audio == nil
	h.warn[WarnAudioCodec] = h.Audio != nil && h.Audio.Codec != "AAC-LC"
	h.warn[WarnAudioSampleRate] = h.Audio != nil && h.Audio.SampleRate != 44100 && h.Audio.SampleRate != 48000
	h.warn[WarnTimestampJumps] = !h.lastJumpAt.IsZero() && now.Sub(h.lastJumpAt) < time.Minute
	h.warn[WarnStalled] = publishing && now.Sub(h.lastFrameAt) > 5*time.Second
	h.Warnings = h.Warnings[:0]
	for _, w := range Warnings {
		if h.warn[w] {
			h.Warnings = append(h.Warnings, w)
		}
	}
}

func (h *health) ended() {
	*h = health{}
}

// Health returns a snapshot of the channel's health.
func (c *Channel) Health() Health {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := c.health.Health
	out.State, out.Since = c.state, c.since
	out.Warnings = append([]string{}, c.health.Warnings...)
	if out.Video != nil {
		v := *out.Video
		out.Video = &v
	}
	if out.Audio != nil {
		a := *out.Audio
		out.Audio = &a
	}
	if c.state == StateIdle {
		out.Protocol, out.RemoteAddr = "", ""
	}
	return out
}
