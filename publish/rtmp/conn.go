package rtmp

import (
	"context"
	"errors"
	"strings"
	"time"

	"github.com/bluenviron/gortmplib"
	"github.com/bluenviron/gortmplib/pkg/codecs"
	"github.com/bluenviron/gortmplib/pkg/message"

	"github.com/seance-relay/seance/relay"
)

// connectTimeout bounds DNS, TCP, TLS and the RTMP handshake up to the
// server's answer to publish.
const connectTimeout = 10 * time.Second

var errTracksChanged = errors.New("the publisher changed its video parameters: reconnecting to send them")

// runOnce subscribes (unless sub, which it then owns, is already
// subscribed), connects, and streams until the channel ends (nil), ctx is
// cancelled, an operator stops it (errStopped) or the connection fails.
func (d *Destination) runOnce(ctx context.Context, sub *relay.Subscription) error {
	if sub == nil {
		sub = d.ch.Subscribe("rtmp", queueFrames)
	}
	defer sub.Close()
	defer func() {
		d.mu.Lock()
		d.status.Dropped += sub.Dropped()
		d.mu.Unlock()
	}()

	// The first frame is a keyframe (from the GOP cache or the next one):
	// it carries the parameters the connection announces.
	var first *relay.Frame
	for first == nil {
		st, changed := d.ch.State()
		if st == relay.StateIdle {
			return nil
		}
		select {
		case <-ctx.Done():
			return nil
		case on := <-d.control:
			if !on {
				return errStopped
			}
		case <-changed:
		case first = <-sub.Frames():
		}
	}
	tracks := first.Tracks

	cctx, cancel := context.WithTimeout(ctx, connectTimeout)
	u := *d.cfg.URL
	client := &gortmplib.Client{URL: &u, Publish: true}
	err := client.Initialize(cctx)
	cancel()
	if err != nil {
		return d.wrap("connect", err)
	}
	defer client.Close()
	nc := client.NetConn()

	vt := &gortmplib.Track{Codec: &codecs.H264{SPS: tracks.Video.SPS, PPS: tracks.Video.PPS}}
	wtracks := []*gortmplib.Track{vt}
	if tracks.Audio != nil {
		wtracks = append(wtracks, &gortmplib.Track{Codec: &codecs.MPEG4Audio{Config: tracks.Audio.Config}})
	}
	_ = nc.SetWriteDeadline(time.Now().Add(d.cfg.WriteTimeout))
	w := &gortmplib.Writer{Conn: client, Tracks: wtracks}
	if err := w.Initialize(); err != nil {
		return d.wrap("send stream headers", err)
	}

	d.setState(StateLive, nil)
	// YouTube rejects keyframe intervals over 4 s: publishers that make
	// keyframes on demand (WHIP) are asked for one every 2 s meanwhile.
	defer d.ch.WantPeriodicKeyframes()()
	// Each connection's timestamps start at zero.
	base := first.DTS
	sent := client.BytesSent()
	lastAcct := time.Now()
	defer func() { d.met.connected.Add(time.Since(lastAcct).Seconds()) }()

	_, changed := d.ch.State()
	f := first
	for {
		if f.Tracks != tracks && !sameVideo(f.Tracks, tracks) {
			return errTracksChanged
		}
		_ = nc.SetWriteDeadline(time.Now().Add(d.cfg.WriteTimeout))
		if err := writeFrame(client, f, base); err != nil {
			return d.wrap("send", err)
		}
		if n := client.BytesSent(); n != sent {
			d.met.bytes.Add(float64(n - sent))
			d.mu.Lock()
			d.status.Bytes += n - sent
			d.mu.Unlock()
			sent = n
		}
		if now := time.Now(); now.Sub(lastAcct) >= time.Second {
			d.met.connected.Add(now.Sub(lastAcct).Seconds())
			lastAcct = now
		}

		f = nil
		for f == nil {
			select {
			case <-ctx.Done():
				d.sendEnd(client, nc)
				return nil
			case on := <-d.control:
				if !on {
					d.sendEnd(client, nc)
					return errStopped
				}
			case <-changed:
				var st relay.State
				if st, changed = d.ch.State(); st == relay.StateIdle {
					d.sendEnd(client, nc)
					return nil
				}
			case f = <-sub.Frames():
			}
		}
	}
}

func sameVideo(a, b *relay.Tracks) bool {
	return string(a.Video.SPS) == string(b.Video.SPS) && string(a.Video.PPS) == string(b.Video.PPS)
}

// writeFrame sends one frame. The AVCC payload was built once for every
// destination of the channel; only the chunking is per connection.
func writeFrame(client *gortmplib.Client, f *relay.Frame, base time.Duration) error {
	dts := f.DTS - base
	if f.Kind == relay.KindVideo {
		return client.Write(&message.Video{
			ChunkStreamID:   message.VideoChunkStreamID,
			MessageStreamID: 0x1000000,
			Codec:           message.CodecH264,
			IsKeyFrame:      f.Key,
			Type:            message.VideoTypeAU,
			AU:              f.AVCC,
			DTS:             dts,
			PTSDelta:        f.PTS - f.DTS,
		})
	}
	if dts < 0 {
		// Audio cached just before the first keyframe: drop it rather
		// than send a negative timestamp.
		return nil
	}
	return client.Write(&message.Audio{
		ChunkStreamID:   message.AudioChunkStreamID,
		MessageStreamID: 0x1000000,
		Codec:           message.CodecMPEG4Audio,
		Rate:            message.AudioRate44100,
		Depth:           message.AudioDepth16,
		IsStereo:        true,
		AACType:         message.AudioAACTypeAU,
		AU:              f.AU,
		DTS:             dts,
	})
}

// sendEnd tells the server the stream is over (FCUnpublish, deleteStream),
// as OBS and ffmpeg do, so YouTube ends the broadcast at once instead of
// waiting for a timeout.
func (d *Destination) sendEnd(client *gortmplib.Client, nc interface{ SetWriteDeadline(time.Time) error }) {
	_ = nc.SetWriteDeadline(time.Now().Add(2 * time.Second))
	_ = client.Write(&message.CommandAMF0{
		ChunkStreamID: 3,
		Name:          "FCUnpublish",
		CommandID:     6,
		Arguments:     []any{nil, d.cfg.URL.Fragment},
	})
	_ = client.Write(&message.CommandAMF0{
		ChunkStreamID: 3,
		Name:          "deleteStream",
		CommandID:     7,
		Arguments:     []any{nil, float64(1)},
	})
}

func replaceAll(s, old, repl string) string { return strings.ReplaceAll(s, old, repl) }
