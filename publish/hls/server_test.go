package hls

import (
	"context"
	"fmt"
	"net/http"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/rs/zerolog"
	"github.com/stretchr/testify/require"

	"github.com/seance-relay/seance/relay"
)

// TestFFmpegReadsLiveChannel: ffprobe finds H.264 1280x720 and AAC in the
// live playlist of the demo channel, and ffmpeg decodes 3 s of it without
// a single error, in each variant.
func TestFFmpegReadsLiveChannel(t *testing.T) {
	requireTools(t)
	for _, variant := range []string{VariantLowLatency, VariantFMP4, VariantMPEGTS} {
		t.Run(variant, func(t *testing.T) {
			r := startRelay(t, relayOptions{cfg: Config{Variant: variant}, demo: true})
			url := r.base + "/demo/index.m3u8"
			var codecs []string
			for _, s := range ffprobe(t, url) {
				codecs = append(codecs, s.CodecName)
				if s.CodecName == "h264" {
					require.Equal(t, [2]int{1280, 720}, [2]int{s.Width, s.Height})
				}
			}
			require.ElementsMatch(t, []string{"h264", "aac"}, codecs)
			require.Empty(t, decode(t, url, 3*time.Second), "ffmpeg -v error prints nothing")
			require.Positive(t, testutil.ToFloat64(r.srv.met.requests.WithLabelValues("demo", "playlist")))
			require.Positive(t, testutil.ToFloat64(r.srv.met.bytes.WithLabelValues("demo")))
		})
	}
}

// TestNotFound: unknown channels, idle channels, paths that name no HLS
// file and files that do not exist get a short plain 404 at once; other
// methods a 405; every answer allows any origin.
func TestNotFound(t *testing.T) {
	r := startRelay(t, relayOptions{demo: true})
	pl := waitMedia(t, r.base+"/demo/video1_stream.m3u8", 1)
	prefix, _, _ := strings.Cut(pl.init, "_")
	for _, tc := range []struct {
		name, path, body, reason string
	}{
		{"unknown channel", "/hls/nope/index.m3u8", "no such channel\n", refusedUnknownChannel},
		{"idle channel", "/hls/offline/index.m3u8", "channel is not live\n", refusedNotLive},
		{"idle channel media playlist", "/hls/offline/video1_stream.m3u8", "channel is not live\n", refusedNotLive},
		{"no file", "/hls/demo", "not an HLS file\n", refusedBadRequest},
		{"empty file", "/hls/demo/", "not an HLS file\n", refusedBadRequest},
		{"subdirectory", "/hls/demo/x/index.m3u8", "not an HLS file\n", refusedBadRequest},
		{"other file", "/hls/demo/seance.yaml", "not an HLS file\n", refusedBadRequest},
		{"dot file", "/hls/demo/.m3u8", "not an HLS file\n", refusedBadRequest},
		{"expired segment", "/hls/demo/" + prefix + "_video1_seg0.mp4", "no such file (it may have expired)\n", refusedNotFound},
		{"other muxer's segment", "/hls/demo/000000000000_video1_seg9.mp4", "no such file (it may have expired)\n", refusedNotFound},
		{"part far ahead", "/hls/demo/" + prefix + "_video1_part99999.mp4", "no such file (it may have expired)\n", refusedNotFound},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := r.refused(tc.reason)
			start := time.Now()
			res, body := get(t, r.http.URL+tc.path)
			require.Equal(t, http.StatusNotFound, res.StatusCode)
			require.Less(t, time.Since(start), time.Second, "answered at once")
			require.Equal(t, tc.body, body)
			require.Equal(t, "text/plain; charset=utf-8", res.Header.Get("Content-Type"))
			require.Equal(t, "*", res.Header.Get("Access-Control-Allow-Origin"))
			require.Equal(t, cacheError, res.Header.Get("Cache-Control"))
			require.Equal(t, before+1, r.refused(tc.reason))
		})
	}
	t.Run("other methods", func(t *testing.T) {
		res, err := http.Post(r.base+"/demo/index.m3u8", "text/plain", strings.NewReader("x"))
		require.NoError(t, err)
		res.Body.Close()
		require.Equal(t, http.StatusMethodNotAllowed, res.StatusCode)
		require.Equal(t, "GET, HEAD, OPTIONS", res.Header.Get("Allow"))
	})
	t.Run("CORS preflight", func(t *testing.T) {
		req, err := http.NewRequest(http.MethodOptions, r.base+"/demo/index.m3u8", nil)
		require.NoError(t, err)
		req.Header.Set("Origin", "https://www.bourg.fr")
		req.Header.Set("Access-Control-Request-Method", "GET")
		res, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		res.Body.Close()
		require.Equal(t, http.StatusNoContent, res.StatusCode)
		require.Equal(t, "*", res.Header.Get("Access-Control-Allow-Origin"))
		require.Contains(t, res.Header.Get("Access-Control-Allow-Methods"), "GET")
	})
	t.Run("session ended", func(t *testing.T) {
		r.stopDemo(t)
		require.Eventually(t, func() bool {
			res, _ := get(t, r.base+"/demo/video1_stream.m3u8")
			return res.StatusCode == http.StatusNotFound
		}, 5*time.Second, 20*time.Millisecond)
		res, body := get(t, r.base+"/demo/index.m3u8")
		require.Equal(t, http.StatusNotFound, res.StatusCode)
		require.Equal(t, "channel is not live\n", body)
		require.Zero(t, testutil.ToFloat64(r.srv.met.muxers))
	})
}

