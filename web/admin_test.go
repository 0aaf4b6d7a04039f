package web

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/rs/zerolog"
	"github.com/stretchr/testify/require"

	"github.com/seance-relay/seance/configs"
	"github.com/seance-relay/seance/relay"
)

// adminRoutes is every admin route, with the status a good request gets.
var adminRoutes = []struct {
	method, path string
	status       int
}{
	{http.MethodGet, "/metrics", http.StatusOK},
	{http.MethodGet, "/healthz", http.StatusOK},
	{http.MethodGet, "/api/v1/channels", http.StatusOK},
	{http.MethodGet, "/api/v1/channels/bourg", http.StatusOK},
	// Start is asynchronous: the request is accepted, not done.
	{http.MethodPost, "/api/v1/channels/bourg/destinations/youtube/start", http.StatusAccepted},
	// Unknown paths are behind the token too: no probing without it.
	{http.MethodGet, "/api/v1/nothing-here", http.StatusNotFound},
}

// startAdmin serves the admin API over hub with one recording destination
// ("youtube") on channel bourg.
func startAdmin(t *testing.T, token configs.Secret) (string, *http.Client, *calls, *logBuffer) {
	t.Helper()
	hub, reg := newHub(t)
	c := &calls{}
	logs := &logBuffer{}
	s, err := NewAdmin(AdminConfig{
		Listen:   "127.0.0.1:0",
		Token:    token,
		Gatherer: reg,
		Destinations: map[string][]Destination{
			"bourg": {recordingDestination("youtube", c)},
		},
	}, hub, zerolog.New(zerolog.MultiLevelWriter(zerolog.NewTestWriter(t), logs)))
	require.NoError(t, err)
	return run(t, s), client(t), c, logs
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
				r := do(t, c, route.method, base+route.path, tc.header)
				require.Empty(t, r.header.Values("Set-Cookie"), route.path)
				require.NotContains(t, r.body, adminToken, route.path)
				if !tc.ok {
					requireAPIError(t, r, http.StatusUnauthorized, "unauthorized")
					require.Equal(t, `Bearer realm="seance admin"`, r.header.Get("WWW-Authenticate"), route.path)
					continue
				}
				require.Equal(t, route.status, r.status, "%s %s: %s", route.method, route.path, r.body)
				require.Empty(t, r.header.Get("WWW-Authenticate"), route.path)
			}
			if tc.ok {
				require.Equal(t, []string{"youtube start"}, calls.get())
			} else {
				require.Empty(t, calls.get(), "a refused request reached a destination")
			}
			require.NotContains(t, logs.String(), adminToken)
		})
	}
}

func TestAdminWithoutToken(t *testing.T) {
	base, c, calls, _ := startAdmin(t, "")
	for _, route := range adminRoutes {
		t.Run(route.method+" "+route.path, func(t *testing.T) {
			r := do(t, c, route.method, base+route.path, nil)
			require.Equal(t, route.status, r.status, r.body)
			require.Empty(t, r.header.Get("WWW-Authenticate"))
			require.Empty(t, r.header.Values("Set-Cookie"))
		})
	}
	require.Equal(t, []string{"youtube start"}, calls.get())
}

