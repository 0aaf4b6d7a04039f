package main

import (
	"fmt"
	"net"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/bluenviron/gortsplib/v4"
	"github.com/bluenviron/gortsplib/v4/pkg/base"
	"github.com/bluenviron/gortsplib/v4/pkg/description"
	"github.com/bluenviron/gortsplib/v4/pkg/format"
	"github.com/bluenviron/gortsplib/v4/pkg/liberrors"
	"github.com/pion/rtp"
	"github.com/stretchr/testify/require"
)

const (
	secretCamPassword = "cam-pw-Yt6Rq2Xs9Lb3"
	secretPullYTKey   = "yt-key-pull-N5gH8kT2wQ"
)

// pullCamera is an IP camera stand-in: a gortsplib server that ffmpeg
// publishes a looped clip into, readable at rtsp://addr/cam with the
// credentials admin / secretCamPassword.
type pullCamera struct {
	srv      *gortsplib.Server
	addr     string
	mu       sync.Mutex
	stream   *gortsplib.ServerStream
	pub      *gortsplib.ServerSession
	recorded chan struct{}
}

func startPullCamera(t *testing.T) *pullCamera {
	t.Helper()
	clip := filepath.Join(t.TempDir(), "camera.mkv")
	out, err := exec.CommandContext(t.Context(), "ffmpeg", "-nostdin", "-v", "error",
		"-f", "lavfi", "-i", "testsrc2=size=1280x720:rate=30",
		"-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000",
		"-t", "4", "-c:v", "libx264", "-preset", "veryfast", "-pix_fmt", "yuv420p", "-g", "30", "-bf", "0",
		"-c:a", "aac", "-b:a", "128k", clip).CombinedOutput()
	require.NoError(t, err, "ffmpeg: %s", out)

	c := &pullCamera{addr: net.JoinHostPort("127.0.0.1", fmt.Sprint(freePort(t))), recorded: make(chan struct{})}
	c.srv = &gortsplib.Server{Handler: c, RTSPAddress: c.addr}
	require.NoError(t, c.srv.Start())
	t.Cleanup(c.srv.Close)

	ff := exec.CommandContext(t.Context(), "ffmpeg", "-nostdin", "-v", "error", "-re", "-stream_loop", "-1",
		"-i", clip, "-c", "copy", "-f", "rtsp", "-rtsp_transport", "tcp", "rtsp://"+c.addr+"/cam")
	ffOut := &syncBuffer{}
	ff.Stdout, ff.Stderr = ffOut, ffOut
	require.NoError(t, ff.Start())
	ffDone := make(chan struct{})
	go func() {
		_ = ff.Wait()
		close(ffDone)
	}()
	t.Cleanup(func() {
		_ = ff.Process.Kill()
		<-ffDone
	})
	select {
	case <-c.recorded:
	case <-ffDone:
		t.Fatalf("ffmpeg exited before publishing to the camera: %s", ffOut)
	case <-time.After(15 * time.Second):
		t.Fatalf("ffmpeg did not publish to the camera within 15 s: %s", ffOut)
	}
	return c
}

func (c *pullCamera) OnConnOpen(*gortsplib.ServerHandlerOnConnOpenCtx)   {}
func (c *pullCamera) OnConnClose(*gortsplib.ServerHandlerOnConnCloseCtx) {}

func (c *pullCamera) OnSessionClose(ctx *gortsplib.ServerHandlerOnSessionCloseCtx) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.stream != nil && ctx.Session == c.pub {
		c.stream.Close()
		c.stream = nil
	}
}

func (c *pullCamera) OnDescribe(ctx *gortsplib.ServerHandlerOnDescribeCtx) (*base.Response, *gortsplib.ServerStream, error) {
	return c.read(ctx.Conn, ctx.Request)
}

