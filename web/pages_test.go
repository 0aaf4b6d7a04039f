package web

import (
	"net/http"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestPublicPagesCSP(t *testing.T) {
	for _, tc := range []struct {
		name           string
		frameAncestors []string
		path           string
		want           string // frame-ancestors sources
	}{
		{"watch page is framed by seance only", []string{"*"}, "/watch/bourg", "'self'"},
		{"index is framed by seance only", []string{"*"}, "/", "'self'"},
		{"embed, any site (the config's default)", []string{"*"}, "/embed/bourg", "*"},
		{"embed, listed sites", []string{"https://www.bourg.fr", "'self'"}, "/embed/bourg", "https://www.bourg.fr 'self'"},
		{"embed, none configured", nil, "/embed/bourg", "'none'"},
		{"embed 404 can show in the frame", []string{"https://www.bourg.fr"}, "/embed/nope", "https://www.bourg.fr"},
		{"watch ignores the embed setting", []string{"https://www.bourg.fr"}, "/watch/bourg", "'self'"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			hub, _ := newHub(t)
			base, c := startPublicConfig(t, hub, PublicConfig{FrameAncestors: tc.frameAncestors})
			r := do(t, c, http.MethodGet, base+tc.path, nil)
			requirePrivateHeaders(t, r)
			want := strings.TrimSuffix(strictCSP, "'self'") + tc.want
			require.Equal(t, want, r.header.Get("Content-Security-Policy"))
			for _, loose := range []string{"unsafe-inline", "unsafe-eval", "http:", "https: ", "data: ;"} {
				require.NotContains(t, strings.TrimSuffix(r.header.Get("Content-Security-Policy"), tc.want), loose)
			}
		})
	}
}

func TestNegotiate(t *testing.T) {
	for _, tc := range []struct {
		header, want string
	}{
		{"", "fr"},
		{"fr-FR,fr;q=0.9,en-US;q=0.8,en;q=0.7", "fr"},
		{"en-US,en;q=0.9,fr;q=0.8", "en"},
		{"en-US", "en"},
		{"en", "en"},
		{"EN-gb", "en"},
		{"de-DE,de;q=0.9", "fr"},           // neither: French, the default
		{"de-DE,en;q=0.5", "en"},           // English is the one asked for
		{"fr;q=0.4,en;q=0.6", "en"},        // by q, not by order
		{"en;q=0.4,fr;q=0.6", "fr"},        //
		{"en, fr", "en"},                   // a tie goes to the first listed
		{"fr, en", "fr"},                   //
		{"en;q=0", "fr"},                   // q=0: not acceptable
		{"en;q=abc", "fr"},                 // a broken q counts as 0
		{"*", "fr"},                        //
		{"en-US;q=0.8, fr-CA;q=0.8", "en"}, //
		{" en-US ; q = 0.9 , fr ; q=0.8 ", "en"},
	} {
		t.Run(tc.header, func(t *testing.T) {
			require.Equal(t, tc.want, negotiate(tc.header).Lang)
		})
	}
}

// TestTextsComplete catches a string added to one language only.
func TestTextsComplete(t *testing.T) {
	for _, tx := range []texts{french, english} {
		for name, v := range map[string]string{
			"Site": tx.Site, "SkipLink": tx.SkipLink, "IndexIntro": tx.IndexIntro, "NoChannels": tx.NoChannels,
			"Live": tx.Live, "Offline": tx.Offline, "Watch": tx.Watch, "Player": tx.Player, "Video": tx.Video,
			"Loading": tx.Loading, "Unmute": tx.Unmute, "Mute": tx.Mute, "Volume": tx.Volume,
			"Fullscreen": tx.Fullscreen, "Captions": tx.Captions, "NoScript": tx.NoScript, "Privacy": tx.Privacy,
			"NotFound": tx.NotFound, "NotFoundMsg": tx.NotFoundMsg, "BackToIndex": tx.BackToIndex,
		} {
			require.NotEmpty(t, v, "%s in %s", name, tx.Lang)
		}
	}
}

