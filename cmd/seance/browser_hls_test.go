package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// hlsReport is what hls.mjs prints.
type hlsReport struct {
	Errors        []string `json:"errors"`
	ConsoleErrors []string `json:"consoleErrors"`
	OffOrigin     []string `json:"offOrigin"`
	Fallback      struct {
		playback
		State         string   `json:"state"`
		Transport     string   `json:"transport"`
		TransportText string   `json:"transportText"`
		CanPlayHLS    string   `json:"canPlayHLS"`
		WHEPPosts     int      `json:"whepPosts"`
		FirstHLSMs    int      `json:"firstHLSMs"`
		FirstFrameMs  int      `json:"firstFrameMs"`
		HLSErrors     []string `json:"hlsErrors"`
		HLSRequests   int      `json:"hlsRequests"`
		ViewersText   string   `json:"viewersText"`
		APIViewers    int      `json:"apiViewers"`
		Violations    []string `json:"violations"`
	} `json:"fallback"`
	Forced struct {
		playback
		State         string   `json:"state"`
		Transport     string   `json:"transport"`
		TransportText string   `json:"transportText"`
		WHEPRequests  int      `json:"whepRequests"`
		FirstHLSMs    int      `json:"firstHLSMs"`
		FirstFrameMs  int      `json:"firstFrameMs"`
		HLSErrors     []string `json:"hlsErrors"`
		HLSRequests   int      `json:"hlsRequests"`
	} `json:"forced"`
	NoHLS struct {
		playback
		State       string `json:"state"`
		Transport   string `json:"transport"`
		Engine      string `json:"engine"`
		CanPlayHLS  string `json:"canPlayHLS"`
		HLSJS       int    `json:"hlsjs"`
		WHEPPosts   int    `json:"whepPosts"`
		FirstHLSMs  int    `json:"firstHLSMs"`
		HLSRequests int    `json:"hlsRequests"`
	} `json:"noHLS"`
}

// hlsStartBound is how long Chromium may take from asking for the playlist
// to playing a frame of it (measured with low_latency: 0.4 to 0.9 s; 9.7 s
// when seance served gohlslib's EXT-X-GAP placeholders; with mpegts, the
// default since issue 11, 1.5 to 4.1 s on a machine loaded far past its 2
// cores).
const hlsStartBound = 5 * time.Second

// hlsStart is the time from the first HLS request to the first HLS frame.
func hlsStart(firstHLSMs, firstFrameMs int) time.Duration {
	return time.Duration(firstFrameMs-firstHLSMs) * time.Millisecond
}

