package hls

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
	"github.com/stretchr/testify/require"

	"github.com/seance-relay/seance/relay"
)

// pathSeeds are request paths players send, and some they should not.
var pathSeeds = []string{
	"/hls/demo/index.m3u8",
	"/hls/demo/video1_stream.m3u8",
	"/hls/demo/audio2_stream.m3u8",
	"/hls/demo/main_stream.m3u8",
	"/hls/demo/0a1b2c3d4e5f_video1_init.mp4",
	"/hls/demo/0a1b2c3d4e5f_video1_seg7.mp4",
	"/hls/demo/0a1b2c3d4e5f_main_seg3.ts",
	"/hls/demo/0a1b2c3d4e5f_video1_part12.mp4",
	"/hls/demo/gap.mp4",
	"/hls/demo/../../etc/passwd",
	"/hls//index.m3u8",
	"/hls/demo/.index.m3u8",
	"/hls/demo/_seg.mp4",
	"/hls/demo/x_part123456789012345678901.mp4",
	"/hls/démo/index.m3u8",
	"/hls/demo/index.m3u8/",
	"/whep/demo",
	"/hls/demo/basse/index.m3u8",
	"/hls/demo/audio/audio1_stream.m3u8",
	"/hls/demo/basse/x/index.m3u8",
	"/hls/demo/../index.m3u8",
}

// FuzzParsePath: whatever the path, parsePath accepts only a channel and a
// file name made of safe characters that rebuild the path exactly.
func FuzzParsePath(f *testing.F) {
	for _, s := range pathSeeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, path string) {
		channel, sub, file, kind, ok := parsePath(path)
		if !ok {
			return
		}
		if sub != "" {
			require.True(t, validName(sub, 64), sub)
			require.Equal(t, path, PathPrefix+channel+"/"+sub+"/"+file)
		} else {
			require.Equal(t, path, PathPrefix+channel+"/"+file)
		}
		require.True(t, validName(channel, 64), channel)
		require.True(t, validName(file, 128), file)
		require.False(t, strings.HasPrefix(file, "."), file)
		require.Contains(t, []fileKind{kindPlaylist, kindSegment, kindPart, kindInit}, kind)
	})
}

// FuzzHandler: any path and query on a live low-latency channel (gohlslib
// parses _HLS_msn, _HLS_part, _HLS_skip) gets an answer within the hold
// bound, with a status a player understands.
func FuzzHandler(f *testing.F) {
	for _, s := range pathSeeds {
		f.Add(s, "")
	}
	for _, q := range []string{
		"_HLS_msn=8", "_HLS_msn=8&_HLS_part=1", "_HLS_msn=9&_HLS_part=0&_HLS_skip=YES", "_HLS_skip=v2",
		"_HLS_part=3", "_HLS_msn=-1", "_HLS_msn=18446744073709551615&_HLS_part=18446744073709551615",
		"_HLS_msn=x", "%zz", "_HLS_msn=8;_HLS_part=1",
	} {
		f.Add("/hls/demo/video1_stream.m3u8", q)
	}
	requireTools(f)
	clip := encodeClip(f, 320, 180, 5*time.Second, 48000)
	hub := relay.NewHub([]relay.ChannelConfig{{Name: "demo"}}, zerolog.Nop(), relay.NewMetrics(prometheus.NewRegistry()))
	s, err := New(Config{Variant: VariantLowLatency}, hub, zerolog.Nop(), nil)
	require.NoError(f, err)
	s.hold = 50 * time.Millisecond
	tr := clip.tracks()
	mx, err := newMuxer(s.cfg, &tr, false, func(error) {})
	require.NoError(f, err)
	for _, fr := range clip.frames(0) {
		fr.Tracks = &tr
		require.NoError(f, mx.write(fr))
	}
	s.setMuxer("demo", mx)
	f.Cleanup(mx.close)

	f.Fuzz(func(t *testing.T, path, query string) {
		req := httptest.NewRequest(http.MethodGet, "http://relay.example/", nil)
		req.URL.Path, req.URL.RawQuery = path, query
		w := httptest.NewRecorder()
		start := time.Now()
		s.serveHTTP(w, req)
		require.Less(t, time.Since(start), 5*time.Second)
		switch w.Code {
		case http.StatusOK:
			require.NotEmpty(t, w.Body.Bytes())
			require.NotEmpty(t, w.Header().Get("Cache-Control"))
		case http.StatusBadRequest, http.StatusNotFound, http.StatusServiceUnavailable:
		default:
			t.Fatalf("status %d for %q?%q", w.Code, path, query)
		}
		require.Equal(t, "*", w.Header().Get("Access-Control-Allow-Origin"))
	})
}
