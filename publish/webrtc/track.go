package webrtc

import (
	"errors"
	"strings"
	"sync"

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

	mu     sync.Mutex
	bound  bool
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
			t.mu.Lock()
			t.bound, t.ssrc, t.pt, t.writer = true, uint32(ctx.SSRC()), uint8(c.PayloadType), ctx.WriteStream()
			t.mu.Unlock()
			return c, nil
		}
	}
	return webrtc.RTPCodecParameters{}, errNoCodec
}

// Unbind implements webrtc.TrackLocal.
func (t *track) Unbind(webrtc.TrackLocalContext) error {
	t.mu.Lock()
	t.bound, t.writer = false, nil
	t.mu.Unlock()
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
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.writer, t.ssrc, t.pt, t.bound
}

func codecMatches(a, b webrtc.RTPCodecCapability) bool {
	return strings.EqualFold(a.MimeType, b.MimeType)
}