func TestPublicPagesLanguage(t *testing.T) {
	hub, _ := newHub(t)
	base, c := startPublic(t, hub)
	for _, tc := range []struct {
		name, path, accept string
		want               []string
	}{
		{"watch, no preference", "/watch/bourg", "", []string{`<html lang="fr">`, ">Activer le son<", `aria-label="Sous-titres"`, ">Plein écran<"}},
		{"watch, French", "/watch/bourg", "fr-FR,fr;q=0.9,en;q=0.8", []string{`<html lang="fr">`, ">Activer le son<"}},
		{"watch, English", "/watch/bourg", "en-US,en;q=0.9", []string{`<html lang="en">`, ">Turn on sound<", `aria-label="Captions"`, ">Full screen<"}},
		{"embed, English", "/embed/bourg", "en-GB", []string{`<html lang="en">`, ">Turn on sound<"}},
		{"index, English", "/", "en", []string{`<html lang="en">`, "<h1>Live public sessions</h1>", ">Offline<"}},
		{"404, English", "/watch/nope", "en", []string{`<html lang="en">`, "<h1>Session not found</h1>"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := do(t, c, http.MethodGet, base+tc.path, http.Header{"Accept-Language": {tc.accept}})
			for _, w := range tc.want {
				require.Contains(t, r.body, w)
			}
			require.Equal(t, "Accept-Language", r.header.Get("Vary"), "caches keep one copy per language")
			require.Equal(t, "no-cache", r.header.Get("Cache-Control"))
		})
	}
}

func TestPublicWatchPage(t *testing.T) {
	hub, _ := newHub(t)
	base, c := startPublic(t, hub)
	t.Run("watch", func(t *testing.T) {
		r := do(t, c, http.MethodGet, base+"/watch/ville", nil)
		require.Equal(t, http.StatusOK, r.status)
		requirePrivate(t, r)
		require.Contains(t, r.body, "<title>Conseil &lt;de&gt; Ville &amp; Cie — Séances publiques en direct</title>")
		require.Contains(t, r.body, "<h1>Conseil &lt;de&gt; Ville &amp; Cie</h1>")
		require.NotContains(t, r.body, "<de>", "titles are escaped")
		require.Contains(t, r.body, `data-channel="ville"`)
		require.Contains(t, r.body, `<video class="video" muted autoplay playsinline`)
		require.Contains(t, r.body, `role="status" aria-live="polite"`)
		require.Contains(t, r.body, `<header class="site">`)
		require.Regexp(t, `<script src="/static/player\.js\?v=[0-9a-f]{16}" defer></script>`, r.body)
		require.Regexp(t, `<link rel="stylesheet" href="/static/seance\.css\?v=[0-9a-f]{16}">`, r.body)
	})
	t.Run("embed has no page chrome", func(t *testing.T) {
		r := do(t, c, http.MethodGet, base+"/embed/ville", nil)
		require.Equal(t, http.StatusOK, r.status)
		require.Contains(t, r.body, `data-channel="ville"`)
		require.Contains(t, r.body, `<body class="embed">`)
		require.NotContains(t, r.body, "<header")
		require.NotContains(t, r.body, "<footer")
	})
	t.Run("inline code is absent", func(t *testing.T) {
		for _, path := range []string{"/", "/watch/bourg", "/embed/bourg", "/watch/nope"} {
			r := do(t, c, http.MethodGet, base+path, nil)
			require.NotRegexp(t, `<script(?:\s[^>]*)?>[^<]`, r.body, "%s: inline script", path)
			require.NotContains(t, r.body, "<style", "%s: inline style", path)
			require.NotContains(t, r.body, "style=", "%s: style attribute", path)
			require.NotRegexp(t, `\son[a-z]+=`, r.body, "%s: event handler attribute", path)
		}
	})
}

