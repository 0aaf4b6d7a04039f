package rtsp

import (
	"bytes"
	"context"
	"crypto/rand"
	"net"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bluenviron/gortsplib/v4"
	"github.com/bluenviron/gortsplib/v4/pkg/base"
	"github.com/bluenviron/gortsplib/v4/pkg/description"
	"github.com/bluenviron/gortsplib/v4/pkg/format"
	"github.com/pion/rtp"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
	"github.com/stretchr/testify/require"

	"github.com/seance-relay/seance/configs"
	"github.com/seance-relay/seance/ingest/demo"
	pubwebrtc "github.com/seance-relay/seance/publish/webrtc"
	"github.com/seance-relay/seance/relay"
)

func TestProbe(t *testing.T) {
	r := startRelay(t, Config{})
	for _, transport := range []string{"tcp", "udp"} {
		t.Run(transport, func(t *testing.T) {
			requireH264AAC(t, r.base+"/demo", transport)
		})
	}
}

func TestNotLive(t *testing.T) {
	r := startRelay(t, Config{})
	for _, ch := range []string{"nope", "offline", "demo/extra"} {
		t.Run(ch, func(t *testing.T) {
			_, stderr, err := ffprobe(t, r.base+"/"+ch, "tcp")
			require.Error(t, err)
			require.Contains(t, stderr, "404")
		})
	}
}

const testPassword = "S3cr3t-rtsp-pw-0042"

func TestCredentials(t *testing.T) {
	r := startRelay(t, Config{Username: "mairie", Password: configs.Secret(testPassword)})
	host := strings.TrimPrefix(r.base, "rtsp://")
	for _, tc := range []struct {
		name, url string
	}{
		{"none", "rtsp://" + host + "/demo"},
		{"wrong password", "rtsp://mairie:wrong@" + host + "/demo"},
		{"wrong user", "rtsp://other:" + testPassword + "@" + host + "/demo"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, stderr, err := ffprobe(t, tc.url, "tcp")
			require.Error(t, err)
			require.Contains(t, stderr, "401")
		})
	}
	for _, transport := range []string{"tcp", "udp"} {
		t.Run("right/"+transport, func(t *testing.T) {
			requireH264AAC(t, "rtsp://mairie:"+testPassword+"@"+host+"/demo", transport)
		})
	}
	t.Run("gortsplib client", func(t *testing.T) {
		c, _ := play(t, "rtsp://mairie:"+testPassword+"@"+host+"/demo", gortsplib.TransportTCP)
		c.Close()
	})
	require.False(t, r.logs.contains(testPassword), "the password is in the logs")
	require.True(t, r.logs.contains("wrong credentials"))
}

// TestRecord records 3 s with ffmpeg and decodes the file: no error.
func TestRecord(t *testing.T) {
	r := startRelay(t, Config{})
	out := filepath.Join(t.TempDir(), "out.mp4")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var stderr bytes.Buffer
	rec := exec.CommandContext(ctx, "ffmpeg", "-v", "error", "-rtsp_transport", "tcp", "-i", r.base+"/demo",
		"-t", "3", "-c", "copy", "-y", out)
	rec.Stderr = &stderr
	require.NoError(t, rec.Start())
	require.Eventually(t, func() bool { return r.viewers("demo") == 1 }, 10*time.Second, 10*time.Millisecond)
	require.Equal(t, 1, r.srv.Viewers("demo"))
	require.NoError(t, rec.Wait(), stderr.String())
	require.Eventually(t, func() bool { return r.viewers("demo") == 0 }, 10*time.Second, 10*time.Millisecond)
	require.Equal(t, 0, r.srv.Viewers("demo"))
	require.Equal(t, 1.0, r.sessions("demo"))

	dec, err := exec.CommandContext(ctx, "ffmpeg", "-v", "error", "-i", out, "-f", "null", "-").CombinedOutput()
	require.NoError(t, err, string(dec))
	require.Empty(t, string(dec))
	requireH264AAC(t, out, "tcp")
}

// TestChannelLifecycle: the stream ends with the channel (readers are
// disconnected, new ones get 404) and comes back with the next session.
func TestChannelLifecycle(t *testing.T) {
	r := startRelay(t, Config{})
	c, packets := play(t, r.base+"/demo", gortsplib.TransportUDP)
	defer c.Close()
	require.Eventually(t, func() bool { return packets.Load() > 50 }, 10*time.Second, 10*time.Millisecond)
	require.Equal(t, 1.0, r.viewers("demo"))

	r.stopDemo(t)
	waited := make(chan error, 1)
	go func() { waited <- c.Wait() }()
	select {
	case err := <-waited:
		require.Error(t, err)
	case <-time.After(10 * time.Second):
		t.Fatal("reader still connected after the channel ended")
	}
	require.Eventually(t, func() bool { return r.viewers("demo") == 0 }, 5*time.Second, 10*time.Millisecond)
	require.False(t, r.srv.serving("demo"))
	_, stderr, err := ffprobe(t, r.base+"/demo", "tcp")
	require.Error(t, err)
	require.Contains(t, stderr, "404")

	r.startDemo(t)
	requireH264AAC(t, r.base+"/demo", "tcp")
}

