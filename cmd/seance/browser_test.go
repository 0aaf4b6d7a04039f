package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The browser test plays the citizens' pages in Debian's Chromium, driven
// by Node and playwright-core (web/browsertest/watch.mjs), and checks the
// result here. Nothing is downloaded but npm packages: never a browser.

const (
	chromiumPath   = "/usr/bin/chromium"
	browserHint    = "run make test (installs chromium, nodejs, npm and ffmpeg)"
	browserPushKey = "browser-push-key-5Tq2"
)

// browserReport is what watch.mjs prints.
type browserReport struct {
	Errors        []string `json:"errors"`
	OffOrigin     []string `json:"offOrigin"`
	ConsoleErrors []string `json:"consoleErrors"`
	Cookies       int      `json:"cookies"`
	Watch         struct {
		playback
		FirstFrameMs  int    `json:"firstFrameMs"`
		Lang          string `json:"lang"`
		Title         string `json:"title"`
		State         string `json:"state"`
		StateText     string `json:"stateText"`
		StateLive     string `json:"stateLive"`
		Captions      int    `json:"captions"`
		AudioBytes    int    `json:"audioBytes"`
		VideoBytes    int    `json:"videoBytes"`
		VideoLost     int    `json:"videoLost"`
		TransportText string `json:"transportText"`
		QualityText   string `json:"qualityText"`
		ViewersText   string `json:"viewersText"`
	} `json:"watch"`
	SoundOnly struct {
		Options        []string `json:"options"`
		Label          string   `json:"label"`
		Playing        string   `json:"playing"`
		QualityText    string   `json:"qualityText"`
		QualityLive    string   `json:"qualityLive"`
		Overlay        string   `json:"overlay"`
		State          string   `json:"state"`
		Transceivers   int      `json:"transceivers"`
		AudioBytesPerS float64  `json:"audioBytesPerS"`
		VideoBytes     int      `json:"videoBytes"`
		BackTo         string   `json:"backTo"`
		BackText       string   `json:"backText"`
	} `json:"soundOnly"`
	Unmute struct {
		Muted        bool   `json:"muted"`
		ButtonHidden bool   `json:"buttonHidden"`
		Focused      string `json:"focused"`
		MuteLabel    string `json:"muteLabel"`
	} `json:"unmute"`
	Keyboard struct {
		Stops []struct {
			El      string `json:"el"`
			Outline bool   `json:"outline"`
		} `json:"stops"`
		MutedByKey   bool `json:"mutedByKey"`
		UnmutedByKey bool `json:"unmutedByKey"`
	} `json:"keyboard"`
	AxeWatch []axeViolation `json:"axeWatch"`
	Leave    struct {
		Before int `json:"before"`
		After  int `json:"after"`
		Ms     int `json:"ms"`
	} `json:"leave"`
	Index struct {
		Lang       string         `json:"lang"`
		Links      []string       `json:"links"`
		Violations []axeViolation `json:"violations"`
	} `json:"index"`
	Embed struct {
		playback
		HeaderCount int            `json:"headerCount"`
		Violations  []axeViolation `json:"violations"`
	} `json:"embed"`
	Phone struct {
		playback
		OverflowX bool `json:"overflowX"`
	} `json:"phone"`
	English struct {
		Lang           string `json:"lang"`
		StateText      string `json:"stateText"`
		UnmuteText     string `json:"unmuteText"`
		MuteText       string `json:"muteText"`
		FullscreenText string `json:"fullscreenText"`
		CaptionsLabel  string `json:"captionsLabel"`
	} `json:"english"`
	NotFound struct {
		Status     int            `json:"status"`
		H1         string         `json:"h1"`
		Violations []axeViolation `json:"violations"`
	} `json:"notFound"`
	Restart struct {
		Seen   []string          `json:"seen"`
		Texts  map[string]string `json:"texts"`
		SamePC bool              `json:"samePC"`
		Again  playback          `json:"again"`
	} `json:"restart"`
}

type playback struct {
	VideoWidth  int     `json:"videoWidth"`
	VideoHeight int     `json:"videoHeight"`
	TimeBefore  float64 `json:"timeBefore"`
	TimeAfter   float64 `json:"timeAfter"`
	Paused      bool    `json:"paused"`
}

type axeViolation struct {
	ID     string   `json:"id"`
	Impact string   `json:"impact"`
	Help   string   `json:"help"`
	Nodes  []string `json:"nodes"`
}

// requirePlaying checks the video showed frames of width×height and that
// its clock ran over the 1.5 s the driver watched it.
func requirePlaying(t *testing.T, p playback, width, height int) {
	t.Helper()
	require.Equal(t, width, p.VideoWidth, "videoWidth")
	require.Equal(t, height, p.VideoHeight, "videoHeight")
	require.False(t, p.Paused, "paused")
	require.Greater(t, p.TimeAfter-p.TimeBefore, 0.7, "currentTime advances (%.2f → %.2f s)", p.TimeBefore, p.TimeAfter)
}

