package rtmp

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/abema/go-mp4"
	"github.com/bluenviron/gortmplib"
	"github.com/bluenviron/gortmplib/pkg/codecs"
	"github.com/bluenviron/gortmplib/pkg/message"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h264"

	"github.com/seance-relay/seance/relay"
)

// connectTimeout bounds DNS, TCP, TLS and the RTMP handshake up to the
// server's answer to publish.
const connectTimeout = 10 * time.Second

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
		_ = nc.SetWriteDeadline(time.Now().Add(d.cfg.WriteTimeout))
		if f.Tracks != tracks && f.Tracks != nil {
			// New parameters (the slate, or a publisher back with other
			// encoder settings): announced on the same connection, so
			// YouTube sees one broadcast.
			if err := writeSequenceHeaders(client, tracks, f.Tracks, f.DTS-base); err != nil {
				return d.wrap("send new stream headers", err)
			}
			tracks = f.Tracks
		}
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

// writeSequenceHeaders sends an AVC sequence header when the video
// parameters change from old to cur, and an AAC one when the audio
// configuration does (FLV 10.1 E.4.3.1 AVCPacketType 0, E.4.2.1
// AACPacketType 0), as encoders do mid-stream: decoders reconfigure at the
// next keyframe. Unchanged tracks send nothing.
func writeSequenceHeaders(client *gortmplib.Client, old, cur *relay.Tracks, dts time.Duration) error {
	dts = max(dts, 0)
	if v := cur.Video; v != nil && len(v.SPS) > 0 && len(v.PPS) > 0 &&
		(old.Video == nil || !bytes.Equal(old.Video.SPS, v.SPS) || !bytes.Equal(old.Video.PPS, v.PPS)) {
		avcc, err := avcConfig(v.SPS, v.PPS)
		if err != nil {
			return err
		}
		err = client.Write(&message.Video{
			ChunkStreamID:   message.VideoChunkStreamID,
			MessageStreamID: 0x1000000,
			Codec:           message.CodecH264,
			IsKeyFrame:      true,
			Type:            message.VideoTypeConfig,
			AVCConfig:       avcc,
			DTS:             dts,
		})
		if err != nil {
			return err
		}
	}
	if a := cur.Audio; a != nil && a.Config != nil && old.Audio != a && !sameAudioConfig(old.Audio, a) {
		return client.Write(&message.Audio{
			ChunkStreamID:   message.AudioChunkStreamID,
			MessageStreamID: 0x1000000,
			Codec:           message.CodecMPEG4Audio,
			Rate:            message.AudioRate44100,
			Depth:           message.AudioDepth16,
			IsStereo:        true,
			AACType:         message.AudioAACTypeConfig,
			AACConfig:       a.Config,
			DTS:             dts,
		})
	}
	return nil
}

func sameAudioConfig(a, b *relay.AudioTrack) bool {
	if a == nil || a.Config == nil || b == nil || b.Config == nil {
		return false
	}
	ea, erra := a.Config.Marshal()
	eb, errb := b.Config.Marshal()
	return erra == nil && errb == nil && bytes.Equal(ea, eb)
}

// avcConfig is the AVCDecoderConfigurationRecord of an SPS and a PPS
// (ISO 14496-15 5.3.3.1), as gortmplib's Writer builds it for the first
// sequence header.
func avcConfig(sps, pps []byte) (*mp4.AVCDecoderConfiguration, error) {
	var psps h264.SPS
	if err := psps.Unmarshal(sps); err != nil {
		return nil, fmt.Errorf("SPS: %w", err)
	}
	return &mp4.AVCDecoderConfiguration{
		AnyTypeBox:                 mp4.AnyTypeBox{Type: mp4.BoxTypeAvcC()},
		ConfigurationVersion:       1,
		Profile:                    psps.ProfileIdc,
		ProfileCompatibility:       sps[2],
		Level:                      psps.LevelIdc,
		Reserved:                   0b111111,
		LengthSizeMinusOne:         3,
		Reserved2:                  0b111,
		NumOfSequenceParameterSets: 1,
		SequenceParameterSets:      []mp4.AVCParameterSet{{Length: uint16(len(sps)), NALUnit: sps}},
		NumOfPictureParameterSets:  1,
		PictureParameterSets:       []mp4.AVCParameterSet{{Length: uint16(len(pps)), NALUnit: pps}},
	}, nil
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