func TestPublicStaticFiles(t *testing.T) {
	hub, _ := newHub(t)
	base, c := startPublic(t, hub)
	page := do(t, c, http.MethodGet, base+"/watch/bourg", nil)
	links := regexp.MustCompile(`(?:src|href)="(/static/[^"]+)"`).FindAllStringSubmatch(page.body, -1)
	require.Len(t, links, 3, "icon, style, script")
	for _, l := range links {
		url := l[1]
		t.Run(url, func(t *testing.T) {
			r := do(t, c, http.MethodGet, base+url, nil)
			require.Equal(t, http.StatusOK, r.status)
			requirePrivate(t, r)
			require.Equal(t, "public, max-age=31536000, immutable", r.header.Get("Cache-Control"), "versioned URLs are cached for good")
			etag := r.header.Get("ETag")
			require.Regexp(t, `^"[0-9a-f]{16}"$`, etag)
			require.Contains(t, url, "?v="+strings.Trim(etag, `"`), "the version is the content's hash")

			plain := do(t, c, http.MethodGet, base+strings.Split(url, "?")[0], nil)
			require.Equal(t, r.body, plain.body)
			require.Equal(t, "no-cache", plain.header.Get("Cache-Control"), "other URLs revalidate")

			again := do(t, c, http.MethodGet, base+url, http.Header{"If-None-Match": {etag}})
			require.Equal(t, http.StatusNotModified, again.status)
			require.Empty(t, again.body)
		})
	}
}

// otherOrigin finds what would make a browser contact another origin: an
// absolute http(s) URL, or a protocol-relative one ("//host/…") in an
// attribute, a CSS url() or @import, or a JS string.
var otherOrigin = regexp.MustCompile(`(?i)https?://|(?:src|href|action|srcset|poster|data)\s*=\s*["']?\s*//|url\(\s*["']?\s*//|@import\s+["']?\s*//|["'` + "`" + `]//`)

// svgNamespace is an XML namespace name, which no browser fetches.
const svgNamespace = `xmlns="http://www.w3.org/2000/svg"`

func TestPublicPagesSelfContained(t *testing.T) {
	hub, _ := newHub(t)
	base, c := startPublicConfig(t, hub, PublicConfig{FrameAncestors: []string{"https://www.bourg.fr"}})
	served := map[string]string{}
	for _, path := range []string{"/", "/watch/bourg", "/embed/bourg", "/watch/nope", "/embed/nope"} {
		r := do(t, c, http.MethodGet, base+path, nil)
		served[path] = r.body
		for _, l := range regexp.MustCompile(`(?:src|href)="(/static/[^"]+)"`).FindAllStringSubmatch(r.body, -1) {
			served[strings.Split(l[1], "?")[0]] = do(t, c, http.MethodGet, base+l[1], nil).body
		}
	}
	for _, f := range []string{"/static/player.js", "/static/seance.css", "/static/icon.svg"} {
		_, ok := served[f]
		require.True(t, ok, "the scan covers %s", f)
	}
	for path, body := range served {
		t.Run(path, func(t *testing.T) {
			body = strings.ReplaceAll(body, svgNamespace, "")
			require.Empty(t, otherOrigin.FindAllString(body, -1), "%s refers to another origin", path)
			require.NotContains(t, strings.ToLower(body), "cookie=", "%s sets cookies", path)
			require.NotContains(t, body, "localStorage", "%s stores data in the browser", path)
		})
	}
	// The scanner itself finds what it must.
	for _, bad := range []string{
		`<script src="https://cdn.example/x.js">`, `<link href="//fonts.example/css">`, `@import "//x.example/a.css";`,
		`background: url(//x.example/a.png)`, `fetch("//stats.example/hit")`, `<img src="http://x.example/p.gif">`,
	} {
		require.NotEmpty(t, otherOrigin.FindAllString(bad, -1), bad)
	}
}
