package configs

import (
	"encoding/json"
	"fmt"
	"net/url"
	"testing"

	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v3"
)

// liveKitEnv holds the LiveKit secrets of the tests below.
var liveKitEnv = map[string]string{
	"LK_SECRET": "lk-S3CR3T-secret-0101",
	"LK_ROOM":   "conseil-S3CR3T-room-0102",
	"LK_URL":    "wss://user:pw-S3CR3T-0103@livekit.example.fr",
}

// TestParseMeetingLiveKit: a LiveKit room parses with its defaults
// (layout speaker) and prints without its secret or room.
func TestParseMeetingLiveKit(t *testing.T) {
	cfg, err := Parse([]byte(`
channels:
  - name: a
    ingest:
      meeting:
        livekit: {url: "wss://livekit.example.fr", api_key: APIkey1, api_secret: "${LK_SECRET}", room: "${LK_ROOM}"}
  - name: b
    ingest:
      meeting:
        livekit: {url: "ws://127.0.0.1:7880", api_key: devkey, api_secret: "${LK_SECRET}", room: "${LK_ROOM}"}
        layout: tiles
`), envFunc(liveKitEnv))
	require.NoError(t, err)
	a, b := cfg.Channels[0].Ingest, cfg.Channels[1].Ingest
	require.Equal(t, Meeting{
		LiveKit: LiveKit{URL: "wss://livekit.example.fr", APIKey: "APIkey1",
			APISecret: Secret(liveKitEnv["LK_SECRET"]), Room: Secret(liveKitEnv["LK_ROOM"])},
		DisplayName: DefaultDisplayName, Size: Size720p, Layout: LayoutSpeaker, Start: StartAuto, AloneAfter: DefaultAloneAfter,
	}, a.Meeting)
	require.Equal(t, PlatformLiveKit, a.Meeting.Platform())
	require.Equal(t, LayoutTiles, b.Meeting.Layout)
	require.Equal(t, "meeting (LiveKit on livekit.example.fr)", a.String())
	for _, in := range []Ingest{a, b} {
		js, err := json.Marshal(in)
		require.NoError(t, err)
		ym, err := yaml.Marshal(in)
		require.NoError(t, err)
		for _, text := range []string{string(js), string(ym), fmt.Sprintf("%v %+v %#v %s", in, in, in, in)} {
			require.NotContains(t, text, "S3CR3T")
		}
	}
}

