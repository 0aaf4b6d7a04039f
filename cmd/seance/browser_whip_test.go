package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

const (
	browserWHIPKey   = "whip-browser-key-R8mZ3cVnQ1"
	browserWHIPYTKey = "yt-browser-whip-key-7Lp2Xs"
)

// whipReport is what whip.mjs prints.
type whipReport struct {
	Errors        []string `json:"errors"`
	ConsoleErrors []string `json:"consoleErrors"`
	Requests      []string `json:"requests"`
	Start         struct {
		Status           int      `json:"status"`
		ContentType      string   `json:"contentType"`
		Location         string   `json:"location"`
		H264Capabilities int      `json:"h264Capabilities"`
		AnswerVideo      []string `json:"answerVideo"`
		AnswerAudio      []string `json:"answerAudio"`
		ConnectMs        int      `json:"connectMs"`
	} `json:"start"`
	Stats []map[string]whipSenderStats `json:"stats"`
	Stop  struct {
		Status int `json:"status"`
	} `json:"stop"`
	Ms int `json:"ms"`
}

type whipSenderStats struct {
	Codec            string `json:"codec"`
	BytesSent        int    `json:"bytesSent"`
	FramesEncoded    int    `json:"framesEncoded"`
	KeyFramesEncoded int    `json:"keyFramesEncoded"`
	PLICount         int    `json:"pliCount"`
	NACKCount        int    `json:"nackCount"`
	FrameWidth       int    `json:"frameWidth"`
	FrameHeight      int    `json:"frameHeight"`
}

