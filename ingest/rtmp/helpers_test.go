package rtmp

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/bluenviron/gortmplib"
	"github.com/bluenviron/gortmplib/pkg/codecs"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h264"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/mpeg4audio"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
	"github.com/stretchr/testify/require"

	"github.com/seance-relay/seance/configs"
	"github.com/seance-relay/seance/relay"
)

// Distinctive keys: no log line may ever contain them.
const (
	testChannel = "bourg-sur-gironde"
	testKey     = "k3y-S3CRET-bourg-7f2c9a"
	otherKey    = "k3y-S3CRET-other-51be0d"
)

const (
	videoStep = time.Second / 30
	audioStep = 1024 * time.Second / 44100
)

// syncBuffer collects log output written from several goroutines.
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

// testServer is a Server running on 127.0.0.1:0 in front of a fresh hub.
type testServer struct {
	srv  *Server
	hub  *relay.Hub
	reg  *prometheus.Registry
	logs *syncBuffer

	cancel   context.CancelFunc
	done     chan error
	stopOnce sync.Once
	runErr   error
}

// startServer starts a server with four channels: testChannel and "other"
// take pushes with their keys, "nokey" is not in Keys, "emptykey" has an
// unset key. It is stopped when the test ends.
func startServer(t testing.TB) *testServer {
	t.Helper()
	return startServerWith(t, nil)
}

// startServerWith is startServer with the config changed by edit.
func startServerWith(t testing.TB, edit func(*Config)) *testServer {
	t.Helper()
	reg := prometheus.NewRegistry()
	logs := &syncBuffer{}
	log := zerolog.New(zerolog.MultiLevelWriter(zerolog.NewTestWriter(t), logs))
	hub := relay.NewHub([]relay.ChannelConfig{
		{Name: testChannel, Title: "Conseil municipal de Bourg"},
		{Name: "other", Title: "Autre"},
		{Name: "nokey", Title: "Sans clé"},
		{Name: "emptykey", Title: "Clé vide"},
	}, log, relay.NewMetrics(reg))
	cfg := Config{
		Listen: "127.0.0.1:0",
		Keys: map[string]configs.Secret{
			testChannel: testKey,
			"other":     otherKey,
			"emptykey":  "",
		},
	}
	if edit != nil {
		edit(&cfg)
	}
	srv, err := New(cfg, hub, log, reg)
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	ts := &testServer{srv: srv, hub: hub, reg: reg, logs: logs, cancel: cancel, done: make(chan error, 1)}
	go func() { ts.done <- srv.Run(ctx) }()
	t.Cleanup(func() { require.NoError(t, ts.stop()) })
	return ts
}

// stop cancels Run and waits for it to return (at most 10 s).
func (ts *testServer) stop() error {
	ts.stopOnce.Do(func() {
		ts.cancel()
		select {
		case ts.runErr = <-ts.done:
		case <-time.After(10 * time.Second):
			ts.runErr = errors.New("Run did not return within 10 s of cancel")
		}
	})
	return ts.runErr
}

func (ts *testServer) channel(t testing.TB, name string) *relay.Channel {
	t.Helper()
	ch, err := ts.hub.Channel(name)
	require.NoError(t, err)
	return ch
}

func (ts *testServer) state(t testing.TB, name string) relay.State {
	st, _ := ts.channel(t, name).State()
	return st
}

// connections returns seance_rtmp_connections_total{result=result}.
func (ts *testServer) connections(t testing.TB, result string) float64 {
	t.Helper()
	return counterValue(t, ts.reg, "seance_rtmp_connections_total", map[string]string{"result": result})
}

// counterValue reads one counter from reg; 0 when it was never touched.
func counterValue(t testing.TB, reg prometheus.Gatherer, name string, labels map[string]string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	require.NoError(t, err)
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	metrics:
		for _, m := range mf.GetMetric() {
			got := map[string]string{}
			for _, lp := range m.GetLabel() {
				got[lp.GetName()] = lp.GetValue()
			}
			for k, v := range labels {
				if got[k] != v {
					continue metrics
				}
			}
			return m.GetCounter().GetValue()
		}
	}
	return 0
}

// testMedia is three access units of a real libx264 stream (320x240,
// testsrc2): an IDR with SPS, PPS and SEI in front, then two P frames.
// Made with:
//
//	ffmpeg -f lavfi -i testsrc2=size=320x240:rate=30 -frames:v 3 -c:v libx264 \
//	  -preset veryfast -threads 1 -g 30 -bf 0 -pix_fmt yuv420p \
//	  -bsf:v h264_mp4toannexb -f h264 testdata/testsrc2.h264
type testMedia struct {
	sps, pps []byte
	aus      [][][]byte
}

func loadMedia(t testing.TB) testMedia {
	t.Helper()
	buf, err := os.ReadFile("testdata/testsrc2.h264")
	require.NoError(t, err)
	var nalus h264.AnnexB
	require.NoError(t, nalus.Unmarshal(buf))
	var m testMedia
	var au [][]byte
	for _, n := range nalus {
		switch h264.NALUType(n[0] & 0x1f) {
		case h264.NALUTypeSPS:
			m.sps = n
		case h264.NALUTypePPS:
			m.pps = n
		}
		au = append(au, n)
		if typ := h264.NALUType(n[0] & 0x1f); typ == h264.NALUTypeIDR || typ == h264.NALUTypeNonIDR {
			m.aus = append(m.aus, au)
			au = nil
		}
	}
	require.Len(t, m.aus, 3)
	require.True(t, h264.IsRandomAccess(m.aus[0]))
	require.NotEmpty(t, m.sps)
	require.NotEmpty(t, m.pps)
	return m
}

