package pull

import (
	"bytes"
	"context"
	"net"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/bluenviron/gortsplib/v4"
	"github.com/bluenviron/gortsplib/v4/pkg/base"
	"github.com/bluenviron/gortsplib/v4/pkg/description"
	"github.com/bluenviron/gortsplib/v4/pkg/format"
	"github.com/bluenviron/gortsplib/v4/pkg/liberrors"
	"github.com/pion/rtp"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/rs/zerolog"
	"github.com/stretchr/testify/require"

	"github.com/seance-relay/seance/relay"
)

const testChannel = "bourg-sur-gironde"

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

// fixture is a running hub with one channel and the pieces a puller needs.
type fixture struct {
	hub  *relay.Hub
	ch   *relay.Channel
	reg  *prometheus.Registry
	met  *Metrics
	logs *syncBuffer
	log  zerolog.Logger
}

// newFixture runs a hub with testChannel (grace as given) until the test
// ends.
func newFixture(t *testing.T, grace time.Duration) *fixture {
	t.Helper()
	reg := prometheus.NewRegistry()
	logs := &syncBuffer{}
	log := zerolog.New(zerolog.MultiLevelWriter(zerolog.NewTestWriter(t), logs))
	hub := relay.NewHub([]relay.ChannelConfig{{Name: testChannel, Grace: grace}}, log, relay.NewMetrics(reg))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		_ = hub.Run(ctx)
		close(done)
	}()
	t.Cleanup(func() {
		cancel()
		<-done
	})
	ch, err := hub.Channel(testChannel)
	require.NoError(t, err)
	return &fixture{hub: hub, ch: ch, reg: reg, met: NewMetrics(reg), logs: logs, log: log}
}

// run runs p until the test ends.
func (f *fixture) run(t *testing.T, p *Puller) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			require.NoError(t, err)
		case <-time.After(10 * time.Second):
			t.Error("puller did not stop within 10 s of its context being cancelled")
		}
	})
}

func (f *fixture) reconnectsMetric(t *testing.T) float64 {
	t.Helper()
	return testutil.ToFloat64(f.met.reconnects.WithLabelValues(testChannel))
}

// mediaFile has ffmpeg write a short H.264 + AAC clip, as an IP camera
// would send it: no B-frames, a keyframe every second.
func mediaFile(t testing.TB, size string) string {
	t.Helper()
	for _, tool := range []string{"ffmpeg"} {
		_, err := exec.LookPath(tool)
		require.NoError(t, err, "%s is missing: run make test (installs ffmpeg)", tool)
	}
	file := filepath.Join(t.TempDir(), "camera.mkv")
	out, err := exec.CommandContext(t.Context(), "ffmpeg", "-nostdin", "-v", "error",
		"-f", "lavfi", "-i", "testsrc2=size="+size+":rate=30",
		"-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000",
		"-t", "4", "-c:v", "libx264", "-preset", "veryfast", "-pix_fmt", "yuv420p", "-g", "30", "-bf", "0",
		"-c:a", "aac", "-b:a", "96k", file).CombinedOutput()
	require.NoError(t, err, "ffmpeg: %s", out)
	return file
}

// rtspServer is a gortsplib server standing in for an IP camera: ffmpeg
// publishes into it (ANNOUNCE/RECORD), seance reads from it.
type rtspServer struct {
	t        *testing.T
	srv      *gortsplib.Server
	user     string
	pass     string
	mu       sync.Mutex
	stream   *gortsplib.ServerStream
	pub      *gortsplib.ServerSession
	played   []gortsplib.Transport
	recorded chan struct{} // closed when a publisher records
	ffmpeg   *exec.Cmd
	ffDone   chan struct{}
	ffOut    syncBuffer
}

// rtspPorts are the addresses of a test RTSP server: fixed across a
// restart of the server.
type rtspPorts struct {
	rtsp            string
	udpRTP, udpRTCP string
}

func freeRTSPPorts(t *testing.T) rtspPorts {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	p := rtspPorts{rtsp: ln.Addr().String()}
	require.NoError(t, ln.Close())
	// RTP on an even port, RTCP on the next one (RFC 3550 11).
	for range 100 {
		c, err := net.ListenPacket("udp", "127.0.0.1:0")
		require.NoError(t, err)
		port := c.LocalAddr().(*net.UDPAddr).Port
		c.Close()
		if port%2 == 1 {
			port++
		}
		a, errA := net.ListenPacket("udp", "127.0.0.1:"+strconv.Itoa(port))
		b, errB := net.ListenPacket("udp", "127.0.0.1:"+strconv.Itoa(port+1))
		if a != nil {
			a.Close()
		}
		if b != nil {
			b.Close()
		}
		if errA == nil && errB == nil {
			p.udpRTP = "127.0.0.1:" + strconv.Itoa(port)
			p.udpRTCP = "127.0.0.1:" + strconv.Itoa(port+1)
			return p
		}
	}
	t.Fatal("no free pair of UDP ports")
	return p
}

