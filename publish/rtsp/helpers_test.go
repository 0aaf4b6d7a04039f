package rtsp

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/rs/zerolog"
	"github.com/stretchr/testify/require"

	"github.com/seance-relay/seance/ingest/demo"
	"github.com/seance-relay/seance/relay"
)

// testRelay is a hub with a channel "demo" fed by the demo source, a
// channel "offline" with no publisher, and the RTSP server in front.
type testRelay struct {
	hub  *relay.Hub
	srv  *Server
	reg  *prometheus.Registry
	logs *lockedBuffer
	base string // rtsp://127.0.0.1:PORT

	ctx     context.Context
	done    chan struct{}
	running int
	stopSrc context.CancelFunc
}

func startRelay(t *testing.T, cfg Config) *testRelay {
	t.Helper()
	logs := &lockedBuffer{}
	log := zerolog.New(io.MultiWriter(zerolog.NewTestWriter(t), logs)).Level(zerolog.DebugLevel)
	reg := prometheus.NewRegistry()
	hub := relay.NewHub([]relay.ChannelConfig{{Name: "demo"}, {Name: "offline"}}, log, relay.NewMetrics(reg))
	cfg.Listen = "127.0.0.1:0"
	srv, err := New(cfg, hub, log, reg)
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	r := &testRelay{hub: hub, srv: srv, reg: reg, logs: logs, base: "rtsp://" + srv.Addr().String(),
		ctx: ctx, done: make(chan struct{}, 8), running: 2}
	go func() { _ = hub.Run(ctx); r.done <- struct{}{} }()
	go func() { _ = srv.Run(ctx); r.done <- struct{}{} }()
	t.Cleanup(func() {
		cancel()
		for range r.running {
			<-r.done
		}
	})
	r.startDemo(t)
	return r
}

// startDemo publishes the demo clip and waits until RTSP serves it.
func (r *testRelay) startDemo(t *testing.T) {
	t.Helper()
	ch, _ := r.hub.Channel("demo")
	src, err := demo.New(ch, zerolog.Nop())
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(r.ctx)
	r.stopSrc = cancel
	r.running++
	go func() { _ = src.Run(ctx); r.done <- struct{}{} }()
	require.Eventually(t, func() bool { return r.srv.serving("demo") }, 5*time.Second, 10*time.Millisecond)
}

// stopDemo ends the demo publisher (the channel has no grace: it goes
// idle at once).
func (r *testRelay) stopDemo(t *testing.T) {
	t.Helper()
	r.stopSrc()
	<-r.done
	r.running--
}

func (s *Server) serving(channel string) bool {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.streams[channel] != nil
}

func (r *testRelay) viewers(channel string) float64 {
	return testutil.ToFloat64(r.srv.met.viewers.WithLabelValues(channel, "rtsp"))
}

func (r *testRelay) sessions(channel string) float64 {
	return testutil.ToFloat64(r.srv.met.sessions.WithLabelValues(channel, "rtsp"))
}

type probeStream struct {
	CodecName string `json:"codec_name"`
	Width     int    `json:"width"`
	Height    int    `json:"height"`
}

// ffprobe reads url with ffprobe and returns the streams it found, or
// its error output.
func ffprobe(t *testing.T, url, transport string) ([]probeStream, string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var stdout, stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, "ffprobe", "-v", "error", "-rtsp_transport", transport,
		"-show_entries", "stream=codec_name,width,height", "-of", "json", url)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return nil, stderr.String(), err
	}
	var out struct {
		Streams []probeStream `json:"streams"`
	}
	require.NoError(t, json.Unmarshal(stdout.Bytes(), &out), stdout.String())
	return out.Streams, stderr.String(), nil
}

// requireH264AAC checks that url probes as H.264 1280x720 + AAC.
func requireH264AAC(t *testing.T, url, transport string) {
	t.Helper()
	streams, stderr, err := ffprobe(t, url, transport)
	require.NoError(t, err, stderr)
	require.Len(t, streams, 2, stderr)
	var codecs []string
	for _, s := range streams {
		codecs = append(codecs, s.CodecName)
		if s.CodecName == "h264" {
			require.Equal(t, 1280, s.Width)
			require.Equal(t, 720, s.Height)
		}
	}
	require.ElementsMatch(t, []string{"h264", "aac"}, codecs)
}

// lockedBuffer collects logs written from several goroutines.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func (l *lockedBuffer) contains(s string) bool { return strings.Contains(l.String(), s) }
