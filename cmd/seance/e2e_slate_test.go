package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"image"
	"image/png"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pion/webrtc/v4"
	"github.com/rs/zerolog"
	"github.com/stretchr/testify/require"

	"github.com/seance-relay/seance/slate"
)

// TestE2ESlate: Jibri publishes, stops for 10 s and comes back (grace
// 30 s). Meanwhile YouTube (nginx-rtmp) and a WHEP viewer get the slate
// and silence: YouTube's recording is one connection, one continuous
// stream with no gap over 1 s, the slate's picture in the middle, and it
// decodes without an error; the viewer stays connected and receives the
// slate's frames and sound during the gap, then the live picture again.
func TestE2ESlate(t *testing.T) {
	requireTools(t)
	const (
		leg = 6 * time.Second
		gap = 10 * time.Second
	)
	ng := startNginx(t)
	s := startSeance(t, listeners+fmt.Sprintf(`
admin: {listen: "127.0.0.1:0"}
channels:
  - name: conseil
    ingest: {key: %q}
    grace: 30s
    destinations:
      - {name: youtube, url: %q, key: %q}
`, secretIngestKey, ng.url(), secretYTKeyOne), "")
	url := s.publishURL("conseil", secretIngestKey)

	pub1 := startPublisher(t, url, leg)
	s.waitChannel("conseil", "live", "live", 15*time.Second)
	v := startWHEPViewer(t, "http://"+s.app.public.Addr().String()+"/whep/conseil")
	require.NoError(t, pub1.wait(t, leg+15*time.Second), "ffmpeg: %s", pub1.output())
	s.waitChannel("conseil", "interrupted", "live", 5*time.Second)
	gapStart := time.Now()
	require.True(t, slateOnAir(t, s), "the admin API says the slate is on air")

	time.Sleep(time.Until(gapStart.Add(gap))) // schedules the publisher's return
	require.Equal(t, 1, s.app.webrtc.Viewers("conseil"), "the viewer stayed through the gap")
	require.Equal(t, webrtc.PeerConnectionStateConnected, v.pc.ConnectionState())
	pub2 := startPublisher(t, url, leg)
	back := time.Now()
	ch := s.waitChannel("conseil", "live", "live", 10*time.Second)
	require.Equal(t, 1, ch.Health.Reconnects)
	require.Eventually(t, func() bool { return !slateOnAir(t, s) }, 5*time.Second, 20*time.Millisecond,
		"the slate goes off air at the publisher's first keyframe")
	require.NoError(t, pub2.wait(t, leg+15*time.Second), "ffmpeg: %s", pub2.output())
	s.waitChannel("conseil", "interrupted", "live", 5*time.Second)

	// The viewer: the slate (Constrained Baseline, x264's live stream is
	// High) and Opus silence all through the gap, then the live picture.
	var slateFrames, liveAfter, audioInGap int
	var slateSPS bool
	for _, p := range v.packets(true) {
		inGap := p.at.After(gapStart.Add(500*time.Millisecond)) && p.at.Before(gapStart.Add(gap))
		if inGap && p.marker {
			slateFrames++
		}
		if inGap && h264NAL(p.payload) == 7 && len(p.payload) > 1 && p.payload[1] == 66 {
			slateSPS = true
		}
		if p.marker && p.at.After(back.Add(2*time.Second)) {
			liveAfter++
		}
	}
	for _, p := range v.packets(false) {
		if p.at.After(gapStart.Add(500*time.Millisecond)) && p.at.Before(gapStart.Add(gap)) {
			audioInGap++
		}
	}
	t.Logf("viewer: %d slate frames and %d Opus packets in %s of gap, %d live frames after", slateFrames, audioInGap, gap-500*time.Millisecond, liveAfter)
	require.True(t, slateSPS, "the viewer got the slate's SPS in band")
	require.GreaterOrEqual(t, slateFrames, 25*9, "the slate plays at its frame rate (30 fps)")
	require.GreaterOrEqual(t, audioInGap, 40*9, "silence plays as Opus (50 packets/s)")
	require.Greater(t, liveAfter, 60, "the live picture resumed for the viewer")

	metrics := s.mustGet("/metrics")
	require.Zero(t, metric(t, metrics, `seance_destination_reconnects_total{channel="conseil",destination="youtube"}`))
	require.GreaterOrEqual(t, metric(t, metrics, `seance_slate_seconds_total{channel="conseil"}`), gap.Seconds()-1)
	s.stop()
	ng.stop()

	files := ng.recordings(secretYTKeyOne)
	require.Len(t, files, 1, "YouTube got one connection through the interruption")
	requireRecording(t, files[0], 2*leg+gap-2*time.Second)
	dts := videoDTS(t, files[0])
	require.NotEmpty(t, dts)
	for i := 1; i < len(dts); i++ {
		step := dts[i] - dts[i-1]
		require.Positive(t, step, "video DTS not increasing at packet %d (%.3f → %.3f)", i, dts[i-1], dts[i])
		require.LessOrEqual(t, step, 1.0, "video DTS jumps at packet %d (%.3f → %.3f)", i, dts[i-1], dts[i])
	}
	// In the middle of the gap, YouTube shows the slate: its dark blue
	// background in the corner (testsrc2's corner is not).
	mid := leg + gap/2
	for at, want := range map[time.Duration]bool{mid: true, leg / 2: false} {
		px := cornerPixel(t, files[0], at)
		isSlate := px[0] < 60 && px[1] < 70 && px[2] > 45 && px[2] < 100
		require.Equal(t, want, isSlate, "corner pixel at %s: %v", at, px)
	}
	requireNoSecrets(t, allSecrets, map[string]string{"logs": s.logs.String(), "/metrics": metrics})
}

