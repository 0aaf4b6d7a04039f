package main

import (
	"os"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

const firefoxPath = "/usr/bin/firefox-esr"

// firefoxReport is what web/browsertest/firefox.mjs prints.
type firefoxReport struct {
	Errors        []string `json:"errors"`
	ConsoleErrors []string `json:"consoleErrors"`
	Caps          struct {
		UserAgent   string   `json:"userAgent"`
		VideoCodecs []string `json:"videoCodecs"`
	} `json:"caps"`
	Watch  pageMeasure `json:"watch"`
	Embed  pageMeasure `json:"embed"`
	Audio  pageMeasure `json:"audio"`
	WebRTC struct {
		Transport    string `json:"transport"`
		State        string `json:"state"`
		WHEPRequests int    `json:"whepRequests"`
		HLSRequests  int    `json:"hlsRequests"`
	} `json:"webrtc"`
}

// TestBrowserFirefox: Debian's Firefox ESR with stock prefs (OpenH264
// disabled: its WebRTC offers no H.264) plays the watch page at once over
// HLS through hls.js, served by seance: the picture moves at minFPS or
// more, sound reaches the decoder, the page names the transport, nothing
// comes from another origin. ?transport=webrtc is honoured (WebRTC tried,
// the server's 400 shown as an error).
func TestBrowserFirefox(t *testing.T) {
	dir := browserDriver(t)
	if _, err := os.Stat(firefoxPath); err != nil {
		t.Fatalf("%s is missing: %s", firefoxPath, browserHint)
	}
	s := startSeance(t, listeners+`
admin: {listen: "127.0.0.1:0"}
channels:
  - name: demo
    title: "Conseil municipal de Démo"
    ingest: {demo: true}
`, "")
	var r firefoxReport
	runDriver(t, dir, "firefox.mjs", 3*time.Minute, []string{
		"SEANCE_URL=http://" + s.app.public.Addr().String(),
		"CHANNEL=demo",
		"FIREFOX=" + firefoxPath,
	}, &r)
	require.Empty(t, r.Errors, "driver steps failed")
	for _, c := range []struct {
		name string
		m    pageMeasure
	}{{"watch", r.Watch}, {"embed", r.Embed}, {"audio", r.Audio}} {
		t.Logf("%s: first frame %d ms after navigation (first HLS request at %d ms), %.1f frames/s shown (rVFC), %.1f (playback quality), audio %d B/s into MSE",
			c.name, c.m.FirstFrameMs, c.m.FirstHLSMs, c.m.FPSRVFC, c.m.FPSQuality, int(float64(c.m.MSEAudioBytes)/c.m.Seconds))
	}

	t.Run("no H.264 over WebRTC", func(t *testing.T) {
		require.NotEmpty(t, r.Caps.VideoCodecs)
		require.NotContains(t, r.Caps.VideoCodecs, "video/H264", "stock Debian Firefox (OpenH264 off)")
	})
	t.Run("HLS through hls.js at once", func(t *testing.T) {
		m := r.Watch
		require.Equal(t, "live", m.State)
		require.Equal(t, "hls", m.Transport)
		require.Equal(t, "hls.js", m.Engine)
		require.True(t, m.HLSJSLoaded)
		require.True(t, m.HLSJSWorker, "its worker comes from seance too")
		require.Empty(t, m.CanPlayHLS, "no native HLS in Firefox")
		require.Zero(t, m.WHEPRequests, "no WebRTC attempt")
		require.GreaterOrEqual(t, m.FirstHLSMs, 0)
		require.Less(t, m.FirstHLSMs, 2000, "HLS asked for at once, not after a WebRTC timeout")
		require.Equal(t, "HLS stream: a few seconds behind", m.TransportText, "headless Firefox asks for English")
		requireMoving(t, m, 1280, 720)
		require.Positive(t, m.MSEVideoBytes)
		require.Positive(t, m.MSEAudioBytes, "audio appended to its own SourceBuffer")
		require.NotNil(t, m.MozHasAudio)
		require.True(t, *m.MozHasAudio, "the element has an audio track")
		require.False(t, m.Muted, "« Turn on sound » unmuted it")
		require.Equal(t, "Quality: Auto, high", m.QualityText)
		require.Empty(t, m.OffOrigin)
	})
	t.Run("embed", func(t *testing.T) {
		require.Equal(t, "hls.js", r.Embed.Engine)
		requireMoving(t, r.Embed, 1280, 720)
	})
	t.Run("sound only over HLS", func(t *testing.T) {
		m := r.Audio
		require.Equal(t, "live", m.State)
		require.Equal(t, "audio", m.Playing)
		require.Equal(t, "Quality: Sound only", m.QualityText)
		require.Positive(t, m.MSEAudioBytes)
		require.Greater(t, m.ClockRate, 0.5, "the sound plays")
	})
	t.Run("transport=webrtc honoured", func(t *testing.T) {
		require.Equal(t, "webrtc", r.WebRTC.Transport)
		require.Positive(t, r.WebRTC.WHEPRequests, "WebRTC tried")
		require.Zero(t, r.WebRTC.HLSRequests)
		require.Equal(t, "error", r.WebRTC.State, "the server refuses an offer without H.264")
	})
	t.Run("CSP-clean", func(t *testing.T) {
		for _, e := range r.ConsoleErrors {
			require.NotContains(t, e, "Content-Security-Policy", e)
			require.NotContains(t, e, "Content Security Policy", e)
		}
	})
}