func requireNoViolations(t *testing.T, page string, v []axeViolation) {
	t.Helper()
	if len(v) > 0 {
		out, _ := json.MarshalIndent(v, "", "  ")
		t.Fatalf("axe-core finds WCAG 2.1 A/AA violations on %s:\n%s", page, out)
	}
}

// browserDriver checks the tools and returns web/browsertest with its npm
// packages installed (npm ci, pinned by package-lock.json).
func browserDriver(t *testing.T) string {
	t.Helper()
	for _, tool := range []string{"node", "npm", "ffmpeg"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s is missing: %s", tool, browserHint)
		}
	}
	if _, err := os.Stat(chromiumPath); err != nil {
		t.Fatalf("%s is missing: %s", chromiumPath, browserHint)
	}
	dir, err := filepath.Abs(filepath.Join("..", "..", "web", "browsertest"))
	require.NoError(t, err)
	installed := true
	for _, f := range []string{"playwright-core/package.json", "axe-core/axe.min.js", "puppeteer-core/package.json", "hls.js/dist/hls.min.js"} {
		if _, err := os.Stat(filepath.Join(dir, "node_modules", filepath.FromSlash(f))); err != nil {
			installed = false
		}
	}
	if installed {
		return dir
	}
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "npm", "ci", "--no-audit", "--no-fund")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("npm ci in %s: %v\n%s\n%s", dir, err, out, browserHint)
	}
	return dir
}