// slateOnAir reads the channel's health.slate from the admin API.
func slateOnAir(t *testing.T, s *seance) bool {
	t.Helper()
	code, body, err := s.get("/api/v1/channels", true)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, code, body)
	var out struct {
		Channels []struct {
			Name   string `json:"name"`
			Health struct {
				Slate *bool `json:"slate"`
			} `json:"health"`
		} `json:"channels"`
	}
	require.NoError(t, json.Unmarshal([]byte(body), &out))
	for _, c := range out.Channels {
		if c.Name == "conseil" {
			require.NotNil(t, c.Health.Slate, "health.slate is always present")
			return *c.Health.Slate
		}
	}
	t.Fatalf("no channel conseil in %s", body)
	return false
}

// cornerPixel decodes the frame at `at` in file and returns the RGB of its
// top-left corner (the average of a 1/16 × 1/9 block).
func cornerPixel(t *testing.T, file string, at time.Duration) [3]int {
	t.Helper()
	out, err := exec.CommandContext(t.Context(), "ffmpeg", "-nostdin", "-v", "error",
		"-ss", fmt.Sprintf("%.3f", at.Seconds()), "-i", file, "-frames:v", "1",
		"-vf", "scale=16:9", "-f", "rawvideo", "-pix_fmt", "rgb24", "pipe:1").Output()
	require.NoError(t, err)
	require.Len(t, out, 16*9*3)
	return [3]int{int(out[0]), int(out[1]), int(out[2])}
}

// TestSlateImageConfig: a channel's slate.image is checked at startup and
// on reload (a missing file, or no ffmpeg, is refused naming the key), and
// rendered with ffmpeg as soon as the channel goes live.
func TestSlateImageConfig(t *testing.T) {
	requireTools(t)
	dir := t.TempDir()
	img := image.NewRGBA(image.Rect(0, 0, 320, 240))
	var b bytes.Buffer
	require.NoError(t, png.Encode(&b, img))
	pngPath := filepath.Join(dir, "slate.png")
	require.NoError(t, os.WriteFile(pngPath, b.Bytes(), 0o600))
	cfgFor := func(slate string) string {
		return listeners + `
admin: {listen: "127.0.0.1:0", token: ` + secretAdmin + `}
channels:
  - name: demo
    ingest: {demo: true}
    slate: ` + slate + "\n"
	}

	t.Run("missing file", func(t *testing.T) {
		_, err := newApp(parseCfg(t, cfgFor(`{image: `+filepath.Join(dir, "nope.png")+`}`)), zerolog.Nop())
		require.ErrorIs(t, err, slate.ErrBadImage)
		require.ErrorContains(t, err, "channel demo: slate.image: ")
		require.ErrorContains(t, err, "nope.png")
	})
	t.Run("no ffmpeg", func(t *testing.T) {
		t.Setenv("PATH", t.TempDir())
		_, err := newApp(parseCfg(t, cfgFor(`{image: `+pngPath+`}`)), zerolog.Nop())
		require.ErrorIs(t, err, slate.ErrNoFFmpeg)
		require.ErrorContains(t, err, "channel demo: slate.image: ")
	})
	t.Run("rendered when live, checked on reload", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "seance.yaml")
		require.NoError(t, os.WriteFile(path, []byte(cfgFor(`{image: `+pngPath+`}`)), 0o600))
		s := startSeanceFile(t, path, secretAdmin)
		require.Eventually(t, func() bool {
			return strings.Contains(s.mustGet("/metrics"), `seance_slate_renders_total{result="ok"} 1`)
		}, 20*time.Second, 50*time.Millisecond, "the demo channel's image is rendered for its 1280x720 30 fps stream")
		require.Contains(t, s.logs.String(), `"width":1280,"height":720,"fps":30`)

		require.NoError(t, os.WriteFile(path, []byte(cfgFor(`{image: `+filepath.Join(dir, "gone.png")+`}`)), 0o600))
		code, body := s.postReload()
		require.Equal(t, http.StatusUnprocessableEntity, code, body)
		require.Contains(t, body, "slate.image")

		require.NoError(t, os.WriteFile(path, []byte(cfgFor(`{enabled: false}`)), 0o600))
		code, body = s.postReload()
		require.Equal(t, http.StatusOK, code, body)
		var res reloadResult
		require.NoError(t, json.Unmarshal([]byte(body), &res))
		require.Len(t, res.Changed, 1, body)
		require.Equal(t, []string{"slate"}, res.Changed[0].What)
	})
}
