package hls

import (
	"bytes"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/bluenviron/gohlslib/v2"
	"github.com/bluenviron/gohlslib/v2/pkg/codecs"

	"github.com/seance-relay/seance/relay"
)

// videoClockRate is H.264's timestamp clock in HLS (gohlslib requires it).
const videoClockRate = 90000

// errAudioChanged means the publisher changed its audio (added, removed or
// reconfigured it): the init segments and the multivariant playlist
// announce the old one, so the muxer must be recreated and players reload.
var errAudioChanged = errors.New("audio track changed")

// muxer is one live channel as HLS: a gohlslib Muxer fed by the channel's
// feeding goroutine (the only caller of write and close) and read by any
// number of HTTP requests (handle), in parallel.
//
// gohlslib holds some requests until the stream has what they ask for (a
// playlist before the first segment, a low-latency blocking reload, a
// preload-hinted part) and only a new segment or Close releases them.
// Those requests run on a helper goroutine each (see handler.go): slots
// bounds how many may wait at once, and close waits for them all.
type muxer struct {
	m      *gohlslib.Muxer
	video  *gohlslib.Track
	audio  *gohlslib.Track // nil: video only
	tracks *relay.Tracks
	// audioConfig is the marshalled AudioSpecificConfig the muxer
	// announces, nil without audio.
	audioConfig []byte
	// t0 is the wall-clock time of timeline zero, for the playlists'
	// EXT-X-PROGRAM-DATE-TIME.
	t0 time.Time
	// lowLatency says whether the variant is low-latency, whose media
	// playlists start with gaps (see gapFilter).
	lowLatency bool
	// gaps holds the gapFilter of each media playlist served so far, by
	// file name (gohlslib's: one per stream).
	gaps sync.Map

	slots  chan struct{}
	closed atomic.Bool

	// batch > 1 groups that many AAC frames per write (one PES packet):
	// an audio-only MPEG-TS rendition would otherwise spend more on TS
	// packet headers and stuffing than on its 40 kbit/s of audio.
	batch   int
	pending [][]byte
	pendPTS time.Duration
	pendNTP time.Time
}

// newMuxer starts a muxer for the tracks; audioOnly leaves the video out
// (the audio-only rendition).
func newMuxer(cfg Config, tr *relay.Tracks, audioOnly bool, onError func(error)) (*muxer, error) {
	if tr == nil || tr.Video == nil {
		return nil, relay.ErrNoVideo
	}
	mx := &muxer{
		tracks: tr,
		slots:  make(chan struct{}, maxWaiting),
	}
	mx.lowLatency = cfg.variant() == gohlslib.MuxerVariantLowLatency
	var tracks []*gohlslib.Track
	if !audioOnly {
		mx.video = &gohlslib.Track{
			Codec:     &codecs.H264{SPS: bytes.Clone(tr.Video.SPS), PPS: bytes.Clone(tr.Video.PPS)},
			ClockRate: videoClockRate,
		}
		tracks = append(tracks, mx.video)
	}
	if tr.Audio != nil && tr.Audio.Config != nil {
		asc, err := tr.Audio.Config.Marshal()
		if err != nil {
			return nil, fmt.Errorf("audio config: %w", err)
		}
		mx.audioConfig = asc
		mx.audio = &gohlslib.Track{
			Codec:     &codecs.MPEG4Audio{Config: *tr.Audio.Config},
			ClockRate: tr.Audio.Config.SampleRate,
		}
		tracks = append(tracks, mx.audio)
	}
	if len(tracks) == 0 {
		return nil, errors.New("an audio-only rendition needs audio")
	}
	if audioOnly && cfg.variant() == gohlslib.MuxerVariantMPEGTS {
		mx.batch = audioBatch
	}
	mx.m = &gohlslib.Muxer{
		Tracks:             tracks,
		Variant:            cfg.variant(),
		SegmentCount:       cfg.SegmentCount,
		SegmentMinDuration: cfg.SegmentDuration,
		PartMinDuration:    cfg.PartDuration,
		OnEncodeError:      onError,
	}
	if err := mx.m.Start(); err != nil {
		return nil, fmt.Errorf("hls muxer: %w", err)
	}
	return mx, nil
}

