package web

import (
	"encoding/json"
	"net/http"
	"testing"

	"github.com/rs/zerolog"
	"github.com/stretchr/testify/require"

	"github.com/seance-relay/seance/relay"
)

func startPublic(t *testing.T, hub Channels) (string, *http.Client) {
	t.Helper()
	return startPublicConfig(t, hub, PublicConfig{})
}

func startPublicConfig(t *testing.T, hub Channels, cfg PublicConfig) (string, *http.Client) {
	t.Helper()
	cfg.Listen = "127.0.0.1:0"
	s, err := NewPublic(cfg, hub, zerolog.New(zerolog.NewTestWriter(t)))
	require.NoError(t, err)
	return run(t, s), client(t)
}

// strictCSP is the policy of every public answer but /embed/'s, which
// differs only in frame-ancestors.
const strictCSP = "default-src 'self'; media-src 'self' blob:; connect-src 'self'; img-src 'self' data:; " +
	"style-src 'self'; script-src 'self'; base-uri 'none'; form-action 'none'; object-src 'none'; frame-ancestors 'self'"

// requirePrivate checks what every public answer carries: the CSP that
// keeps pages self-contained (no inline code, no other origin, framed only
// by seance's own pages), and no cookie.
func requirePrivate(t *testing.T, r response) {
	t.Helper()
	require.Equal(t, strictCSP, r.header.Get("Content-Security-Policy"))
	requirePrivateHeaders(t, r)
}

// requirePrivateHeaders checks the headers that do not depend on the page.
func requirePrivateHeaders(t *testing.T, r response) {
	t.Helper()
	require.Equal(t, "nosniff", r.header.Get("X-Content-Type-Options"))
	require.Equal(t, "no-referrer", r.header.Get("Referrer-Policy"))
	require.Empty(t, r.header.Values("Set-Cookie"))
}

func TestPublicRoutes(t *testing.T) {
	hub, _ := newHub(t)
	base, c := startPublic(t, hub)
	for _, tc := range []struct {
		name, method, path string
		status             int
		contentType        string
		body               string // contained in the body
	}{
		{"health", http.MethodGet, "/healthz", http.StatusOK, "text/plain; charset=utf-8", "ok\n"},
		{"index", http.MethodGet, "/", http.StatusOK, "text/html; charset=utf-8", `<html lang="fr">`},
		{"watch", http.MethodGet, "/watch/bourg", http.StatusOK, "text/html; charset=utf-8", `<h1>Conseil municipal de Bourg</h1>`},
		{"watch unknown channel", http.MethodGet, "/watch/nope", http.StatusNotFound, "text/html; charset=utf-8", `<h1>Séance introuvable</h1>`},
		{"watch needs a channel", http.MethodGet, "/watch/", http.StatusNotFound, "text/plain; charset=utf-8", ""},
		{"script", http.MethodGet, "/static/player.js", http.StatusOK, "text/javascript; charset=utf-8", "RTCPeerConnection"},
		{"style", http.MethodGet, "/static/seance.css", http.StatusOK, "text/css; charset=utf-8", ":focus-visible"},
		{"unknown static file", http.MethodGet, "/static/nope.js", http.StatusNotFound, "text/plain; charset=utf-8", ""},
		{"no directory listing", http.MethodGet, "/static/", http.StatusNotFound, "text/plain; charset=utf-8", ""},
		{"idle channel", http.MethodGet, "/api/public/channels/bourg", http.StatusOK, "application/json", `"live": false`},
		{"unknown channel", http.MethodGet, "/api/public/channels/nope", http.StatusNotFound, "application/json", `"channel_not_found"`},
		{"unknown path", http.MethodGet, "/nope", http.StatusNotFound, "text/plain; charset=utf-8", ""},
		{"admin API is not public", http.MethodGet, "/api/v1/channels", http.StatusNotFound, "text/plain; charset=utf-8", ""},
		{"metrics are not public", http.MethodGet, "/metrics", http.StatusNotFound, "text/plain; charset=utf-8", ""},
		{"index needs GET", http.MethodPost, "/", http.StatusMethodNotAllowed, "text/plain; charset=utf-8", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := do(t, c, tc.method, base+tc.path, nil)
			require.Equal(t, tc.status, r.status, r.body)
			require.Equal(t, tc.contentType, r.header.Get("Content-Type"))
			require.Contains(t, r.body, tc.body)
			requirePrivate(t, r)
		})
	}
}