// TestBrowserHLSFallback: Debian's Chromium plays HLS natively. When the
// WHEP offer gets no answer (a network that blocks WebRTC), the watch page
// switches to HLS after 5 s, plays within hlsStartBound (the switch comes in
// the session's first seconds), says so, and counts as a viewer;
// ?transport=hls plays HLS without trying WebRTC; a browser that cannot
// play HLS itself does the same through hls.js.
func TestBrowserHLSFallback(t *testing.T) {
	dir := browserDriver(t)
	s := startSeance(t, listeners+`
admin: {listen: "127.0.0.1:0"}
channels:
  - name: demo
    title: "Conseil municipal de Démo"
    ingest: {demo: true}
`, "")
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "node", "hls.mjs")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(),
		"PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1",
		"SEANCE_URL=http://"+s.app.public.Addr().String(),
		"CHANNEL=demo",
		"CHROMIUM="+chromiumPath,
	)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	start := time.Now()
	err := cmd.Run()
	t.Logf("browser driver ran %s:\n%s", time.Since(start).Round(time.Millisecond), stderr.String())
	require.NoError(t, err, "node hls.mjs")
	var r hlsReport
	require.NoError(t, json.Unmarshal(stdout.Bytes(), &r), "driver output: %s", stdout.String())
	require.Empty(t, r.Errors, "driver steps failed")
	t.Logf("fallback: first HLS request %d ms after opening the page, first HLS frame %s after it, HLS errors %q",
		r.Fallback.FirstHLSMs, hlsStart(r.Fallback.FirstHLSMs, r.Fallback.FirstFrameMs), r.Fallback.HLSErrors)
	t.Logf("forced: first HLS request %d ms after opening the page, first HLS frame %s after it, HLS errors %q",
		r.Forced.FirstHLSMs, hlsStart(r.Forced.FirstHLSMs, r.Forced.FirstFrameMs), r.Forced.HLSErrors)

	t.Run("falls back to HLS", func(t *testing.T) {
		f := r.Fallback
		require.Equal(t, "maybe", f.CanPlayHLS, "Chromium plays HLS natively")
		require.Equal(t, "hls", f.Transport)
		require.Equal(t, "live", f.State)
		requireHLSPlaying(t, f.playback)
		require.Equal(t, "Diffusion HLS : quelques secondes de décalage", f.TransportText)
		require.Positive(t, f.WHEPPosts, "WebRTC was tried first")
		require.GreaterOrEqual(t, f.FirstHLSMs, 5000, "HLS only after 5 s without WebRTC")
		// The switch comes ~6 s into the session, while gohlslib still
		// lists its EXT-X-GAP placeholders: if seance served them,
		// Chromium would fail on gap.mp4 and play ~10 s later.
		require.Empty(t, f.HLSErrors, "no HLS request fails (gap.mp4)")
		require.Positive(t, f.FirstFrameMs, "an HLS frame played")
		require.Less(t, hlsStart(f.FirstHLSMs, f.FirstFrameMs), hlsStartBound, "HLS plays soon after the switch")
		require.Positive(t, f.HLSRequests)
		require.GreaterOrEqual(t, f.APIViewers, 1, "the HLS viewer is counted")
		require.Regexp(t, `^\d+ spectateurs?$`, f.ViewersText)
		require.Empty(t, f.Violations, "axe-core WCAG 2.1 AA")
	})
	t.Run("forced HLS", func(t *testing.T) {
		f := r.Forced
		require.Equal(t, "hls", f.Transport)
		require.Equal(t, "live", f.State)
		requireHLSPlaying(t, f.playback)
		require.Equal(t, "HLS stream: a few seconds behind", f.TransportText)
		require.Zero(t, f.WHEPRequests, "no WebRTC attempt")
		require.Empty(t, f.HLSErrors)
		require.Positive(t, f.FirstFrameMs, "an HLS frame played")
		require.Less(t, hlsStart(f.FirstHLSMs, f.FirstFrameMs), hlsStartBound, "HLS plays soon after opening")
		require.Positive(t, f.HLSRequests)
	})
	t.Run("no native HLS: hls.js after the same fallback", func(t *testing.T) {
		f := r.NoHLS
		require.Empty(t, f.CanPlayHLS)
		require.Equal(t, "hls", f.Transport)
		require.Equal(t, "hls.js", f.Engine)
		require.Equal(t, 1, f.HLSJS, "hls.js loaded once, from seance")
		require.Equal(t, "live", f.State)
		requireHLSPlaying(t, f.playback)
		require.Positive(t, f.WHEPPosts, "WebRTC was tried first")
		require.GreaterOrEqual(t, f.FirstHLSMs, 5000, "HLS only after 5 s without WebRTC")
	})
	t.Run("private and CSP-clean", func(t *testing.T) {
		require.Empty(t, r.OffOrigin)
		for _, e := range r.ConsoleErrors {
			require.NotContains(t, e, "Content Security Policy", "CSP blocks something")
			require.False(t, strings.Contains(e, "Refused to"), e)
		}
	})
}

// requireHLSPlaying checks the video showed 1280x720 frames and that its
// clock ran over the 3 s the driver watched it: at least a third of real
// time, as native HLS may pause to buffer on a loaded machine.
func requireHLSPlaying(t *testing.T, p playback) {
	t.Helper()
	require.Equal(t, [2]int{1280, 720}, [2]int{p.VideoWidth, p.VideoHeight}, "video size")
	require.False(t, p.Paused, "paused")
	require.Greater(t, p.TimeAfter-p.TimeBefore, 1.0, "currentTime advances (%.2f → %.2f s)", p.TimeBefore, p.TimeAfter)
}
