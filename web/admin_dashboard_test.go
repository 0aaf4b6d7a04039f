package web

import (
	"encoding/json"
	"html"
	"io"
	"net/http"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/seance-relay/seance/relay"
)

const dashboardCSP = "default-src 'self'; connect-src 'self'%s; media-src 'self' blob:; img-src 'self' data:; " +
	"style-src 'self'; script-src 'self'; base-uri 'none'; form-action 'none'; object-src 'none'; frame-ancestors 'none'"

func TestDashboardPage(t *testing.T) {
	for _, tc := range []struct {
		name, publicURL, host string
		token                 bool
		wantURL               string // data-public-url
	}{
		{"base URL", "https://live.example.fr/", "127.0.0.1:9090", true, "https://live.example.fr"},
		{"listener address", "http://127.0.0.1:8080", "127.0.0.1:9090", true, "http://127.0.0.1:8080"},
		{"every interface: the page's host", "http://:8080", "relay.lan:9090", true, "http://relay.lan:8080"},
		{"every interface, IPv6 host", "http://:8080", "[2001:db8::1]:9090", false, "http://[2001:db8::1]:8080"},
		{"a Host header cannot inject into the CSP", "http://:8080", "x;script-src:*", true, "http://localhost:8080"},
		{"no public URL: no previews", "", "127.0.0.1:9090", false, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			hub, _ := newHub(t)
			cfg := AdminConfig{PublicURL: tc.publicURL, Hosts: []string{"relay.lan", "x;script-src"}}
			if tc.token {
				cfg.Token = adminToken
			}
			base, c, _, _, _ := startAdminWith(t, hub, cfg)
			req, err := http.NewRequest(http.MethodGet, base+"/dashboard", nil)
			require.NoError(t, err)
			req.Host = tc.host
			res, err := c.Do(req)
			require.NoError(t, err)
			defer res.Body.Close()
			require.Equal(t, http.StatusOK, res.StatusCode)
			b, err := io.ReadAll(res.Body)
			require.NoError(t, err)
			page := string(b)

			require.Equal(t, "text/html; charset=utf-8", res.Header.Get("Content-Type"))
			require.Empty(t, res.Header.Values("Set-Cookie"))
			require.Equal(t, "nosniff", res.Header.Get("X-Content-Type-Options"))
			require.Equal(t, "no-referrer", res.Header.Get("Referrer-Policy"))
			origin := ""
			if tc.wantURL != "" {
				origin = " " + tc.wantURL
			}
			require.Equal(t, strings.Replace(dashboardCSP, "%s", origin, 1), res.Header.Get("Content-Security-Policy"))
			require.Contains(t, page, `data-public-url="`+tc.wantURL+`"`)
			if tc.token {
				require.Contains(t, page, `data-auth="required"`)
			} else {
				require.Contains(t, page, `data-auth="none"`)
			}
			require.Contains(t, page, `<html lang="fr">`)
			require.Regexp(t, regexp.MustCompile(`<script src="/dashboard/static/dashboard\.js\?v=[0-9a-f]{16}" defer></script>`), page)
			require.Regexp(t, regexp.MustCompile(`<link rel="stylesheet" href="/dashboard/static/dashboard\.css\?v=[0-9a-f]{16}">`), page)
			require.Contains(t, page, `<label for="token">Jeton d'administration</label>`)
			// The page holds no data: it is served without the token.
			require.NotContains(t, page, "bourg")
			require.NotContains(t, page, "Conseil")
			require.NotContains(t, page, adminToken)
			require.NotContains(t, page, "style=", "inline styles break the CSP")
			require.NotRegexp(t, regexp.MustCompile(`<script>|<script [^>]*>[^<]`), strings.Replace(page, `<script type="application/json" id="warning-texts">`, "", 1), "no inline script")
		})
	}
}

// TestDashboardWarningTexts: every health warning has one sentence in plain
// French with its fix, and the page carries them.
func TestDashboardWarningTexts(t *testing.T) {
	require.Len(t, warningTexts, len(relay.Warnings))
	for _, w := range relay.Warnings {
		text, ok := warningTexts[w]
		require.True(t, ok, "warning %s has no French text", w)
		require.True(t, strings.HasSuffix(text, "."), "%s: one sentence", w)
		require.Contains(t, text, "—", "%s: says the fix after the dash", w)
	}
	require.True(t, strings.HasPrefix(strings.Replace(warningTexts[relay.WarnKeyframeInterval], "{keyint}", "8", 1),
		"L'intervalle entre images clés est de 8 s : YouTube exige 4 s au plus — réglez -g 60 dans l'encodeur"))

	hub, _ := newHub(t)
	base, c, _, _, _ := startAdminWith(t, hub, AdminConfig{Token: adminToken})
	r := do(t, c, http.MethodGet, base+"/dashboard", nil)
	m := regexp.MustCompile(`(?s)<script type="application/json" id="warning-texts">(.*?)</script>`).FindStringSubmatch(r.body)
	require.NotNil(t, m, r.body)
	var got map[string]string
	require.NoError(t, json.Unmarshal([]byte(html.UnescapeString(m[1])), &got), m[1])
	require.Equal(t, warningTexts, got)
}

func TestDashboardStatic(t *testing.T) {
	hub, _ := newHub(t)
	base, c, _, _, _ := startAdminWith(t, hub, AdminConfig{Token: adminToken})
	page := do(t, c, http.MethodGet, base+"/dashboard", nil).body
	for _, tc := range []struct{ file, contentType, contains string }{
		{"dashboard.js", "text/javascript; charset=utf-8", "Authorization"},
		{"dashboard.css", "text/css; charset=utf-8", ":focus-visible"},
		{"icon.svg", "image/svg+xml", "<svg"},
	} {
		t.Run(tc.file, func(t *testing.T) {
			url := regexp.MustCompile(`/dashboard/static/` + regexp.QuoteMeta(tc.file) + `\?v=[0-9a-f]{16}`).FindString(page)
			require.NotEmpty(t, url, "the page links %s with its hash", tc.file)
			r := do(t, c, http.MethodGet, base+url, nil)
			require.Equal(t, http.StatusOK, r.status)
			require.Equal(t, tc.contentType, r.header.Get("Content-Type"))
			require.Equal(t, "public, max-age=31536000, immutable", r.header.Get("Cache-Control"))
			require.Contains(t, r.body, tc.contains)
			r = do(t, c, http.MethodGet, base+"/dashboard/static/"+tc.file, nil)
			require.Equal(t, "no-cache", r.header.Get("Cache-Control"))
		})
	}
	t.Run("the script never puts the token in a URL", func(t *testing.T) {
		js := do(t, c, http.MethodGet, base+"/dashboard/static/dashboard.js", nil).body
		require.Contains(t, js, "sessionStorage")
		require.Contains(t, js, "'Bearer ' + token")
		require.NotContains(t, js, "EventSource(")
		require.NotRegexp(t, regexp.MustCompile(`[?&]token=`), js)
		require.NotContains(t, js, "innerHTML", "text only: channel titles and errors are not markup")
		require.NotContains(t, js, "localStorage")
	})
}