// TestGarbage: random bytes on the RTSP and UDP ports do not break the
// server.
func TestGarbage(t *testing.T) {
	r := startRelay(t, Config{})
	junk := make([]byte, 1<<20)
	_, _ = rand.Read(junk)
	for range 2 {
		conn, err := net.Dial("tcp", r.srv.Addr().String())
		require.NoError(t, err)
		_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
		_, _ = conn.Write(junk) // the server may close the connection early
		conn.Close()
	}
	// A junk request line after a valid-looking start.
	conn, err := net.Dial("tcp", r.srv.Addr().String())
	require.NoError(t, err)
	_, _ = conn.Write(append([]byte("DESCRIBE rtsp://x/demo RTSP/1.0\r\nCSeq: 1\r\nContent-Length: 99999999\r\n\r\n"), junk[:4096]...))
	conn.Close()
	udpHost, udpPort, _ := net.SplitHostPort(r.srv.UDPAddr().String())
	p, _ := strconv.Atoi(udpPort)
	for _, port := range []int{p, p + 1} {
		u, err := net.Dial("udp", net.JoinHostPort(udpHost, strconv.Itoa(port)))
		require.NoError(t, err)
		for i := 0; i < len(junk); i += 1400 {
			_, _ = u.Write(junk[i:min(i+1400, len(junk))])
		}
		u.Close()
	}
	requireH264AAC(t, r.base+"/demo", "udp")
}

// TestMetricsSharedWithWebRTC: the viewer families registered by
// publish/webrtc are reused, not registered twice.
func TestMetricsSharedWithWebRTC(t *testing.T) {
	reg := prometheus.NewRegistry()
	log := zerolog.Nop()
	hub := relay.NewHub([]relay.ChannelConfig{{Name: "demo"}}, log, relay.NewMetrics(reg))
	rtc, err := pubwebrtc.New(pubwebrtc.Config{Host: "127.0.0.1"}, hub, log, reg)
	require.NoError(t, err)
	defer rtc.Close()
	s, err := New(Config{Listen: "127.0.0.1:0", TCPOnly: true}, hub, log, reg)
	require.NoError(t, err)
	defer s.Close()
	s.met.viewers.WithLabelValues("demo", "rtsp").Inc()
	mfs, err := reg.Gather()
	require.NoError(t, err)
	found := false
	for _, mf := range mfs {
		if mf.GetName() != "seance_viewers" {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "protocol" && l.GetValue() == "rtsp" {
					found = m.GetGauge().GetValue() == 1
				}
			}
		}
	}
	require.True(t, found)
}

func TestNewErrors(t *testing.T) {
	log := zerolog.Nop()
	hub := relay.NewHub(nil, log, relay.NewMetrics(prometheus.NewRegistry()))
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer taken.Close()
	udpTaken, udpTaken2, err := bindUDPPair("127.0.0.1", 0, true)
	require.NoError(t, err)
	defer udpTaken.Close()
	defer udpTaken2.Close()
	udpPort := udpTaken.LocalAddr().(*net.UDPAddr).Port
	for _, tc := range []struct {
		name string
		cfg  Config
		want string
	}{
		{"no address", Config{}, "rtsp.listen"},
		{"tcp port taken", Config{Listen: taken.Addr().String()}, "rtsp.listen"},
		{"udp port taken", Config{Listen: "127.0.0.1:0", UDPPort: udpPort}, "UDP port"},
		{"odd udp port", Config{Listen: "127.0.0.1:0", UDPPort: 8001}, "even"},
		{"user without password", Config{Listen: "127.0.0.1:0", Username: "u"}, "password"},
		{"password without user", Config{Listen: "127.0.0.1:0", Password: "p"}, "password"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := New(tc.cfg, hub, log, prometheus.NewRegistry())
			require.ErrorContains(t, err, tc.want)
			require.Nil(t, s)
		})
	}
	// Close without Run releases the ports.
	s, err := New(Config{Listen: "127.0.0.1:0"}, hub, log, prometheus.NewRegistry())
	require.NoError(t, err)
	require.NoError(t, s.Close())
	require.NoError(t, s.Close())
	ln, err := net.Listen("tcp", s.Addr().String())
	require.NoError(t, err)
	ln.Close()
}

// play reads url with gortsplib's client and counts RTP packets.
func play(t *testing.T, url string, transport gortsplib.Transport) (*gortsplib.Client, *atomic.Int64) {
	t.Helper()
	u, err := base.ParseURL(url)
	require.NoError(t, err)
	c := &gortsplib.Client{Scheme: u.Scheme, Host: u.Host, Transport: &transport}
	require.NoError(t, c.Start2())
	desc, _, err := c.Describe(u)
	if err != nil {
		c.Close()
		require.NoError(t, err)
	}
	require.NoError(t, c.SetupAll(desc.BaseURL, desc.Medias))
	var n atomic.Int64
	c.OnPacketRTPAny(func(*description.Media, format.Format, *rtp.Packet) { n.Add(1) })
	_, err = c.Play(nil)
	require.NoError(t, err)
	return c, &n
}

// TestChannelsAddedAndRemoved: a channel added to the hub after Run is
// served once live; a removed one stops being served.
func TestChannelsAddedAndRemoved(t *testing.T) {
	r := startRelay(t, Config{})
	ch, added := r.hub.Add(relay.ChannelConfig{Name: "added"})
	require.True(t, added)
	src, err := demo.New(ch, zerolog.Nop())
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(r.ctx)
	srcDone := make(chan struct{})
	go func() { _ = src.Run(ctx); close(srcDone) }()
	require.Eventually(t, func() bool { return r.srv.serving("added") }, 5*time.Second, 10*time.Millisecond)
	streams, stderr, err := ffprobe(t, r.base+"/added", "tcp")
	require.NoError(t, err, stderr)
	require.Len(t, streams, 2)

	// Removed while live: the publisher is disconnected and the stream
	// goes away.
	require.True(t, r.hub.Remove("added"))
	require.Eventually(t, func() bool { return !r.srv.serving("added") }, 5*time.Second, 10*time.Millisecond)
	cancel()
	<-srcDone
	require.True(t, r.srv.serving("demo"), "the other channel is still served")
}
