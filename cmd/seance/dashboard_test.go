package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const (
	dashToken   = "dash-admin-t0ken-Qw9"
	dashPushKey = "dash-push-key-Zr4"
	dashYTKey   = "dash-yt-stream-key-P8m"
	dashPullPW  = "dash-pull-passw0rd-K2"
	dashRoom    = "ConseilVisio-S3CR3T-Jd5"
	dashJWT     = "eyJhbGciOiJIUzI1NiJ9.e30.dash-jwt-Mx3"
)

// dashboardConfig is a relay with a demo channel whose YouTube destination
// cannot connect (nothing listens on its port), a pushed channel with a
// short grace, a pulled channel whose camera is down, and a meeting
// channel not started (start: manual).
func dashboardConfig(t *testing.T, adminPort, publicPort int) string {
	dead := freePort(t)
	return fmt.Sprintf(`
public: {listen: "127.0.0.1:%d"}
rtmp: {listen: "127.0.0.1:0"}
rtsp: {listen: ""}
webrtc: {udp_port: 0, announce_loopback: true}
admin: {listen: "127.0.0.1:%d", token: %q}
channels:
  - name: demo
    title: "Conseil municipal de Démo"
    ingest: {demo: true}
    destinations:
      - {name: youtube, url: "rtmp://127.0.0.1:%d/live2", key: %q}
  - name: bourg
    title: "Conseil municipal de Bourg"
    ingest: {key: %q}
    grace: 5s
  - name: camera
    title: "Salle du conseil (caméra)"
    ingest: {pull: "rtsp://cam:%s@127.0.0.1:%d/stream"}
  - name: visio
    title: "Conseil en visioconférence"
    ingest: {meeting: {jitsi: {url: "https://visio.example.fr/%s", jwt: %q}, start: manual}}
`, publicPort, adminPort, dashToken, dead, dashYTKey, dashPushKey, dashPullPW, dead, dashRoom, dashJWT)
}

// dashboardReport is what dashboard.mjs prints.
type dashboardReport struct {
	Errors        []string `json:"errors"`
	OffOrigin     []string `json:"offOrigin"`
	ConsoleErrors []string `json:"consoleErrors"`
	TokenInURL    []string `json:"tokenInURL"`
	HTTPErrors    []string `json:"httpErrors"`
	// RefusedWhileDown counts the page's requests refused while the relay
	// was down on purpose (the restart step): expected, not errors.
	RefusedWhileDown int      `json:"refusedWhileDown"`
	Cookies          int      `json:"cookies"`
	SessionStorage   []string `json:"sessionStorage"`
	Login            struct {
		Focused    string         `json:"focused"`
		Refused    string         `json:"refused"`
		Violations []axeViolation `json:"violations"`
	} `json:"login"`
	Live struct {
		Badge, Bitrate, Video, FPS, Keyframes, Audio, Source, Title, Link string
	} `json:"live"`
	Destination struct {
		State, Error, URL string
	} `json:"destination"`
	Meeting struct {
		Badge  string `json:"badge"`
		Server string `json:"server"`
		Join   bool   `json:"join"`
		Leave  bool   `json:"leave"`
	} `json:"meeting"`
	Preview struct {
		VideoWidth  int  `json:"videoWidth"`
		VideoHeight int  `json:"videoHeight"`
		Muted       bool `json:"muted"`
	} `json:"preview"`
	Warnings []struct {
		Name, Text string
	} `json:"warnings"`
	Sparklines []string       `json:"sparklines"`
	Axe        []axeViolation `json:"axe"`
	Keyboard   struct {
		Stops []struct {
			El      string `json:"el"`
			Outline bool   `json:"outline"`
		} `json:"stops"`
	} `json:"keyboard"`
	Stop struct {
		State, Status string
	} `json:"stop"`
	Kick struct {
		Dialog          string `json:"dialog"`
		PublisherExited bool   `json:"publisherExited"`
		State           string `json:"state"`
		Notice          string `json:"notice"`
	} `json:"kick"`
	Phone struct {
		OverflowX  bool           `json:"overflowX"`
		Violations []axeViolation `json:"violations"`
	} `json:"phone"`
	Restart struct {
		Seen       []string `json:"seen"`
		Bitrate    string   `json:"bitrate"`
		LoginShown bool     `json:"loginShown"`
	} `json:"restart"`
}

