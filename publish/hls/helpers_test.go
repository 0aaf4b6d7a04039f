package hls

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"strconv"
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
	"github.com/seance-relay/seance/transcode/rendition"
)

// testRelay is a hub with a channel "demo" fed by the demo source in real
// time, a channel "offline" with no publisher, a channel "push" (grace
// 30 s) for tests that publish themselves, the HLS server, and an HTTP
// server in front of its handler.
type testRelay struct {
	hub  *relay.Hub
	srv  *Server
	reg  *prometheus.Registry
	logs *lockedBuffer
	http *httptest.Server
	base string // http://127.0.0.1:PORT/hls

	ctx      context.Context
	cancel   context.CancelFunc
	done     chan struct{}
	running  int
	stopSrc  context.CancelFunc
	stopOnce sync.Once
}

// relayOptions are startRelay's settings.
type relayOptions struct {
	cfg  Config
	demo bool          // start the demo source on "demo"
	hold time.Duration // the server's hold bound; 0: the default
	// renditions are "demo"'s, each made by a real ffmpeg.
	renditions []relay.RenditionConfig
}

func startRelay(t *testing.T, o relayOptions) *testRelay {
	t.Helper()
	cfg := o.cfg
	if cfg.Variant == "" {
		// Most tests here check LL-HLS's parts, blocking reloads and gaps:
		// the richest variant, no longer the default (mpegts).
		cfg.Variant = VariantLowLatency
	}
	logs := &lockedBuffer{}
	log := zerolog.New(io.MultiWriter(zerolog.NewTestWriter(t), logs)).Level(zerolog.DebugLevel)
	reg := prometheus.NewRegistry()
	hub := relay.NewHub([]relay.ChannelConfig{{Name: "demo", Renditions: o.renditions}, {Name: "offline"}, {Name: "push", Grace: 30 * time.Second}},
		log, relay.NewMetrics(reg))
	srv, err := New(cfg, hub, log, reg)
	require.NoError(t, err)
	if o.hold > 0 {
		srv.hold = o.hold
	}
	mux := http.NewServeMux()
	mux.Handle(PathPrefix, srv.Handler())
	hs := httptest.NewServer(mux)
	ctx, cancel := context.WithCancel(context.Background())
	r := &testRelay{hub: hub, srv: srv, reg: reg, logs: logs, http: hs, base: hs.URL + "/hls",
		ctx: ctx, cancel: cancel, done: make(chan struct{}, 8), running: 2}
	go func() { _ = hub.Run(ctx); r.done <- struct{}{} }()
	go func() { _ = srv.Run(ctx); r.done <- struct{}{} }()
	if len(o.renditions) > 0 {
		ff, err := rendition.LookFFmpeg()
		require.NoError(t, err, "ffmpeg must be installed (scripts/install-test-deps.sh)")
		ch, _ := hub.Channel("demo")
		met := rendition.NewMetrics(reg)
		for _, rd := range ch.Renditions() {
			mk, err := rendition.New(rendition.Config{FFmpeg: ff}, ch, rd, log, met)
			require.NoError(t, err)
			r.running++
			go func() { _ = mk.Run(ctx); r.done <- struct{}{} }()
		}
	}
	t.Cleanup(func() {
		r.stop()
		hs.Close()
	})
	if o.demo {
		r.startDemo(t, "demo")
	}
	return r
}

// stop ends the hub, the HLS server and any source, and waits for them.
func (r *testRelay) stop() {
	r.stopOnce.Do(func() {
		r.cancel()
		for range r.running {
			<-r.done
		}
		r.running = 0
	})
}

// startDemo publishes the demo clip on channel and waits until HLS serves
// it.
func (r *testRelay) startDemo(t *testing.T, channel string) {
	t.Helper()
	ch, err := r.hub.Channel(channel)
	require.NoError(t, err)
	src, err := demo.New(ch, zerolog.Nop())
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(r.ctx)
	r.stopSrc = cancel
	r.running++
	go func() { _ = src.Run(ctx); r.done <- struct{}{} }()
	require.Eventually(t, func() bool { return r.srv.muxer(channel) != nil }, 5*time.Second, 10*time.Millisecond)
}

// stopDemo ends the demo publisher ("demo" has no grace: it goes idle at
// once; "push" is interrupted).
func (r *testRelay) stopDemo(t *testing.T) {
	t.Helper()
	r.stopSrc()
	<-r.done
	r.running--
}