// TestCacheHeaders: segments, parts and init segments are immutable for a
// CDN; playlists live one second.
func TestCacheHeaders(t *testing.T) {
	r := startRelay(t, relayOptions{demo: true})
	res, body := mustGet(t, r.base+"/demo/index.m3u8")
	require.Equal(t, cachePlaylist, res.Header.Get("Cache-Control"), "multivariant playlist")
	require.Equal(t, "application/vnd.apple.mpegurl", res.Header.Get("Content-Type"))
	require.Equal(t, "*", res.Header.Get("Access-Control-Allow-Origin"))
	require.Contains(t, body, "video1_stream.m3u8")
	require.Contains(t, body, "audio2_stream.m3u8")

	pl := waitMedia(t, r.base+"/demo/video1_stream.m3u8", 1)
	res, _ = mustGet(t, r.base+"/demo/video1_stream.m3u8")
	require.Equal(t, cachePlaylist, res.Header.Get("Cache-Control"), "media playlist")
	require.NotEmpty(t, pl.parts)
	for kind, file := range map[fileKind]string{kindInit: pl.init, kindSegment: pl.segments[0], kindPart: pl.parts[0]} {
		res, body := mustGet(t, r.base+"/demo/"+file)
		require.Equal(t, cacheImmutable, res.Header.Get("Cache-Control"), "%s %s", kind, file)
		require.Equal(t, "video/mp4", res.Header.Get("Content-Type"), file)
		require.Equal(t, "*", res.Header.Get("Access-Control-Allow-Origin"), file)
		require.NotEmpty(t, body, file)
		if kind == kindInit {
			require.Contains(t, body, "moov", file)
		} else {
			require.Contains(t, body, "moof", file)
		}
		require.Positive(t, testutil.ToFloat64(r.srv.met.requests.WithLabelValues("demo", string(kind))))
	}
}

// TestBlockingReload: a low-latency blocking playlist request for the next
// part returns as soon as that part exists, listing it; the preload-hinted
// part is served when written; a request too far ahead is refused at once.
func TestBlockingReload(t *testing.T) {
	r := startRelay(t, relayOptions{demo: true})
	url := r.base + "/demo/video1_stream.m3u8"
	pl := waitMedia(t, url, 1)
	msn, part := pl.lastMSN, pl.lastPart+1

	start := time.Now()
	res, body := mustGet(t, fmt.Sprintf("%s?_HLS_msn=%d&_HLS_part=%d", url, msn, part))
	elapsed := time.Since(start)
	next := parseMedia(t, body)
	require.True(t, next.lastMSN > msn || next.lastMSN == msn && next.lastPart >= part,
		"asked for part %d.%d, the answer ends at %d.%d:\n%s", msn, part, next.lastMSN, next.lastPart, body)
	require.Less(t, elapsed, 3*time.Second, "held about one part (200 ms), or a segment's remaining parts")
	require.Equal(t, cachePlaylist, res.Header.Get("Cache-Control"))

	// The preload hint names the part being written: it comes when done.
	_, body = mustGet(t, url)
	hint := parseMedia(t, body).preloadHint
	require.NotEmpty(t, hint)
	res, body = mustGet(t, r.base+"/demo/"+hint)
	require.Equal(t, cacheImmutable, res.Header.Get("Cache-Control"))
	require.Contains(t, body, "moof")

	bad := r.refused(refusedBadRequest)
	start = time.Now()
	res, body = get(t, fmt.Sprintf("%s?_HLS_msn=%d", url, msn+100))
	require.Equal(t, http.StatusBadRequest, res.StatusCode, "more than two segments ahead")
	require.Equal(t, "bad request\n", body)
	require.Less(t, time.Since(start), time.Second)
	res, _ = get(t, url+"?_HLS_msn=x")
	require.Equal(t, http.StatusBadRequest, res.StatusCode)
	require.Equal(t, cacheError, res.Header.Get("Cache-Control"))
	require.Equal(t, bad+2, r.refused(refusedBadRequest))
}

