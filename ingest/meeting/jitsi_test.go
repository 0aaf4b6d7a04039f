package meeting

import (
	"encoding/json"
	"net/url"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// parseJitsiFragment decodes a fragment the way jitsi-meet's
// parseURLParams does: split on '&', then on '=' (keeping the second
// part only), decodeURIComponent, JSON.parse.
func parseJitsiFragment(t testing.TB, fragment string) map[string]any {
	t.Helper()
	out := map[string]any{}
	for _, part := range strings.Split(fragment, "&") {
		kv := strings.Split(part, "=")
		if kv[0] == "" {
			continue
		}
		require.Len(t, kv, 2, "part %q: a value holding '=' would be cut", part)
		raw, err := url.PathUnescape(kv[1])
		require.NoError(t, err, part)
		for _, q := range []string{"\u2018", "\u2019"} {
			raw = strings.ReplaceAll(raw, q, "'")
		}
		for _, q := range []string{"\u201c", "\u201d"} {
			raw = strings.ReplaceAll(raw, q, `"`)
		}
		var v any
		require.NoError(t, json.Unmarshal([]byte(raw), &v), "value of %s: %s", kv[0], raw)
		out[kv[0]] = v
	}
	return out
}

// jitsiWhitelist is an excerpt of jitsi-meet's
// react/features/base/config/configWhitelist.ts and
// interfaceConfigWhitelist.ts: every key seance sends must be in it, or the
// page drops it.
var jitsiWhitelist = []string{
	"config.analytics.disabled", "config.autoKnockLobby", "config.deeplinking.disabled", "config.disableDeepLinking",
	"config.disableInviteFunctions", "config.disableSelfView", "config.disableTileView", "config.filmstrip",
	"config.lobby", "config.notifications", "config.prejoinConfig.enabled", "config.requireDisplayName",
	"config.startLowBandwidthMode", "config.startSilent", "config.startWithAudioMuted", "config.startWithVideoMuted",
	"config.subject", "config.tileView", "config.toolbarButtons",
	"interfaceConfig.DISABLE_JOIN_LEAVE_NOTIFICATIONS", "interfaceConfig.SHOW_CHROME_EXTENSION_BANNER",
	"interfaceConfig.TOOLBAR_BUTTONS", "userInfo.displayName", "jwt",
}

func whitelisted(key string) bool {
	for _, w := range jitsiWhitelist {
		if key == w || strings.HasPrefix(key, w+".") {
			return true
		}
	}
	return false
}

func TestJitsiURL(t *testing.T) {
	common := map[string]any{
		"config.deeplinking.disabled":                      true,
		"config.disableDeepLinking":                        true,
		"config.prejoinConfig.enabled":                     false,
		"config.startWithAudioMuted":                       true,
		"config.startWithVideoMuted":                       true,
		"config.startLowBandwidthMode":                     false,
		"config.startSilent":                               false,
		"config.lobby.autoKnock":                           true,
		"config.autoKnockLobby":                            true,
		"config.toolbarButtons":                            []any{},
		"config.disableSelfView":                           true,
		"interfaceConfig.TOOLBAR_BUTTONS":                  []any{},
		"interfaceConfig.DISABLE_JOIN_LEAVE_NOTIFICATIONS": true,
	}
	speaker := map[string]any{"config.tileView.disabled": true, "config.filmstrip.disabled": true}
	tiles := map[string]any{"config.tileView.disabled": false, "config.disableTileView": false, "config.filmstrip.disabled": false}
	for _, tc := range []struct {
		name, url, jwt, displayName, layout string
		wantBase                            string // scheme, host, path and query
		wantParams                          map[string]any
		wantLast                            string
	}{
		{
			name: "plain room", url: "https://visio.example.fr/ConseilBourg", displayName: "Diffusion publique", layout: "speaker",
			wantBase:   "https://visio.example.fr/ConseilBourg",
			wantParams: speaker, wantLast: "config.filmstrip.disabled=true",
		},
		{
			name: "tiles", url: "https://visio.example.fr/ConseilBourg", displayName: "Diffusion publique", layout: "tiles",
			wantBase:   "https://visio.example.fr/ConseilBourg",
			wantParams: tiles, wantLast: "config.filmstrip.disabled=false",
		},
		{
			name: "jwt in the fragment, JSON-quoted", url: "https://meet.example.fr/tenant/Conseil", jwt: "eyJhbGciOi.eyJjb250ZXh0.sig-_",
			displayName: "Diffusion publique", layout: "speaker",
			wantBase:   "https://meet.example.fr/tenant/Conseil",
			wantParams: map[string]any{"jwt": "eyJhbGciOi.eyJjb250ZXh0.sig-_"}, wantLast: "jwt=%22eyJhbGciOi.eyJjb250ZXh0.sig-_%22",
		},
		{
			name: "a jwt in the URL's query is dropped, other query kept", url: "https://meet.example.fr/Conseil?lang=fr&jwt=old#jwt=%22older%22",
			jwt: "new.token.x", displayName: "Diffusion publique", layout: "speaker",
			wantBase:   "https://meet.example.fr/Conseil?lang=fr",
			wantParams: map[string]any{"jwt": "new.token.x"}, wantLast: "jwt=%22new.token.x%22",
		},
		{
			name: "escaping", url: "https://visio.example.fr/Conseil%20de%20l%27%C3%A9t%C3%A9",
			displayName: `Mairie d'Été & « Conseil » = "1" “citation” 50%`, layout: "speaker",
			wantBase:   "https://visio.example.fr/Conseil%20de%20l%27%C3%A9t%C3%A9",
			wantParams: map[string]any{"userInfo.displayName": `Mairie d'Été & « Conseil » = "1" “citation” 50%`},
			wantLast:   "config.filmstrip.disabled=true",
		},
		{
			name:        "the URL's overrides win over the defaults, not over muting, the lobby or the layout",
			url:         "https://visio.example.fr/Conseil#config.filmstrip.disabled=true&config.startWithAudioMuted=false&config.lobby.autoKnock=false&config.disableSelfView=false&userInfo.displayName=%22Moi%22&config.subject=%22S%C3%A9ance%22",
			displayName: "Diffusion publique", layout: "tiles",
			wantBase: "https://visio.example.fr/Conseil",
			wantParams: map[string]any{
				"config.filmstrip.disabled":  false,
				"config.startWithAudioMuted": true,
				"config.lobby.autoKnock":     true,
				"config.disableSelfView":     false,
				"userInfo.displayName":       "Diffusion publique",
				"config.subject":             "Séance",
			},
			wantLast: "config.filmstrip.disabled=false",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := jitsiURL(tc.url, tc.jwt, tc.displayName, tc.layout)
			require.NoError(t, err)
			base, fragment, ok := strings.Cut(got, "#")
			require.True(t, ok)
			require.Equal(t, tc.wantBase, base)
			require.NotContains(t, base, "jwt", "never in the query: it reaches the access log")
			params := parseJitsiFragment(t, fragment)
			want := map[string]any{}
			for k, v := range common {
				want[k] = v
			}
			want["userInfo.displayName"] = tc.displayName
			for k, v := range tc.wantParams {
				want[k] = v
			}
			for k, v := range want {
				require.Equal(t, v, params[k], k)
			}
			if tc.layout == "tiles" {
				require.Equal(t, false, params["config.filmstrip.disabled"], "never filmstrip.disabled with tiles")
			}
			for k := range params {
				require.True(t, whitelisted(k), "%s is not in jitsi-meet's whitelists: the page drops it", k)
			}
			for _, gone := range []string{"config.prejoinPageEnabled", "config.startAudioOnly", "interfaceConfig.filmStripOnly"} {
				require.NotContains(t, params, gone, "no longer read")
			}
			// Later duplicates win in jitsi-meet: the forced ones come last.
			require.True(t, strings.HasSuffix(fragment, tc.wantLast), fragment)
		})
	}
	for _, bad := range []string{"", "visio.example.fr/Conseil", "https://visio.example.fr/", "ftp://h/room", "https://:443/x", "https://h/r%zz"} {
		_, err := jitsiURL(bad, "", "x", "speaker")
		require.Error(t, err, bad)
		if bad != "" {
			require.NotContains(t, err.Error(), bad)
		}
	}
}