// startRTSPServer serves rtsp://ports.rtsp/cam from file (looped by
// ffmpeg; no file: nothing to serve); with user set, reading needs those
// credentials.
func startRTSPServer(t *testing.T, ports rtspPorts, file, user, pass string) *rtspServer {
	t.Helper()
	s := &rtspServer{t: t, user: user, pass: pass, recorded: make(chan struct{})}
	s.srv = &gortsplib.Server{
		Handler:        s,
		RTSPAddress:    ports.rtsp,
		UDPRTPAddress:  ports.udpRTP,
		UDPRTCPAddress: ports.udpRTCP,
	}
	require.NoError(t, s.srv.Start())
	t.Cleanup(s.stop)
	if file == "" {
		return s
	}
	s.ffDone = make(chan struct{})
	s.ffmpeg = exec.CommandContext(t.Context(), "ffmpeg", "-nostdin", "-v", "error", "-re", "-stream_loop", "-1",
		"-i", file, "-c", "copy", "-f", "rtsp", "-rtsp_transport", "tcp", "rtsp://"+ports.rtsp+"/cam")
	s.ffmpeg.Stdout, s.ffmpeg.Stderr = &s.ffOut, &s.ffOut
	require.NoError(t, s.ffmpeg.Start())
	go func() {
		_ = s.ffmpeg.Wait()
		close(s.ffDone)
	}()
	select {
	case <-s.recorded:
	case <-s.ffDone:
		t.Fatalf("ffmpeg exited before publishing: %s", s.ffOut.String())
	case <-time.After(15 * time.Second):
		t.Fatalf("ffmpeg did not publish within 15 s: %s", s.ffOut.String())
	}
	return s
}

// stop kills the publisher and closes the server. It is idempotent.
func (s *rtspServer) stop() {
	if s.ffmpeg != nil && s.ffmpeg.Process != nil {
		_ = s.ffmpeg.Process.Kill()
		<-s.ffDone
	}
	s.srv.Close()
}

func (s *rtspServer) OnConnOpen(*gortsplib.ServerHandlerOnConnOpenCtx)   {}
func (s *rtspServer) OnConnClose(*gortsplib.ServerHandlerOnConnCloseCtx) {}

func (s *rtspServer) OnSessionClose(ctx *gortsplib.ServerHandlerOnSessionCloseCtx) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stream != nil && ctx.Session == s.pub {
		s.stream.Close()
		s.stream = nil
	}
}

func (s *rtspServer) authorized(c *gortsplib.ServerConn, req *base.Request) bool {
	return s.user == "" || c.VerifyCredentials(req, s.user, s.pass)
}

func (s *rtspServer) OnDescribe(ctx *gortsplib.ServerHandlerOnDescribeCtx) (*base.Response, *gortsplib.ServerStream, error) {
	if !s.authorized(ctx.Conn, ctx.Request) {
		return &base.Response{StatusCode: base.StatusUnauthorized}, nil, liberrors.ErrServerAuth{}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stream == nil {
		return &base.Response{StatusCode: base.StatusNotFound}, nil, nil
	}
	return &base.Response{StatusCode: base.StatusOK}, s.stream, nil
}

func (s *rtspServer) OnAnnounce(ctx *gortsplib.ServerHandlerOnAnnounceCtx) (*base.Response, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stream != nil {
		return &base.Response{StatusCode: base.StatusBadRequest}, nil
	}
	s.stream = &gortsplib.ServerStream{Server: s.srv, Desc: ctx.Description}
	if err := s.stream.Initialize(); err != nil {
		return &base.Response{StatusCode: base.StatusInternalServerError}, nil
	}
	s.pub = ctx.Session
	return &base.Response{StatusCode: base.StatusOK}, nil
}

func (s *rtspServer) OnSetup(ctx *gortsplib.ServerHandlerOnSetupCtx) (*base.Response, *gortsplib.ServerStream, error) {
	if ctx.Session.State() == gortsplib.ServerSessionStatePreRecord {
		return &base.Response{StatusCode: base.StatusOK}, nil, nil
	}
	if !s.authorized(ctx.Conn, ctx.Request) {
		return &base.Response{StatusCode: base.StatusUnauthorized}, nil, liberrors.ErrServerAuth{}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stream == nil {
		return &base.Response{StatusCode: base.StatusNotFound}, nil, nil
	}
	return &base.Response{StatusCode: base.StatusOK}, s.stream, nil
}

func (s *rtspServer) OnPlay(ctx *gortsplib.ServerHandlerOnPlayCtx) (*base.Response, error) {
	s.mu.Lock()
	s.played = append(s.played, *ctx.Session.SetuppedTransport())
	s.mu.Unlock()
	return &base.Response{StatusCode: base.StatusOK}, nil
}

// transports returns the transport of every reader that played, in order.
func (s *rtspServer) transports() []gortsplib.Transport {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]gortsplib.Transport(nil), s.played...)
}

func (s *rtspServer) OnRecord(ctx *gortsplib.ServerHandlerOnRecordCtx) (*base.Response, error) {
	s.mu.Lock()
	stream := s.stream
	s.mu.Unlock()
	ctx.Session.OnPacketRTPAny(func(medi *description.Media, _ format.Format, pkt *rtp.Packet) {
		_ = stream.WritePacketRTP(medi, pkt)
	})
	close(s.recorded)
	return &base.Response{StatusCode: base.StatusOK}, nil
}

// received counts what a subscription got, from a goroutine the test owns.
type received struct {
	mu          sync.Mutex
	video, keys int
	audio       int
	firstKey    *relay.Frame
	lastAt      time.Time
}

func (r *received) snapshot() (video, keys, audio int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.video, r.keys, r.audio
}

// consume reads sub until the test ends.
func consume(t *testing.T, sub *relay.Subscription) *received {
	r := &received{}
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			select {
			case <-stop:
				return
			case f := <-sub.Frames():
				r.mu.Lock()
				switch {
				case f.Kind == relay.KindAudio:
					r.audio++
				case f.Key:
					r.keys++
					r.video++
					if r.firstKey == nil {
						r.firstKey = f
					}
				default:
					r.video++
				}
				r.lastAt = time.Now()
				r.mu.Unlock()
			}
		}
	}()
	t.Cleanup(func() {
		close(stop)
		<-done
		sub.Close()
	})
	return r
}