// TestDashboardBrowser: IT staff open /dashboard in Chromium, enter the
// token, and see the demo channel live with its figures and preview, the
// failing destination's error, a pushed channel's warnings in French; they
// stop the destination and kick the publisher; the page follows a relay
// restart. axe-core finds no WCAG 2.1 AA violation, on a laptop or a phone.
func TestDashboardBrowser(t *testing.T) {
	dir := browserDriver(t)
	adminPort, publicPort := freePort(t), freePort(t)
	cfg := dashboardConfig(t, adminPort, publicPort)
	s := startSeance(t, cfg, dashToken)
	shots := os.Getenv("SEANCE_SCREENSHOTS")
	if shots == "" {
		shots = os.TempDir()
	}

	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "node", "dashboard.mjs")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(),
		"PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1",
		"ADMIN_URL=http://"+s.app.admin.Addr().String(),
		"TOKEN="+dashToken,
		"CHANNEL=demo",
		"DESTINATION=youtube",
		"PUSH_CHANNEL=bourg",
		"MEETING_CHANNEL=visio",
		"PUSH_URL="+s.publishURL("bourg", dashPushKey),
		"CHROMIUM="+chromiumPath,
		"SCREENSHOTS="+shots,
	)
	var stdout bytes.Buffer
	cmd.Stdout = &stdout
	stdin, err := cmd.StdinPipe()
	require.NoError(t, err)
	stderr, err := cmd.StderrPipe()
	require.NoError(t, err)
	start := time.Now()
	require.NoError(t, cmd.Start())

	// The driver says RESTART once the destination is stopped and the
	// publisher kicked: check both through the API, then restart the relay
	// on the same ports and tell the driver.
	var driverLog strings.Builder
	var beforeRestart apiChannel
	var s2 *seance
	sc := bufio.NewScanner(stderr)
	for sc.Scan() {
		line := sc.Text()
		driverLog.WriteString(line + "\n")
		if !strings.HasSuffix(line, "RESTART") {
			continue
		}
		beforeRestart, err = s.channel("demo")
		assert.NoError(t, err)
		assert.Contains(t, s.logs.String(), "publisher kicked by an administrator")
		s.stop()
		s2 = startSeance(t, cfg, dashToken)
		_, err = io.WriteString(stdin, "relay is back\n")
		assert.NoError(t, err)
	}
	err = cmd.Wait()
	t.Logf("browser driver ran %s:\n%s", time.Since(start).Round(time.Millisecond), driverLog.String())
	require.NoError(t, err, "node dashboard.mjs")
	var r dashboardReport
	require.NoError(t, json.Unmarshal(stdout.Bytes(), &r), "driver output: %s", stdout.String())
	require.Empty(t, r.Errors, "driver steps failed")
	t.Logf("screenshots: %s/dashboard.png, %s/dashboard-phone.png", shots, shots)

	t.Run("token asked once, kept in the tab, never in a URL", func(t *testing.T) {
		require.Equal(t, "token", r.Login.Focused, "the token field has the focus")
		require.Equal(t, "Ce jeton est refusé par le relais.", r.Login.Refused)
		require.Equal(t, []string{"seance.adminToken"}, r.SessionStorage)
		require.Empty(t, r.TokenInURL)
		require.Zero(t, r.Cookies)
		require.False(t, r.Restart.LoginShown, "a relay restart does not ask for the token again")
	})
	t.Run("a meeting not started, in French, with its join button", func(t *testing.T) {
		require.Equal(t, "À l\u2019arrêt", r.Meeting.Badge)
		require.Equal(t, "Jitsi Meet sur visio.example.fr · 1280×720 · démarrage manuel", r.Meeting.Server)
		require.True(t, r.Meeting.Join, "Rejoindre la réunion")
		require.False(t, r.Meeting.Leave)
	})
	t.Run("demo channel live with its figures", func(t *testing.T) {
		require.Equal(t, "En direct", r.Live.Badge)
		require.Regexp(t, `^\d+(,\d)? (k|M)bit/s$`, r.Live.Bitrate)
		require.NotEqual(t, "0 kbit/s", r.Live.Bitrate)
		require.Equal(t, "H.264 · Main · 1280×720", r.Live.Video)
		require.Regexp(t, `^(2[89]|3[0-2])(,\d)?$`, r.Live.FPS)
		require.Regexp(t, `^toutes les \d+(,\d)? s$`, r.Live.Keyframes)
		require.Regexp(t, `^AAC-LC · 48 kHz · (mono|stéréo)$`, r.Live.Audio)
		require.Equal(t, "DEMO · built-in", r.Live.Source)
		require.Contains(t, r.Live.Title, "Conseil municipal de Démo")
		require.Equal(t, "online", r.Live.Link)
	})
	t.Run("preview plays from the public listener", func(t *testing.T) {
		require.Equal(t, 1280, r.Preview.VideoWidth)
		require.Equal(t, 720, r.Preview.VideoHeight)
		require.True(t, r.Preview.Muted)
	})
	t.Run("failing destination shows its error", func(t *testing.T) {
		require.Contains(t, []string{"Nouvel essai…", "Connexion…"}, r.Destination.State)
		require.Contains(t, r.Destination.Error, "Dernière erreur : ")
		require.Contains(t, r.Destination.Error, "connection refused")
		require.NotContains(t, r.Destination.URL, dashYTKey)
	})
	t.Run("warnings in plain French", func(t *testing.T) {
		texts := map[string]string{}
		for _, w := range r.Warnings {
			texts[w.Name] = w.Text
		}
		require.Contains(t, texts, "keyframe_interval")
		require.Regexp(t, `^L'intervalle entre images clés est de \d+(,\d)? s : YouTube exige 4 s au plus — réglez -g 60 dans l'encodeur`, texts["keyframe_interval"])
		require.Contains(t, texts, "no_audio")
		require.True(t, strings.HasPrefix(texts["no_audio"], "Aucun son n'arrive"), texts["no_audio"])
	})
	t.Run("sparklines", func(t *testing.T) {
		require.Len(t, r.Sparklines, 2)
		require.True(t, strings.HasPrefix(r.Sparklines[0], "Débit sur 15 minutes : "), r.Sparklines[0])
		require.True(t, strings.HasPrefix(r.Sparklines[1], "Spectateurs sur 15 minutes : "), r.Sparklines[1])
	})
	t.Run("stop button stops the destination", func(t *testing.T) {
		require.Equal(t, "À l’arrêt", r.Stop.State)
		require.Equal(t, "Arrêt demandé.", r.Stop.Status)
		require.Len(t, beforeRestart.Destinations, 1)
		require.Equal(t, "idle", beforeRestart.Destinations[0].State, "the API agrees")
	})
	t.Run("kick disconnects the publisher", func(t *testing.T) {
		require.Contains(t, r.Kick.Dialog, "Déconnecter l’encodeur de « Conseil municipal de Bourg » ?")
		require.True(t, r.Kick.PublisherExited, "ffmpeg lost its connection")
		require.Equal(t, "interrupted", r.Kick.State, "within the grace period")
		require.Equal(t, "Encodeur déconnecté.", r.Kick.Notice)
	})
	t.Run("follows a relay restart", func(t *testing.T) {
		require.NotNil(t, s2, "the relay was restarted")
		require.True(t, isSubsequence([]string{"online", "retrying", "online"}, r.Restart.Seen), "link states: %v", r.Restart.Seen)
		require.NotEqual(t, "0 kbit/s", r.Restart.Bitrate)
	})
	t.Run("accessibility", func(t *testing.T) {
		requireNoViolations(t, "the dashboard's login", r.Login.Violations)
		requireNoViolations(t, "the dashboard", r.Axe)
		requireNoViolations(t, "the dashboard on a phone", r.Phone.Violations)
		require.False(t, r.Phone.OverflowX, "no horizontal scrolling at 390 px")
		var stops []string
		for _, st := range r.Keyboard.Stops {
			stops = append(stops, st.El)
			assert.True(t, st.Outline, "%s shows its focus", st.El)
		}
		for _, want := range []string{"button[start]", "button[stop]", "button.danger", "button.preview-toggle", "button.logout"} {
			require.Contains(t, stops, want, "Tab reaches every control")
		}
	})
	t.Run("self-contained", func(t *testing.T) {
		require.Empty(t, r.OffOrigin)
		// Answers, not faults: the wrong token tried first, and ending a
		// preview whose session the restarted relay no longer knows.
		var unexpected []string
		for _, e := range r.HTTPErrors {
			if e != "GET /api/v1/channels 401" && !strings.HasPrefix(e, "DELETE /whep/") {
				unexpected = append(unexpected, e)
			}
		}
		require.Empty(t, unexpected, "HTTP errors")
		n := 0
		for _, e := range r.ConsoleErrors {
			if !strings.Contains(e, "Failed to load resource: the server responded with a status of 40") {
				unexpected = append(unexpected, e)
			}
			n++
		}
		t.Logf("%d requests refused while the relay was down (restart step)", r.RefusedWhileDown)
		require.Empty(t, unexpected, "console errors (CSP violations show here)")
		require.Equal(t, len(r.HTTPErrors), n, "each console error is one of the HTTP errors")
	})
}

