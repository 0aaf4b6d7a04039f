package relay

import (
	"context"
	"encoding/hex"
	"testing"
	"time"

	"github.com/bluenviron/mediacommon/v2/pkg/codecs/mpeg4audio"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
	"github.com/stretchr/testify/require"
)

// Parameter sets produced by ffmpeg/libx264 (High profile, 30 fps):
//
//	ffmpeg -f lavfi -i testsrc2=size=1280x720:rate=30 -frames:v 1 -c:v libx264 \
//	  -bsf:v h264_mp4toannexb -f h264 -
var (
	sps720  = mustHex("6764001facd9405005bb0110000003001000000303c0f1831960") // 1280x720 High 3.1
	sps360  = mustHex("6764001eacd940a02ff970110000030001000003003c0f162d96") // 640x360 High 3.0
	testPPS = mustHex("68ebe3cb22c0")
	audNALU = []byte{0x09, 0xf0}       // access unit delimiter
	fdNALU  = []byte{0x0c, 0xff, 0xff} // filler data
	seiNALU = []byte{0x06, 0x05, 0x01, 0x00, 0x80}
)

const (
	videoStep = time.Second / 30
	audioStep = 1024 * time.Second / 44100
)

func mustHex(s string) []byte {
	b, err := hex.DecodeString(s)
	if err != nil {
		panic(err)
	}
	return b
}

// nalu returns a NALU of the given type (nal_ref_idc 3 for IDR, 2 for
// others) with size-1 bytes of dummy payload.
func nalu(typ byte, size int) []byte {
	b := make([]byte, size)
	ref := byte(2 << 5)
	if typ == 5 {
		ref = 3 << 5
	}
	b[0] = ref | typ
	for i := 1; i < size; i++ {
		b[i] = byte(i)
	}
	return b
}

func idrNALU(size int) []byte { return nalu(5, size) }
func pNALU(size int) []byte   { return nalu(1, size) }

func aacConfig(objType mpeg4audio.ObjectType, rate int) *mpeg4audio.AudioSpecificConfig {
	return &mpeg4audio.AudioSpecificConfig{Type: objType, SampleRate: rate, ChannelConfig: 2}
}

// aacLC44 is the AAC config of a Jibri stream: AAC-LC, 44.1 kHz, stereo.
func aacLC44() *mpeg4audio.AudioSpecificConfig {
	return aacConfig(mpeg4audio.ObjectTypeAACLC, 44100)
}

func avTracks() Tracks {
	return Tracks{
		Video: &VideoTrack{SPS: sps720, PPS: testPPS},
		Audio: &AudioTrack{Config: aacLC44()},
	}
}

func videoOnly() Tracks {
	return Tracks{Video: &VideoTrack{SPS: sps720, PPS: testPPS}}
}

var testPublisher = PublisherInfo{Protocol: "rtmp", RemoteAddr: "192.0.2.10:50000"}

// newTestHub builds a hub with a fresh registry and a test logger. Its
// channels are closed when the test ends (which stops grace timers).
func newTestHub(t *testing.T, cfgs ...ChannelConfig) (*Hub, *prometheus.Registry) {
	t.Helper()
	reg := prometheus.NewRegistry()
	h := NewHub(cfgs, zerolog.New(zerolog.NewTestWriter(t)), NewMetrics(reg))
	t.Cleanup(func() {
		for _, c := range h.Channels() {
			c.close()
		}
	})
	return h, reg
}

// newTestChannel returns the single channel of a new hub.
func newTestChannel(t *testing.T, grace time.Duration) (*Channel, *prometheus.Registry) {
	t.Helper()
	h, reg := newTestHub(t, ChannelConfig{Name: "bourg", Title: "Conseil", Grace: grace})
	c, err := h.Channel("bourg")
	require.NoError(t, err)
	return c, reg
}

func publish(t *testing.T, c *Channel, tr Tracks) *Session {
	t.Helper()
	s, err := c.Publish(testPublisher, tr)
	require.NoError(t, err)
	return s
}

// startHub runs h.Run in a goroutine; the returned function cancels it
// and checks that Run returned nil.
func startHub(t *testing.T, h *Hub) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- h.Run(ctx) }()
	return func() {
		cancel()
		require.NoError(t, <-done)
	}
}

// feed is a publisher writing video at 30 fps (a keyframe every gop
// frames) with the publisher's own timestamps starting at base.
type feed struct {
	s     *Session
	base  time.Duration
	gop   int
	n     int
	size  int           // NALU size of each frame
	cts   time.Duration // PTS - DTS (B-frames)
	audio bool          // write one AAC frame per video frame
}

func newFeed(s *Session, base time.Duration, gop int) *feed {
	return &feed{s: s, base: base, gop: gop, size: 1000}
}

func (f *feed) dts() time.Duration { return f.base + time.Duration(f.n)*videoStep }

// next writes the next video frame (and an audio frame if enabled).
func (f *feed) next() {
	dts := f.dts()
	if f.n%f.gop == 0 {
		f.s.WriteH264(dts+f.cts, dts, [][]byte{audNALU, sps720, testPPS, idrNALU(f.size)})
	} else {
		f.s.WriteH264(dts+f.cts, dts, [][]byte{audNALU, pNALU(f.size)})
	}
	if f.audio {
		f.s.WriteAAC(dts, make([]byte, 200))
	}
	f.n++
}

func (f *feed) frames(n int) {
	for range n {
		f.next()
	}
}

// drain returns every frame waiting in the subscription's queue.
func drain(sub *Subscription) []*Frame {
	var out []*Frame
	for {
		select {
		case f := <-sub.Frames():
			out = append(out, f)
		default:
			return out
		}
	}
}

func onlyKind(fs []*Frame, k Kind) []*Frame {
	var out []*Frame
	for _, f := range fs {
		if f.Kind == k {
			out = append(out, f)
		}
	}
	return out
}

// requireClosed checks that a State change channel has fired.
func requireClosed(t *testing.T, ch <-chan struct{}) {
	t.Helper()
	select {
	case <-ch:
	default:
		t.Fatal("state change channel did not fire")
	}
}

func requireOpen(t *testing.T, ch <-chan struct{}) {
	t.Helper()
	select {
	case <-ch:
		t.Fatal("state change channel fired without a state change")
	default:
	}
}

func requireState(t *testing.T, c *Channel, want State) {
	t.Helper()
	got, _ := c.State()
	require.Equal(t, want, got, "channel state")
}