func (c *pullCamera) OnSetup(ctx *gortsplib.ServerHandlerOnSetupCtx) (*base.Response, *gortsplib.ServerStream, error) {
	if ctx.Session.State() == gortsplib.ServerSessionStatePreRecord {
		return &base.Response{StatusCode: base.StatusOK}, nil, nil
	}
	return c.read(ctx.Conn, ctx.Request)
}

// read checks a reader's credentials and hands it the stream.
func (c *pullCamera) read(conn *gortsplib.ServerConn, req *base.Request) (*base.Response, *gortsplib.ServerStream, error) {
	if !conn.VerifyCredentials(req, "admin", secretCamPassword) {
		return &base.Response{StatusCode: base.StatusUnauthorized}, nil, liberrors.ErrServerAuth{}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.stream == nil {
		return &base.Response{StatusCode: base.StatusNotFound}, nil, nil
	}
	return &base.Response{StatusCode: base.StatusOK}, c.stream, nil
}

func (c *pullCamera) OnAnnounce(ctx *gortsplib.ServerHandlerOnAnnounceCtx) (*base.Response, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.stream != nil {
		return &base.Response{StatusCode: base.StatusBadRequest}, nil
	}
	c.stream = &gortsplib.ServerStream{Server: c.srv, Desc: ctx.Description}
	if err := c.stream.Initialize(); err != nil {
		return &base.Response{StatusCode: base.StatusInternalServerError}, nil
	}
	c.pub = ctx.Session
	return &base.Response{StatusCode: base.StatusOK}, nil
}

func (c *pullCamera) OnPlay(*gortsplib.ServerHandlerOnPlayCtx) (*base.Response, error) {
	return &base.Response{StatusCode: base.StatusOK}, nil
}

func (c *pullCamera) OnRecord(ctx *gortsplib.ServerHandlerOnRecordCtx) (*base.Response, error) {
	c.mu.Lock()
	stream := c.stream
	c.mu.Unlock()
	ctx.Session.OnPacketRTPAny(func(medi *description.Media, _ format.Format, pkt *rtp.Packet) {
		_ = stream.WritePacketRTP(medi, pkt)
	})
	close(c.recorded)
	return &base.Response{StatusCode: base.StatusOK}, nil
}

// TestE2EPullRTSPToYouTube: a channel pulls an IP camera over RTSP (with
// credentials in the URL) and pushes it to a YouTube-like RTMP server; the
// recording there is H.264 + AAC and decodes clean, and the camera's
// password shows nowhere.
func TestE2EPullRTSPToYouTube(t *testing.T) {
	requireTools(t)
	cam := startPullCamera(t)
	ng := startNginx(t)
	s := startSeance(t, listeners+fmt.Sprintf(`
admin: {listen: "127.0.0.1:0"}
channels:
  - name: conseil
    ingest: {pull: %q, transport: tcp}
    grace: 30s
    destinations:
      - {name: youtube, url: %q, key: %q}
`, "rtsp://admin:"+secretCamPassword+"@"+cam.addr+"/cam", ng.url(), secretPullYTKey), "")

	ch := s.waitChannel("conseil", "live", "live", 20*time.Second)
	require.Zero(t, ch.Health.Reconnects)
	// Let the destination record a few seconds of the session.
	time.Sleep(6 * time.Second)
	metrics := s.mustGet("/metrics")
	require.Equal(t, 1.0, metric(t, metrics, `seance_ingest_pull_state{channel="conseil",state="live"}`))
	require.Zero(t, metric(t, metrics, `seance_ingest_pull_reconnects_total{channel="conseil"}`))
	api := s.mustGet("/api/v1/channels")
	s.stop()
	ng.stop()

	files := ng.recordings(secretPullYTKey)
	require.Len(t, files, 1, "one connection to the destination")
	requireRecording(t, files[0], 4*time.Second)
	requireNoSecrets(t, []string{secretCamPassword}, map[string]string{
		"logs": s.logs.String(), "/metrics": metrics, "/api/v1/channels": api,
	})
}
