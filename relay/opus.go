package relay

import (
	"bytes"
	"sync"
	"time"

	"github.com/seance-relay/seance/transcode"
)

// opusState is the channel's AAC → Opus transcoder. It runs on the
// publisher's goroutine, once per channel whatever the number of viewers,
// and only while a sink wants Opus.
type opusState struct {
	mu       sync.Mutex
	tc       *transcode.AACToOpus
	forTrack *AudioTrack
}

// WantOpus asks the channel to attach Opus packets to its audio frames
// (transcoded from AAC once per channel). Call the returned function when
// the sink no longer needs them.
func (c *Channel) WantOpus() (release func()) {
	c.opusUsers.Add(1)
	var once sync.Once
	return func() { once.Do(func() { c.opusUsers.Add(-1) }) }
}

// toOpus transcodes an AAC frame and attaches the resulting packets. A bad
// frame is counted and skipped; it never stops the channel.
func (c *Channel) toOpus(f *Frame) {
	tr := f.Tracks
	if tr == nil || tr.Audio == nil || tr.Audio.Config == nil {
		return
	}
	o := &c.opus
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.tc == nil || o.forTrack != tr.Audio {
		tc, err := transcode.NewAACToOpus(tr.Audio.Config)
		if err != nil {
			c.met.transcodeErrors.Inc()
			return
		}
		o.tc, o.forTrack = tc, tr.Audio
	}
	err := o.tc.Transcode(f.PTS, f.AU, func(pts time.Duration, pkt []byte) {
		f.Opus = append(f.Opus, OpusPacket{PTS: pts, Data: bytes.Clone(pkt)})
	})
	if err != nil {
		c.met.transcodeErrors.Inc()
		return
	}
	c.met.transcodeFrames.Inc()
}
