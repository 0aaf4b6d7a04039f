package rtmp

import (
	"context"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h264"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/seance-relay/seance/relay"
)

func TestNewPullSource(t *testing.T) {
	for _, tc := range []struct {
		name, in, play, err string
	}{
		{"app and stream", "rtmp://media.lan/live2/stream", "rtmp://media.lan/live2#stream", ""},
		{"port and credentials", "rtmp://u:p@media.lan:1936/live/council", "rtmp://u:p@media.lan:1936/live#council", ""},
		{"nested stream name", "rtmps://media.lan/app/a/b", "rtmps://media.lan/app#a/b", ""},
		{"query goes with the stream", "rtmp://media.lan/live/council?token=abc", "rtmp://media.lan/live#council?token=abc", ""},
		{"fragment kept", "rtmp://media.lan/live#council", "rtmp://media.lan/live#council", ""},
		{"no stream", "rtmp://media.lan/live", "", "pull URL rtmp://media.lan/live has no stream name: use rtmp://host/app/stream"},
		{"no stream, trailing slash", "rtmp://media.lan/live/", "", "has no stream name"},
		{"no app", "rtmp://media.lan", "", "has no stream name"},
		{"rtsp", "rtsp://media.lan/live/council", "", "use rtmp:// or rtmps:// with a host"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			u, err := url.Parse(tc.in)
			require.NoError(t, err)
			s, err := NewPullSource(u, zerolog.Nop())
			if tc.err != "" {
				require.ErrorContains(t, err, tc.err)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tc.play, s.url.String())
			require.Equal(t, tc.in, u.String(), "the caller's URL is not modified")
		})
	}
}

const nginxRTMPModule = "/usr/lib/nginx/modules/ngx_rtmp_module.so"

// startPullNginx runs nginx with Debian's RTMP module on a free port, with
// a live application "live2", until the test ends.
func startPullNginx(t *testing.T) string {
	t.Helper()
	for _, tool := range []string{"ffmpeg", "nginx"} {
		_, err := exec.LookPath(tool)
		require.NoError(t, err, "%s is missing: run make test (installs ffmpeg and nginx with libnginx-mod-rtmp)", tool)
	}
	_, err := os.Stat(nginxRTMPModule)
	require.NoError(t, err, "run make test (installs libnginx-mod-rtmp)")
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	require.NoError(t, ln.Close())
	dir := t.TempDir()
	conf := fmt.Sprintf(`load_module %s;
daemon off; master_process off; pid %[2]s/nginx.pid; error_log %[2]s/error.log info;
events {}
rtmp { server { listen %[3]s; application live2 { live on; } } }
`, nginxRTMPModule, dir, addr)
	require.NoError(t, os.WriteFile(filepath.Join(dir, "nginx.conf"), []byte(conf), 0o644))
	cmd := exec.CommandContext(t.Context(), "nginx", "-e", filepath.Join(dir, "error.log"), "-c", filepath.Join(dir, "nginx.conf"), "-p", dir)
	out := &syncBuffer{}
	cmd.Stdout, cmd.Stderr = out, out
	require.NoError(t, cmd.Start())
	done := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(done)
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGQUIT)
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
	})
	require.Eventually(t, func() bool {
		select {
		case <-done:
			t.Fatalf("nginx exited: %s", out.String())
		default:
		}
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err != nil {
			return false
		}
		c.Close()
		return true
	}, 10*time.Second, 20*time.Millisecond)
	return addr
}

// startPush has ffmpeg publish a test pattern with a tone to url until
// the test ends, as a camera encoder or a studio would.
func startPush(t *testing.T, url string) {
	t.Helper()
	cmd := exec.CommandContext(t.Context(), "ffmpeg", "-nostdin", "-v", "error", "-re",
		"-f", "lavfi", "-i", "testsrc2=size=640x360:rate=30",
		"-f", "lavfi", "-i", "sine=frequency=440:sample_rate=44100",
		"-c:v", "libx264", "-preset", "veryfast", "-tune", "zerolatency", "-pix_fmt", "yuv420p", "-g", "30",
		"-c:a", "aac", "-ar", "44100", "-f", "flv", url)
	out := &syncBuffer{}
	cmd.Stdout, cmd.Stderr = out, out
	require.NoError(t, cmd.Start())
	done := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(done)
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-done
		if t.Failed() {
			t.Logf("ffmpeg: %s", out.String())
		}
	})
}

// TestPullFromNginx: seance plays rtmp://HOST/live2/stream from an
// nginx-rtmp server ffmpeg publishes into; the channel goes live with
// H.264 and AAC, and frames flow.
func TestPullFromNginx(t *testing.T) {
	addr := startPullNginx(t)
	startPush(t, "rtmp://"+addr+"/live2/stream")

	hub := relay.NewHub([]relay.ChannelConfig{{Name: testChannel, Grace: 30 * time.Second}}, zerolog.New(zerolog.NewTestWriter(t)), relay.NewMetrics(prometheus.NewRegistry()))
	ch, err := hub.Channel(testChannel)
	require.NoError(t, err)
	sub := ch.Subscribe("test", 4096)
	defer sub.Close()

	u, err := url.Parse("rtmp://" + addr + "/live2/stream")
	require.NoError(t, err)
	src, err := NewPullSource(u, zerolog.New(zerolog.NewTestWriter(t)))
	require.NoError(t, err)

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		// nginx has the stream once ffmpeg's first packets arrive: until
		// then it answers the play but sends nothing, or refuses.
		for {
			err := src.Pull(ctx, ch.Publish)
			if ctx.Err() != nil {
				done <- err
				return
			}
			t.Logf("pull ended: %v", err)
			select {
			case <-ctx.Done():
				done <- nil
				return
			case <-time.After(200 * time.Millisecond):
			}
		}
	}()
	defer func() {
		cancel()
		require.NoError(t, <-done)
		st, _ := ch.State()
		require.Equal(t, relay.StateInterrupted, st, "the session was closed: the grace period runs")
	}()

	var video, keys, audio int
	var firstKey *relay.Frame
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		for len(sub.Frames()) > 0 {
			f := <-sub.Frames()
			switch {
			case f.Kind == relay.KindAudio:
				audio++
			case f.Key:
				keys++
				video++
				if firstKey == nil {
					firstKey = f
				}
			default:
				video++
			}
		}
		require.GreaterOrEqual(c, keys, 2)
		require.Greater(c, audio, 20)
	}, 30*time.Second, 20*time.Millisecond)
	require.Greater(t, video, 30)
	require.Equal(t, h264.NALUTypeSPS, h264.NALUType(firstKey.NALUs[0][0]&0x1f))
	require.Equal(t, h264.NALUTypePPS, h264.NALUType(firstKey.NALUs[1][0]&0x1f))
	h := ch.Health()
	require.Equal(t, relay.StateLive, h.State)
	require.Equal(t, "rtmp", h.Protocol)
	require.Equal(t, addr, h.RemoteAddr)
	require.NotNil(t, h.Video)
	require.Equal(t, [2]int{640, 360}, [2]int{h.Video.Width, h.Video.Height})
	require.NotNil(t, h.Audio)
	require.Equal(t, 44100, h.Audio.SampleRate)
}