// TestDashboardSecrets: no admin answer, event, page or log line holds a
// secret: the admin token, ingest keys, stream keys, pull passwords; even
// with a failing destination and a failing pull, whose errors are shown.
func TestDashboardSecrets(t *testing.T) {
	s := startSeance(t, dashboardConfig(t, freePort(t), freePort(t)), dashToken)
	secrets := []string{dashToken, dashPushKey, dashYTKey, dashPullPW, dashRoom, dashJWT}
	// Wait for both errors to exist.
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		body := s.mustGet("/api/v1/channels")
		require.Contains(c, body, `"state": "retrying"`)
		require.Contains(c, body, "connection refused")
	}, 20*time.Second, 200*time.Millisecond)

	admin := "http://" + s.app.admin.Addr().String()
	call := func(method, path string, auth bool) string {
		req, err := http.NewRequest(method, admin+path, nil)
		require.NoError(t, err)
		if auth {
			req.Header.Set("Authorization", "Bearer "+dashToken)
		}
		res, err := s.http.Do(req)
		require.NoError(t, err)
		defer res.Body.Close()
		b, err := io.ReadAll(res.Body)
		require.NoError(t, err)
		return fmt.Sprintf("%d %v\n%s\n", res.StatusCode, res.Header, b)
	}
	// Every documented route, with the token and without.
	var doc struct {
		Paths map[string]map[string]any `json:"paths"`
	}
	require.NoError(t, json.Unmarshal([]byte(s.mustGet("/api/v1/openapi.json")), &doc))
	sample := strings.NewReplacer("{channel}", "demo", "{destination}", "youtube", "{action}", "restart", "{file}", "dashboard.js")
	observed := map[string]string{}
	for p, item := range doc.Paths {
		for method := range item {
			if method == "parameters" || p == "/api/v1/events" {
				continue
			}
			for _, auth := range []bool{true, false} {
				observed[fmt.Sprint(method, p, auth)] = call(strings.ToUpper(method), sample.Replace(p), auth)
			}
		}
	}
	for _, path := range []string{"/api/v1/channels/camera", "/api/v1/channels/bourg/kick", "/api/v1/channels/nope", "/dashboard/static/" + dashToken} {
		observed[path] = call(http.MethodGet, path, true) + call(http.MethodPost, path, true)
	}
	// Two seconds of events: health samples, destination changes.
	ctx, cancel := context.WithTimeout(t.Context(), 2500*time.Millisecond)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, admin+"/api/v1/events", nil)
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+dashToken)
	res, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	events, _ := io.ReadAll(res.Body)
	res.Body.Close()
	require.Contains(t, string(events), "event: health")
	require.Contains(t, string(events), "connection refused")
	observed["/api/v1/events"] = string(events)

	s.stop()
	observed["logs"] = s.logs.String()
	for where, text := range observed {
		for _, secret := range secrets {
			require.NotContains(t, text, secret, "%s holds a secret", where)
		}
	}
	require.Contains(t, observed["logs"], `"error_id"`, "errors are logged with their id")
}