// TestHeldRequestBounded: while the publisher is away (no new part), a
// blocking request gets a 503 after the hold bound instead of hanging, and
// the HLS server stops at once with requests still held.
func TestHeldRequestBounded(t *testing.T) {
	const hold = time.Second
	r := startRelay(t, relayOptions{hold: hold})
	r.startDemo(t, "push")
	url := r.base + "/push/video1_stream.m3u8"
	waitMedia(t, url, 1)
	r.stopDemo(t) // "push" has a grace period: the session goes on, without frames
	ch, _ := r.hub.Channel("push")
	state, _ := ch.State()
	require.Equal(t, relay.StateInterrupted, state)

	_, body := mustGet(t, url)
	pl := parseMedia(t, body)
	next := fmt.Sprintf("%s?_HLS_msn=%d&_HLS_part=%d", url, pl.lastMSN, pl.lastPart+1)
	timeouts := r.refused(refusedTimeout)
	start := time.Now()
	res, body := get(t, next)
	require.Equal(t, http.StatusServiceUnavailable, res.StatusCode, body)
	require.GreaterOrEqual(t, time.Since(start), hold)
	require.Less(t, time.Since(start), hold+time.Second)
	require.Equal(t, "1", res.Header.Get("Retry-After"))
	require.Equal(t, cacheNever, res.Header.Get("Cache-Control"))
	require.Equal(t, timeouts+1, r.refused(refusedTimeout))
	res, _ = get(t, r.base+"/push/"+pl.preloadHint)
	require.Equal(t, http.StatusServiceUnavailable, res.StatusCode, "the preload-hinted part is not written either")

	// A held request is released by the shutdown, which does not wait
	// for the hold bound.
	answered := make(chan int, 1)
	go func() {
		res, err := http.Get(next)
		if err != nil {
			answered <- 0
			return
		}
		res.Body.Close()
		answered <- res.StatusCode
	}()
	mx := r.srv.muxer("push")
	require.Eventually(t, func() bool { return len(mx.slots) > 0 }, 5*time.Second, 5*time.Millisecond, "request held")
	start = time.Now()
	r.stop()
	require.Less(t, time.Since(start), hold/2, "Run returns at once")
	select {
	case code := <-answered:
		require.Equal(t, http.StatusNotFound, code, "released by the muxer's end, not by the hold bound (503)")
	case <-time.After(hold):
		t.Fatal("the held request was not released by the shutdown")
	}
}

// TestViewersCounted: HLS clients are counted once each (address and
// User-Agent) in seance_viewers{protocol="hls"} and Viewers, and each new
// one starts a session.
func TestViewersCounted(t *testing.T) {
	r := startRelay(t, relayOptions{demo: true})
	url := r.base + "/demo/index.m3u8"
	sessions := func() float64 { return testutil.ToFloat64(r.srv.met.sessions.WithLabelValues("demo", "hls")) }
	require.Zero(t, r.srv.Viewers("demo"))

	get(t, url, "User-Agent", "VLC/3.0.21 LibVLC/3.0.21")
	get(t, url, "User-Agent", "VLC/3.0.21 LibVLC/3.0.21")
	require.Equal(t, 1, r.srv.Viewers("demo"))
	require.Equal(t, 1.0, r.viewers("demo"))
	get(t, url, "User-Agent", "AppleCoreMedia/1.0.0.21E236 (iPhone; U; CPU OS 17_4 like Mac OS X; fr_fr)")
	require.Equal(t, 2, r.srv.Viewers("demo"))
	require.Equal(t, 2.0, r.viewers("demo"))
	require.Equal(t, 2.0, sessions())

	// Requests that reach no live channel count nobody.
	get(t, r.base+"/offline/index.m3u8", "User-Agent", "curl/8")
	require.Zero(t, r.srv.Viewers("offline"))
	require.Equal(t, 2, r.srv.Viewers("demo"))

	// Viewers' addresses and browsers are in no log and no metric.
	mfs, err := r.reg.Gather()
	require.NoError(t, err)
	var exposition strings.Builder
	for _, mf := range mfs {
		exposition.WriteString(mf.String())
	}
	for _, private := range []string{"127.0.0.1", "VLC", "iPhone"} {
		require.NotContains(t, r.logs.String(), private)
		require.NotContains(t, exposition.String(), private)
	}
}

