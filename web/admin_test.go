package web

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
	"github.com/stretchr/testify/require"

	"github.com/seance-relay/seance/addrlimit"
	"github.com/seance-relay/seance/configs"
	"github.com/seance-relay/seance/ingest/meeting"
	"github.com/seance-relay/seance/ingest/pull"
	"github.com/seance-relay/seance/relay"
)

// adminRoute is every admin route, with the status a good request gets.
// stream: the answer is an event stream, read only up to its headers.
// open: served without the token.
var adminRoutes = []struct {
	method, path string
	status       int
	stream, open bool
}{
	{method: http.MethodGet, path: "/metrics", status: http.StatusOK},
	{method: http.MethodGet, path: "/healthz", status: http.StatusOK},
	{method: http.MethodGet, path: "/api/v1/openapi.json", status: http.StatusOK},
	{method: http.MethodGet, path: "/api/v1/channels", status: http.StatusOK},
	{method: http.MethodGet, path: "/api/v1/channels/bourg", status: http.StatusOK},
	{method: http.MethodGet, path: "/api/v1/channels/bourg/history", status: http.StatusOK},
	// Nobody publishes: there is nobody to kick.
	{method: http.MethodPost, path: "/api/v1/channels/bourg/kick", status: http.StatusConflict},
	// Start is asynchronous: the request is accepted, not done.
	{method: http.MethodPost, path: "/api/v1/channels/bourg/destinations/youtube/start", status: http.StatusAccepted},
	{method: http.MethodPost, path: "/api/v1/channels/bourg/meeting/start", status: http.StatusAccepted},
	{method: http.MethodGet, path: "/api/v1/events", status: http.StatusOK, stream: true},
	{method: http.MethodGet, path: "/dashboard", status: http.StatusOK, open: true},
	{method: http.MethodGet, path: "/dashboard/static/dashboard.js", status: http.StatusOK, open: true},
	{method: http.MethodGet, path: "/dashboard/static/dashboard.css", status: http.StatusOK, open: true},
	{method: http.MethodGet, path: "/dashboard/static/icon.svg", status: http.StatusOK, open: true},
	// Unknown paths are behind the token too: no probing without it.
	{method: http.MethodGet, path: "/api/v1/nothing-here", status: http.StatusNotFound},
}

// fakePull is a Pull with a fixed status.
type fakePull pull.Status

func (p fakePull) Status() pull.Status { return pull.Status(p) }

// fakeMeeting is a Meeting that records its calls in calls.
type fakeMeeting struct {
	calls *calls
	st    meeting.Status
}

func (m *fakeMeeting) Status() meeting.Status { return m.st }
func (m *fakeMeeting) Start()                 { m.calls.add("meeting start") }
func (m *fakeMeeting) Stop()                  { m.calls.add("meeting stop") }

// startAdmin serves the admin API over hub with one recording destination
// ("youtube") and a meeting capture on channel bourg, 2 WebRTC and 1 RTSP
// viewers on each channel, and a pull on ville.
func startAdmin(t *testing.T, token configs.Secret) (string, *http.Client, *calls, *logBuffer) {
	t.Helper()
	hub, _ := newHub(t)
	base, c, calls, logs, _ := startAdminWith(t, hub, AdminConfig{Token: token})
	return base, c, calls, logs
}