// get fetches url and returns the answer with its body read.
func get(t *testing.T, url string, header ...string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	require.NoError(t, err)
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	c := &http.Client{Timeout: 20 * time.Second}
	res, err := c.Do(req)
	require.NoError(t, err, url)
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	require.NoError(t, err, url)
	return res, string(body)
}

// mustGet fetches url and requires a 200.
func mustGet(t *testing.T, url string) (*http.Response, string) {
	t.Helper()
	res, body := get(t, url)
	require.Equal(t, http.StatusOK, res.StatusCode, "%s: %s", url, body)
	return res, body
}

// mediaPlaylist is what the tests read from a media playlist.
type mediaPlaylist struct {
	mediaSequence int
	segments      []string // URIs, gaps excluded
	parts         []string // URIs of every part listed
	init          string
	preloadHint   string
	// lastMSN and lastPart are the media sequence number and index of the
	// last part listed.
	lastMSN, lastPart int
}

func parseMedia(t *testing.T, body string) mediaPlaylist {
	t.Helper()
	var pl mediaPlaylist
	msn := -1
	part := -1
	sc := bufio.NewScanner(strings.NewReader(body))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		switch {
		case strings.HasPrefix(line, "#EXT-X-MEDIA-SEQUENCE:"):
			n, err := strconv.Atoi(strings.TrimPrefix(line, "#EXT-X-MEDIA-SEQUENCE:"))
			require.NoError(t, err)
			pl.mediaSequence = n
			msn = n
		case strings.HasPrefix(line, "#EXT-X-MAP:"):
			pl.init = attr(line, "URI")
		case strings.HasPrefix(line, "#EXT-X-PART:"):
			part++
			pl.parts = append(pl.parts, attr(line, "URI"))
			pl.lastMSN, pl.lastPart = msn, part
		case strings.HasPrefix(line, "#EXT-X-PRELOAD-HINT:"):
			pl.preloadHint = attr(line, "URI")
		case line == "" || strings.HasPrefix(line, "#"):
		case line == "gap.mp4":
			msn++
			part = -1
		default:
			pl.segments = append(pl.segments, line)
			msn++
			part = -1
		}
	}
	return pl
}

// attr returns a quoted attribute of an HLS tag.
func attr(line, name string) string {
	_, v, ok := strings.Cut(line, name+`="`)
	if !ok {
		return ""
	}
	v, _, _ = strings.Cut(v, `"`)
	return v
}

// waitMedia polls a media playlist until it lists at least n segments
// (with a short hold bound, the first requests may get a 503).
func waitMedia(t *testing.T, url string, n int) mediaPlaylist {
	t.Helper()
	var pl mediaPlaylist
	deadline := time.Now().Add(20 * time.Second)
	for {
		res, body := get(t, url)
		if res.StatusCode == http.StatusOK {
			if pl = parseMedia(t, body); len(pl.segments) >= n {
				return pl
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s does not list %d segments: %d %s", url, n, res.StatusCode, body)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

type probeStream struct {
	CodecName string `json:"codec_name"`
	Width     int    `json:"width"`
	Height    int    `json:"height"`
}

// ffprobe reads url with ffprobe and returns the streams it found.
func ffprobe(t *testing.T, url string) []probeStream {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	var stdout, stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, "ffprobe", "-v", "error",
		"-show_entries", "stream=codec_name,width,height", "-of", "json", url)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	require.NoError(t, cmd.Run(), "ffprobe %s: %s", url, stderr.String())
	require.Empty(t, stderr.String(), "ffprobe %s", url)
	var out struct {
		Streams []probeStream `json:"streams"`
	}
	require.NoError(t, json.Unmarshal(stdout.Bytes(), &out), stdout.String())
	return out.Streams
}

// decode has ffmpeg decode the first dur of url and returns what it
// printed at level error (nothing when the stream is sane).
func decode(t *testing.T, url string, dur time.Duration) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "ffmpeg", "-nostdin", "-v", "error", "-i", url,
		"-t", strconv.FormatFloat(dur.Seconds(), 'f', -1, 64), "-f", "null", "-").CombinedOutput()
	require.NoError(t, err, "ffmpeg %s: %s", url, out)
	return string(out)
}

func requireTools(t testing.TB) {
	t.Helper()
	for _, tool := range []string{"ffmpeg", "ffprobe"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s is missing: run make test (installs ffmpeg)", tool)
		}
	}
}

func (r *testRelay) viewers(channel string) float64 {
	return testutil.ToFloat64(r.srv.met.viewers.WithLabelValues(channel, "hls"))
}

func (r *testRelay) refused(reason string) float64 {
	return testutil.ToFloat64(r.srv.met.refused.WithLabelValues(reason))
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
