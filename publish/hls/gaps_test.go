package hls

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/bluenviron/gohlslib/v2/pkg/playlist"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
	"github.com/stretchr/testify/require"

	"github.com/seance-relay/seance/relay"
)

// llPlaylist writes a media playlist laid out as gohlslib's low-latency
// muxer writes it: from media sequence number seq, skipped segments (-1: a
// full playlist, with its EXT-X-MAP), gaps placeholders, then segments
// numbered from the next number, the last one with two parts, and a
// preload hint.
func llPlaylist(seq, skipped, gaps, segments int) string {
	var b strings.Builder
	b.WriteString("#EXTM3U\n#EXT-X-VERSION:10\n#EXT-X-TARGETDURATION:2\n" +
		"#EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES,PART-HOLD-BACK=0.50000,CAN-SKIP-UNTIL=12.00000\n" +
		"#EXT-X-PART-INF:PART-TARGET=0.20000\n")
	fmt.Fprintf(&b, "#EXT-X-MEDIA-SEQUENCE:%d\n", seq)
	n := seq
	if skipped < 0 {
		b.WriteString(`#EXT-X-MAP:URI="abc_video1_init.mp4"` + "\n")
	} else {
		fmt.Fprintf(&b, "#EXT-X-SKIP:SKIPPED-SEGMENTS=%d\n", skipped)
		n += skipped
	}
	for range gaps {
		b.WriteString("#EXT-X-GAP\n#EXTINF:2.00000,\ngap.mp4\n")
		n++
	}
	for i := range segments {
		if i == segments-1 {
			b.WriteString("#EXT-X-PROGRAM-DATE-TIME:2026-03-01T18:00:00.000Z\n")
			fmt.Fprintf(&b, "#EXT-X-PART:DURATION=0.20000,URI=\"abc_video1_part%d.mp4\",INDEPENDENT=YES\n", 10*n)
			fmt.Fprintf(&b, "#EXT-X-PART:DURATION=0.20000,URI=\"abc_video1_part%d.mp4\"\n", 10*n+1)
		}
		fmt.Fprintf(&b, "#EXTINF:2.00000,\nabc_video1_seg%d.mp4\n", n)
		n++
	}
	fmt.Fprintf(&b, "#EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"abc_video1_part%d.mp4\"\n", 10*n)
	return b.String()
}