// TestBrowserWHIP: a town hall's web page (served from its own origin, so
// every WHIP request is cross-origin) publishes a canvas animation and a
// 440 Hz oscillator from headless Chromium to seance over WHIP, H.264
// preferred. The RTMP destination gets H.264 + AAC that decodes clean, with
// keyframes at most 4 s apart (seance sends PLIs) and the tone.
func TestBrowserWHIP(t *testing.T) {
	started := time.Now()
	dir := browserDriver(t)
	requireTools(t)
	ng := startNginx(t)
	s := startSeance(t, listeners+fmt.Sprintf(`
admin: {listen: "127.0.0.1:0"}
channels:
  - name: mairie
    ingest: {key: %q}
    grace: 1s
    destinations:
      - {name: youtube, url: %q, key: %q}
`, browserWHIPKey, ng.url(), browserWHIPYTKey), "")

	// The page's own origin: another loopback port than seance's.
	site := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/" {
			http.NotFound(w, r)
			return
		}
		http.ServeFile(w, r, filepath.Join(dir, "whip.html"))
	}))
	t.Cleanup(site.Close)

	ctx, cancel := context.WithTimeout(t.Context(), 90*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "node", "whip.mjs")
	cmd.Dir = dir
	cmd.Env = append(cmd.Environ(),
		"PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1",
		"CHROMIUM="+chromiumPath,
		"PAGE_URL="+site.URL+"/",
		"WHIP_URL=http://"+s.app.public.Addr().String()+"/whip/mairie",
		"WHIP_KEY="+browserWHIPKey,
		"PUBLISH_MS=10000",
	)
	var stdout, stderr syncBuffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	require.NoError(t, cmd.Start())
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("browser driver output:\n%s", stderr.String())
		}
	})

	// Chromium preflights the cross-origin POST (Authorization is not a
	// CORS-safelisted header); this is the preflight it sends.
	pre, err := http.NewRequestWithContext(t.Context(), http.MethodOptions, "http://"+s.app.public.Addr().String()+"/whip/mairie", nil)
	require.NoError(t, err)
	pre.Header.Set("Origin", site.URL)
	pre.Header.Set("Access-Control-Request-Method", "POST")
	pre.Header.Set("Access-Control-Request-Headers", "authorization,content-type")
	resp, err := s.http.Do(pre)
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusNoContent, resp.StatusCode)
	require.Equal(t, "*", resp.Header.Get("Access-Control-Allow-Origin"))
	allowed := strings.ToLower(resp.Header.Get("Access-Control-Allow-Headers"))
	require.Contains(t, allowed, "authorization")
	require.Contains(t, allowed, "content-type")
	require.Contains(t, resp.Header.Get("Access-Control-Allow-Methods"), "DELETE")
	require.Contains(t, resp.Header.Get("Access-Control-Expose-Headers"), "Location")

	// While the browser publishes, the channel and its destination go live.
	s.waitChannel("mairie", "live", "live", 25*time.Second)
	err = <-done
	t.Logf("browser driver: %s", strings.TrimSpace(stderr.String()))
	require.NoError(t, err, "node whip.mjs")
	var r whipReport
	require.NoError(t, json.Unmarshal([]byte(stdout.String()), &r), "driver output: %s", stdout.String())
	require.Empty(t, r.Errors, "publishing failed (requests: %v; console: %v)", r.Requests, r.ConsoleErrors)
	require.Empty(t, r.ConsoleErrors, "console errors (CORS failures show here)")

	require.Equal(t, http.StatusCreated, r.Start.Status)
	require.Equal(t, "application/sdp", r.Start.ContentType)
	require.True(t, strings.HasPrefix(r.Start.Location, "/whip/mairie/"), "Location %q readable cross-origin", r.Start.Location)
	require.Positive(t, r.Start.H264Capabilities, "Chromium offers H.264")
	require.Contains(t, r.Start.AnswerVideo, "H264")
	require.NotContains(t, r.Start.AnswerVideo, "VP8")
	require.Contains(t, r.Start.AnswerAudio, "opus")
	require.Equal(t, http.StatusOK, r.Stop.Status, "DELETE of the Location")
	require.NotEmpty(t, r.Stats)
	last := r.Stats[len(r.Stats)-1]
	video, audio := last["video"], last["audio"]
	require.Equal(t, "video/H264", video.Codec)
	require.Equal(t, "audio/opus", audio.Codec)
	require.Positive(t, audio.BytesSent)
	require.Greater(t, video.FramesEncoded, 150, "frames encoded in 10 s")
	require.GreaterOrEqual(t, video.PLICount, 3, "seance asks for keyframes (every 2 s with an RTMP destination)")
	t.Logf("Chromium: connected %d ms after the answer; %dx%d, %d frames, %d keyframes, %d PLIs, %d NACKs received",
		r.Start.ConnectMs, video.FrameWidth, video.FrameHeight, video.FramesEncoded,
		video.KeyFramesEncoded, video.PLICount, video.NACKCount)

	s.waitChannel("mairie", "idle", "idle", 10*time.Second)
	metrics := s.mustGet("/metrics")
	require.Equal(t, 1.0, metric(t, metrics, `seance_whip_sessions_total{result="accepted"}`))
	s.stop()
	ng.stop()
	requireNoSecrets(t, []string{browserWHIPKey, browserWHIPYTKey}, map[string]string{"logs": s.logs.String(), "/metrics": metrics})

	files := ng.recordings(browserWHIPYTKey)
	require.Len(t, files, 1)
	file := files[0]
	codecs, w, h, dur := ffprobe(t, file)
	require.Equal(t, []string{"aac", "h264"}, codecs)
	require.Positive(t, w*h)
	require.GreaterOrEqual(t, dur, 6.0)
	out, err := exec.CommandContext(t.Context(), "ffmpeg", "-nostdin", "-v", "error", "-i", file, "-f", "null", "-").CombinedOutput()
	require.NoError(t, err, "decoding %s: %s", file, out)
	require.Empty(t, string(out), "decoding %s", file)

	gaps := requireKeyframes(t, file, 3)
	hz := whipToneHz(t, file)
	require.InDelta(t, 440, hz, 5)
	t.Logf("destination: %dx%d, %.1f s, keyframe intervals %v s, tone %.0f Hz; test took %s",
		w, h, dur, gaps, hz, time.Since(started).Round(100*time.Millisecond))
}
