package meeting

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/seance-relay/seance/configs"
	"github.com/seance-relay/seance/ingest/meeting/meetingtest"
	"github.com/seance-relay/seance/relay"
)

const testLiveKitRoom = "conseil-S3CR3T-room-Lk5"

// decodeJWT splits a token and returns its header and claims.
func decodeJWT(t *testing.T, token string) (header, claims map[string]any, signed string, sig []byte) {
	t.Helper()
	parts := strings.Split(token, ".")
	require.Len(t, parts, 3)
	enc := base64.RawURLEncoding
	for i, into := range []*map[string]any{&header, &claims} {
		b, err := enc.DecodeString(parts[i])
		require.NoError(t, err)
		require.NoError(t, json.Unmarshal(b, into))
	}
	sig, err := enc.DecodeString(parts[2])
	require.NoError(t, err)
	return header, claims, parts[0] + "." + parts[1], sig
}

// TestLiveKitViewerToken: seance's token is HS256 with the API secret,
// issued by the API key, short-lived, and grants joining the one room
// hidden, subscribing and nothing else.
func TestLiveKitViewerToken(t *testing.T) {
	token, err := liveKitViewerToken("APIkey", "a-secret", "salle", "Diffusion publique")
	require.NoError(t, err)
	header, claims, signed, sig := decodeJWT(t, token)
	require.Equal(t, map[string]any{"alg": "HS256", "typ": "JWT"}, header)
	mac := hmac.New(sha256.New, []byte("a-secret"))
	mac.Write([]byte(signed))
	require.True(t, hmac.Equal(mac.Sum(nil), sig), "signed with the API secret")
	require.Equal(t, "APIkey", claims["iss"])
	require.Equal(t, "seance-diffusion", claims["sub"])
	require.Equal(t, "Diffusion publique", claims["name"])
	now := float64(time.Now().Unix())
	require.InDelta(t, now+liveKitTTL.Seconds(), claims["exp"], 5)
	require.LessOrEqual(t, claims["nbf"], now)
	require.Equal(t, map[string]any{
		"room": "salle", "roomJoin": true, "canSubscribe": true,
		"canPublish": false, "canPublishData": false, "hidden": true,
	}, claims["video"])

	again, err := liveKitViewerToken("APIkey", "a-secret", "salle", "Diffusion publique")
	require.NoError(t, err)
	_, c2, _, _ := decodeJWT(t, again)
	require.GreaterOrEqual(t, c2["exp"], claims["exp"], "minted anew")

	for _, bad := range [][2]string{{"", "s"}, {"k", ""}} {
		_, err := liveKitViewerToken(bad[0], bad[1], "salle", "x")
		require.Error(t, err)
	}
}

// TestLiveKitTokenServer: livekit-server itself accepts seance's token,
// and refuses one signed with another secret.
func TestLiveKitTokenServer(t *testing.T) {
	lk := meetingtest.StartLiveKit(t)
	for _, tc := range []struct {
		name, secret string
		want         int
	}{
		{"right secret", lk.APISecret, http.StatusOK},
		{"wrong secret", "not-the-secret-0123456789abcdefghijkl", http.StatusUnauthorized},
	} {
		t.Run(tc.name, func(t *testing.T) {
			token, err := liveKitViewerToken(lk.APIKey, tc.secret, testLiveKitRoom, "Diffusion publique")
			require.NoError(t, err)
			code, body, err := lk.Validate(token)
			require.NoError(t, err)
			require.Equal(t, tc.want, code, "validate: %s", body)
		})
	}
}

// TestLiveKitURL: the page address carries the server, the token and the
// layout in its fragment only.
func TestLiveKitURL(t *testing.T) {
	u, err := liveKitURL("http://127.0.0.1:4242", "wss://lk.example.fr", "tok", configs.LayoutTiles)
	require.NoError(t, err)
	base, frag, ok := strings.Cut(u, "#")
	require.True(t, ok)
	require.Equal(t, "http://127.0.0.1:4242/meeting/livekit/", base)
	b, err := base64.RawURLEncoding.DecodeString(frag)
	require.NoError(t, err)
	var cfg liveKitPageConfig
	require.NoError(t, json.Unmarshal(b, &cfg))
	require.Equal(t, liveKitPageConfig{URL: "wss://lk.example.fr", Token: "tok", Layout: "tiles"}, cfg)
	_, err = liveKitURL("", "wss://lk.example.fr", "tok", "speaker")
	require.Error(t, err)
}