// gapCases feed TestGapFilter and FuzzGapFilter's seeds. Each case runs on
// a new filter, which sees the playlists of steps in order; want is what
// it serves for each.
var gapCases = []struct {
	name  string
	steps []string
	want  []string
}{
	{"first segment", []string{llPlaylist(1, -1, 6, 1)}, []string{llPlaylist(7, -1, 0, 1)}},
	{"gaps leave one by one",
		[]string{llPlaylist(1, -1, 6, 1), llPlaylist(2, -1, 5, 2), llPlaylist(6, -1, 1, 6), llPlaylist(7, -1, 0, 7), llPlaylist(8, -1, 0, 7)},
		[]string{llPlaylist(7, -1, 0, 1), llPlaylist(7, -1, 0, 2), llPlaylist(7, -1, 0, 6), llPlaylist(7, -1, 0, 7), llPlaylist(8, -1, 0, 7)}},
	{"delta update showing gaps",
		[]string{llPlaylist(1, -1, 6, 1), llPlaylist(2, 2, 3, 2)},
		[]string{llPlaylist(7, -1, 0, 1), llPlaylist(7, 0, 0, 2)}},
	{"delta update skipping every gap and a segment",
		[]string{llPlaylist(2, -1, 5, 2), llPlaylist(6, 2, 0, 5)},
		[]string{llPlaylist(7, -1, 0, 2), llPlaylist(7, 1, 0, 5)}},
	{"delta update skipping exactly the gaps",
		[]string{llPlaylist(5, -1, 2, 5), llPlaylist(5, 2, 0, 5)},
		[]string{llPlaylist(7, -1, 0, 5), llPlaylist(7, 0, 0, 5)}},
	{"no gap ever (gaps gone before the first request)",
		[]string{llPlaylist(9, -1, 0, 7), llPlaylist(10, 2, 0, 5)},
		[]string{llPlaylist(9, -1, 0, 7), llPlaylist(10, 2, 0, 5)}},
	{"multivariant playlist",
		[]string{"#EXTM3U\n#EXT-X-VERSION:10\n#EXT-X-INDEPENDENT-SEGMENTS\n#EXT-X-STREAM-INF:BANDWIDTH=800000\nvideo1_stream.m3u8\n"},
		[]string{"#EXTM3U\n#EXT-X-VERSION:10\n#EXT-X-INDEPENDENT-SEGMENTS\n#EXT-X-STREAM-INF:BANDWIDTH=800000\nvideo1_stream.m3u8\n"}},
	// Layouts gohlslib does not write are served as they are.
	{"gaps only", []string{llPlaylist(0, -1, 7, 0)}, []string{llPlaylist(0, -1, 7, 0)}},
	{"gap not at the start",
		[]string{strings.Replace(llPlaylist(7, -1, 0, 2), "#EXTINF:2.00000,\nabc_video1_seg8.mp4\n", "#EXT-X-GAP\n#EXTINF:2.00000,\ngap.mp4\n", 1)},
		[]string{strings.Replace(llPlaylist(7, -1, 0, 2), "#EXTINF:2.00000,\nabc_video1_seg8.mp4\n", "#EXT-X-GAP\n#EXTINF:2.00000,\ngap.mp4\n", 1)}},
	{"gap with another URI",
		[]string{strings.Replace(llPlaylist(1, -1, 6, 1), "gap.mp4", "x.mp4", 1)},
		[]string{strings.Replace(llPlaylist(1, -1, 6, 1), "gap.mp4", "x.mp4", 1)}},
	{"gap without EXTINF",
		[]string{strings.Replace(llPlaylist(1, -1, 6, 1), "#EXT-X-GAP\n#EXTINF:2.00000,\n", "#EXT-X-GAP\n", 1)},
		[]string{strings.Replace(llPlaylist(1, -1, 6, 1), "#EXT-X-GAP\n#EXTINF:2.00000,\n", "#EXT-X-GAP\n", 1)}},
	{"truncated gap", []string{"#EXTM3U\n#EXT-X-MEDIA-SEQUENCE:0\n#EXT-X-GAP\n#EXTINF:2,\n"}, []string{"#EXTM3U\n#EXT-X-MEDIA-SEQUENCE:0\n#EXT-X-GAP\n#EXTINF:2,\n"}},
	{"no media sequence",
		[]string{strings.Replace(llPlaylist(1, -1, 6, 1), "#EXT-X-MEDIA-SEQUENCE:1\n", "", 1)},
		[]string{strings.Replace(llPlaylist(1, -1, 6, 1), "#EXT-X-MEDIA-SEQUENCE:1\n", "", 1)}},
	{"bad media sequence",
		[]string{strings.Replace(llPlaylist(1, -1, 6, 1), "SEQUENCE:1", "SEQUENCE:-1", 1)},
		[]string{strings.Replace(llPlaylist(1, -1, 6, 1), "SEQUENCE:1", "SEQUENCE:-1", 1)}},
	{"bad skip",
		[]string{llPlaylist(1, -1, 6, 1), strings.Replace(llPlaylist(2, 2, 3, 2), "SEGMENTS=2", "SEGMENTS=x", 1)},
		[]string{llPlaylist(7, -1, 0, 1), strings.Replace(llPlaylist(2, 2, 3, 2), "SEGMENTS=2", "SEGMENTS=x", 1)}},
	{"delta update hiding more gaps than it skips",
		[]string{llPlaylist(1, -1, 6, 1), llPlaylist(2, 1, 0, 2)},
		[]string{llPlaylist(7, -1, 0, 1), llPlaylist(2, 1, 0, 2)}},
}

// TestGapFilter: the leading gaps leave the playlist and the media
// sequence number advances by their number, also in delta updates whose
// skipped segments include gaps; other layouts pass untouched.
func TestGapFilter(t *testing.T) {
	for _, tc := range gapCases {
		t.Run(tc.name, func(t *testing.T) {
			var f gapFilter
			for i, pl := range tc.steps {
				require.Equal(t, tc.want[i], string(f.filter([]byte(pl))), "step %d", i)
			}
		})
	}
}

