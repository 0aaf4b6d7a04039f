package configs

import (
	"encoding/json"
	"fmt"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v3"
)

const testSecret = "sk-S3CR3T-live-4f2a"

func TestSecretPrint(t *testing.T) {
	s := Secret(testSecret)
	type holder struct {
		Key  Secret
		Keys []Secret
		Ptr  *Secret
	}
	h := holder{Key: s, Keys: []Secret{s}, Ptr: &s}
	for _, format := range []string{"%v", "%s", "%+v", "%#v", "%q", "%x", "%X", "%d", "%10s", "%-12v", "%T %v"} {
		t.Run(format, func(t *testing.T) {
			for _, out := range []string{
				fmt.Sprintf(format, s),
				fmt.Sprintf(format, h),
				fmt.Sprintf(format, &h),
				fmt.Sprint(s, h),
				fmt.Sprintln(s, h),
			} {
				require.NotContains(t, out, testSecret)
			}
		})
	}
	require.Equal(t, "[redacted]", fmt.Sprintf("%v", s))
	require.Equal(t, `"[redacted]"`, fmt.Sprintf("%q", s))
	require.Equal(t, "[redacted]", s.String())
	require.Equal(t, "[redacted]", s.GoString())
	require.Equal(t, "{[redacted]}", fmt.Sprintf("%v", struct{ K Secret }{s}))
	require.Empty(t, Secret("").String())
	require.Empty(t, Secret("").GoString())
	require.Equal(t, testSecret, s.Value())
}

func TestSecretMarshal(t *testing.T) {
	type holder struct {
		Key   Secret `json:"key" yaml:"key"`
		Empty Secret `json:"empty" yaml:"empty"`
		Map   map[string]Secret
	}
	h := holder{Key: testSecret, Map: map[string]Secret{"k": testSecret}}

	out, err := json.Marshal(h)
	require.NoError(t, err)
	require.NotContains(t, string(out), testSecret)
	require.JSONEq(t, `{"key":"[redacted]","empty":"","Map":{"k":"[redacted]"}}`, string(out))

	out, err = yaml.Marshal(h)
	require.NoError(t, err)
	require.NotContains(t, string(out), testSecret)
	require.Contains(t, string(out), "key: '[redacted]'\nempty: \"\"\n")

	out, err = Secret(testSecret).MarshalText()
	require.NoError(t, err)
	require.Equal(t, "[redacted]", string(out))
}

func TestSecretMarshalConfig(t *testing.T) {
	for name, v := range testEnv {
		t.Setenv(name, v)
	}
	cfg, err := Load("seance.yaml")
	require.NoError(t, err)
	for _, out := range []string{
		fmt.Sprintf("%v %+v %#v", cfg, cfg, cfg),
		fmt.Sprintf("%v %+v %#v", *cfg, *cfg, *cfg),
		string(must(json.Marshal(cfg))),
		string(must(yaml.Marshal(cfg))),
	} {
		require.NotContains(t, out, "S3CR3T")
	}
}

func must(b []byte, err error) []byte {
	if err != nil {
		panic(err)
	}
	return b
}

func TestSecretUnmarshalYAML(t *testing.T) {
	var v struct {
		Key Secret `yaml:"key"`
	}
	require.NoError(t, yaml.Unmarshal([]byte("key: abc\n"), &v))
	require.Equal(t, "abc", v.Key.Value())
	require.EqualError(t, yaml.Unmarshal([]byte("key: [abc]\n"), &v), "line 1: expected a string")
}

func TestSecretEqual(t *testing.T) {
	for _, tc := range []struct {
		name   string
		secret Secret
		other  string
		want   bool
	}{
		{"same", testSecret, testSecret, true},
		{"different", testSecret, "sk-S3CR3T-live-4f2b", false},
		{"prefix", testSecret, testSecret[:5], false},
		{"longer", testSecret, testSecret + "x", false},
		{"empty attempt", testSecret, "", false},
		{"empty secret", "", "", false},
		{"empty secret, attempt", "", "x", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			require.Equal(t, tc.want, tc.secret.Equal(tc.other))
		})
	}
	require.True(t, Secret("x").IsSet())
	require.False(t, Secret("").IsSet())
}

