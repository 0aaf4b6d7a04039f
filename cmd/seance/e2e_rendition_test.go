package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h264"
	"github.com/pion/rtp/codecs"
	"github.com/rs/zerolog"
	"github.com/stretchr/testify/require"

	"github.com/seance-relay/seance/transcode/rendition"
)

// spsHeightsE2E returns the packet index and picture height of each IDR's
// SPS among pkts (seance sends the SPS alone, first, before each IDR).
func spsHeightsE2E(pkts []whepPacket) (idx, heights []int) {
	for i, p := range pkts {
		if len(p.payload) > 0 && p.payload[0]&0x1f == 7 {
			var sps h264.SPS
			if sps.Unmarshal(p.payload) == nil {
				idx = append(idx, i)
				heights = append(heights, sps.Height())
			}
		}
	}
	return idx, heights
}

// decodedHeights has ffprobe decode the H.264 in pkts (RFC 6184
// depacketised) and returns each frame's height.
func decodedHeights(t *testing.T, pkts []whepPacket) []int {
	t.Helper()
	var annexB bytes.Buffer
	var d codecs.H264Packet
	for _, p := range pkts {
		if b, err := d.Unmarshal(p.payload); err == nil {
			annexB.Write(b)
		}
	}
	cmd := exec.Command("ffprobe", "-v", "error", "-f", "h264", "-i", "pipe:0",
		"-show_entries", "frame=height", "-of", "csv=p=0")
	cmd.Stdin = &annexB
	out, err := cmd.Output()
	require.NoError(t, err)
	var hs []int
	for f := range strings.FieldsSeq(string(out)) {
		var h int
		_, _ = fmt.Sscan(strings.Trim(f, ","), &h)
		hs = append(hs, h)
	}
	return hs
}