// TestPageHandler: the layout page, its script and livekit-client are
// served with a policy that loads nothing from elsewhere; nothing else is.
func TestPageHandler(t *testing.T) {
	srv := httptest.NewServer(PageHandler())
	t.Cleanup(srv.Close)
	for _, tc := range []struct {
		path, contains string
		code           int
	}{
		{"/meeting/livekit/", `<script src="livekit-client.umd.js">`, http.StatusOK},
		{"/meeting/livekit/layout.js", "window.seanceLiveKit", http.StatusOK},
		{"/meeting/livekit/livekit-client.umd.js", "LivekitClient", http.StatusOK},
		{"/meeting/livekit/gen.sh", "", http.StatusNotFound},
		{"/meeting/livekit/../extension/sw.js", "", http.StatusNotFound},
		{"/whip/conseil", "", http.StatusNotFound},
	} {
		t.Run(tc.path, func(t *testing.T) {
			resp, err := http.Get(srv.URL + tc.path)
			require.NoError(t, err)
			body, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			require.NoError(t, err)
			require.Equal(t, tc.code, resp.StatusCode)
			if tc.code == http.StatusOK {
				require.Contains(t, string(body), tc.contains)
				require.Contains(t, resp.Header.Get("Content-Security-Policy"), "script-src 'self'")
			}
		})
	}
}

// TestLiveKitClientMatchesLock: the committed livekit-client build is the
// one package-lock.json pins, byte for byte (npm ci of the lock, as gen.sh
// does).
func TestLiveKitClientMatchesLock(t *testing.T) {
	if _, err := exec.LookPath("npm"); err != nil {
		t.Fatal("npm is missing: run make test (scripts/install-test-deps.sh installs it)")
	}
	work := t.TempDir()
	for _, f := range []string{"package.json", "package-lock.json"} {
		b, err := os.ReadFile(filepath.Join("livekit", f))
		require.NoError(t, err)
		require.NoError(t, os.WriteFile(filepath.Join(work, f), b, 0o600))
	}
	cmd := exec.Command("npm", "ci", "--ignore-scripts", "--no-audit", "--no-fund", "--loglevel=error")
	cmd.Dir = work
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "npm ci: %s", out)
	for committed, built := range map[string]string{
		"livekit-client.umd.js":  "node_modules/livekit-client/dist/livekit-client.umd.js",
		"LICENSE.livekit-client": "node_modules/livekit-client/LICENSE",
	} {
		want, err := os.ReadFile(filepath.Join(work, built))
		require.NoError(t, err)
		got, err := os.ReadFile(filepath.Join("livekit", committed))
		require.NoError(t, err)
		require.True(t, string(want) == string(got), "livekit/%s differs from the locked package's: run ingest/meeting/livekit/gen.sh", committed)
	}
	var pkg struct {
		Dependencies map[string]string `json:"dependencies"`
	}
	b, err := os.ReadFile(filepath.Join("livekit", "package.json"))
	require.NoError(t, err)
	require.NoError(t, json.Unmarshal(b, &pkg))
	require.Regexp(t, `^\d+\.\d+\.\d+$`, pkg.Dependencies["livekit-client"], "an exact version")
}