func TestRedactURL(t *testing.T) {
	for _, tc := range []struct {
		name, in, want string
	}{
		{"empty", "", ""},
		{"youtube key in path", "rtmp://a.rtmp.youtube.com/live2/xxxx-yyyy-zzzz-wwww", "rtmp://a.rtmp.youtube.com/live2/[redacted]"},
		{"youtube no key", "rtmps://a.rtmps.youtube.com/live2", "rtmps://a.rtmps.youtube.com/live2"},
		{"youtube backup", "rtmp://b.rtmp.youtube.com/live2?backup=1", "rtmp://b.rtmp.youtube.com/live2?backup=1"},
		{"youtube backup with key", "rtmp://b.rtmp.youtube.com/live2/KEY?backup=1", "rtmp://b.rtmp.youtube.com/live2/[redacted]?backup=1"},
		{"long backup value", "rtmp://h/app?backup=S3CR3T-long-value", "rtmp://h/app?backup=[redacted]"},
		{"several segments", "rtmps://h:443/app/inst/KEY", "rtmps://h:443/app/[redacted]/[redacted]"},
		{"trailing slash", "rtmp://h/app/", "rtmp://h/app/"},
		{"query key", "rtmp://relay.example:1935/live/bourg?key=S3CR3T", "rtmp://relay.example:1935/live/[redacted]?key=[redacted]"},
		{"bare query", "rtmp://h/app?S3CR3T", "rtmp://h/app?[redacted]"},
		{"odd query key", "http://h/p?S3CR3T%20x=1&a=2", "http://h/p?[redacted]&a=[redacted]"},
		{"empty query", "http://h/p?", "http://h/p?"},
		{"userinfo", "rtsp://admin:S3CR3T@camera.lan:554/stream1", "rtsp://[redacted]@camera.lan:554/stream1"},
		{"user only", "rtsp://S3CR3T@camera.lan/stream1", "rtsp://[redacted]@camera.lan/stream1"},
		{"rtsp path kept", "rtsp://camera.lan/live/main", "rtsp://camera.lan/live/main"},
		{"fragment", "rtmp://h/app#S3CR3T", "rtmp://h/app#[redacted]"},
		{"all of it", "rtmps://u:S3CR3T@h/app/S3CR3T?token=S3CR3T&backup=1#S3CR3T", "rtmps://[redacted]@h/app/[redacted]?token=[redacted]&backup=1#[redacted]"},
		{"upper-case scheme", "RTMP://h/app/S3CR3T", "rtmp://h/app/[redacted]"},
		{"opaque", "rtmp:h/app/S3CR3T", "rtmp:[redacted]"},
		{"no host", "rtmp:///app/S3CR3T", "rtmp:///app/[redacted]"},
		{"https", "https://live.example.fr/watch/bourg", "https://live.example.fr/watch/bourg"},
		{"no scheme", "S3CR3T-key", "[invalid URL]"},
		{"invalid", "rtmp://h:S3CR3T/app", "[invalid URL]"},
		{"bad escape", "rtmp://h/app/%zzS3CR3T", "[invalid URL]"},
		{"control character", "rtmp://h/app/S3CR3T\n", "[invalid URL]"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := RedactURL(tc.in)
			require.Equal(t, tc.want, got)
			require.NotContains(t, got, "S3CR3T")
		})
	}
}

var alnumRE = regexp.MustCompile(`^[A-Za-z0-9]+$`)

func FuzzRedactURL(f *testing.F) {
	for _, s := range []string{
		"rtmp://a.rtmp.youtube.com/live2/S3CR3T",
		"rtmps://u:S3CR3T@h/app/S3CR3T?token=S3CR3T&backup=1#S3CR3T",
		"rtsp://admin:S3CR3T@camera.lan:554/stream1",
		"rtmp:S3CR3T",
		"http://h/p?S3CR3T",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		out := RedactURL(raw)
		u, err := url.Parse(raw)
		if err != nil || u.Scheme == "" {
			require.Equal(t, out == "", raw == "")
			if raw != "" {
				require.Equal(t, invalidURL, out)
			}
			return
		}
		// The secret parts of the URL do not survive, unless the parts that are
		// kept happen to contain the same text.
		kept := u.Scheme + " " + u.Host + " " + u.EscapedPath()
		var secrets []string
		if u.User != nil {
			p, _ := u.User.Password()
			secrets = append(secrets, u.User.Username(), p)
		}
		secrets = append(secrets, u.Fragment)
		for k, v := range u.Query() {
			if k != "backup" { // kept when short: YouTube's ?backup=1
				secrets = append(secrets, v...)
			}
		}
		if strings.HasPrefix(u.Scheme, "rtmp") {
			kept = u.Scheme + " " + u.Host
			app, key, _ := strings.Cut(strings.TrimPrefix(u.EscapedPath(), "/"), "/")
			kept += " " + app
			secrets = append(secrets, strings.Trim(key, "/"))
		}
		for k := range u.Query() {
			kept += " " + k + " " + url.QueryEscape(k)
		}
		for _, s := range secrets {
			// Only secrets shaped like real ones (letters, digits) are checked:
			// others may straddle the kept parts and the separators around them.
			if len(s) >= 4 && alnumRE.MatchString(s) && !strings.Contains(kept, s) && !strings.Contains(redacted, s) {
				require.NotContains(t, out, s)
			}
		}
	})
}
