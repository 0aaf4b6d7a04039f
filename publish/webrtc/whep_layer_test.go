package webrtc

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h264"
	"github.com/pion/rtp/codecs"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/rs/zerolog"
	"github.com/stretchr/testify/require"

	"github.com/seance-relay/seance/relay"
	"github.com/seance-relay/seance/transcode/rendition"
)

// startRenditions runs a real ffmpeg maker for each rendition of the demo
// channel until ctx ends.
func startRenditions(t testing.TB, ctx context.Context, wg *sync.WaitGroup, hub *relay.Hub, log zerolog.Logger, reg prometheus.Registerer) []*rendition.Maker {
	t.Helper()
	ff, err := rendition.LookFFmpeg()
	require.NoError(t, err, "ffmpeg must be installed (scripts/install-test-deps.sh)")
	ch, err := hub.Channel("demo")
	require.NoError(t, err)
	met := rendition.NewMetrics(reg)
	var out []*rendition.Maker
	for _, r := range ch.Renditions() {
		mk, err := rendition.New(rendition.Config{FFmpeg: ff}, ch, r, log, met)
		require.NoError(t, err)
		wg.Go(func() { _ = mk.Run(ctx) })
		out = append(out, mk)
	}
	return out
}

// spsHeights returns, for each IDR the client received from index from
// on, the picture height its SPS gives, with the packet index.
func spsHeights(pkts []pkt, from int) (idx, heights []int) {
	for _, i := range idrStarts(pkts) {
		if i < from {
			continue
		}
		var sps h264.SPS
		if sps.Unmarshal(pkts[i].payload) == nil {
			idx = append(idx, i)
			heights = append(heights, sps.Height())
		}
	}
	return idx, heights
}

// decodeHeights depacketises the video packets (RFC 6184) from an IDR on
// and has ffprobe decode them: it returns each decoded frame's height.
func decodeHeights(t *testing.T, pkts []pkt) []int {
	t.Helper()
	var annexB bytes.Buffer
	var d codecs.H264Packet
	for _, p := range pkts {
		b, err := d.Unmarshal(p.payload)
		if err == nil {
			annexB.Write(b)
		}
	}
	cmd := exec.Command("ffprobe", "-v", "error", "-f", "h264", "-i", "pipe:0",
		"-show_entries", "frame=width,height", "-of", "csv=p=0")
	cmd.Stdin = &annexB
	out, err := cmd.Output()
	require.NoError(t, err, "ffprobe decodes what the viewer received")
	var hs []int
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		_, h, ok := strings.Cut(strings.TrimSpace(sc.Text()), ",")
		if !ok {
			continue
		}
		var n int
		for _, c := range h {
			if c >= '0' && c <= '9' {
				n = n*10 + int(c-'0')
			}
		}
		hs = append(hs, n)
	}
	return hs
}

// sseReader reads a session's "layers" events.
type sseReader struct {
	events chan map[string]mediaLayers
	resp   *http.Response
}

func openSSE(t *testing.T, e *env, url string) *sseReader {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, e.url+url, nil)
	require.NoError(t, err)
	resp, err := (&http.Client{}).Do(req)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Equal(t, "text/event-stream", resp.Header.Get("Content-Type"))
	r := &sseReader{events: make(chan map[string]mediaLayers, 64), resp: resp}
	go func() {
		defer close(r.events)
		sc := bufio.NewScanner(resp.Body)
		event := ""
		for sc.Scan() {
			line := sc.Text()
			switch {
			case strings.HasPrefix(line, "event: "):
				event = strings.TrimPrefix(line, "event: ")
			case strings.HasPrefix(line, "data: ") && event == "layers":
				var m map[string]mediaLayers
				if json.Unmarshal([]byte(strings.TrimPrefix(line, "data: ")), &m) == nil {
					r.events <- m
				}
			}
		}
	}()
	t.Cleanup(func() { resp.Body.Close() })
	return r
}

// waitLayers waits for a layers event satisfying ok.
func (r *sseReader) waitLayers(t *testing.T, timeout time.Duration, ok func(mediaLayers) bool) mediaLayers {
	t.Helper()
	deadline := time.After(timeout)
	for {
		select {
		case m, open := <-r.events:
			require.True(t, open, "the event stream ended")
			for _, l := range m {
				if ok(l) {
					return l
				}
			}
		case <-deadline:
			t.Fatalf("no matching layers event within %s", timeout)
		}
	}
}

func linkTo(resp *http.Response, rel string) string {
	for _, l := range resp.Header.Values("Link") {
		if strings.Contains(l, `rel="`+rel+`"`) {
			u, _, _ := strings.Cut(strings.TrimPrefix(l, "<"), ">")
			return u
		}
	}
	return ""
}