// TestViewerWindow: a client is a viewer until it fetched nothing for the
// window; one that comes back later starts a new session.
func TestViewerWindow(t *testing.T) {
	reg := prometheus.NewRegistry()
	met, err := newMetrics(reg)
	require.NoError(t, err)
	v := newViewerCounter(10*time.Second, met.viewers, met.sessions)
	t0 := time.Date(2026, 3, 12, 18, 0, 0, 0, time.UTC)
	at := func(d time.Duration) time.Time { return t0.Add(d) }
	gauge := func() float64 { return testutil.ToFloat64(met.viewers.WithLabelValues("bourg", "hls")) }
	sessions := func() float64 { return testutil.ToFloat64(met.sessions.WithLabelValues("bourg", "hls")) }
	const alice, bob = 1, 2

	v.seen("bourg", alice, at(0))
	v.seen("bourg", bob, at(0))
	v.seen("bourg", alice, at(5*time.Second))
	v.sweep(at(6 * time.Second))
	require.Equal(t, 2, v.count("bourg"))
	require.Equal(t, 2.0, gauge())
	require.Equal(t, 2.0, sessions())

	v.sweep(at(11 * time.Second)) // bob: 11 s without a fetch
	require.Equal(t, 1, v.count("bourg"))
	require.Equal(t, 1.0, gauge())

	v.seen("bourg", alice, at(14*time.Second))
	v.sweep(at(24 * time.Second))
	require.Equal(t, 1, v.count("bourg"), "10 s exactly is still within the window")
	v.sweep(at(25 * time.Second))
	require.Zero(t, v.count("bourg"))
	require.Zero(t, gauge())

	v.seen("bourg", bob, at(30*time.Second))
	require.Equal(t, 1, v.count("bourg"))
	require.Equal(t, 3.0, sessions(), "bob's return is a new session")
	require.Zero(t, v.count("other"))
}

// TestViewerKey: the key depends on the address (not the port) and the
// User-Agent.
func TestViewerKey(t *testing.T) {
	v := newViewerCounter(time.Second, nil, nil)
	req := func(addr, ua string) *http.Request {
		r, err := http.NewRequest(http.MethodGet, "/hls/a/index.m3u8", nil)
		require.NoError(t, err)
		r.RemoteAddr = addr
		r.Header.Set("User-Agent", ua)
		return r
	}
	a := v.clientKey(req("192.0.2.1:5000", "Safari"))
	require.Equal(t, a, v.clientKey(req("192.0.2.1:6000", "Safari")), "same client, new connection")
	require.NotEqual(t, a, v.clientKey(req("192.0.2.2:5000", "Safari")))
	require.NotEqual(t, a, v.clientKey(req("192.0.2.1:5000", "VLC")))
	require.NotEqual(t, v.clientKey(req("192.0.2.1:5000", "")), v.clientKey(req("192.0.2.", "15000")), "fields are separated")
}

// TestVideoSizeChange: a publisher that comes back within the grace period
// with another picture size keeps the same muxer (new SPS/PPS travel in
// band with each IDR), and ffmpeg decodes across the change without error.
func TestVideoSizeChange(t *testing.T) {
	requireTools(t)
	big := encodeClip(t, 640, 360, 5*time.Second, 48000)
	small := encodeClip(t, 320, 180, 4*time.Second, 48000)
	r := startRelay(t, relayOptions{})
	ch, _ := r.hub.Channel("push")

	publish := func(c *testClip) {
		s, err := ch.Publish(relay.PublisherInfo{Protocol: "rtmp"}, c.tracks())
		require.NoError(t, err)
		c.publish(s)
		s.Close() // interrupted: "push" has a grace period
	}
	publish(big)
	mx := r.srv.muxer("push")
	require.NotNil(t, mx)
	publish(small)
	require.Same(t, mx, r.srv.muxer("push"), "same muxer: players keep playing")

	url := r.base + "/push/index.m3u8"
	// The playlist keeps 7 segments of 1 s: the last of the big picture and
	// those of the small one. ffmpeg starts at the first and reads 5 s.
	out := decodeFrom(t, url, 5*time.Second)
	t.Logf("sizes decoded: %v", out.sizes)
	require.Empty(t, out.errors, "ffmpeg prints no error")
	require.True(t, slices.Contains(out.sizes, "640x360") && slices.Contains(out.sizes, "320x180"),
		"decoded both sizes: %v", out.sizes)
}