// startAdminWith fills in what cfg leaves empty (listener, registry, the
// fakes of startAdmin) and runs the admin server until the test ends.
func startAdminWith(t *testing.T, hub Channels, cfg AdminConfig) (string, *http.Client, *calls, *logBuffer, *admin) {
	t.Helper()
	c := &calls{}
	logs := &logBuffer{}
	cfg.Listen = "127.0.0.1:0"
	if cfg.Failures == nil {
		// Tests send many wrong tokens from 127.0.0.1: the backoff is
		// tested where a test sets it.
		cfg.Failures = addrlimit.NewFailures(1<<20, time.Minute, time.Minute)
	}
	if cfg.Gatherer == nil {
		_, cfg.Gatherer = newHub(t)
	}
	if cfg.Destinations == nil {
		cfg.Destinations = map[string][]Destination{"bourg": {recordingDestination("youtube", c)}}
	}
	if cfg.Viewers == nil {
		cfg.Viewers = map[string]func(string) int{
			"webrtc": func(string) int { return 2 },
			"rtsp":   func(string) int { return 1 },
		}
	}
	if cfg.Pulls == nil {
		cfg.Pulls = map[string]Pull{"ville": fakePull{URL: "rtsp://camera.lan/stream", State: pull.StateRetrying, Reconnects: 3, LastError: "rtsp: connection refused"}}
	}
	if cfg.Meetings == nil {
		cfg.Meetings = map[string]Meeting{"bourg": &fakeMeeting{calls: c, st: meeting.Status{
			Platform: "jitsi", Server: "visio.example.fr", State: meeting.StateCapturing, Since: time.Now(),
			Started: true, Restarts: 1, LastError: "the browser (chromium) exited (killed by signal killed)",
			Size: "1280x720", CaptureFPS: 29.5, CPUCores: 0.8, MemoryBytes: 512 << 20, Processes: 9,
			PageErrors: 2, LastPageError: "WebSocket connection failed",
		}}}
	}
	log := zerolog.New(zerolog.MultiLevelWriter(zerolog.NewTestWriter(t), logs))
	a, err := newAdmin(cfg, hub, log)
	require.NoError(t, err)
	s, err := newServer("admin", cfg.Listen, a.handler(), a.log)
	require.NoError(t, err)
	s.background = a.monitor
	return run(t, s), client(t), c, logs, a
}

// request runs one route: streams are read up to their headers only.
func request(t *testing.T, c *http.Client, method, url string, header http.Header, stream bool) response {
	t.Helper()
	if !stream {
		return do(t, c, method, url, header)
	}
	req, err := http.NewRequestWithContext(t.Context(), method, url, nil)
	require.NoError(t, err)
	for k, vs := range header {
		req.Header[k] = vs
	}
	res, err := c.Do(req)
	require.NoError(t, err)
	defer res.Body.Close()
	r := response{status: res.StatusCode, header: res.Header}
	if res.StatusCode != http.StatusOK {
		b := new(strings.Builder)
		_, _ = io.Copy(b, res.Body)
		r.body = b.String()
	}
	return r
}

var errorIDPattern = regexp.MustCompile(`^[a-z0-9]{9}$`)

// requireAdminError checks the body is {"error":{"code":code,"message":...,
// "id":...}} and nothing else, and returns the id.
func requireAdminError(t testing.TB, r response, status int, code string) string {
	t.Helper()
	require.Equal(t, status, r.status, r.body)
	require.Equal(t, "application/json", r.header.Get("Content-Type"))
	require.Equal(t, "no-store", r.header.Get("Cache-Control"))
	var body map[string]map[string]any
	require.NoError(t, json.Unmarshal([]byte(r.body), &body), r.body)
	require.Len(t, body, 1)
	e, ok := body["error"]
	require.True(t, ok, r.body)
	require.Len(t, e, 3, r.body)
	require.Equal(t, code, e["code"])
	msg, ok := e["message"].(string)
	require.True(t, ok, r.body)
	require.NotEmpty(t, strings.TrimSpace(msg))
	id, _ := e["id"].(string)
	require.Regexp(t, errorIDPattern, id)
	return id
}

func TestAdminAuth(t *testing.T) {
	for _, tc := range []struct {
		name   string
		header http.Header
		ok     bool
	}{
		{"no header", nil, false},
		{"wrong token", bearer("Bearer not-the-token"), false},
		{"token without Bearer", bearer(adminToken), false},
		{"lowercase scheme", bearer("bearer " + adminToken), false},
		{"token prefix", bearer("Bearer " + adminToken[:len(adminToken)-1]), false},
		{"token and more", bearer("Bearer " + adminToken + "x"), false},
		{"basic auth", bearer("Basic YWRtaW46" + adminToken), false},
		{"empty bearer", bearer("Bearer "), false},
		{"right token", bearer("Bearer " + adminToken), true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			base, c, calls, logs := startAdmin(t, adminToken)
			for _, route := range adminRoutes {
				r := request(t, c, route.method, base+route.path, tc.header, route.stream)
				require.Empty(t, r.header.Values("Set-Cookie"), route.path)
				require.NotContains(t, r.body, adminToken, route.path)
				if !tc.ok && !route.open {
					id := requireAdminError(t, r, http.StatusUnauthorized, "unauthorized")
					require.Equal(t, `Bearer realm="seance admin"`, r.header.Get("WWW-Authenticate"), route.path)
					require.Contains(t, logs.String(), `"error_id":"`+id+`"`, "the id is logged")
					continue
				}
				require.Equal(t, route.status, r.status, "%s %s: %s", route.method, route.path, r.body)
				require.Empty(t, r.header.Get("WWW-Authenticate"), route.path)
			}
			if tc.ok {
				require.Equal(t, []string{"youtube start", "meeting start"}, calls.get())
			} else {
				require.Empty(t, calls.get(), "a refused request reached a destination")
			}
			require.NotContains(t, logs.String(), adminToken)
		})
	}
}