func TestPublicChannel(t *testing.T) {
	hub, _ := newHub(t)
	base, c := startPublic(t, hub)
	get := func(t *testing.T) PublicChannel {
		r := do(t, c, http.MethodGet, base+"/api/public/channels/bourg", nil)
		require.Equal(t, http.StatusOK, r.status)
		require.Equal(t, "*", r.header.Get("Access-Control-Allow-Origin"))
		var got map[string]any
		require.NoError(t, json.Unmarshal([]byte(r.body), &got))
		require.ElementsMatch(t, []string{"name", "title", "live", "state", "viewers"}, keys(got), "nothing more is public")
		var pc PublicChannel
		require.NoError(t, json.Unmarshal([]byte(r.body), &pc))
		return pc
	}
	require.Equal(t, PublicChannel{Name: "bourg", Title: "Conseil municipal de Bourg", Live: false, State: "idle"}, get(t))

	ch, err := hub.Channel("bourg")
	require.NoError(t, err)
	sess, err := ch.Publish(relay.PublisherInfo{Protocol: "demo", RemoteAddr: "192.0.2.1:1935"}, relay.Tracks{Video: &relay.VideoTrack{}})
	require.NoError(t, err)
	require.Equal(t, PublicChannel{Name: "bourg", Title: "Conseil municipal de Bourg", Live: true, State: "live"}, get(t))

	r := do(t, c, http.MethodGet, base+"/api/public/channels/bourg", nil)
	require.NotContains(t, r.body, "192.0.2.1", "the publisher's address is not public")

	sess.Close()
	require.Equal(t, PublicChannel{Name: "bourg", Title: "Conseil municipal de Bourg", Live: false, State: "idle"}, get(t))
}

func keys(m map[string]any) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

func TestPublicIndex(t *testing.T) {
	t.Run("lists titles", func(t *testing.T) {
		hub, _ := newHub(t)
		base, c := startPublic(t, hub)
		ch, err := hub.Channel("ville")
		require.NoError(t, err)
		sess, err := ch.Publish(relay.PublisherInfo{Protocol: "demo"}, relay.Tracks{Video: &relay.VideoTrack{}})
		require.NoError(t, err)
		defer sess.Close()

		r := do(t, c, http.MethodGet, base+"/", nil)
		require.Equal(t, http.StatusOK, r.status)
		requirePrivate(t, r)
		require.Contains(t, r.body, `<li class="channel"><a href="/watch/bourg">Conseil municipal de Bourg</a> <span class="badge">Hors ligne</span></li>`)
		require.Contains(t, r.body, `<li class="channel"><a href="/watch/ville">Conseil &lt;de&gt; Ville &amp; Cie</a> <span class="badge live">En direct</span></li>`)
		require.NotContains(t, r.body, "<de>", "titles are escaped")
		for _, external := range []string{"http://", "https://", `src="//`, `href="//`} {
			require.NotContains(t, r.body, external, "the page loads nothing from another origin")
		}
	})
	t.Run("no channels", func(t *testing.T) {
		hub := relay.NewHub(nil, zerolog.New(zerolog.NewTestWriter(t)), nil)
		base, c := startPublic(t, hub)
		r := do(t, c, http.MethodGet, base+"/", nil)
		require.Equal(t, http.StatusOK, r.status)
		require.Contains(t, r.body, "Aucune séance n&#39;est configurée.")
	})
}