func aacConfig() *mpeg4audio.AudioSpecificConfig {
	return &mpeg4audio.AudioSpecificConfig{Type: mpeg4audio.ObjectTypeAACLC, SampleRate: 44100, ChannelConfig: 2}
}

// silentAAC is one AAC-LC stereo access unit of silence.
var silentAAC = []byte{0x21, 0x10, 0x04, 0x60, 0x8c, 0x1c}

// publishURL is how Jibri is told to push: the stream name (channel and
// query) travels as the RTMP stream key, which gortmplib takes from the
// URL fragment.
func publishURL(addr net.Addr, streamName string) string {
	return fmt.Sprintf("rtmp://%s/live#%s", addr, streamName)
}

// publisher is an RTMP client publishing H.264 and AAC.
type publisher struct {
	client *gortmplib.Client
	w      *gortmplib.Writer
	vt, at *gortmplib.Track
	media  testMedia
	video  int           // video frames written
	now    time.Duration // DTS of the next video frame
	audio  time.Duration // DTS of the next audio frame
}

// dial connects and sends publish (or play when publish is false); it
// fails when the server refuses.
func dial(t testing.TB, rawURL string, publish bool, dialer func(ctx context.Context, network, addr string) (net.Conn, error)) (*gortmplib.Client, error) {
	t.Helper()
	u, err := url.Parse(rawURL)
	require.NoError(t, err)
	c := &gortmplib.Client{URL: u, Publish: publish, DialContext: dialer}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := c.Initialize(ctx); err != nil {
		return nil, err
	}
	return c, nil
}

// startPublisher connects, publishes and sends the stream headers. The
// connection is closed when the test ends.
func startPublisher(t testing.TB, m testMedia, rawURL string, dialer func(ctx context.Context, network, addr string) (net.Conn, error)) (*publisher, error) {
	t.Helper()
	c, err := dial(t, rawURL, true, dialer)
	if err != nil {
		return nil, err
	}
	t.Cleanup(c.Close)
	p := &publisher{
		client: c,
		vt:     &gortmplib.Track{Codec: &codecs.H264{SPS: m.sps, PPS: m.pps}},
		at:     &gortmplib.Track{Codec: &codecs.MPEG4Audio{Config: aacConfig()}},
		media:  m,
	}
	p.w = &gortmplib.Writer{Conn: c, Tracks: []*gortmplib.Track{p.vt, p.at}}
	_ = c.NetConn().SetWriteDeadline(time.Now().Add(5 * time.Second))
	if err := p.w.Initialize(); err != nil {
		return nil, err
	}
	return p, nil
}

// write sends d worth of 30 fps video (a keyframe every second) with its
// audio, as fast as the connection takes it.
func (p *publisher) write(d time.Duration) error {
	return p.writeWith(d, nil)
}

// writeWith is write with an optional replacement for the P frames.
func (p *publisher) writeWith(d time.Duration, pframe [][]byte) error {
	_ = p.client.NetConn().SetWriteDeadline(time.Now().Add(5 * time.Second))
	end := p.now + d
	for p.now < end {
		for p.audio <= p.now {
			if err := p.w.WriteMPEG4Audio(p.at, p.audio, silentAAC); err != nil {
				return err
			}
			p.audio += audioStep
		}
		au := p.media.aus[0]
		if p.video%30 != 0 {
			au = p.media.aus[1+p.video%2]
			if pframe != nil {
				au = pframe
			}
		}
		if err := p.w.WriteH264(p.vt, p.now, p.now, au); err != nil {
			return err
		}
		p.video++
		p.now += videoStep
	}
	return nil
}

// goLive publishes to testChannel with the right key and sends enough
// media for the server to detect the tracks (gortmplib analyses 2 s).
func goLive(t testing.TB, ts *testServer, m testMedia) *publisher {
	t.Helper()
	p, err := startPublisher(t, m, publishURL(ts.srv.Addr(), testChannel+"?key="+testKey), nil)
	require.NoError(t, err)
	require.NoError(t, p.write(2500*time.Millisecond))
	require.Eventually(t, func() bool { return ts.state(t, testChannel) == relay.StateLive },
		5*time.Second, 5*time.Millisecond, "the channel did not go live")
	return p
}

// waitClosed reads from c until the server closes it.
func waitClosed(t testing.TB, c net.Conn) {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, err := io.Copy(io.Discard, c)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		t.Fatal("the server did not close the connection")
	}
}

// recordingConn records what a client sends.
type recordingConn struct {
	net.Conn
	mu  sync.Mutex
	buf bytes.Buffer
}

func (c *recordingConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	c.buf.Write(p)
	c.mu.Unlock()
	return c.Conn.Write(p)
}

func (c *recordingConn) bytes() []byte {
	c.mu.Lock()
	defer c.mu.Unlock()
	return bytes.Clone(c.buf.Bytes())
}