// TestWHEPLayerSelection: a pion viewer of a channel with a 360-line
// rendition gets the full 720p stream, switches to the rendition with the
// layer extension, decodes 360-line pictures on the same track (one SSRC,
// sequence numbers and timestamps continuing, no renegotiation), and
// back; the event stream tells the layers and the selection; viewers are
// counted by quality.
func TestWHEPLayerSelection(t *testing.T) {
	e := newEnv(t, envOpts{renditions: []relay.RenditionConfig{{Name: "basse", Height: 360, VideoBitrate: 500_000}}})
	ch, _ := e.hub.Channel("demo")
	r := ch.Rendition("basse")
	require.Eventually(t, func() bool { st, _ := r.Channel.State(); return st == relay.StateLive }, 20*time.Second, 20*time.Millisecond, "the rendition goes live")

	c := newClient(t, clientOpts{})
	c.post(e, "demo")
	resp := c.resp
	layerURL, sseURL := linkTo(resp, relLayer), linkTo(resp, relSSE)
	require.Equal(t, c.location+"/layer", layerURL)
	require.Equal(t, c.location+"/sse", sseURL)
	require.Contains(t, strings.Join(resp.Header.Values("Link"), "\n"), `events="layers"`)
	c.waitFirstVideo(10 * time.Second)

	// The draft's event stream creation, then the stream itself.
	cr, _ := e.do(t, http.MethodPost, sseURL, "application/json", []byte(`["layers"]`))
	require.Equal(t, http.StatusCreated, cr.StatusCode)
	require.Equal(t, sseURL, cr.Header.Get("Location"))
	sse := openSSE(t, e, sseURL)
	first := sse.waitLayers(t, 5*time.Second, func(l mediaLayers) bool { return len(l.Layers) == 2 })
	require.Equal(t, "full", first.Selected)
	require.Equal(t, "full", first.Playing)
	require.Equal(t, "full", first.Layers[0].EncodingID)
	require.Equal(t, 720, first.Layers[0].Height)
	require.Equal(t, "basse", first.Layers[1].EncodingID)
	require.Equal(t, 360, first.Layers[1].Height)
	require.Equal(t, 640, first.Layers[1].Width)
	require.EqualValues(t, 500_000, first.Layers[1].Bitrate)

	// Full first: 720-line keyframes.
	require.Eventually(t, func() bool { _, hs := spsHeights(c.videoPackets(), 0); return len(hs) >= 1 }, 5*time.Second, 20*time.Millisecond)
	_, hs := spsHeights(c.videoPackets(), 0)
	require.Equal(t, 720, hs[0])
	require.Equal(t, 1.0, testutil.ToFloat64(e.srv.met.quality("demo", "full")))

	// Bad requests harm nothing.
	for _, tc := range []struct {
		name, body string
		status     int
	}{
		{"unknown layer", `{"encodingId":"moyenne"}`, http.StatusBadRequest},
		{"not JSON", `basse`, http.StatusBadRequest},
		{"wrong media", `{"mediaId":"7","encodingId":"basse"}`, http.StatusBadRequest},
		{"too large", `{"encodingId":"` + strings.Repeat("x", 5000) + `"}`, http.StatusRequestEntityTooLarge},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := e.do(t, http.MethodPost, layerURL, "application/json", []byte(tc.body))
			require.Equal(t, tc.status, resp.StatusCode, body)
		})
	}

	// Switch to basse.
	from := len(c.videoPackets())
	resp, body := e.do(t, http.MethodPost, layerURL, "application/json", []byte(`{"encodingId":"basse"}`))
	require.Equal(t, http.StatusOK, resp.StatusCode, body)
	l := sse.waitLayers(t, 10*time.Second, func(l mediaLayers) bool { return l.Playing == "basse" })
	require.Equal(t, "basse", l.Selected)
	require.Eventually(t, func() bool { _, hs := spsHeights(c.videoPackets(), from); return len(hs) >= 2 }, 10*time.Second, 20*time.Millisecond, "rendition keyframes arrive")
	idx, hs := spsHeights(c.videoPackets(), from)
	require.Equal(t, []int{360, 360}, hs[:2])
	require.Equal(t, 1.0, testutil.ToFloat64(e.srv.met.quality("demo", "basse")))
	require.Equal(t, 0.0, testutil.ToFloat64(e.srv.met.quality("demo", "full")))
	pkts := c.videoPackets()
	decoded := decodeHeights(t, pkts[idx[0]:idx[1]])
	require.GreaterOrEqual(t, len(decoded), 30, "a GOP of the rendition decodes")
	for _, h := range decoded {
		require.Equal(t, 360, h)
	}

	// Back to full (an empty object is the default layer).
	from = len(c.videoPackets())
	resp, body = e.do(t, http.MethodPost, layerURL, "application/json", []byte(`{}`))
	require.Equal(t, http.StatusOK, resp.StatusCode, body)
	sse.waitLayers(t, 10*time.Second, func(l mediaLayers) bool { return l.Playing == "full" })
	require.Eventually(t, func() bool { _, hs := spsHeights(c.videoPackets(), from); return len(hs) >= 1 }, 10*time.Second, 20*time.Millisecond)
	_, hs = spsHeights(c.videoPackets(), from)
	require.Equal(t, 720, hs[0])

	// One track all along: sequence numbers without a gap (loopback
	// loses nothing), timestamps never going back.
	pkts = c.videoPackets()
	for i := 1; i < len(pkts); i++ {
		require.Equal(t, pkts[i-1].seq+1, pkts[i].seq, "packet %d", i)
		require.GreaterOrEqual(t, int32(pkts[i].ts-pkts[i-1].ts), int32(0), "packet %d", i)
	}
	require.Len(t, c.pc.GetReceivers(), 2, "no renegotiation: still one video and one audio receiver")

	// One event stream per session: a second one ends the first, and the
	// session's end ends the second.
	second := openSSE(t, e, sseURL)
	second.waitLayers(t, 5*time.Second, func(l mediaLayers) bool { return l.Playing == "full" })
	requireClosed(t, sse)
	resp, _ = e.do(t, http.MethodDelete, c.location, "", nil)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	requireClosed(t, second)
	resp, _ = e.do(t, http.MethodPost, layerURL, "application/json", []byte(`{}`))
	require.Equal(t, http.StatusNotFound, resp.StatusCode)
}

