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

func TestJitsiURL(t *testing.T) {
	layout := map[string]any{
		"config.disableDeepLinking":                        true,
		"config.prejoinConfig.enabled":                     false,
		"config.prejoinPageEnabled":                        false,
		"config.startWithAudioMuted":                       true,
		"config.startWithVideoMuted":                       true,
		"config.startAudioOnly":                            false,
		"config.startSilent":                               false,
		"config.toolbarButtons":                            []any{},
		"config.filmstrip.disabled":                        true,
		"interfaceConfig.TOOLBAR_BUTTONS":                  []any{},
		"interfaceConfig.filmStripOnly":                    false,
		"interfaceConfig.DISABLE_JOIN_LEAVE_NOTIFICATIONS": true,
	}
	for _, tc := range []struct {
		name, url, jwt, displayName string
		wantBase                    string // scheme, host, path and query
		wantParams                  map[string]any
	}{
		{
			name: "plain room", url: "https://visio.example.fr/ConseilBourg", displayName: "Diffusion publique",
			wantBase:   "https://visio.example.fr/ConseilBourg",
			wantParams: map[string]any{"userInfo.displayName": "Diffusion publique"},
		},
		{
			name: "jwt", url: "https://meet.example.fr/tenant/Conseil", jwt: "eyJhbGciOi.eyJjb250ZXh0.sig-_",
			displayName: "Diffusion publique",
			wantBase:    "https://meet.example.fr/tenant/Conseil?jwt=eyJhbGciOi.eyJjb250ZXh0.sig-_",
		},
		{
			name: "jwt replaces one in the URL, other query kept", url: "https://meet.example.fr/Conseil?lang=fr&jwt=old",
			jwt: "new.token.x", displayName: "Diffusion publique",
			wantBase: "https://meet.example.fr/Conseil?jwt=new.token.x&lang=fr",
		},
		{
			name: "escaping", url: "https://visio.example.fr/Conseil%20de%20l%27%C3%A9t%C3%A9",
			displayName: `Mairie d'Été & « Conseil » = "1" “citation” 50%`,
			wantBase:    "https://visio.example.fr/Conseil%20de%20l%27%C3%A9t%C3%A9",
			wantParams:  map[string]any{"userInfo.displayName": `Mairie d'Été & « Conseil » = "1" “citation” 50%`},
		},
		{
			name:        "the URL's overrides win over the layout, not over muting",
			url:         "https://visio.example.fr/Conseil#config.filmstrip.disabled=false&config.startWithAudioMuted=false&userInfo.displayName=%22Moi%22&config.subject=%22S%C3%A9ance%22",
			displayName: "Diffusion publique",
			wantBase:    "https://visio.example.fr/Conseil",
			wantParams: map[string]any{
				"config.filmstrip.disabled":  false,
				"config.startWithAudioMuted": true,
				"userInfo.displayName":       "Diffusion publique",
				"config.subject":             "Séance",
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := jitsiURL(tc.url, tc.jwt, tc.displayName)
			require.NoError(t, err)
			base, fragment, ok := strings.Cut(got, "#")
			require.True(t, ok)
			require.Equal(t, tc.wantBase, base)
			params := parseJitsiFragment(t, fragment)
			want := map[string]any{}
			for k, v := range layout {
				want[k] = v
			}
			want["userInfo.displayName"] = tc.displayName
			for k, v := range tc.wantParams {
				want[k] = v
			}
			for k, v := range want {
				require.Equal(t, v, params[k], k)
			}
			// Later duplicates win in jitsi-meet: the muting ones come last.
			require.True(t, strings.HasSuffix(fragment, "config.startSilent=false"), fragment)
		})
	}
	for _, bad := range []string{"", "visio.example.fr/Conseil", "https://visio.example.fr/", "ftp://h/room", "https://:443/x", "https://h/r%zz"} {
		_, err := jitsiURL(bad, "", "x")
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
		got, err := jitsiURL(meetingURL, jwt, name)
		if err != nil {
			return
		}
		u, err := url.Parse(got)
		require.NoError(t, err)
		require.NotEmpty(t, u.Host)
		if jwt != "" {
			require.Equal(t, jwt, u.Query().Get("jwt"))
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
		if strings.ToValidUTF8(name, "") == name {
			raw, err := url.PathUnescape(seen["userInfo.displayName"])
			require.NoError(t, err)
			var v string
			require.NoError(t, json.Unmarshal([]byte(raw), &v))
			require.Equal(t, name, v)
		}
	})
}