// TestBrowserWatchPage: a citizen opens /watch/demo in Chromium. The video
// plays with sound, the controls work by mouse and keyboard, axe-core finds
// no WCAG 2.1 AA violation, the page loads nothing from elsewhere and sets
// no cookie; /embed/ plays too, English browsers get English; a session
// that stops, comes back within its grace period, ends and starts again is
// followed by the same open page.
func TestBrowserWatchPage(t *testing.T) {
	dir := browserDriver(t)
	s := startSeance(t, listeners+`
admin: {listen: "127.0.0.1:0"}
channels:
  - name: demo
    title: "Conseil municipal de Démo"
    ingest: {demo: true}
  - name: bourg
    title: "Conseil municipal de Bourg"
    ingest: {key: "`+browserPushKey+`"}
    grace: 8s
`, "")
	shots := os.Getenv("SEANCE_SCREENSHOTS")
	if shots == "" {
		shots = os.TempDir()
	}

	ctx, cancel := context.WithTimeout(t.Context(), 4*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "node", "watch.mjs")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(),
		"PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1",
		"SEANCE_URL=http://"+s.app.public.Addr().String(),
		"CHANNEL=demo",
		"CHROMIUM="+chromiumPath,
		"SCREENSHOTS="+shots,
		"PUSH_CHANNEL=bourg",
		"PUSH_URL="+s.publishURL("bourg", browserPushKey),
	)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	start := time.Now()
	err := cmd.Run()
	t.Logf("browser driver ran %s:\n%s", time.Since(start).Round(time.Millisecond), stderr.String())
	require.NoError(t, err, "node watch.mjs")
	var r browserReport
	require.NoError(t, json.Unmarshal(stdout.Bytes(), &r), "driver output: %s", stdout.String())
	require.Empty(t, r.Errors, "driver steps failed")
	t.Logf("first frame %d ms after navigation; screenshots in %s (watch.png, watch-phone.png, embed.png, index.png)", r.Watch.FirstFrameMs, shots)

	t.Run("watch page plays video", func(t *testing.T) {
		requirePlaying(t, r.Watch.playback, 1280, 720)
		require.Equal(t, "live", r.Watch.State)
		require.Equal(t, "En direct", r.Watch.StateText)
		require.Equal(t, "polite", r.Watch.StateLive, "the state is announced to screen readers")
		require.Equal(t, "fr", r.Watch.Lang)
		require.Equal(t, "Conseil municipal de Démo", r.Watch.Title)
		require.Equal(t, 1, r.Watch.Captions, "a captions region is reserved")
		require.Regexp(t, regexp.MustCompile(`^\d+ spectateurs?$`), r.Watch.ViewersText)
	})
	t.Run("WebRTC, no loss at start", func(t *testing.T) {
		require.Equal(t, "Diffusion en temps réel (WebRTC)", r.Watch.TransportText)
		require.Equal(t, "Qualité : Auto, haute", r.Watch.QualityText)
		require.Zero(t, r.Watch.VideoLost, "video packets lost since the start (the cached GOP is paced)")
	})
	t.Run("« Son seul » by keyboard", func(t *testing.T) {
		so := r.SoundOnly
		t.Logf("Son seul: %.0f B/s of audio over WebRTC", so.AudioBytesPerS)
		require.Equal(t, "Qualité", so.Label, "the menu has a label")
		require.Equal(t, []string{"Auto", "Haute", "Son seul"}, so.Options, "« Basse » hidden: the server offers no layer")
		require.Equal(t, "audio", so.Playing)
		require.Equal(t, "live", so.State)
		require.Equal(t, "Qualité : Son seul", so.QualityText)
		require.Equal(t, "polite", so.QualityLive, "the change is announced")
		require.Equal(t, "Son seul : pas d’image", so.Overlay)
		require.Equal(t, 1, so.Transceivers, "the offer has an audio section only")
		require.Zero(t, so.VideoBytes, "no video received")
		require.Positive(t, so.AudioBytesPerS)
		require.Less(t, so.AudioBytesPerS*8, 64000.0, "under 64 kbit/s")
		require.Equal(t, "auto", so.BackTo)
		require.Equal(t, "Qualité : Auto, haute", so.BackText)
	})
	t.Run("audio RTP arrives", func(t *testing.T) {
		require.Positive(t, r.Watch.AudioBytes, "inbound-rtp audio bytesReceived")
		require.Positive(t, r.Watch.VideoBytes, "inbound-rtp video bytesReceived")
	})
	t.Run("one click turns the sound on", func(t *testing.T) {
		require.False(t, r.Unmute.Muted)
		require.True(t, r.Unmute.ButtonHidden)
		require.Equal(t, "mute", r.Unmute.Focused, "focus moves to the mute toggle")
		require.Equal(t, "Couper le son", r.Unmute.MuteLabel)
	})
	t.Run("keyboard", func(t *testing.T) {
		var stops []string
		for _, st := range r.Keyboard.Stops {
			stops = append(stops, st.El)
			if st.El != "body" {
				assert.True(t, st.Outline, "%s shows its focus", st.El)
			}
		}
		for _, want := range []string{"a.skip", "button.mute[button]", "input[range]", "button.fullscreen[button]"} {
			require.Contains(t, stops, want, "Tab reaches every control")
		}
		require.True(t, r.Keyboard.MutedByKey, "Space on the mute toggle mutes")
		require.True(t, r.Keyboard.UnmutedByKey, "and unmutes")
	})
	t.Run("accessibility", func(t *testing.T) {
		requireNoViolations(t, "/watch/demo", r.AxeWatch)
		requireNoViolations(t, "/", r.Index.Violations)
		requireNoViolations(t, "/embed/demo", r.Embed.Violations)
		requireNoViolations(t, "the 404 page", r.NotFound.Violations)
	})
	t.Run("index", func(t *testing.T) {
		require.Equal(t, "fr", r.Index.Lang)
		require.ElementsMatch(t, []string{"/watch/demo", "/watch/bourg"}, r.Index.Links)
	})
	t.Run("embed plays without page chrome", func(t *testing.T) {
		requirePlaying(t, r.Embed.playback, 1280, 720)
		require.Zero(t, r.Embed.HeaderCount)
	})
	t.Run("phone", func(t *testing.T) {
		requirePlaying(t, r.Phone.playback, 1280, 720)
		require.False(t, r.Phone.OverflowX, "no horizontal scrolling at 390 px")
	})
	t.Run("English browser", func(t *testing.T) {
		require.Equal(t, "en", r.English.Lang)
		require.Equal(t, "Live", r.English.StateText)
		require.Equal(t, "Turn on sound", r.English.UnmuteText)
		require.Equal(t, "Full screen", r.English.FullscreenText)
		require.Equal(t, "Captions", r.English.CaptionsLabel)
	})
	t.Run("unknown channel", func(t *testing.T) {
		require.Equal(t, 404, r.NotFound.Status)
		require.Equal(t, "Séance introuvable", r.NotFound.H1)
	})
	t.Run("leaving ends the session", func(t *testing.T) {
		require.Equal(t, 1, r.Leave.Before, "viewers while watching")
		require.Zero(t, r.Leave.After, "viewers within 3 s of leaving (pagehide sends a WHEP DELETE)")
	})
	t.Run("session stops and restarts", func(t *testing.T) {
		require.True(t, isSubsequence([]string{"notStarted", "live", "interrupted", "live", "ended", "live"}, r.Restart.Seen),
			"states seen: %v", r.Restart.Seen)
		require.True(t, r.Restart.SamePC, "a publisher back within the grace period keeps the viewer's session")
		require.Equal(t, map[string]string{
			"notStarted":  "La séance n'a pas encore commencé",
			"live":        "En direct",
			"interrupted": "Séance interrompue — reconnexion…",
			"ended":       "La séance est terminée",
		}, r.Restart.Texts)
		requirePlaying(t, r.Restart.Again, 640, 360)
	})
	t.Run("private", func(t *testing.T) {
		require.Empty(t, r.OffOrigin, "requests to another origin")
		require.Zero(t, r.Cookies, "cookies")
		var unexpected []string
		for _, e := range r.ConsoleErrors {
			// A 404 page and a 409 "not started yet" are answers, not faults.
			if strings.Contains(e, "/watch/no-such-channel: Failed to load resource: the server responded with a status of 404") ||
				strings.Contains(e, "the server responded with a status of 409") {
				continue
			}
			unexpected = append(unexpected, e)
		}
		require.Empty(t, unexpected, "console errors (CSP violations show here)")
	})
}

// isSubsequence reports whether want appears in got in order, other
// elements allowed in between.
func isSubsequence(want, got []string) bool {
	i := 0
	for _, g := range got {
		if i < len(want) && g == want[i] {
			i++
		}
	}
	return i == len(want)
}