// write adds one frame. It returns errAudioChanged when the frame's tracks
// carry another audio config than the muxer's; new SPS/PPS need nothing:
// every IDR carries them in band (relay.Session.WriteH264 prepends them),
// and decoders follow them, also when the picture size changes.
func (mx *muxer) write(f *relay.Frame) error {
	if f.Tracks != nil && f.Tracks != mx.tracks {
		if !mx.sameAudio(f.Tracks.Audio) {
			return errAudioChanged
		}
		mx.tracks = f.Tracks
	}
	if mx.t0.IsZero() {
		arrived := f.Arrived
		if arrived.IsZero() {
			arrived = time.Now()
		}
		mx.t0 = arrived.Add(-f.PTS)
	}
	ntp := mx.t0.Add(f.PTS)
	switch f.Kind {
	case relay.KindVideo:
		if mx.video == nil || len(f.NALUs) == 0 {
			return nil
		}
		return mx.m.WriteH264(mx.video, ntp, timestamp(f.PTS, videoClockRate), f.NALUs)
	case relay.KindAudio:
		if mx.audio == nil || len(f.AU) == 0 {
			return nil
		}
		if mx.batch > 1 {
			return mx.writeBatched(f, ntp)
		}
		return mx.m.WriteMPEG4Audio(mx.audio, ntp, timestamp(f.PTS, mx.audio.ClockRate), [][]byte{f.AU})
	}
	return nil
}

// playlist returns the playlist file gohlslib made as seance serves it.
// Only playlists gohlslib answered 200 come here, so file names gohlslib's
// streams: gaps stays as small as that.
func (mx *muxer) playlist(file string, pl []byte) []byte {
	if !mx.lowLatency || file == "index.m3u8" {
		return pl
	}
	f, ok := mx.gaps.Load(file)
	if !ok {
		f, _ = mx.gaps.LoadOrStore(file, &gapFilter{})
	}
	return f.(*gapFilter).filter(pl)
}

// close ends the muxer: held requests are released (they answer 404) and
// close returns once every helper goroutine has finished. Only the feeding
// goroutine calls it, once.
func (mx *muxer) close() {
	mx.closed.Store(true)
	mx.m.Close()
	// Every slot taken by us means every helper has left.
	for range cap(mx.slots) {
		mx.slots <- struct{}{}
	}
}

// sameAudio reports whether a is the audio the muxer announces.
func (mx *muxer) sameAudio(a *relay.AudioTrack) bool {
	if a == nil || a.Config == nil {
		return mx.audio == nil
	}
	if mx.audio == nil {
		return false
	}
	b, err := a.Config.Marshal()
	return err == nil && bytes.Equal(b, mx.audioConfig)
}

// audioBatch is how many AAC frames go in one PES packet of an audio-only
// MPEG-TS rendition: about 340 ms at 48 kHz.
const audioBatch = 16

// writeBatched adds an AAC frame to the batch and writes the batch once
// full. Frames are consecutive on the channel timeline, so the batch's
// timestamp is its first frame's.
func (mx *muxer) writeBatched(f *relay.Frame, ntp time.Time) error {
	if len(mx.pending) == 0 {
		mx.pendPTS, mx.pendNTP = f.PTS, ntp
	}
	mx.pending = append(mx.pending, f.AU)
	if len(mx.pending) < mx.batch {
		return nil
	}
	aus := mx.pending
	mx.pending = nil
	return mx.m.WriteMPEG4Audio(mx.audio, mx.pendNTP, timestamp(mx.pendPTS, mx.audio.ClockRate), aus)
}

// timestamp converts a timeline position to clock units without
// overflowing for sessions of any length.
func timestamp(d time.Duration, clock int) int64 {
	c := int64(clock)
	return int64(d/time.Second)*c + int64(d%time.Second)*c/int64(time.Second)
}