// TestAudioChange: a publisher that comes back with another audio config
// gets a new muxer (new init segments and playlist), which serves the new
// audio.
func TestAudioChange(t *testing.T) {
	requireTools(t)
	first := encodeClip(t, 320, 180, 3*time.Second, 48000)
	second := encodeClip(t, 320, 180, 3*time.Second, 44100)
	r := startRelay(t, relayOptions{})
	ch, _ := r.hub.Channel("push")

	s, err := ch.Publish(relay.PublisherInfo{Protocol: "rtmp"}, first.tracks())
	require.NoError(t, err)
	first.publish(s)
	s.Close()
	mx := r.srv.muxer("push")
	require.NotNil(t, mx)
	_, body := mustGet(t, r.base+"/push/audio2_stream.m3u8")
	oldInit := parseMedia(t, body).init

	s, err = ch.Publish(relay.PublisherInfo{Protocol: "rtmp"}, second.tracks())
	require.NoError(t, err)
	second.publish(s)
	require.Eventually(t, func() bool {
		now := r.srv.muxer("push")
		return now != nil && now != mx
	}, 5*time.Second, 10*time.Millisecond, "a new muxer")
	require.True(t, mx.closed.Load(), "the old muxer is closed")
	require.Contains(t, r.logs.String(), "changed its audio")
	pl := waitMedia(t, r.base+"/push/audio2_stream.m3u8", 1)
	require.NotEqual(t, oldInit, pl.init, "new init segment")
	res, _ := get(t, r.base+"/push/"+oldInit)
	require.Equal(t, http.StatusNotFound, res.StatusCode, "the old muxer's files are gone")
	s.Close()
}

// TestMuxerNeedsVideo: a muxer needs a video track.
func TestMuxerNeedsVideo(t *testing.T) {
	_, err := newMuxer(Config{Variant: VariantLowLatency, SegmentCount: 7, SegmentDuration: time.Second, PartDuration: 200 * time.Millisecond},
		&relay.Tracks{}, false, func(error) {})
	require.ErrorIs(t, err, relay.ErrNoVideo)
}

// TestNewValidates: New refuses what the config loader refuses, naming
// the key.
func TestNewValidates(t *testing.T) {
	hub := relay.NewHub(nil, zerolog.Nop(), relay.NewMetrics(prometheus.NewRegistry()))
	for _, tc := range []struct {
		cfg  Config
		want string
	}{
		{Config{Variant: "dash"}, "hls.variant"},
		{Config{Variant: VariantLowLatency, SegmentCount: 5}, "hls.segment_count"},
		{Config{Variant: VariantMPEGTS, SegmentCount: 2}, "hls.segment_count"},
		{Config{SegmentDuration: time.Minute}, "hls.segment_duration"},
		{Config{SegmentDuration: time.Second, PartDuration: 2 * time.Second}, "hls.part_duration"},
	} {
		_, err := New(tc.cfg, hub, zerolog.Nop(), nil)
		require.ErrorContains(t, err, tc.want)
	}
	s, err := New(Config{}, hub, zerolog.Nop(), nil)
	require.NoError(t, err)
	require.Equal(t, Config{Variant: VariantMPEGTS, SegmentCount: 7, SegmentDuration: time.Second, PartDuration: 200 * time.Millisecond,
		MaxViewersPerAddress: 200}, s.cfg)
	require.Equal(t, 6*time.Second, s.hold)
	require.Equal(t, 10*time.Second, s.viewers.window)
}

// decoded is what ffmpeg saw.
type decoded struct {
	errors string
	sizes  []string // distinct picture sizes, in order
}