// TestAdminAuthExemptions: exactly the dashboard's page and its static
// files are served without the token, since the page asks for it.
func TestAdminAuthExemptions(t *testing.T) {
	base, c, _, _ := startAdmin(t, adminToken)
	for _, tc := range []struct {
		method, path string
		open         bool
	}{
		{http.MethodGet, "/dashboard", true},
		{http.MethodHead, "/dashboard", true},
		{http.MethodGet, "/dashboard?x=1", true},
		{http.MethodGet, "/dashboard/static/dashboard.js", true},
		{http.MethodGet, "/dashboard/static/dashboard.js?v=0123", true},
		{http.MethodPost, "/dashboard", false},
		{http.MethodGet, "/dashboard/", false},
		{http.MethodGet, "/dashboard/other", false},
		{http.MethodGet, "/dashboard/static/", false},
		{http.MethodGet, "/dashboard/static/nope.js", false},
		{http.MethodGet, "/dashboard/static/../../api/v1/channels", false},
		{http.MethodGet, "/dashboard/static/dashboard.js/../../../api/v1/channels", false},
		{http.MethodGet, "/dashboard/static/%2e%2e/%2e%2e/api/v1/channels", false},
		{http.MethodGet, "/dashboardx", false},
		{http.MethodGet, "/static/player.js", false},
		{http.MethodGet, "//dashboard", false},
	} {
		t.Run(tc.method+" "+tc.path, func(t *testing.T) {
			req, err := http.NewRequest(tc.method, base+tc.path, nil)
			require.NoError(t, err)
			req.URL.Opaque = tc.path // sent as written, dots and all
			if i := strings.IndexByte(tc.path, '?'); i >= 0 {
				req.URL.Opaque, req.URL.RawQuery = tc.path[:i], tc.path[i+1:]
			}
			res, err := (&http.Client{Transport: c.Transport, CheckRedirect: func(*http.Request, []*http.Request) error {
				return http.ErrUseLastResponse
			}}).Do(req)
			require.NoError(t, err)
			res.Body.Close()
			switch {
			case tc.open:
				require.Equal(t, http.StatusOK, res.StatusCode)
			case strings.HasPrefix(tc.path, "//"):
				// "//dashboard" names the host "dashboard" (RFC 3986
				// network-path reference): refused before the token.
				require.Equal(t, http.StatusMisdirectedRequest, res.StatusCode)
			default:
				require.Equal(t, http.StatusUnauthorized, res.StatusCode)
			}
		})
	}
}

func TestAdminWithoutToken(t *testing.T) {
	base, c, calls, _ := startAdmin(t, "")
	for _, route := range adminRoutes {
		t.Run(route.method+" "+route.path, func(t *testing.T) {
			r := request(t, c, route.method, base+route.path, nil, route.stream)
			require.Equal(t, route.status, r.status, r.body)
			require.Empty(t, r.header.Get("WWW-Authenticate"))
			require.Empty(t, r.header.Values("Set-Cookie"))
		})
	}
	require.Equal(t, []string{"youtube start", "meeting start"}, calls.get())
}

