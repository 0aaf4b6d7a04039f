// Package transcode converts audio between the codecs of seance's ingest and
// publish sides: AAC from RTMP publishers to Opus for WebRTC viewers. Each
// channel transcodes once, whatever the number of viewers.
package transcode

import (
	"fmt"
	"slices"
	"time"

	"github.com/bluenviron/mediacommon/v2/pkg/codecs/mpeg4audio"
	"github.com/thesyncim/gopus"
)

const (
	// opusRate and opusChannels are what WebRTC negotiates for Opus
	// (RFC 7587 section 7: the SDP rtpmap is always opus/48000/2).
	opusRate     = 48000
	opusChannels = 2
	// opusFrameSamples is one 20 ms frame per channel, the ptime browsers
	// default to (RFC 7587 section 4.2).
	opusFrameSamples  = opusRate / 50
	opusFrameDuration = 20 * time.Millisecond
	// opusBitrate: council speech is near transparent at 32 kbit/s in
	// Opus fullband stereo, and the watch page's « Son seul » (audio-only
	// WHEP) then stays under 64 kbit/s on the wire, RTP, SRTP, UDP and IP
	// headers included (50 packets/s, ~20 kbit/s of headers; VBR may
	// overshoot its target by 10 %).
	opusBitrate        = 32000
	opusMaxPacketBytes = 4000 // gopus's recommended bound for any packet

	// resyncThreshold is how far an access unit's PTS may stray from the
	// sample clock before the output timeline restarts at it. RTMP
	// timestamps are whole milliseconds, so normal jitter is ~1 ms; a jump
	// past this is a publisher reconnect or a dropped stretch of input.
	resyncThreshold = 100 * time.Millisecond
)

// aacSampleRates are the AAC sampling frequency table values (ISO 14496-3
// table 1.18); go-aac decodes no escape-coded rate.
var aacSampleRates = [...]int{96000, 88200, 64000, 48000, 44100, 32000, 24000, 22050, 16000, 12000, 11025, 8000, 7350}

// AACToOpus transcodes an AAC-LC stream (mono or stereo, any standard sample
// rate) to Opus at 48 kHz stereo in 20 ms frames at 64 kbit/s VBR. It decodes
// each access unit with go-aac, resamples to 48 kHz with a polyphase
// windowed-sinc filter, copies mono to both channels, and encodes with gopus.
// Everything is pure Go.
//
// The encoder uses the Opus "audio" application rather than "voip": the relay
// is one-way broadcast with no echo or talk-over to optimise for, council
// audio carries room ambience, applause and sometimes music besides speech,
// and voip mode's speech-only processing (it favours SILK and narrower
// bands) would cost fidelity that 64 kbit/s can afford.
//
// Output timestamps advance exactly 20 ms per packet from the PTS of the
// first access unit. When an access unit's PTS strays more than 100 ms from
// the time implied by the samples decoded since then, the timeline restarts
// at that PTS and the partial frame pending encoding (under 20 ms) is
// dropped. A malformed access unit is skipped without consuming time.
//
// An AACToOpus is not safe for concurrent use. It holds no goroutines or OS
// resources, so it has no Close; drop it when done.
type AACToOpus struct {
	inRate int
	dec    *aacDecoder
	rs     *resampler
	enc    *gopus.Encoder
	frame  []float32 // interleaved 48 kHz stereo samples of the frame being filled
	filled int       // samples per channel in frame
	packet []byte

	synced    bool
	inPTS     time.Duration // PTS of the first access unit since the last sync
	inSamples int64         // samples per channel decoded since then
	outPTS    time.Duration // PTS of the first packet since the last sync
	outFrames int64         // packets produced since then
}