// requireClosed waits for an event stream to end.
func requireClosed(t *testing.T, r *sseReader) {
	t.Helper()
	deadline := time.After(5 * time.Second)
	for {
		select {
		case _, open := <-r.events:
			if !open {
				return
			}
		case <-deadline:
			t.Fatal("the event stream is still open")
		}
	}
}

func FuzzLayerRequest(f *testing.F) {
	for _, s := range []string{``, `{}`, `{"mediaId":"0","encodingId":"basse"}`, `{"encodingId":"full","spatialLayerId":1}`, `basse`, `[1,2]`, `{"mediaId":0}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		req, err := parseLayerRequest(b)
		if err != nil {
			require.Equal(t, layerRequest{}, req)
		}
	})
}

// TestWHEPLayerFallsBack: a viewer on the rendition gets the full stream
// while the rendition's ffmpeg restarts, then the rendition again; full
// viewers see nothing of it.
func TestWHEPLayerFallsBack(t *testing.T) {
	e := newEnv(t, envOpts{renditions: []relay.RenditionConfig{{Name: "basse", Height: 360, VideoBitrate: 500_000}}})
	ch, _ := e.hub.Channel("demo")
	r := ch.Rendition("basse")
	require.Eventually(t, func() bool { st, _ := r.Channel.State(); return st == relay.StateLive }, 20*time.Second, 20*time.Millisecond)
	low, full := newClient(t, clientOpts{}), newClient(t, clientOpts{})
	low.post(e, "demo")
	full.post(e, "demo")
	low.waitFirstVideo(10 * time.Second)
	full.waitFirstVideo(10 * time.Second)
	resp, body := e.do(t, http.MethodPost, low.location+"/layer", "application/json", []byte(`{"encodingId":"basse"}`))
	require.Equal(t, http.StatusOK, resp.StatusCode, body)
	sess, err := e.srv.session("demo", low.location[strings.LastIndex(low.location, "/")+1:])
	require.NoError(t, err)
	require.Eventually(t, func() bool { return sess.layerPlaying.Load() == "basse" }, 10*time.Second, 20*time.Millisecond)

	pid := e.makers[0].PID()
	require.NotZero(t, pid)
	require.NoError(t, syscall.Kill(pid, syscall.SIGKILL))
	require.Eventually(t, func() bool { return sess.layerPlaying.Load() == "full" }, 10*time.Second, 20*time.Millisecond, "the viewer gets the full stream meanwhile")
	require.Eventually(t, func() bool { return sess.layerPlaying.Load() == "basse" }, 20*time.Second, 20*time.Millisecond, "and the rendition again once it is back")
	require.Equal(t, 1, e.makers[0].Status().Restarts)

	// The full viewer's stream went on: no gap of half a second.
	pkts := full.videoPackets()
	for i := 1; i < len(pkts); i++ {
		require.Less(t, pkts[i].at.Sub(pkts[i-1].at), 500*time.Millisecond, "full viewer's packet %d", i)
		require.Equal(t, pkts[i-1].seq+1, pkts[i].seq)
	}
}