// FuzzGapFilter: whatever the playlist, the filter does not panic, and
// when it changes one it only removes gaps and advances the media sequence
// number by at least as many segments as it removed (more when a delta
// update skipped some).
func FuzzGapFilter(f *testing.F) {
	for _, tc := range gapCases {
		f.Add([]byte(strings.Join(tc.steps, "\x00")))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		var g gapFilter
		for _, pl := range strings.Split(string(in), "\x00") {
			out := string(g.filter([]byte(pl)))
			if out == pl {
				continue
			}
			before, ok := mediaSequence([]byte(pl))
			require.True(t, ok)
			after, ok := mediaSequence([]byte(out))
			require.True(t, ok)
			require.Greater(t, after, before)
			removed := len(lines(pl, "#EXT-X-GAP")) - len(lines(out, "#EXT-X-GAP"))
			require.GreaterOrEqual(t, removed, 0)
			require.LessOrEqual(t, int64(removed), after-before)
			require.Equal(t, len(strings.Split(pl, "\n"))-3*removed, len(strings.Split(out, "\n")), "three lines a gap")
		}
	})
}

// TestGapsHiddenFromPlayers runs a real low-latency muxer segment by
// segment through the session's first seconds: gohlslib lists its gaps,
// players get none, and what they get is what gohlslib made otherwise.
// Every real segment keeps its media sequence number (the N of its
// _segN name, which _HLS_msn names), delta updates rebuild the full
// playlist, the media sequence never goes back, and once the gaps are
// gone the playlists pass untouched.
func TestGapsHiddenFromPlayers(t *testing.T) {
	requireTools(t)
	clip := encodeClip(t, 320, 180, 12*time.Second, 48000) // a keyframe every second
	hub := relay.NewHub([]relay.ChannelConfig{{Name: "demo"}}, zerolog.Nop(), relay.NewMetrics(prometheus.NewRegistry()))
	s, err := New(Config{Variant: VariantLowLatency}, hub, zerolog.Nop(), nil)
	require.NoError(t, err)
	tr := clip.tracks()
	mx, err := newMuxer(s.cfg, &tr, false, func(err error) { t.Error(err) })
	require.NoError(t, err)
	t.Cleanup(mx.close)
	s.setMuxer("demo", mx)

	serve := func(file, query string) string {
		req := httptest.NewRequest(http.MethodGet, "http://relay.example/hls/demo/"+file+"?"+query, nil)
		w := httptest.NewRecorder()
		s.serveHTTP(w, req)
		require.Equal(t, http.StatusOK, w.Code, w.Body.String())
		return w.Body.String()
	}
	raw := func(file, query string) string {
		req := httptest.NewRequest(http.MethodGet, "http://relay.example/"+file+"?"+query, nil)
		w := httptest.NewRecorder()
		mx.m.Handle(w, req)
		require.Equal(t, http.StatusOK, w.Code)
		return w.Body.String()
	}

	frames := clip.frames(0)
	next := 0
	lastSeq := map[string]int64{}
	sawGaps := false
	for second := 1; second <= 11; second++ {
		// Write up to this second's keyframe: it ends a segment.
		for ; next < len(frames) && frames[next].PTS <= time.Duration(second)*time.Second; next++ {
			require.NoError(t, mx.write(frames[next]))
		}
		if second == 1 {
			continue // no segment yet
		}
		for _, file := range []string{"video1_stream.m3u8", "audio2_stream.m3u8"} {
			gohlslibFull, full := raw(file, ""), serve(file, "")
			if strings.Contains(gohlslibFull, "#EXT-X-GAP") {
				sawGaps = true
			}
			pl := parseServed(t, full)
			require.NotContains(t, full, "GAP", "%s at %d s", file, second)
			require.NotContains(t, full, "gap.mp4")
			require.GreaterOrEqual(t, pl.seq, lastSeq[file], "the media sequence never goes back")
			lastSeq[file] = pl.seq
			require.Equal(t, realSegments(t, gohlslibFull), pl.segments, "the same segments, with the same numbers")
			require.NotEmpty(t, pl.segments)
			for i, uri := range pl.segments {
				require.Equal(t, pl.seq+int64(i), segmentNumber(t, uri), "media sequence number of %s", uri)
			}
			for _, tag := range []string{"#EXT-X-SERVER-CONTROL:", "#EXT-X-PART-INF:", "#EXT-X-PRELOAD-HINT:", "#EXT-X-MAP:", "#EXT-X-PART:"} {
				require.Equal(t, lines(gohlslibFull, tag), lines(full, tag), tag)
			}
			if !strings.Contains(gohlslibFull, "#EXT-X-GAP") {
				require.Equal(t, gohlslibFull, full, "no gap: untouched")
			}

			// A delta update merged with the full playlist gives it back.
			delta := parseServed(t, serve(file, "_HLS_skip=YES"))
			require.Equal(t, pl.seq, delta.seq, "delta update's media sequence")
			require.Equal(t, pl.segments[delta.skipped:], delta.segments, "segments after the skipped ones")

			// A blocking reload (_HLS_msn names the last segment's number).
			last := pl.segments[len(pl.segments)-1]
			blocking := parseServed(t, serve(file, "_HLS_msn="+strconv.FormatInt(segmentNumber(t, last), 10)+"&_HLS_part=0"))
			require.Equal(t, pl.seq, blocking.seq)
			require.Equal(t, pl.segments, blocking.segments)
		}
	}
	require.True(t, sawGaps, "gohlslib lists gaps at the start of a low-latency session (if it stopped, gapFilter can go)")
	for _, file := range []string{"video1_stream.m3u8", "audio2_stream.m3u8"} {
		require.Equal(t, raw(file, ""), serve(file, ""), "the gaps have gone: playlists pass untouched")
	}
}