// NewAACToOpus returns a transcoder for the AAC-LC stream described by cfg.
// It returns an error wrapping ErrUnsupported for HE-AAC (SBR or PS),
// 960-sample frames, more than two channels or a non-standard sample rate.
func NewAACToOpus(cfg *mpeg4audio.AudioSpecificConfig) (*AACToOpus, error) {
	if cfg == nil {
		return nil, fmt.Errorf("%w: no AudioSpecificConfig", ErrUnsupported)
	}
	if cfg.Type != mpeg4audio.ObjectTypeAACLC {
		return nil, fmt.Errorf("%w: AAC object type %d, want %d (AAC-LC)", ErrUnsupported, cfg.Type, mpeg4audio.ObjectTypeAACLC)
	}
	if cfg.ExtensionType == mpeg4audio.ObjectTypeSBR || cfg.ExtensionType == mpeg4audio.ObjectTypePS {
		return nil, fmt.Errorf("%w: HE-AAC (extension object type %d)", ErrUnsupported, cfg.ExtensionType)
	}
	if cfg.FrameLengthFlag {
		return nil, fmt.Errorf("%w: 960-sample AAC frames", ErrUnsupported)
	}
	channels := int(cfg.ChannelConfig)
	if channels != 1 && channels != 2 {
		return nil, fmt.Errorf("%w: AAC channel configuration %d, want 1 or 2", ErrUnsupported, channels)
	}
	if !slices.Contains(aacSampleRates[:], cfg.SampleRate) {
		return nil, fmt.Errorf("%w: AAC sample rate %d Hz", ErrUnsupported, cfg.SampleRate)
	}

	// Re-marshal a minimal config: exactly the fields checked above.
	asc, err := mpeg4audio.AudioSpecificConfig{
		Type:          cfg.Type,
		SampleRate:    cfg.SampleRate,
		ChannelConfig: cfg.ChannelConfig,
	}.Marshal()
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrUnsupported, err)
	}
	dec, err := newAACDecoder(asc, channels)
	if err != nil {
		return nil, fmt.Errorf("%w: aac decoder: %w", ErrUnsupported, err)
	}

	enc, err := gopus.NewEncoder(gopus.EncoderConfig{
		SampleRate:  opusRate,
		Channels:    opusChannels,
		Application: gopus.ApplicationAudio,
	})
	if err != nil {
		return nil, fmt.Errorf("opus encoder: %w", err)
	}
	if err := enc.SetBitrate(opusBitrate); err != nil {
		return nil, fmt.Errorf("opus bitrate: %w", err)
	}

	return &AACToOpus{
		inRate: cfg.SampleRate,
		dec:    dec,
		rs:     newResampler(cfg.SampleRate, opusRate, channels, aacFrameSamples),
		enc:    enc,
		frame:  make([]float32, opusFrameSamples*opusChannels),
		packet: make([]byte, opusMaxPacketBytes),
	}, nil
}

// Transcode feeds one raw AAC access unit (no ADTS header) with its PTS and
// calls emit, zero or more times before returning, with each 20 ms Opus
// packet the unit completes. The opus slice is only valid during the emit
// call: it is overwritten by the next packet, so emit must copy it to keep
// it.
//
// A malformed unit returns an error wrapping ErrBadFrame; it is skipped and
// the next unit decodes normally. In steady state Transcode makes one 2-byte
// allocation, inside go-aac's raw-stream reader.
func (t *AACToOpus) Transcode(pts time.Duration, au []byte, emit func(pts time.Duration, opus []byte)) error {
	pcm, err := t.dec.decode(au)
	if err != nil {
		return fmt.Errorf("aac access unit at %v: %w", pts, err)
	}

	if t.synced {
		drift := pts - (t.inPTS + samplesDuration(t.inSamples, t.inRate))
		if drift > resyncThreshold || drift < -resyncThreshold {
			t.synced = false
		}
	}
	if !t.synced {
		t.sync(pts)
	}
	t.inSamples += aacFrameSamples

	t.rs.push(pcm)
	for {
		t.filled += t.rs.pull(t.frame[t.filled*opusChannels:])
		if t.filled < opusFrameSamples {
			return nil
		}
		t.filled = 0
		framePTS := t.outPTS + time.Duration(t.outFrames)*opusFrameDuration
		t.outFrames++
		n, err := t.enc.Encode(t.frame, t.packet)
		if err != nil {
			return fmt.Errorf("opus encode at %v: %w", framePTS, err)
		}
		if n > 0 && emit != nil {
			emit(framePTS, t.packet[:n])
		}
	}
}

// sync restarts the output timeline at pts, dropping buffered audio.
func (t *AACToOpus) sync(pts time.Duration) {
	t.synced = true
	t.inPTS, t.inSamples = pts, 0
	t.outPTS, t.outFrames = pts, 0
	t.filled = 0
	t.rs.reset()
}

// samplesDuration converts a sample count to a duration without overflowing
// for streams of any realistic length.
func samplesDuration(n int64, rate int) time.Duration {
	r := int64(rate)
	return time.Duration(n/r)*time.Second + time.Duration(n%r)*time.Second/time.Duration(r)
}
