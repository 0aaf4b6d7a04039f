package whip

import (
	"bytes"
	"context"
	"encoding/binary"
	"io"
	"math"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pion/ice/v4"
	"github.com/pion/logging"
	"github.com/pion/webrtc/v4"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/rs/zerolog"
	"github.com/stretchr/testify/require"
	aacpcm "github.com/tphakala/go-aac/pcm"

	"github.com/seance-relay/seance/configs"
	"github.com/seance-relay/seance/ingest/whip/whiptest"
	"github.com/seance-relay/seance/relay"
)

// testKey is the ingest key of the test channels; distinctive, so a leak
// into the logs cannot be a coincidence.
const testKey = "whip-key-Vq3Zt8Rw2Lp"

// env is a hub with channels "conseil" and "mairie" (WHIP pushes with
// testKey) and "camera" (no ingest key), a WHIP server on a loopback
// httptest server, and its logs.
type env struct {
	hub  *relay.Hub
	srv  *Server
	reg  *prometheus.Registry
	url  string
	logs *syncBuffer
	stop func()
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// testSettingEngine is what publish/webrtc builds: one loopback UDP port
// for every session, viewers reaped within 10 s.
func testSettingEngine(t testing.TB) webrtc.SettingEngine {
	t.Helper()
	udp, err := net.ListenPacket("udp4", "127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(func() { udp.Close() })
	var se webrtc.SettingEngine
	lf := logging.NewDefaultLoggerFactory()
	lf.DefaultLogLevel = logging.LogLevelDisabled
	se.LoggerFactory = lf
	se.SetICEUDPMux(webrtc.NewICEUDPMux(lf.NewLogger("udpmux"), udp))
	se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4})
	se.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
	se.SetIncludeLoopbackCandidate(true)
	se.SetICETimeouts(4*time.Second, 6*time.Second, 2*time.Second)
	return se
}

func newEnv(t testing.TB, opts ...func(*Config)) *env {
	t.Helper()
	logs := &syncBuffer{}
	var w io.Writer = logs
	if _, fuzz := t.(*testing.F); !fuzz { // f.Helper panics inside the fuzz target
		w = io.MultiWriter(logs, zerolog.NewTestWriter(t))
	}
	log := zerolog.New(w).Level(zerolog.InfoLevel)
	reg := prometheus.NewRegistry()
	hub := relay.NewHub([]relay.ChannelConfig{
		{Name: "conseil", Grace: 30 * time.Second},
		{Name: "mairie"},
		{Name: "camera"},
	}, log, relay.NewMetrics(reg))
	cfg := Config{
		Keys:          map[string]configs.Secret{"conseil": testKey, "mairie": testKey},
		SettingEngine: testSettingEngine(t),
	}
	for _, o := range opts {
		o(&cfg)
	}
	srv, err := New(cfg, hub, log, reg)
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { _ = hub.Run(ctx) })
	wg.Go(func() { _ = srv.Run(ctx) })
	hs := httptest.NewServer(srv.Handler())
	e := &env{hub: hub, srv: srv, reg: reg, url: hs.URL, logs: logs}
	var once sync.Once
	e.stop = func() {
		once.Do(func() {
			hs.Close()
			cancel()
			wg.Wait()
		})
	}
	t.Cleanup(e.stop)
	return e
}

func (e *env) channel(t testing.TB, name string) *relay.Channel {
	t.Helper()
	ch, err := e.hub.Channel(name)
	require.NoError(t, err)
	return ch
}

// do sends a request and returns the response with its body read.
func (e *env) do(t testing.TB, method, path string, hdr map[string]string, body []byte) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(method, e.url+path, bytes.NewReader(body))
	require.NoError(t, err)
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp, string(b)
}

func (e *env) result(result string) float64 {
	return testutil.ToFloat64(e.srv.met.sessions.WithLabelValues(result))
}

var (
	videoOnce sync.Once
	videoAUs  [][][]byte
	videoErr  error
)

// testVideo is 6 s of 320x240 30 fps H.264: one IDR, then P-frames.
func testVideo(t testing.TB) [][][]byte {
	t.Helper()
	videoOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		videoAUs, videoErr = whiptest.EncodeH264(ctx, "320x240", 30, 6)
	})
	require.NoError(t, videoErr, "ffmpeg with libx264 is needed: run make test")
	return videoAUs
}

// newClient makes a publisher of the test video and a 440 Hz tone;
// Abandon runs at the end of the test if nothing else closed it.
func newClient(t testing.TB, o whiptest.Options) *whiptest.Client {
	t.Helper()
	if o.Video == nil && o.VideoCodec == "" {
		o.Video = testVideo(t)
	}
	c, err := whiptest.New(o)
	require.NoError(t, err)
	t.Cleanup(c.Abandon)
	return c
}