func TestAdminErrors(t *testing.T) {
	base, c, calls, _ := startAdmin(t, adminToken)
	auth := bearer("Bearer " + adminToken)
	for _, tc := range []struct {
		name, method, path string
		status             int
		code               string
	}{
		{"unknown channel", http.MethodGet, "/api/v1/channels/nope", http.StatusNotFound, "channel_not_found"},
		{"steer on unknown channel", http.MethodPost, "/api/v1/channels/nope/destinations/youtube/start", http.StatusNotFound, "channel_not_found"},
		{"unknown destination", http.MethodPost, "/api/v1/channels/bourg/destinations/nope/start", http.StatusNotFound, "destination_not_found"},
		{"destination of another channel", http.MethodPost, "/api/v1/channels/ville/destinations/youtube/start", http.StatusNotFound, "destination_not_found"},
		{"unknown action", http.MethodPost, "/api/v1/channels/bourg/destinations/youtube/explode", http.StatusNotFound, "unknown_action"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := do(t, c, tc.method, base+tc.path, auth)
			requireAPIError(t, r, tc.status, tc.code)
		})
	}
	require.Empty(t, calls.get(), "an error reached a destination")

	t.Run("steering needs POST", func(t *testing.T) {
		r := do(t, c, http.MethodGet, base+"/api/v1/channels/bourg/destinations/youtube/start", auth)
		require.Equal(t, http.StatusMethodNotAllowed, r.status)
		require.Empty(t, calls.get())
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

func TestAdminChannels(t *testing.T) {
	base, c, _, _ := startAdmin(t, adminToken)
	auth := bearer("Bearer " + adminToken)

	r := do(t, c, http.MethodGet, base+"/api/v1/channels", auth)
	require.Equal(t, http.StatusOK, r.status)
	require.Equal(t, "no-store", r.header.Get("Cache-Control"))
	var list struct {
		Channels []struct {
			Name         string           `json:"name"`
			Title        string           `json:"title"`
			Health       map[string]any   `json:"health"`
			Destinations []map[string]any `json:"destinations"`
		} `json:"channels"`
	}
	require.NoError(t, json.Unmarshal([]byte(r.body), &list), r.body)
	require.Len(t, list.Channels, 2)
	require.Equal(t, "bourg", list.Channels[0].Name)
	require.Equal(t, "Conseil municipal de Bourg", list.Channels[0].Title)
	require.Equal(t, "idle", list.Channels[0].Health["state"])
	require.Len(t, list.Channels[0].Destinations, 1)
	require.Equal(t, "youtube", list.Channels[0].Destinations[0]["name"])
	require.Equal(t, "ville", list.Channels[1].Name)
	require.NotNil(t, list.Channels[1].Destinations, "no destinations is [], not null")
	require.Empty(t, list.Channels[1].Destinations)

	r = do(t, c, http.MethodGet, base+"/api/v1/channels/ville", auth)
	require.Equal(t, http.StatusOK, r.status)
	require.Contains(t, r.body, `"destinations": []`)
	var one struct {
		Title string `json:"title"`
	}
	require.NoError(t, json.Unmarshal([]byte(r.body), &one))
	require.Equal(t, "Conseil <de> Ville & Cie", one.Title)

	r = do(t, c, http.MethodGet, base+"/metrics", auth)
	require.Equal(t, http.StatusOK, r.status)
	require.Contains(t, r.body, `seance_channel_live{channel="bourg"} 0`)
	require.NotContains(t, r.body, adminToken)
}

// TestAdminShowsLiveChannel publishes through the relay: the admin API
// sees the channel live.
func TestAdminShowsLiveChannel(t *testing.T) {
	hub, reg := newHub(t)
	s, err := NewAdmin(AdminConfig{Listen: "127.0.0.1:0", Gatherer: reg}, hub, zerolog.New(zerolog.NewTestWriter(t)))
	require.NoError(t, err)
	base, c := run(t, s), client(t)
	ch, err := hub.Channel("bourg")
	require.NoError(t, err)
	sess, err := ch.Publish(relay.PublisherInfo{Protocol: "demo", RemoteAddr: "192.0.2.1:1935"}, relay.Tracks{Video: &relay.VideoTrack{}})
	require.NoError(t, err)
	defer sess.Close()

	r := do(t, c, http.MethodGet, base+"/api/v1/channels/bourg", nil)
	require.Equal(t, http.StatusOK, r.status)
	var st struct {
		Health struct {
			State    string `json:"state"`
			Protocol string `json:"protocol"`
		} `json:"health"`
	}
	require.NoError(t, json.Unmarshal([]byte(r.body), &st), r.body)
	require.Equal(t, "live", st.Health.State)
	require.Equal(t, "demo", st.Health.Protocol)
	r = do(t, c, http.MethodGet, base+"/metrics", nil)
	require.True(t, strings.Contains(r.body, `seance_channel_live{channel="bourg"} 1`), r.body)
}