func FuzzJitsiURL(f *testing.F) {
	f.Add("https://visio.example.fr/ConseilBourg", "", "Diffusion publique")
	f.Add("https://meet.example.fr/t/Conseil?jwt=a#config.x=1&y", "eyJ.a.b", "Mairie d'Été & « = »")
	f.Add("http://h/r#=&&=", "", "“x”")
	f.Fuzz(func(t *testing.T, meetingURL, jwt, name string) {
		got, err := jitsiURL(meetingURL, jwt, name, "tiles")
		if err != nil {
			return
		}
		u, err := url.Parse(got)
		require.NoError(t, err)
		require.NotEmpty(t, u.Host)
		if jwt != "" {
			require.False(t, u.Query().Has("jwt"), "the JWT is never in the query")
		}
		_, fragment, _ := strings.Cut(got, "#")
		seen := map[string]string{}
		for _, part := range strings.Split(fragment, "&") {
			kv := strings.Split(part, "=")
			if len(kv) == 2 {
				seen[kv[0]] = kv[1]
			}
		}
		// Whatever the URL held, the last word on muting is seance's.
		require.Equal(t, "true", seen["config.startWithAudioMuted"])
		require.Equal(t, "true", seen["config.startWithVideoMuted"])
		require.Equal(t, "false", seen["config.filmstrip.disabled"], "never filmstrip.disabled with tiles")
		if jwt != "" && strings.ToValidUTF8(jwt, "") == jwt {
			raw, err := url.PathUnescape(seen["jwt"])
			require.NoError(t, err)
			var v string
			require.NoError(t, json.Unmarshal([]byte(raw), &v))
			require.Equal(t, jwt, v)
		}
		if strings.ToValidUTF8(name, "") == name {
			raw, err := url.PathUnescape(seen["userInfo.displayName"])
			require.NoError(t, err)
			var v string
			require.NoError(t, json.Unmarshal([]byte(raw), &v))
			require.Equal(t, name, v)
		}
	})
}
