package transcode

import (
	"fmt"
	"time"

	"github.com/bluenviron/mediacommon/v2/pkg/codecs/mpeg4audio"
	"github.com/thesyncim/gopus"
	aac "github.com/tphakala/go-aac"
)

const (
	// aacRate and aacChannels are what OpusToAAC produces: AAC-LC 48 kHz
	// stereo, which YouTube recommends and which needs no resampling from
	// Opus (RFC 7587 section 4.1: Opus in RTP is always 48 kHz).
	aacRate     = 48000
	aacChannels = 2
	// DefaultAACBitrate is OpusToAAC's bitrate when none is given: 128 kbit/s
	// stereo, YouTube's recommendation for AAC-LC.
	DefaultAACBitrate = 128000
	// opusMaxFrameSamples is the longest Opus packet, 120 ms at 48 kHz
	// (RFC 6716 section 3.2.5).
	opusMaxFrameSamples = 5760
	// plcQuantum is the granularity of Opus packet loss concealment, 2.5 ms
	// at 48 kHz (the shortest Opus frame).
	plcQuantum = opusRate / 400
)

// aacFrameDuration is the duration of one 1024-sample AU at 48 kHz.
var aacFrameDuration = samplesDuration(aacFrameSamples, aacRate)

// OpusToAAC transcodes an Opus stream (any frame duration, mono or stereo,
// as WebRTC carries it) to AAC-LC 48 kHz stereo raw access units of 1024
// samples. It decodes with gopus and encodes with go-aac; both are pure Go.
//
// Output timestamps are continuous: access unit n is stamped with the time
// of the first input sample it carries, so the AAC stream lines up with the
// Opus input (and with the video timed from the same clock), the encoder's
// one-frame priming included. Packets lost by the network (a PTS gap up to
// 100 ms) are concealed with Opus PLC, so the AAC timeline does not slip; a
// bigger jump or a step backwards restarts the timeline at the new PTS,
// dropping the partial frame pending encoding. A packet that arrives after
// its stretch of audio was already produced (a late retransmission, a
// duplicate) is dropped. A malformed packet is skipped without consuming
// time.
//
// An OpusToAAC is not safe for concurrent use. It holds no goroutines or OS
// resources, so it has no Close; drop it when done.
type OpusToAAC struct {
	dec     *gopus.Decoder
	enc     *aac.Encoder
	encCfg  aac.EncoderConfig
	cfg     *mpeg4audio.AudioSpecificConfig
	pcm     []float32              // interleaved stereo output of one Opus packet
	planar  [aacChannels][]float32 // the AAC frame being filled
	frames  [aacChannels][]float32 // slice headers passed to the encoder
	filled  int                    // samples per channel in planar
	au      []byte                 // encoded access unit scratch
	plcLen  int                    // samples per channel of the last packet, for concealment
	hist    [2]time.Duration       // PTS of the last two frames submitted to the encoder
	nSubmit int64                  // frames submitted since the encoder started

	synced    bool
	inPTS     time.Duration // PTS of the first packet since the last sync
	inSamples int64         // samples per channel decoded since then
	outFrames int64         // AAC frames filled since the last sync
}

// NewOpusToAAC returns a transcoder that encodes at bitrate bit/s for the
// whole stereo stream; 0 means DefaultAACBitrate. Config describes its
// output.
func NewOpusToAAC(bitrate int) (*OpusToAAC, error) {
	if bitrate == 0 {
		bitrate = DefaultAACBitrate
	}
	if bitrate < 0 {
		return nil, fmt.Errorf("%w: negative AAC bitrate %d", ErrUnsupported, bitrate)
	}
	dec, err := gopus.NewDecoder(gopus.DefaultDecoderConfig(opusRate, aacChannels))
	if err != nil {
		return nil, fmt.Errorf("opus decoder: %w", err)
	}
	encCfg := aac.EncoderConfig{SampleRate: aacRate, Channels: aacChannels, Bitrate: bitrate}
	enc, err := aac.NewEncoder(encCfg)
	if err != nil {
		return nil, fmt.Errorf("aac encoder: %w", err)
	}
	t := &OpusToAAC{
		dec:    dec,
		enc:    enc,
		encCfg: encCfg,
		cfg:    &mpeg4audio.AudioSpecificConfig{Type: mpeg4audio.ObjectTypeAACLC, SampleRate: aacRate, ChannelConfig: aacChannels},
		pcm:    make([]float32, opusMaxFrameSamples*aacChannels),
		au:     make([]byte, 0, 6144/8*aacChannels),
		plcLen: opusFrameSamples,
	}
	for ch := range t.planar {
		t.planar[ch] = make([]float32, aacFrameSamples)
	}
	return t, nil
}

// Config returns the AudioSpecificConfig of the output (AAC-LC, 48 kHz,
// stereo). The caller must not modify it.
func (t *OpusToAAC) Config() *mpeg4audio.AudioSpecificConfig { return t.cfg }