// servedPlaylist is what TestGapsHiddenFromPlayers reads from a playlist
// gohlslib's parser accepted.
type servedPlaylist struct {
	seq      int64
	skipped  int
	segments []string
}

func parseServed(t *testing.T, body string) servedPlaylist {
	t.Helper()
	var m playlist.Media
	require.NoError(t, m.Unmarshal([]byte(body)), body)
	require.NotNil(t, m.ServerControl, "EXT-X-SERVER-CONTROL")
	require.NotNil(t, m.PartInf, "EXT-X-PART-INF")
	require.NotNil(t, m.PreloadHint, "EXT-X-PRELOAD-HINT")
	pl := servedPlaylist{seq: int64(m.MediaSequence)}
	if m.Skip != nil {
		pl.skipped = m.Skip.SkippedSegments
	} else {
		require.NotNil(t, m.Map, "a full playlist has EXT-X-MAP")
	}
	for _, seg := range m.Segments {
		require.False(t, seg.Gap, seg.URI)
		pl.segments = append(pl.segments, seg.URI)
	}
	return pl
}

// realSegments returns the URIs of a gohlslib playlist's segments that are
// not gaps.
func realSegments(t *testing.T, body string) []string {
	t.Helper()
	var m playlist.Media
	require.NoError(t, m.Unmarshal([]byte(body)))
	var uris []string
	for _, seg := range m.Segments {
		if !seg.Gap {
			uris = append(uris, seg.URI)
		}
	}
	return uris
}

var segNumber = regexp.MustCompile(`_seg(\d+)\.mp4$`)

func segmentNumber(t *testing.T, uri string) int64 {
	t.Helper()
	m := segNumber.FindStringSubmatch(uri)
	require.NotNil(t, m, uri)
	n, err := strconv.ParseInt(m[1], 10, 64)
	require.NoError(t, err)
	return n
}

// lines returns a playlist's lines that start with prefix (or equal it,
// for a tag without value).
func lines(body, prefix string) []string {
	var out []string
	for l := range strings.SplitSeq(body, "\n") {
		if strings.HasPrefix(l, prefix) {
			out = append(out, l)
		}
	}
	return out
}

// TestFFmpegAtSessionStart: ffmpeg does not know EXT-X-GAP either; reading
// a channel in its first seconds, while gohlslib lists its gaps, it
// fetches no placeholder and skips no segment (it warns when it does).
func TestFFmpegAtSessionStart(t *testing.T) {
	requireTools(t)
	r := startRelay(t, relayOptions{demo: true})
	mx := r.srv.muxer("demo")
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "ffmpeg", "-nostdin", "-v", "warning", "-i", r.base+"/demo/index.m3u8",
		"-t", "3", "-f", "null", "-").CombinedOutput()
	require.NoError(t, err, "ffmpeg: %s", out)
	require.NotContains(t, string(out), "gap.mp4")
	require.NotContains(t, string(out), "Failed to open segment")
	f, ok := mx.gaps.Load("video1_stream.m3u8")
	require.True(t, ok)
	require.Positive(t, f.(*gapFilter).end.Load(), "ffmpeg read while gohlslib listed gaps")
}
