package hls

import (
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"

	"github.com/seance-relay/seance/relay"
)

func TestMergeMultivariant(t *testing.T) {
	full := "#EXTM3U\n#EXT-X-VERSION:10\n#EXT-X-INDEPENDENT-SEGMENTS\n\n" +
		"#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID=\"audio\",NAME=\"audio2\",AUTOSELECT=YES,DEFAULT=YES,URI=\"audio2_stream.m3u8\"\n\n" +
		"#EXT-X-STREAM-INF:BANDWIDTH=2900000,AVERAGE-BANDWIDTH=2500000,CODECS=\"avc1.64001f,mp4a.40.2\",RESOLUTION=1280x720,FRAME-RATE=30.000,AUDIO=\"audio\"\n" +
		"video1_stream.m3u8\n"
	low := strings.ReplaceAll(strings.ReplaceAll(full, "1280x720", "640x360"), "2900000", "600000")
	audio := "#EXTM3U\n#EXT-X-VERSION:9\n#EXT-X-INDEPENDENT-SEGMENTS\n\n" +
		"#EXT-X-STREAM-INF:BANDWIDTH=56000,AVERAGE-BANDWIDTH=52000,CODECS=\"mp4a.40.2\"\naudio1_stream.m3u8\n"
	ts := "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-INDEPENDENT-SEGMENTS\n\n" +
		"#EXT-X-STREAM-INF:BANDWIDTH=600000,AVERAGE-BANDWIDTH=500000,CODECS=\"avc1.64001e,mp4a.40.2\",RESOLUTION=640x360,FRAME-RATE=30.000\nmain_stream.m3u8?x=1\n"
	for _, tc := range []struct {
		name  string
		parts []variantPlaylist
		want  string
	}{
		{
			name: "fmp4 with renditions",
			parts: []variantPlaylist{
				{body: []byte(full)},
				{prefix: "basse/", group: "basse", body: []byte(low)},
				{prefix: "audio/", group: "audio", body: []byte(audio)},
			},
			want: "#EXTM3U\n#EXT-X-VERSION:10\n#EXT-X-INDEPENDENT-SEGMENTS\n\n" +
				"#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID=\"audio\",NAME=\"audio2\",AUTOSELECT=YES,DEFAULT=YES,URI=\"audio2_stream.m3u8\"\n" +
				"#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID=\"audio-basse\",NAME=\"audio2\",AUTOSELECT=YES,DEFAULT=YES,URI=\"basse/audio2_stream.m3u8\"\n\n" +
				"#EXT-X-STREAM-INF:BANDWIDTH=2900000,AVERAGE-BANDWIDTH=2500000,CODECS=\"avc1.64001f,mp4a.40.2\",RESOLUTION=1280x720,FRAME-RATE=30.000,AUDIO=\"audio\"\n" +
				"video1_stream.m3u8\n" +
				"#EXT-X-STREAM-INF:BANDWIDTH=600000,AVERAGE-BANDWIDTH=2500000,CODECS=\"avc1.64001f,mp4a.40.2\",RESOLUTION=640x360,FRAME-RATE=30.000,AUDIO=\"audio-basse\"\n" +
				"basse/video1_stream.m3u8\n" +
				"#EXT-X-STREAM-INF:BANDWIDTH=56000,AVERAGE-BANDWIDTH=52000,CODECS=\"mp4a.40.2\"\n" +
				"audio/audio1_stream.m3u8\n",
		},
		{
			name:  "mpegts, a query kept",
			parts: []variantPlaylist{{prefix: "basse/", group: "basse", body: []byte(ts)}},
			want: "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-INDEPENDENT-SEGMENTS\n\n" +
				"#EXT-X-STREAM-INF:BANDWIDTH=600000,AVERAGE-BANDWIDTH=500000,CODECS=\"avc1.64001e,mp4a.40.2\",RESOLUTION=640x360,FRAME-RATE=30.000\n" +
				"basse/main_stream.m3u8?x=1\n",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			require.Equal(t, tc.want, string(mergeMultivariant(tc.parts)))
		})
	}
}

var streamInf = regexp.MustCompile(`#EXT-X-STREAM-INF:(.*)\n([^\n]+)`)

// TestMultivariantLists: a channel with a 360-line rendition lists, in its
// multivariant playlist, the full stream, the rendition and the audio-only
// rendition (under 64 kbit/s), with the BANDWIDTH, CODECS and RESOLUTION
// gohlslib measured; ffprobe reads each one's playlist.
func TestMultivariantLists(t *testing.T) {
	requireTools(t)
	for _, variant := range []string{VariantLowLatency, VariantMPEGTS} {
		t.Run(variant, func(t *testing.T) {
			r := startRelay(t, relayOptions{cfg: Config{Variant: variant}, demo: true,
				renditions: []relay.RenditionConfig{{Name: "basse", Height: 360, VideoBitrate: 500_000}}})
			require.Eventually(t, func() bool { return r.srv.muxer("demo/basse") != nil && r.srv.muxer("demo/audio") != nil },
				20*time.Second, 20*time.Millisecond, "the rendition's muxers start")
			var body string
			require.Eventually(t, func() bool {
				_, body = get(t, r.base+"/demo/index.m3u8")
				return len(streamInf.FindAllStringSubmatch(body, -1)) == 3
			}, 20*time.Second, 200*time.Millisecond, "three variants listed")
			vs := streamInf.FindAllStringSubmatch(body, -1)
			attrs := func(i int, k string) string {
				for _, a := range splitAttrs(vs[i][1]) {
					if key, v, _ := strings.Cut(a, "="); key == k {
						return strings.Trim(v, `"`)
					}
				}
				return ""
			}
			bw := func(i int) int { n, _ := strconv.Atoi(attrs(i, "BANDWIDTH")); return n }
			require.Equal(t, "1280x720", attrs(0, "RESOLUTION"), body)
			require.Equal(t, "640x360", attrs(1, "RESOLUTION"), body)
			require.Empty(t, attrs(2, "RESOLUTION"), body)
			require.Equal(t, "mp4a.40.2", attrs(2, "CODECS"), body)
			require.Contains(t, attrs(1, "CODECS"), "avc1.", body)
			t.Logf("%s: BANDWIDTH full %d, basse %d, audio %d", variant, bw(0), bw(1), bw(2))
			require.Less(t, bw(2), 64_000, "the audio-only rendition: %s", body)
			require.Less(t, bw(1), bw(0), body)
			require.True(t, strings.HasPrefix(vs[1][2], "basse/"), body)
			require.True(t, strings.HasPrefix(vs[2][2], "audio/"), body)

			streams := ffprobe(t, r.base+"/demo/"+vs[1][2])
			var heights []int
			for _, s := range streams {
				if s.CodecName == "h264" {
					heights = append(heights, s.Height)
				}
			}
			require.Equal(t, []int{360}, heights, "the rendition's playlist: %v", streams)
			streams = ffprobe(t, r.base+"/demo/"+vs[2][2])
			require.Len(t, streams, 1)
			require.Equal(t, "aac", streams[0].CodecName)
			require.Empty(t, decode(t, r.base+"/demo/"+vs[1][2], 2*time.Second), "ffmpeg decodes the rendition without error")
			for _, q := range []string{"basse", "audio"} {
				require.Equal(t, 1.0, testutil.ToFloat64(r.srv.met.byQuality.WithLabelValues("demo", "hls", q)), "ffprobe counted as a viewer of %s", q)
			}
		})
	}
}
