package webrtc

import (
	"errors"
	"strings"
	"sync/atomic"

	"github.com/pion/webrtc/v4"
)

// track is a TrackLocal for one viewer. Unlike pion's static tracks it does
// no packetisation of its own: the session writes RTP headers it builds
// around payloads shared by the whole channel.
type track struct {
	id, stream string
	kind       webrtc.RTPCodecType
	codec      webrtc.RTPCodecCapability
	// want is the payload type the answer holds (0: the first of the
	// codec's): pion binds with every negotiated payload type, not only
	// the answered ones.
	want webrtc.PayloadType

	// bound is set by Bind and cleared by Unbind; the writer loads it
	// once per frame.
	bound atomic.Pointer[binding]
}

// binding is what a bound track writes with.
type binding struct {
	ssrc   uint32
	pt     uint8
	writer webrtc.TrackLocalWriter
}

var errNoCodec = errors.New("the viewer's browser accepts none of the stream's codecs")

// Bind implements webrtc.TrackLocal: it picks the payload type the viewer
// negotiated for the codec.
func (t *track) Bind(ctx webrtc.TrackLocalContext) (webrtc.RTPCodecParameters, error) {
	for _, c := range ctx.CodecParameters() {
		if codecMatches(c.RTPCodecCapability, t.codec) && (t.want == 0 || c.PayloadType == t.want) {
			t.bound.Store(&binding{ssrc: uint32(ctx.SSRC()), pt: uint8(c.PayloadType), writer: ctx.WriteStream()})
			return c, nil
		}
	}
	return webrtc.RTPCodecParameters{}, errNoCodec
}

// Unbind implements webrtc.TrackLocal.
func (t *track) Unbind(webrtc.TrackLocalContext) error {
	t.bound.Store(nil)
	return nil
}

// ID implements webrtc.TrackLocal.
func (t *track) ID() string { return t.id }

// RID implements webrtc.TrackLocal.
func (t *track) RID() string { return "" }

// StreamID implements webrtc.TrackLocal.
func (t *track) StreamID() string { return t.stream }

// Kind implements webrtc.TrackLocal.
func (t *track) Kind() webrtc.RTPCodecType { return t.kind }

// binding returns what the session needs to write, once bound.
func (t *track) binding() (writer webrtc.TrackLocalWriter, ssrc uint32, pt uint8, ok bool) {
	b := t.bound.Load()
	if b == nil {
		return nil, 0, 0, false
	}
	return b.writer, b.ssrc, b.pt, true
}

func codecMatches(a, b webrtc.RTPCodecCapability) bool {
	return strings.EqualFold(a.MimeType, b.MimeType)
}