// TestParseMeetingLiveKitErrors: each problem names its YAML key, and no
// error quotes the secret, the room or a password in the URL.
func TestParseMeetingLiveKitErrors(t *testing.T) {
	const p = "channels[0].ingest.meeting"
	for _, tc := range []struct {
		name, meeting, want string
	}{{
		name:    "empty",
		meeting: `livekit: {api_key: k}`,
		want: p + `.livekit.url: must be set: the server's WebSocket address, e.g. "wss://livekit.example.fr"` + "\n" +
			p + ".livekit.api_secret: must be set: the API key's secret (livekit.yaml keys)\n" +
			p + ".livekit.room: must be set: the room's name",
	}, {
		name:    "https is a meeting page",
		meeting: `livekit: {url: "https://visio.numerique.gouv.fr/abc-defg-hij", api_key: k, api_secret: "${LK_SECRET}", room: "${LK_ROOM}"}`,
		want:    p + `.livekit.url: "https://visio.numerique.gouv.fr/abc-defg-hij" is not a valid LiveKit address: use a wss:// address (the server's WebSocket URL, not a meeting page)`,
	}, {
		name:    "ws off loopback",
		meeting: `livekit: {url: "ws://livekit.example.fr", api_key: k, api_secret: "${LK_SECRET}", room: "${LK_ROOM}"}`,
		want:    p + `.livekit.url: "ws://livekit.example.fr" is not a valid LiveKit address: ws:// is only for a server on this machine (127.0.0.1, ::1, localhost): use wss://`,
	}, {
		name:    "password in url",
		meeting: `livekit: {url: "${LK_URL}", api_key: "a key", api_secret: "${LK_SECRET}", room: "${LK_ROOM}"}`,
		want: p + ".livekit.url: the value of ${LK_URL} is not a valid LiveKit address: remove the user name and password from it\n" +
			p + ".livekit.api_key: is not valid: an API key has no spaces or control characters",
	}, {
		name:    "query",
		meeting: `livekit: {url: "wss://lk.example.fr/?access_token=x", api_key: k, api_secret: "${LK_SECRET}", room: "${LK_ROOM}"}`,
		want:    p + `.livekit.url: "wss://lk.example.fr/?access_token=x" is not a valid LiveKit address: remove the query and fragment from it`,
	}, {
		name:    "room control character",
		meeting: `livekit: {url: "wss://[::1]", api_key: k, api_secret: "${LK_SECRET}", room: "a\tb"}`,
		want:    p + ".livekit.room: is not valid: a room name has no control characters",
	}, {
		name:    "with jitsi",
		meeting: `{livekit: {url: "wss://lk.example.fr", api_key: k, api_secret: "${LK_SECRET}", room: "${LK_ROOM}"}, jitsi: {url: "https://v.example.fr/r"}}`,
		want:    p + ": set one of jitsi, bbb or livekit, not several",
	}, {
		name:    "layout",
		meeting: `{livekit: {url: "ws://localhost:7880", api_key: k, api_secret: "${LK_SECRET}", room: "${LK_ROOM}"}, layout: mosaic}`,
		want:    p + `.layout: "mosaic" is not valid: use speaker or tiles`,
	}} {
		t.Run(tc.name, func(t *testing.T) {
			m := tc.meeting
			if m[0] != '{' {
				m = "{" + m + "}"
			}
			_, err := Parse([]byte("channels:\n  - name: a\n    ingest: {meeting: "+m+"}\n"), envFunc(liveKitEnv))
			require.EqualError(t, err, tc.want)
			require.NotContains(t, err.Error(), "S3CR3T")
		})
	}
}

// FuzzLiveKitURL: any server address is either refused with a reason or
// is wss://, or ws:// to a loopback host, with a host and no credentials.
func FuzzLiveKitURL(f *testing.F) {
	for _, s := range []string{"wss://livekit.example.fr", "ws://127.0.0.1:7880", "ws://[::1]:7880/rtc", "ws://localhost",
		"ws://livekit.example.fr", "https://visio.example.fr/abc", "wss://u:p@h", "wss://h/?a=b", "wss://", "ws://127.0.0.1.example.fr"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		if liveKitURLProblem(raw) != "" {
			return
		}
		u, err := url.Parse(raw)
		require.NoError(t, err)
		require.NotEmpty(t, u.Hostname())
		require.Nil(t, u.User)
		require.True(t, u.Scheme == "wss" || (u.Scheme == "ws" && isLoopbackHost(u.Hostname())), "accepted %q", raw)
	})
}

// FuzzParseLiveKit: LiveKit meetings in any shape parse or fail with an
// error that never quotes the secret or the room.
func FuzzParseLiveKit(f *testing.F) {
	for _, m := range []string{
		`{livekit: {url: "wss://lk.example.fr", api_key: k, api_secret: "${LK_SECRET}", room: "${LK_ROOM}"}, layout: tiles}`,
		`{livekit: {url: "${LK_URL}", api_key: "a key", api_secret: "${LK_SECRET}", room: "${LK_ROOM}"}}`,
		`{livekit: {url: "ws://10.0.0.1", room: "a\tb"}, layout: mosaic}`,
	} {
		f.Add([]byte("channels:\n  - name: a\n    ingest: {meeting: " + m + "}\n"))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg, err := Parse(data, envFunc(liveKitEnv))
		if err != nil {
			require.Nil(t, cfg)
			require.NotContains(t, err.Error(), "S3CR3T")
			return
		}
		for _, ch := range cfg.Channels {
			if m := ch.Ingest.Meeting; m.Platform() == PlatformLiveKit {
				require.Empty(t, liveKitURLProblem(m.LiveKit.URL))
				require.Contains(t, []string{LayoutSpeaker, LayoutTiles}, m.Layout)
			}
		}
	})
}