// TestCaptureLiveKit: seance joins a real livekit-server room where a
// headless Chromium publishes its fake camera and a 440 Hz microphone:
// hidden, subscribe-only, it captures the layout page and the channel goes
// live. The API secret, the room and the token appear nowhere.
func TestCaptureLiveKit(t *testing.T) {
	requireChromium(t)
	lk := meetingtest.StartLiveKit(t)
	e := newEnv(t)
	pages := httptest.NewServer(PageHandler())
	t.Cleanup(pages.Close)
	lk.Join(t, testLiveKitRoom, "elu-1", "Marie Curie", 320, 240)
	c := e.capture(t, configs.Meeting{
		LiveKit: configs.LiveKit{URL: lk.URL, APIKey: lk.APIKey, APISecret: configs.Secret(lk.APISecret),
			Room: configs.Secret(testLiveKitRoom)},
		Layout: configs.LayoutSpeaker,
	})
	c.cfg.PageBase = pages.URL
	runCapture(t, c)
	st := waitState(t, c, StateCapturing, 30*time.Second)
	require.Equal(t, "livekit", st.Platform)
	require.Equal(t, "127.0.0.1", st.Server)
	require.Eventually(t, func() bool { return stateOf(e.ch) == relay.StateLive }, 10*time.Second, 20*time.Millisecond)

	var bot *meetingtest.ServerParticipant
	require.Eventually(t, func() bool {
		ps, err := lk.Participants(testLiveKitRoom)
		if err != nil {
			t.Logf("ListParticipants: %v", err)
			return false
		}
		for i := range ps {
			if ps[i].Identity == "seance-diffusion" {
				bot = &ps[i]
			}
		}
		return bot != nil && len(ps) == 2
	}, 10*time.Second, 100*time.Millisecond, "seance and the participant in the room")
	require.Equal(t, "Diffusion publique", bot.Name)
	require.Empty(t, bot.Tracks, "seance publishes nothing")
	require.True(t, bot.Permission.Hidden)
	require.True(t, bot.Permission.CanSubscribe)
	require.False(t, bot.Permission.CanPublish)
	require.False(t, bot.Permission.CanPublishData)

	// Removed from the room (the server, a moderator): the bot stays out
	// until started again, as for Jitsi and BBB.
	restarts := c.Status().Restarts
	require.NoError(t, lk.Remove(testLiveKitRoom, "seance-diffusion"))
	st = waitState(t, c, StateRemoved, 30*time.Second)
	require.Equal(t, restarts, st.Restarts, "a removal is not a failure")
	require.Contains(t, st.LastError, "removed from the meeting by a moderator")
	require.Never(t, func() bool { return c.Status().State != StateRemoved }, 2*time.Second, 50*time.Millisecond, "no rejoin on its own")
	c.Start()
	st = waitState(t, c, StateCapturing, 30*time.Second)
	require.Equal(t, restarts, st.Restarts)

	st = c.Status()
	b, err := json.Marshal(st)
	require.NoError(t, err)
	text := e.logs.String() + string(b)
	requireNoSecret(t, text, lk.APISecret, testLiveKitRoom)
	require.NotRegexp(t, `eyJ[A-Za-z0-9_-]+\.eyJ`, text, "no token")
}

// TestCaptureLiveKitRefused: with a secret that is not the server's, the
// capture says the server refused it, never goes live, and prints neither
// secret.
func TestCaptureLiveKitRefused(t *testing.T) {
	requireChromium(t)
	lk := meetingtest.StartLiveKit(t)
	e := newEnv(t)
	pages := httptest.NewServer(PageHandler())
	t.Cleanup(pages.Close)
	const wrong = "wrong-S3CR3T-secret-0123456789abcdefghij"
	c := e.capture(t, configs.Meeting{
		LiveKit: configs.LiveKit{URL: lk.URL, APIKey: lk.APIKey, APISecret: wrong, Room: testLiveKitRoom},
		Layout:  configs.LayoutTiles,
	})
	c.cfg.PageBase = pages.URL
	runCapture(t, c)
	var st Status
	require.Eventually(t, func() bool {
		st = c.Status()
		return st.State == StateRetrying && st.LastError != ""
	}, 30*time.Second, 20*time.Millisecond)
	t.Logf("last error: %s", st.LastError)
	require.True(t, strings.HasPrefix(st.LastError, ErrLiveKitRefused.Error()), st.LastError)
	require.NotEqual(t, relay.StateLive, stateOf(e.ch))
	requireNoSecret(t, e.logs.String()+st.LastError, wrong, lk.APISecret, testLiveKitRoom, "eyJ")
}