// Transcode feeds one Opus packet with its PTS and calls emit, zero or more
// times before returning, with each AAC access unit completed. The au slice
// is only valid during the emit call.
//
// A malformed packet returns an error wrapping ErrBadFrame; it is skipped
// and the next packet decodes normally.
func (t *OpusToAAC) Transcode(pts time.Duration, opus []byte, emit func(pts time.Duration, au []byte)) error {
	if len(opus) == 0 {
		return fmt.Errorf("opus packet at %v: %w: empty packet", pts, ErrBadFrame)
	}
	if t.synced {
		drift := pts - (t.inPTS + samplesDuration(t.inSamples, opusRate))
		switch {
		case drift > resyncThreshold || drift < -resyncThreshold:
			t.synced = false
		case drift < -samplesDuration(plcQuantum, opusRate):
			// Already concealed or decoded: a late retransmission or a
			// duplicate.
			return nil
		case drift >= samplesDuration(plcQuantum, opusRate):
			if err := t.conceal(drift, emit); err != nil {
				return err
			}
		}
	}
	n, err := t.decode(opus)
	if err != nil {
		return fmt.Errorf("opus packet at %v: %w", pts, err)
	}
	if !t.synced {
		t.sync(pts)
	}
	t.plcLen = n
	return t.push(n, emit)
}

// conceal fills a gap of d with Opus packet loss concealment, in chunks no
// longer than the last packet.
func (t *OpusToAAC) conceal(d time.Duration, emit func(time.Duration, []byte)) error {
	missing := int(int64(d) * opusRate / int64(time.Second))
	missing -= missing % plcQuantum
	for missing > 0 {
		n := min(missing, t.plcLen)
		got, err := t.plc(n)
		if err != nil {
			return fmt.Errorf("%w: opus concealment: %w", ErrBadFrame, err)
		}
		if err := t.push(got, emit); err != nil {
			return err
		}
		missing -= n
	}
	return nil
}

// decode decodes one packet into t.pcm, converting a panic into ErrBadFrame:
// one publisher's malformed packet must not take down every channel.
func (t *OpusToAAC) decode(opus []byte) (n int, err error) {
	defer func() {
		if r := recover(); r != nil {
			t.dec.Reset()
			n, err = 0, fmt.Errorf("%w: opus decoder panicked: %v", ErrBadFrame, r)
		}
	}()
	n, err = t.dec.Decode(opus, t.pcm)
	if err != nil {
		return 0, fmt.Errorf("%w: %w", ErrBadFrame, err)
	}
	if n <= 0 {
		return 0, fmt.Errorf("%w: packet decodes to no audio", ErrBadFrame)
	}
	return n, nil
}

func (t *OpusToAAC) plc(n int) (got int, err error) {
	defer func() {
		if r := recover(); r != nil {
			t.dec.Reset()
			got, err = 0, fmt.Errorf("opus decoder panicked: %v", r)
		}
	}()
	return t.dec.Decode(nil, t.pcm[:n*aacChannels])
}

// push appends n decoded samples per channel to the AAC frame and encodes
// every frame it completes.
func (t *OpusToAAC) push(n int, emit func(time.Duration, []byte)) error {
	t.inSamples += int64(n)
	src := t.pcm[:n*aacChannels]
	for len(src) > 0 {
		k := min(aacFrameSamples-t.filled, len(src)/aacChannels)
		l, r := t.planar[0][t.filled:t.filled+k], t.planar[1][t.filled:t.filled+k]
		for i := range k {
			l[i] = clampSample(src[2*i])
			r[i] = clampSample(src[2*i+1])
		}
		src = src[k*aacChannels:]
		t.filled += k
		if t.filled < aacFrameSamples {
			return nil
		}
		t.filled = 0
		framePTS := t.inPTS + samplesDuration(t.outFrames*aacFrameSamples, aacRate)
		t.outFrames++
		if err := t.encode(framePTS, emit); err != nil {
			return err
		}
	}
	return nil
}

// encode submits the full frame stamped framePTS. go-aac delays its output
// by one frame and the decoder's first frame is priming (overlap-add with
// the previous frame), so the access unit that comes out now carries the
// audio submitted two frames ago: it gets that frame's PTS.
func (t *OpusToAAC) encode(framePTS time.Duration, emit func(time.Duration, []byte)) error {
	t.frames[0], t.frames[1] = t.planar[0], t.planar[1]
	au, err := t.enc.EncodeFrame(t.au[:0], t.frames[:])
	if err != nil {
		// Cannot happen with clamped, finite input; the encoder is
		// unusable after an error, so start a fresh stream.
		_ = t.enc.Reset(t.encCfg)
		t.nSubmit = 0
		return fmt.Errorf("%w: aac encode at %v: %w", ErrBadFrame, framePTS, err)
	}
	t.au = au[:0]
	var auPTS time.Duration
	switch t.nSubmit {
	case 0:
	case 1:
		auPTS = t.hist[0] - aacFrameDuration // the priming unit
	default:
		auPTS = t.hist[1]
	}
	t.hist[1], t.hist[0] = t.hist[0], framePTS
	t.nSubmit++
	if len(au) > 0 && emit != nil {
		emit(auPTS, au)
	}
	return nil
}

// sync restarts the input timeline at pts, dropping the partial frame.
func (t *OpusToAAC) sync(pts time.Duration) {
	t.synced = true
	t.inPTS, t.inSamples = pts, 0
	t.outFrames = 0
	t.filled = 0
}

// clampSample keeps encoder input finite and in range: go-aac rejects NaN
// and Inf for the rest of the stream.
func clampSample(v float32) float32 {
	switch {
	case v > 1:
		return 1
	case v < -1:
		return -1
	case v != v: // NaN
		return 0
	}
	return v
}