// decodeFrom has ffmpeg decode dur of a live playlist from its first
// segment, and reports its errors and the picture sizes it decoded.
func decodeFrom(t *testing.T, url string, dur time.Duration) decoded {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	// showinfo logs each frame at level info; "level" tags every line
	// with its level, so errors stay apart.
	b, err := exec.CommandContext(ctx, "ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "level+info",
		"-live_start_index", "0", "-i", url,
		"-t", fmt.Sprint(dur.Seconds()), "-map", "0:v", "-vf", "showinfo", "-f", "null", "-").CombinedOutput()
	out := string(b)
	require.NoError(t, err, "ffmpeg: %s", out)
	var d decoded
	for line := range strings.Lines(out) {
		if strings.Contains(line, "[error]") || strings.Contains(line, "[fatal]") || strings.Contains(line, "[panic]") {
			d.errors += line
			continue
		}
		if !strings.Contains(line, "Parsed_showinfo") {
			continue
		}
		_, after, ok := strings.Cut(line, " s:")
		if !ok {
			continue
		}
		size, _, _ := strings.Cut(after, " ")
		if len(d.sizes) == 0 || d.sizes[len(d.sizes)-1] != size {
			d.sizes = append(d.sizes, size)
		}
	}
	return d
}

// TestLiveBeforeFirstKeyframe: between the moment a channel goes live and
// its first keyframe, a request waits for the muxer instead of getting a
// 404; it gets a 503 if nothing comes within the hold bound, and a 404 as
// soon as the session ends.
func TestLiveBeforeFirstKeyframe(t *testing.T) {
	requireTools(t)
	clip := encodeClip(t, 320, 180, 3*time.Second, 48000)
	const hold = 2 * time.Second
	r := startRelay(t, relayOptions{hold: hold})
	ch, _ := r.hub.Channel("push")
	url := r.base + "/push/index.m3u8"
	type answer struct {
		code int
		took time.Duration
	}
	ask := func(url string) <-chan answer {
		out := make(chan answer, 1)
		go func() {
			start := time.Now()
			res, err := http.Get(url)
			if err != nil {
				out <- answer{}
				return
			}
			res.Body.Close()
			out <- answer{res.StatusCode, time.Since(start)}
		}()
		return out
	}

	s, err := ch.Publish(relay.PublisherInfo{Protocol: "rtmp"}, clip.tracks())
	require.NoError(t, err)
	a := <-ask(url)
	require.Equal(t, http.StatusServiceUnavailable, a.code, "live, but no frame within the hold bound")
	require.GreaterOrEqual(t, a.took, hold)

	pending := ask(url)
	select {
	case a := <-pending:
		t.Fatalf("answered %d before the first keyframe", a.code)
	case <-time.After(200 * time.Millisecond):
	}
	clip.publish(s)
	a = <-pending
	require.Equal(t, http.StatusOK, a.code)

	s.Close() // interrupted: "push" has a grace period
	ch2, _ := r.hub.Channel("demo")
	s2, err := ch2.Publish(relay.PublisherInfo{Protocol: "rtmp"}, clip.tracks())
	require.NoError(t, err)
	waiting := testutil.ToFloat64(r.srv.met.held)
	pending = ask(r.base + "/demo/index.m3u8")
	require.Eventually(t, func() bool { return testutil.ToFloat64(r.srv.met.held) > waiting },
		time.Second, 5*time.Millisecond, "the request waits")
	s2.Close() // "demo" has no grace: the session ends
	a = <-pending
	require.Equal(t, http.StatusNotFound, a.code)
	require.Less(t, a.took, hold/2, "the end of the session answers at once")
}

// TestChannelsAddedAndRemoved: a channel added at run time (config reload)
// is served once live; a removed one stops at once and is unknown.
func TestChannelsAddedAndRemoved(t *testing.T) {
	r := startRelay(t, relayOptions{})
	res, body := get(t, r.base+"/later/index.m3u8")
	require.Equal(t, http.StatusNotFound, res.StatusCode)
	require.Equal(t, "no such channel\n", body)

	_, added := r.hub.Add(relay.ChannelConfig{Name: "later"})
	require.True(t, added)
	r.startDemo(t, "later")
	mx := r.srv.muxer("later")
	mustGet(t, r.base+"/later/index.m3u8")

	require.True(t, r.hub.Remove("later"))
	require.Eventually(t, func() bool { return r.srv.muxer("later") == nil }, 5*time.Second, 10*time.Millisecond)
	require.True(t, mx.closed.Load())
	res, body = get(t, r.base+"/later/index.m3u8")
	require.Equal(t, http.StatusNotFound, res.StatusCode)
	require.Equal(t, "no such channel\n", body)
	r.stopDemo(t)
}