// TestE2ERenditionJibri: Jibri publishes 720p30 over RTMP to a channel with
// a 360-line rendition. A pion WHEP viewer switches to the rendition with
// the layer extension and decodes 360-line frames, then back to 720, on
// the same track; the "layers" event tells it; ffmpeg killed, the
// rendition restarts and a full viewer sees nothing of it; the HLS
// multivariant playlist lists the three renditions and ffprobe reads
// them. It logs the rendition's CPU and bytes per second.
func TestE2ERenditionJibri(t *testing.T) {
	requireTools(t)
	const dur = 60 * time.Second
	s := startSeance(t, listeners+fmt.Sprintf(`
admin: {listen: "127.0.0.1:0"}
channels:
  - name: conseil
    ingest: {key: %q}
    grace: 1s
    renditions: [{name: basse, height: 360, video_bitrate: 500k}]
`, secretIngestKey), "")
	startPublisher(t, s.publishURL("conseil", secretIngestKey), dur)
	s.waitChannel("conseil", "live", "", 15*time.Second)
	mk := s.app.renditions["conseil"][0]
	require.Eventually(t, func() bool { return mk.Status().State == "live" }, 20*time.Second, 50*time.Millisecond, "the rendition goes live")
	var status struct {
		Renditions []struct {
			Name         string `json:"name"`
			Height       int    `json:"height"`
			VideoBitrate int    `json:"video_bitrate"`
			State        string `json:"state"`
		} `json:"renditions"`
	}
	require.NoError(t, json.Unmarshal([]byte(s.mustGet("/api/v1/channels/conseil")), &status))
	require.Len(t, status.Renditions, 1)
	require.Equal(t, "basse", status.Renditions[0].Name)
	require.Equal(t, 360, status.Renditions[0].Height)
	require.Equal(t, 500_000, status.Renditions[0].VideoBitrate)
	require.Equal(t, "live", status.Renditions[0].State)

	// Cost, measured over 20 s from seance's own metrics.
	t0 := time.Now()
	m0 := s.mustGet("/metrics")

	base := "http://" + s.app.public.Addr().String()
	low := startWHEPViewer(t, base+"/whep/conseil")
	full := startWHEPViewer(t, base+"/whep/conseil")
	links := strings.Join(low.links, "\n")
	require.Contains(t, links, "<"+low.location+`/layer>; rel="urn:ietf:params:whep:ext:core:layer"`)
	require.Contains(t, links, "<"+low.location+`/sse>; rel="urn:ietf:params:whep:ext:core:server-sent-events"; events="layers"`)

	// The event stream: the two layers.
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+low.location+"/sse", nil)
	require.NoError(t, err)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	events := make(chan string, 32)
	go func() {
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
			if d, ok := strings.CutPrefix(sc.Text(), "data: "); ok {
				events <- d
			}
		}
		close(events)
	}()
	waitEvent := func(want string) map[string]any {
		t.Helper()
		deadline := time.After(15 * time.Second)
		for {
			select {
			case d, ok := <-events:
				require.True(t, ok, "the event stream ended")
				var m map[string]map[string]any
				require.NoError(t, json.Unmarshal([]byte(d), &m))
				for _, l := range m {
					if l["playing"] == want {
						return l
					}
				}
			case <-deadline:
				t.Fatalf("no layers event with %s playing", want)
			}
		}
	}
	l := waitEvent("full")
	require.Len(t, l["layers"], 2, "%v", l)

	layer := func(body string) {
		t.Helper()
		resp, err := http.Post(base+low.location+"/layer", "application/json", strings.NewReader(body))
		require.NoError(t, err)
		resp.Body.Close()
		require.Equal(t, http.StatusOK, resp.StatusCode)
	}
	require.Eventually(t, func() bool { _, hs := spsHeightsE2E(low.packets(true)); return len(hs) > 0 }, 10*time.Second, 20*time.Millisecond)
	_, hs := spsHeightsE2E(low.packets(true))
	require.Equal(t, 720, hs[0])

	from := len(low.packets(true))
	layer(`{"mediaId":"0","encodingId":"basse"}`)
	waitEvent("basse")
	require.Eventually(t, func() bool { _, hs := spsHeightsE2E(low.packets(true)[from:]); return len(hs) >= 2 }, 15*time.Second, 20*time.Millisecond)
	pkts := low.packets(true)[from:]
	idx, hs := spsHeightsE2E(pkts)
	require.Equal(t, []int{360, 360}, hs[:2])
	decoded := decodedHeights(t, pkts[idx[0]:idx[1]])
	require.GreaterOrEqual(t, len(decoded), 30, "a 2 s GOP of the rendition decodes")
	for _, h := range decoded {
		require.Equal(t, 360, h)
	}

	from = len(low.packets(true))
	layer(`{"mediaId":"0","encodingId":"full"}`)
	waitEvent("full")
	require.Eventually(t, func() bool { _, hs := spsHeightsE2E(low.packets(true)[from:]); return len(hs) >= 1 }, 15*time.Second, 20*time.Millisecond)
	_, hs = spsHeightsE2E(low.packets(true)[from:])
	require.Equal(t, 720, hs[0])
	// One track throughout: timestamps never go back.
	pkts = low.packets(true)
	for i := 1; i < len(pkts); i++ {
		require.GreaterOrEqual(t, int32(pkts[i].ts-pkts[i-1].ts), int32(0), "packet %d", i)
	}

	// HLS: the multivariant playlist lists full, basse and audio; ffprobe
	// opens every variant.
	pl := s.publicGet("/hls/conseil/index.m3u8")
	require.Contains(t, pl, "RESOLUTION=1280x720")
	require.Contains(t, pl, "RESOLUTION=640x360")
	require.Contains(t, pl, "\nbasse/")
	require.Contains(t, pl, "\naudio/")
	out, err := exec.Command("ffprobe", "-v", "error", "-show_entries", "stream=codec_name,height", "-of", "csv=p=0",
		base+"/hls/conseil/index.m3u8").Output()
	require.NoError(t, err)
	require.Contains(t, string(out), "h264,720")
	require.Contains(t, string(out), "h264,360")
	require.Contains(t, string(out), "aac")

	// ≥ 20 s since t0: the cost.
	if wait := 20*time.Second - time.Since(t0); wait > 0 {
		require.Eventually(t, func() bool { return time.Since(t0) >= 20*time.Second }, wait+time.Second, 100*time.Millisecond)
	}
	m1 := s.mustGet("/metrics")
	el := time.Since(t0).Seconds()
	series := func(name string) float64 { return metric(t, m1, name) - metric(t, m0, name) }
	cpu := series(`seance_rendition_cpu_seconds_total{channel="conseil",rendition="basse"}`)
	lowBytes := series(`seance_rendition_bytes_total{channel="conseil",rendition="basse"}`)
	fullBytes := series(`seance_ingest_bytes_total{channel="conseil",kind="video"}`)
	audioBytes := series(`seance_ingest_bytes_total{channel="conseil",kind="audio"}`)
	t.Logf("over %.1f s: rendition ffmpeg %.3f CPU s/s; video bytes/s: full %.0f, basse %.0f; source audio %.0f B/s",
		el, cpu/el, fullBytes/el, lowBytes/el, audioBytes/el)
	require.Positive(t, cpu)
	require.Less(t, lowBytes, fullBytes/2)

	// ffmpeg killed: the rendition restarts; the full viewer's stream goes
	// on; the viewer on the rendition gets the full stream meanwhile.
	layer(`{"encodingId":"basse"}`)
	waitEvent("basse")
	killedAt := time.Now()
	require.NoError(t, syscall.Kill(mk.PID(), syscall.SIGKILL))
	waitEvent("full")
	require.Eventually(t, func() bool { return mk.Status().Restarts == 1 && mk.Status().State == "live" }, 20*time.Second, 50*time.Millisecond)
	waitEvent("basse")
	// The full viewer's stream goes on through the restart, which takes
	// 1 s of backoff and ffmpeg's start: a stall as long as that would be
	// the rendition's doing. Shorter gaps are this loaded machine's (the
	// publisher's ffmpeg shares its two cores with the new ffmpeg).
	fp := full.packets(true)
	var gap, before time.Duration
	for i := 1; i < len(fp); i++ {
		d := fp[i].at.Sub(fp[i-1].at)
		if fp[i].at.After(killedAt) {
			gap = max(gap, d)
		} else {
			before = max(before, d)
		}
	}
	t.Logf("full viewer: longest gap %s before the kill, %s after", before, gap)
	require.Less(t, gap, 1500*time.Millisecond, "the full viewer saw nothing of the rendition's restart")
	require.Contains(t, s.mustGet("/metrics"), `seance_rendition_restarts_total{channel="conseil",rendition="basse"} 1`)
	require.Contains(t, s.mustGet("/metrics"), `seance_viewers_by_quality{channel="conseil",protocol="webrtc",quality="basse"} 1`)
}

// TestRenditionsNeedFFmpeg: a channel with renditions and no ffmpeg is
// refused at startup, naming the channel and the key.
func TestRenditionsNeedFFmpeg(t *testing.T) {
	t.Setenv("PATH", t.TempDir())
	_, err := newApp(parseCfg(t, listeners+`
admin: {listen: "127.0.0.1:0"}
channels:
  - name: demo
    ingest: {demo: true}
    renditions: [{name: basse}]
`), zerolog.Nop())
	require.ErrorIs(t, err, rendition.ErrNoFFmpeg)
	require.EqualError(t, err, "channel demo: renditions: ffmpeg is not installed (Debian: apt-get install ffmpeg)")
}
