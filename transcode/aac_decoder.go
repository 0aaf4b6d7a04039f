package transcode

import (
	"errors"
	"fmt"
	"io"

	aacpcm "github.com/tphakala/go-aac/pcm"
)

const (
	// aacFrameSamples is the per-channel sample count of one AAC-LC access
	// unit (ISO 14496-3 4.5.1.1; the 960-sample variant is rejected).
	aacFrameSamples = 1024
	// aacMaxAUBytesPerChannel is the decoder input buffer size of AAC-LC,
	// 6144 bits per channel (ISO 14496-3 4.5.3.2). A bigger unit cannot be
	// valid, and rejecting it up front also bounds the copy below.
	aacMaxAUBytesPerChannel = 6144 / 8
)

// aacDecoder turns one raw AAC-LC access unit into one frame of interleaved
// int16 PCM.
//
// go-aac's only public decoder is the streaming pcm.Decoder (an io.Reader);
// its raw mode reads access units framed by a 2-byte big-endian length
// prefix. aacDecoder hands it exactly one prefixed unit per call through
// auSource, so the decoder's bufio layer never holds a partial unit, and reads
// exactly one frame back.
type aacDecoder struct {
	dec      *aacpcm.Decoder
	opt      aacpcm.Option
	src      auSource
	channels int
	out      []byte // decoded S16LE PCM; twice one frame, to catch oversize output
}

func newAACDecoder(asc []byte, channels int) (*aacDecoder, error) {
	d := &aacDecoder{
		opt:      aacpcm.WithRawStream(asc),
		channels: channels,
		out:      make([]byte, 2*aacFrameSamples*channels*2),
	}
	d.src.buf = make([]byte, 0, 2+aacMaxAUBytesPerChannel*channels)
	dec, err := aacpcm.NewDecoder(&d.src, d.opt)
	if err != nil {
		return nil, err
	}
	if info := dec.Info(); info.Channels != channels {
		return nil, fmt.Errorf("%w: decoder reports %d channels, config %d", ErrUnsupported, info.Channels, channels)
	}
	d.dec = dec
	return d, nil
}

// decode decodes au and returns its aacFrameSamples*channels interleaved
// little-endian int16 samples. The result is valid until the next call. Any failure is wrapped in
// ErrBadFrame and resets the decoder, whose state after an error is
// undefined; the next unit then decodes as the start of a stream.
func (d *aacDecoder) decode(au []byte) ([]byte, error) {
	if len(au) == 0 {
		return nil, fmt.Errorf("%w: empty access unit", ErrBadFrame)
	}
	if len(au) > aacMaxAUBytesPerChannel*d.channels {
		return nil, fmt.Errorf("%w: access unit of %d bytes exceeds %d", ErrBadFrame, len(au), aacMaxAUBytesPerChannel*d.channels)
	}
	d.src.buf = append(d.src.buf[:0], byte(len(au)>>8), byte(len(au)))
	d.src.buf = append(d.src.buf, au...)
	d.src.off = 0

	n, err := d.read()
	want := aacFrameSamples * d.channels * 2
	if err == nil && n != want {
		err = fmt.Errorf("decoded %d bytes of PCM, want %d", n, want)
	}
	if err == nil && d.src.off != len(d.src.buf) {
		err = errors.New("access unit not fully consumed")
	}
	if err != nil {
		if rerr := d.dec.Reset(&d.src, d.opt); rerr != nil {
			// Cannot happen: the same config was accepted at construction.
			return nil, fmt.Errorf("%w: %w (reset: %w)", ErrBadFrame, err, rerr)
		}
		return nil, fmt.Errorf("%w: %w", ErrBadFrame, err)
	}
	return d.out[:want], nil
}

// read runs one decoder Read, converting a panic into an error. go-aac is
// fuzzed upstream and documented never to panic; the guard exists because one
// publisher's malformed frame must not take down every channel of the relay.
func (d *aacDecoder) read() (n int, err error) {
	defer func() {
		if r := recover(); r != nil {
			n, err = 0, fmt.Errorf("%w: %v", errDecoderPanic, r)
		}
	}()
	n, err = d.dec.Read(d.out)
	if errors.Is(err, io.EOF) {
		// The unit decoded to no audio element, so the decoder asked for
		// the next unit and found none.
		err = errors.New("access unit carries no audio")
	}
	return n, err
}

// auSource is the io.Reader behind the decoder: it yields the current
// length-prefixed access unit, then io.EOF.
type auSource struct {
	buf []byte
	off int
}

func (s *auSource) Read(p []byte) (int, error) {
	if s.off >= len(s.buf) {
		return 0, io.EOF
	}
	n := copy(p, s.buf[s.off:])
	s.off += n
	return n, nil
}