// publish connects a new client to channel and waits for the channel to
// go live.
func (e *env) publish(t testing.TB, channel string) *whiptest.Client {
	t.Helper()
	return e.publishWith(t, channel, whiptest.Options{ToneHz: 440})
}

func (e *env) publishWith(t testing.TB, channel string, o whiptest.Options) *whiptest.Client {
	t.Helper()
	c := newClient(t, o)
	require.NoError(t, c.Publish(t.Context(), e.url+"/whip/"+channel, testKey))
	require.NoError(t, c.WaitConnected(10*time.Second))
	ch := e.channel(t, channel)
	require.Eventually(t, func() bool {
		st, _ := ch.State()
		return st == relay.StateLive
	}, 10*time.Second, 10*time.Millisecond, "the channel goes live on the first keyframe")
	return c
}

// collect reads a subscription's frames until n video frames arrived.
func collect(t testing.TB, sub *relay.Subscription, videoFrames int, timeout time.Duration) []*relay.Frame {
	t.Helper()
	var out []*relay.Frame
	deadline := time.After(timeout)
	n := 0
	for n < videoFrames {
		select {
		case f := <-sub.Frames():
			out = append(out, f)
			if f.Kind == relay.KindVideo {
				n++
			}
		case <-deadline:
			t.Fatalf("got %d of %d video frames in %s", n, videoFrames, timeout)
		}
	}
	return out
}

// decodeAAC decodes the frames' AAC with go-aac and returns the first
// channel.
func decodeAAC(t testing.TB, asc []byte, frames []*relay.Frame) []float64 {
	t.Helper()
	var raw bytes.Buffer
	for _, f := range frames {
		if f.Kind == relay.KindAudio {
			raw.Write(binary.BigEndian.AppendUint16(nil, uint16(len(f.AU))))
			raw.Write(f.AU)
		}
	}
	dec, err := aacpcm.NewDecoder(&raw, aacpcm.WithRawStream(asc))
	require.NoError(t, err)
	pcm, err := io.ReadAll(dec)
	require.NoError(t, err)
	var left []float64
	for i := 0; i+3 < len(pcm); i += 4 {
		left = append(left, float64(int16(binary.LittleEndian.Uint16(pcm[i:])))/32768)
	}
	return left
}

// dominantHz returns the strongest frequency of x (48 kHz) between 50 and
// 4000 Hz, to 1 Hz.
func dominantHz(x []float64) float64 {
	goertzel := func(freq float64) float64 {
		coeff := 2 * math.Cos(2*math.Pi*freq/48000)
		var s1, s2 float64
		for i, v := range x {
			w := 0.5 - 0.5*math.Cos(2*math.Pi*float64(i)/float64(len(x)))
			s1, s2 = v*w+coeff*s1-s2, s1
		}
		return s1*s1 + s2*s2 - coeff*s1*s2
	}
	best, at := 0.0, 0.0
	for f := 50.0; f <= 4000; f += 10 {
		if p := goertzel(f); p > best {
			best, at = p, f
		}
	}
	for f := at - 10; f <= at+10; f++ {
		if p := goertzel(f); p > best {
			best, at = p, f
		}
	}
	return at
}

// dropConn is a client's UDP socket that can stop passing traffic, like a
// publisher whose network went away, or lose every nth media packet.
type dropConn struct {
	net.PacketConn
	gone    atomic.Bool
	every   atomic.Int64 // drop every nth packet over 500 bytes (video RTP)
	n       atomic.Int64
	dropped atomic.Int64
}

func newDropConn(t testing.TB) *dropConn {
	t.Helper()
	c, err := net.ListenPacket("udp4", "127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(func() { c.Close() })
	return &dropConn{PacketConn: c}
}

func (d *dropConn) WriteTo(p []byte, addr net.Addr) (int, error) {
	if d.gone.Load() {
		return len(p), nil
	}
	if every := d.every.Load(); every > 0 && len(p) > 500 && d.n.Add(1)%every == 0 {
		d.dropped.Add(1)
		return len(p), nil
	}
	return d.PacketConn.WriteTo(p, addr)
}

func (d *dropConn) ReadFrom(p []byte) (int, net.Addr, error) {
	for {
		n, addr, err := d.PacketConn.ReadFrom(p)
		if err != nil || !d.gone.Load() {
			return n, addr, err
		}
	}
}

func auth(token string) map[string]string {
	h := map[string]string{"Content-Type": "application/sdp"}
	if token != "" {
		h["Authorization"] = "Bearer " + token
	}
	return h
}

func stateOf(ch *relay.Channel) relay.State {
	st, _ := ch.State()
	return st
}