// pageLayout is what the layout page shows.
type pageLayout struct {
	Participants int    `json:"participants"`
	Main         string `json:"main"`
	Tiles        int    `json:"tiles"`
	Playing      int    `json:"playing"` // tiles whose video has decoded a picture
	Audio        int    `json:"audio"`
}

const pageLayoutJS = `JSON.stringify({
  participants: seanceLiveKit.participants, main: seanceLiveKit.main,
  tiles: document.querySelectorAll('#stage .tile').length,
  playing: Array.from(document.querySelectorAll('#stage video')).filter((v) => v.videoWidth > 0).length,
  audio: document.querySelectorAll('#audio audio').length,
})`

// TestLiveKitLayout: the layout page, in seance's own browser, against a
// real livekit-server: speaker shows one picture (a screen share first),
// tiles one per camera and share; every microphone plays; a participant
// who leaves leaves the page.
func TestLiveKitLayout(t *testing.T) {
	requireChromium(t)
	lk := meetingtest.StartLiveKit(t)
	pages := httptest.NewServer(PageHandler())
	t.Cleanup(pages.Close)
	for _, tc := range []struct {
		layout        string
		withTwo       pageLayout // Marie (camera), Pierre (camera)
		withShare     pageLayout // and Irène (camera and screen share)
		afterMarieLft pageLayout
	}{
		{configs.LayoutSpeaker,
			pageLayout{Participants: 2, Tiles: 1, Playing: 1, Audio: 2},
			pageLayout{Participants: 3, Main: "irene/screen", Tiles: 1, Playing: 1, Audio: 3},
			pageLayout{Participants: 2, Main: "irene/screen", Tiles: 1, Playing: 1, Audio: 2}},
		{configs.LayoutTiles,
			pageLayout{Participants: 2, Tiles: 2, Playing: 2, Audio: 2},
			pageLayout{Participants: 3, Tiles: 4, Playing: 4, Audio: 3},
			pageLayout{Participants: 2, Tiles: 3, Playing: 3, Audio: 2}},
	} {
		t.Run(tc.layout, func(t *testing.T) {
			room := "salle-" + tc.layout
			marie := lk.Join(t, room, "marie", "Marie Curie", 320, 240)
			lk.Join(t, room, "pierre", "Pierre Curie", 320, 240)
			e := newEnv(t)
			c := e.capture(t, configs.Meeting{
				LiveKit: configs.LiveKit{URL: lk.URL, APIKey: lk.APIKey, APISecret: configs.Secret(lk.APISecret), Room: configs.Secret(room)},
				Layout:  tc.layout,
			})
			c.cfg.PageBase = pages.URL
			ctx := t.Context()
			dir := t.TempDir()
			ext, err := writeExtension(dir)
			require.NoError(t, err)
			path, err := findBrowser("")
			require.NoError(t, err)
			url, err := c.target(ctx)
			require.NoError(t, err)
			r, err := c.launch(ctx, path, dir, ext)
			require.NoError(t, err)
			t.Cleanup(r.b.close)
			require.NoError(t, r.open(ctx, url, false))
			require.True(t, r.joined)

			var got pageLayout
			wait := func(want pageLayout, what string) {
				t.Helper()
				require.Eventually(t, func() bool {
					var s string
					if err := r.b.cdp.evaluate(ctx, r.page, pageLayoutJS, &s); err != nil {
						return false
					}
					got = pageLayout{}
					if json.Unmarshal([]byte(s), &got) != nil {
						return false
					}
					if want.Main == "" {
						got.Main = ""
					}
					return got == want
				}, 30*time.Second, 100*time.Millisecond, "%s: want %+v, got %+v", what, want, &got)
			}
			wait(tc.withTwo, "two participants")
			lk.JoinSharing(t, room, "irene", "Irène Joliot-Curie", 320, 240)
			wait(tc.withShare, "a third sharing a screen")
			marie.Leave()
			wait(tc.afterMarieLft, "Marie left")
		})
	}
}