func TestAdminErrors(t *testing.T) {
	base, c, calls, logs := startAdmin(t, adminToken)
	auth := bearer("Bearer " + adminToken)
	for _, tc := range []struct {
		name, method, path string
		status             int
		code               string
		logged             string // also in the log line with the id
	}{
		{"unknown channel", http.MethodGet, "/api/v1/channels/nope", http.StatusNotFound, "channel_not_found", "channel not found"},
		{"history of an unknown channel", http.MethodGet, "/api/v1/channels/nope/history", http.StatusNotFound, "channel_not_found", `"path":"/api/v1/channels/nope/history"`},
		{"kick on unknown channel", http.MethodPost, "/api/v1/channels/nope/kick", http.StatusNotFound, "channel_not_found", `"method":"POST"`},
		{"kick without publisher", http.MethodPost, "/api/v1/channels/bourg/kick", http.StatusConflict, "no_publisher", `"status":409`},
		{"steer on unknown channel", http.MethodPost, "/api/v1/channels/nope/destinations/youtube/start", http.StatusNotFound, "channel_not_found", "channel not found"},
		{"unknown destination", http.MethodPost, "/api/v1/channels/bourg/destinations/nope/start", http.StatusNotFound, "destination_not_found", `"path":"/api/v1/channels/bourg/destinations/nope/start"`},
		{"destination of another channel", http.MethodPost, "/api/v1/channels/ville/destinations/youtube/start", http.StatusNotFound, "destination_not_found", `"code":"destination_not_found"`},
		{"unknown action", http.MethodPost, "/api/v1/channels/bourg/destinations/youtube/explode", http.StatusNotFound, "unknown_action", `"code":"unknown_action"`},
		{"unknown path", http.MethodGet, "/api/v1/nothing-here", http.StatusNotFound, "not_found", `"path":"/api/v1/nothing-here"`},
		{"unknown static file", http.MethodGet, "/dashboard/static/nope.js", http.StatusNotFound, "not_found", `"path":"/dashboard/static/nope.js"`},
		{"steering needs POST", http.MethodGet, "/api/v1/channels/bourg/destinations/youtube/start", http.StatusMethodNotAllowed, "method_not_allowed", `"method":"GET"`},
		{"kick needs POST", http.MethodGet, "/api/v1/channels/bourg/kick", http.StatusMethodNotAllowed, "method_not_allowed", `"status":405`},
		{"channels are read-only", http.MethodDelete, "/api/v1/channels/bourg", http.StatusMethodNotAllowed, "method_not_allowed", `"method":"DELETE"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := do(t, c, tc.method, base+tc.path, auth)
			id := requireAdminError(t, r, tc.status, tc.code)
			var line string
			for l := range strings.SplitSeq(logs.String(), "\n") {
				if strings.Contains(l, `"error_id":"`+id+`"`) {
					line = l
				}
			}
			require.NotEmpty(t, line, "the error's id is logged")
			require.Contains(t, line, tc.logged, "the log line has the details")
			if tc.status == http.StatusMethodNotAllowed {
				require.NotEmpty(t, r.header.Get("Allow"))
			}
		})
	}
	require.Empty(t, calls.get(), "an error reached a destination")

	t.Run("each error has its own id", func(t *testing.T) {
		a := requireAdminError(t, do(t, c, http.MethodGet, base+"/api/v1/channels/nope", auth), http.StatusNotFound, "channel_not_found")
		b := requireAdminError(t, do(t, c, http.MethodGet, base+"/api/v1/channels/nope", auth), http.StatusNotFound, "channel_not_found")
		require.NotEqual(t, a, b)
	})
}

func TestAdminSteerDestination(t *testing.T) {
	for _, tc := range []struct {
		action string
		want   []string
	}{
		{"start", []string{"youtube start"}},
		{"stop", []string{"youtube stop"}},
		{"restart", []string{"youtube stop", "youtube start"}},
	} {
		t.Run(tc.action, func(t *testing.T) {
			base, c, calls, _ := startAdmin(t, adminToken)
			r := do(t, c, http.MethodPost, base+"/api/v1/channels/bourg/destinations/youtube/"+tc.action, bearer("Bearer "+adminToken))
			require.Equal(t, http.StatusAccepted, r.status, r.body)
			require.Equal(t, "application/json", r.header.Get("Content-Type"))
			require.Equal(t, tc.want, calls.get())
			var st map[string]any
			require.NoError(t, json.Unmarshal([]byte(r.body), &st))
			require.Equal(t, "youtube", st["name"])
			require.Equal(t, "idle", st["state"])
		})
	}
}

func TestAdminSteerMeeting(t *testing.T) {
	for _, tc := range []struct {
		action string
		want   []string
	}{
		{"start", []string{"meeting start"}},
		{"stop", []string{"meeting stop"}},
		{"restart", []string{"meeting stop", "meeting start"}},
	} {
		t.Run(tc.action, func(t *testing.T) {
			base, c, calls, logs := startAdmin(t, adminToken)
			r := do(t, c, http.MethodPost, base+"/api/v1/channels/bourg/meeting/"+tc.action, bearer("Bearer "+adminToken))
			require.Equal(t, http.StatusAccepted, r.status, r.body)
			require.Equal(t, tc.want, calls.get())
			var st map[string]any
			require.NoError(t, json.Unmarshal([]byte(r.body), &st))
			require.Equal(t, "capturing", st["state"])
			require.Contains(t, logs.String(), "meeting capture steered from the admin API")
		})
	}
	base, c, calls, _ := startAdmin(t, adminToken)
	auth := bearer("Bearer " + adminToken)
	requireAdminError(t, do(t, c, http.MethodPost, base+"/api/v1/channels/ville/meeting/start", auth), http.StatusNotFound, "no_meeting")
	requireAdminError(t, do(t, c, http.MethodPost, base+"/api/v1/channels/bourg/meeting/pause", auth), http.StatusNotFound, "unknown_action")
	requireAdminError(t, do(t, c, http.MethodPost, base+"/api/v1/channels/nope/meeting/start", auth), http.StatusNotFound, "channel_not_found")
	requireAdminError(t, do(t, c, http.MethodPost, base+"/api/v1/channels/bourg/meeting/start", nil), http.StatusUnauthorized, "unauthorized")
	require.Empty(t, calls.get())
}

// apiStatus is ChannelStatus as a client reads it.
type apiStatus struct {
	Name   string `json:"name"`
	Title  string `json:"title"`
	State  string `json:"state"`
	Since  string `json:"since"`
	Ingest *struct {
		Protocol   string `json:"protocol"`
		RemoteAddr string `json:"remote_addr"`
	} `json:"ingest"`
	Health       map[string]any   `json:"health"`
	Viewers      map[string]int   `json:"viewers"`
	Destinations []map[string]any `json:"destinations"`
	Pull         map[string]any   `json:"pull"`
	Meeting      map[string]any   `json:"meeting"`
	Recording    map[string]any   `json:"recording"`
}

func TestAdminChannels(t *testing.T) {
	base, c, _, _ := startAdmin(t, adminToken)
	auth := bearer("Bearer " + adminToken)

	r := do(t, c, http.MethodGet, base+"/api/v1/channels", auth)
	require.Equal(t, http.StatusOK, r.status)
	require.Equal(t, "no-store", r.header.Get("Cache-Control"))
	var list struct {
		Channels []apiStatus `json:"channels"`
	}
	require.NoError(t, json.Unmarshal([]byte(r.body), &list), r.body)
	require.Len(t, list.Channels, 2)
	bourg, ville := list.Channels[0], list.Channels[1]
	require.Equal(t, "bourg", bourg.Name)
	require.Equal(t, "Conseil municipal de Bourg", bourg.Title)
	require.Equal(t, "idle", bourg.State)
	require.Equal(t, "idle", bourg.Health["state"])
	_, err := time.Parse(time.RFC3339Nano, bourg.Since)
	require.NoError(t, err)
	require.Nil(t, bourg.Ingest, "nobody publishes")
	require.Equal(t, map[string]int{"webrtc": 2, "rtsp": 1, "total": 3}, bourg.Viewers)
	require.Len(t, bourg.Destinations, 1)
	require.Equal(t, "youtube", bourg.Destinations[0]["name"])
	require.Nil(t, bourg.Pull, "bourg is not pulled")
	require.Equal(t, "capturing", bourg.Meeting["state"])
	require.Equal(t, "visio.example.fr", bourg.Meeting["server"])
	require.EqualValues(t, 512<<20, bourg.Meeting["memory_bytes"])
	require.Nil(t, ville.Meeting, "ville is not a meeting")
	require.Equal(t, map[string]any{"enabled": false, "state": "idle", "bytes": 0.0, "errors": 0.0, "dropped_frames": 0.0},
		bourg.Recording, "a channel without recording")

	require.Equal(t, "ville", ville.Name)
	require.NotNil(t, ville.Destinations, "no destinations is [], not null")
	require.Empty(t, ville.Destinations)
	require.Equal(t, "retrying", ville.Pull["state"])
	require.Equal(t, "rtsp: connection refused", ville.Pull["last_error"])
	require.EqualValues(t, 3, ville.Pull["reconnects"])

	r = do(t, c, http.MethodGet, base+"/api/v1/channels/ville", auth)
	require.Equal(t, http.StatusOK, r.status)
	require.Contains(t, r.body, `"destinations": []`)
	var one apiStatus
	require.NoError(t, json.Unmarshal([]byte(r.body), &one))
	require.Equal(t, "Conseil <de> Ville & Cie", one.Title)

	r = do(t, c, http.MethodGet, base+"/metrics", auth)
	require.Equal(t, http.StatusOK, r.status)
	require.Contains(t, r.body, `seance_channel_live{channel="bourg"} 0`)
	require.NotContains(t, r.body, adminToken)
}

// TestAdminShowsLiveChannel publishes through the relay: the admin API
// sees the channel live, with its publisher.
func TestAdminShowsLiveChannel(t *testing.T) {
	hub, reg := newHub(t)
	base, c, _, _, _ := startAdminWith(t, hub, AdminConfig{Gatherer: reg})
	ch, err := hub.Channel("bourg")
	require.NoError(t, err)
	sess, err := ch.Publish(relay.PublisherInfo{Protocol: "demo", RemoteAddr: "192.0.2.1:1935"}, relay.Tracks{Video: &relay.VideoTrack{}})
	require.NoError(t, err)
	defer sess.Close()

	r := do(t, c, http.MethodGet, base+"/api/v1/channels/bourg", nil)
	require.Equal(t, http.StatusOK, r.status)
	var st apiStatus
	require.NoError(t, json.Unmarshal([]byte(r.body), &st), r.body)
	require.Equal(t, "live", st.State)
	require.Equal(t, "live", st.Health["state"])
	require.Equal(t, "demo", st.Health["protocol"])
	require.NotNil(t, st.Ingest)
	require.Equal(t, "demo", st.Ingest.Protocol)
	require.Equal(t, "192.0.2.1:1935", st.Ingest.RemoteAddr)
	r = do(t, c, http.MethodGet, base+"/metrics", nil)
	require.True(t, strings.Contains(r.body, `seance_channel_live{channel="bourg"} 1`), r.body)
}

// TestAdminKick: the publisher's session ends; within the grace period
// the channel waits for it, and a publisher that comes back continues.
func TestAdminKick(t *testing.T) {
	relayLogs := &logBuffer{}
	hub := relay.NewHub([]relay.ChannelConfig{{Name: "bourg", Title: "Bourg", Grace: time.Minute}},
		zerolog.New(relayLogs), relay.NewMetrics(prometheus.NewRegistry()))
	base, c, _, _, _ := startAdminWith(t, hub, AdminConfig{Token: adminToken})
	auth := bearer("Bearer " + adminToken)
	ch, err := hub.Channel("bourg")
	require.NoError(t, err)
	sess, err := ch.Publish(relay.PublisherInfo{Protocol: "rtmp", RemoteAddr: "192.0.2.7:50000"}, relay.Tracks{Video: &relay.VideoTrack{}})
	require.NoError(t, err)

	r := do(t, c, http.MethodPost, base+"/api/v1/channels/bourg/kick", auth)
	require.Equal(t, http.StatusAccepted, r.status, r.body)
	var st apiStatus
	require.NoError(t, json.Unmarshal([]byte(r.body), &st))
	require.Equal(t, "interrupted", st.State)
	select {
	case <-sess.Done():
	default:
		t.Fatal("the kicked session is not done")
	}
	require.True(t, sess.Kicked())
	require.Contains(t, relayLogs.String(), "publisher kicked by an administrator")

	requireAdminError(t, do(t, c, http.MethodPost, base+"/api/v1/channels/bourg/kick", auth), http.StatusConflict, "no_publisher")

	back, err := ch.Publish(relay.PublisherInfo{Protocol: "rtmp", RemoteAddr: "192.0.2.7:50001"}, relay.Tracks{Video: &relay.VideoTrack{}})
	require.NoError(t, err)
	defer back.Close()
	r = do(t, c, http.MethodGet, base+"/api/v1/channels/bourg", auth)
	require.NoError(t, json.Unmarshal([]byte(r.body), &st))
	require.Equal(t, "live", st.State)
	require.EqualValues(t, 1, st.Health["publisher_reconnects"], "the same session continues")
}

func TestAdminHistory(t *testing.T) {
	hub, _ := newHub(t)
	base, c, _, _, _ := startAdminWith(t, hub, AdminConfig{sampleEvery: 10 * time.Millisecond})
	var h historyResponse
	require.Eventually(t, func() bool {
		r := do(t, c, http.MethodGet, base+"/api/v1/channels/bourg/history", nil)
		require.Equal(t, http.StatusOK, r.status)
		require.NoError(t, json.Unmarshal([]byte(r.body), &h))
		return len(h.Times) >= 3
	}, 5*time.Second, 20*time.Millisecond)
	require.Equal(t, "bourg", h.Channel)
	require.InDelta(t, 0.01, h.Interval, 1e-9)
	require.Len(t, h.Bitrate, len(h.Times))
	require.Len(t, h.FPS, len(h.Times))
	require.Len(t, h.Viewers, len(h.Times))
	require.Equal(t, 3, h.Viewers[0], "total viewers")
	for i := 1; i < len(h.Times); i++ {
		require.GreaterOrEqual(t, h.Times[i], h.Times[i-1], "oldest first")
	}
}

// TestHistoryRing: the ring keeps the last historyLen samples, oldest first.
func TestHistoryRing(t *testing.T) {
	var h history
	t0 := time.Unix(1_700_000_000, 0)
	for i := range historyLen + 10 {
		h.add(healthSample{Time: t0.Add(time.Duration(i) * time.Second), Bitrate: float64(i), Viewers: map[string]int{"total": i}})
	}
	s := h.snapshot("bourg", time.Second)
	require.Len(t, s.Times, historyLen)
	require.Equal(t, t0.Add(10*time.Second).UnixMilli(), s.Times[0])
	require.Equal(t, float64(historyLen+9), s.Bitrate[historyLen-1])
	require.Equal(t, historyLen+9, s.Viewers[historyLen-1])
}

// TestAdminReload: POST /api/v1/reload answers with Reload's result, or
// 422 with its error; channels and destinations a reload adds are served.
func TestAdminReload(t *testing.T) {
	const token = "reload-token-Qx7"
	hub, _ := newHub(t)
	fail := errors.New(`seance.yaml: channels[1].grace: "forever" is not a duration`)
	var failing atomic.Bool
	base, c, calls, logs, a := startAdminWith(t, hub, AdminConfig{
		Token: token,
		Reload: func(context.Context) (any, error) {
			if failing.Load() {
				return nil, fail
			}
			return map[string]any{"reloaded": true, "added": []string{"neu"}}, nil
		},
	})
	auth := http.Header{"Authorization": {"Bearer " + token}}

	r := do(t, c, http.MethodPost, base+"/api/v1/reload", auth)
	require.Equal(t, http.StatusOK, r.status, r.body)
	require.JSONEq(t, `{"reloaded": true, "added": ["neu"]}`, r.body)

	failing.Store(true)
	r = do(t, c, http.MethodPost, base+"/api/v1/reload", auth)
	require.Equal(t, http.StatusUnprocessableEntity, r.status, r.body)
	require.Contains(t, r.body, `"invalid_config"`)
	require.Contains(t, r.body, "channels[1].grace")

	r = do(t, c, http.MethodPost, base+"/api/v1/reload", nil)
	require.Equal(t, http.StatusUnauthorized, r.status)

	// A channel added with a destination is served at once.
	hub.Add(relay.ChannelConfig{Name: "neu", Title: "Neu"})
	(&Server{admin: a}).SetSinks(map[string][]Destination{"neu": {recordingDestination("fb", calls)}}, nil)
	r = do(t, c, http.MethodGet, base+"/api/v1/channels/neu", auth)
	require.Equal(t, http.StatusOK, r.status, r.body)
	require.Contains(t, r.body, `"fb"`)
	r = do(t, c, http.MethodPost, base+"/api/v1/channels/neu/destinations/fb/stop", auth)
	require.Equal(t, http.StatusAccepted, r.status, r.body)
	require.Eventually(t, func() bool {
		r := do(t, c, http.MethodGet, base+"/api/v1/channels/neu/history", auth)
		return r.status == http.StatusOK && strings.Contains(r.body, `"neu"`)
	}, 5*time.Second, 20*time.Millisecond)
	r = do(t, c, http.MethodGet, base+"/api/v1/channels/bourg", auth)
	require.NotContains(t, r.body, `"youtube"`, "the old sinks are replaced")

	hub.Remove("neu")
	r = do(t, c, http.MethodGet, base+"/api/v1/channels/neu", auth)
	require.Equal(t, http.StatusNotFound, r.status, r.body)
	require.NotContains(t, logs.String(), token)
}
