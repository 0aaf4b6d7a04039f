package configs

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v3"
)

func TestParseEnv(t *testing.T) {
	env := map[string]string{
		"TITLE":  `Conseil: "Bourg" # séance`,
		"PORT":   "9000",
		"DEMO":   "true",
		"A":      "left",
		"B":      "right",
		"EMPTY":  "",
		"DOLLAR": "$${NOT_EXPANDED}",
	}
	for _, tc := range []struct {
		name  string
		value string // YAML for channels[0].title
		want  string
		err   string
	}{
		{name: "plain", value: "Bourg", want: "Bourg"},
		{name: "braced", value: "${A}", want: "left"},
		{name: "two and text", value: `"${A}-${B} ok"`, want: "left-right ok"},
		{name: "special characters stay in the value", value: "${TITLE}", want: `Conseil: "Bourg" # séance`},
		{name: "double dollar", value: `"cost $$5 and $${A}"`, want: "cost $5 and ${A}"},
		{name: "bare dollar", value: `"$HOME and $ and $"`, want: "$HOME and $ and $"},
		{name: "value not expanded again", value: "${DOLLAR}", want: "$${NOT_EXPANDED}"},
		{name: "empty", value: `"x${EMPTY}y"`, want: "xy"},
		{name: "literal block", value: "|\n      line one\n      ${A}", want: "line one\nleft\n"},
		{name: "unset", value: `"${NOPE}"`, err: "line 5: environment variable NOPE is not set"},
		{name: "unset in literal block", value: "|\n      one\n      ${NOPE}", err: "line 7: environment variable NOPE is not set"},
		{name: "unclosed", value: `"${A"`, err: `line 5: "${" is not closed: write "$${" for a literal "${"`},
		{name: "empty name", value: `"${}"`, err: `line 5: "" is not a valid environment variable name`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			data := "webrtc:\n  udp_port: ${PORT}\nchannels:\n  - name: a\n    title: " + tc.value +
				"\n    ingest: {demo: \"${DEMO}\"}\n"
			cfg, err := Parse([]byte(data), envFunc(env))
			if tc.err != "" {
				require.EqualError(t, err, tc.err)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tc.want, cfg.Channels[0].Title)
			require.Equal(t, 9000, cfg.WebRTC.UDPPort)
			require.True(t, cfg.Channels[0].Ingest.Demo)
		})
	}
}

func TestParseEnvNotSetSentinel(t *testing.T) {
	path := filepath.Join(t.TempDir(), "seance.yaml")
	require.NoError(t, os.WriteFile(path, []byte("admin: {token: \"${SEANCE_TEST_SURELY_UNSET_VAR}\"}\n"), 0o600))
	_, err := Load(path)
	require.ErrorIs(t, err, ErrEnvNotSet)
	require.EqualError(t, err, path+": line 1: environment variable SEANCE_TEST_SURELY_UNSET_VAR is not set")
}

func TestLoadMissingFile(t *testing.T) {
	_, err := Load(filepath.Join(t.TempDir(), "nope.yaml"))
	require.ErrorIs(t, err, os.ErrNotExist)
}

func TestParseDefaults(t *testing.T) {
	for _, tc := range []struct {
		name string
		yaml string
	}{
		{"empty file", ""},
		{"comments only", "# nothing\n"},
		{"null document", "~\n"},
		{"empty sections", "log:\npublic:\nadmin:\nrtmp:\nrtsp:\nwebrtc:\nchannels:\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := Parse([]byte(tc.yaml), envFunc(nil))
			require.NoError(t, err)
			require.Equal(t, defaults(), cfg)
		})
	}
}

func TestParseValues(t *testing.T) {
	cfg, err := Parse([]byte(`
public: {base_url: "https://live.example.fr/"}
rtmp: {listen: ""}
webrtc:
  nat_ips: [203.0.113.7, 203.0.113.8/10.0.0.8]
  ice_servers:
    - urls: "stun:stun.example.fr:3478"
    - {urls: ["turns:turn.example.fr:5349"], username: seance, credential: "${BOURG_YT_KEY}"}
channels:
  - name: a
    ingest: {pull: "rtsp://u:p@cam.lan/stream"}
    grace: 0
    destinations:
      - &yt {name: yt, url: "rtmps://a.rtmps.youtube.com/live2", key: k, start: manual}
  - name: b
    title: Conseil
    ingest: {key: "${BOURG_INGEST_KEY}"}
    grace: 1m30s
    destinations:
      - <<: *yt
        url: "rtmp://b.rtmp.youtube.com/live2?backup=1"
    record: {enabled: yes, dir: /srv/rec}
`), envFunc(testEnv))
	require.NoError(t, err)
	want := defaults()
	want.Public.BaseURL = "https://live.example.fr"
	want.RTMP.Listen = ""
	want.WebRTC.NATIPs = []string{"203.0.113.7", "203.0.113.8/10.0.0.8"}
	want.WebRTC.ICEServers = []ICEServer{
		{URLs: []string{"stun:stun.example.fr:3478"}},
		{URLs: []string{"turns:turn.example.fr:5349"}, Username: "seance", Credential: Secret(testEnv["BOURG_YT_KEY"])},
	}
	want.Channels = []Channel{
		{
			Name: "a", Title: "a", Ingest: Ingest{Pull: "rtsp://u:p@cam.lan/stream"}, Grace: 0,
			Destinations: []Destination{{Name: "yt", URL: "rtmps://a.rtmps.youtube.com/live2", Key: "k", Start: StartManual}},
			Replay:       ReplayOff, Slate: Slate{Enabled: true}, Record: Record{Segment: defaultSegment},
		},
		{
			Name: "b", Title: "Conseil", Ingest: Ingest{Key: Secret(testEnv["BOURG_INGEST_KEY"])}, Grace: Duration(90 * time.Second),
			Destinations: []Destination{{Name: "yt", URL: "rtmp://b.rtmp.youtube.com/live2?backup=1", Key: "k", Start: StartManual}},
			Record:       Record{Enabled: true, Dir: "/srv/rec", Segment: defaultSegment},
			Replay:       ReplayOff, Slate: Slate{Enabled: true},
		},
	}
	require.Equal(t, want, cfg)
	require.NoError(t, cfg.Validate())
}

func TestExample(t *testing.T) {
	for name, v := range testEnv {
		t.Setenv(name, v)
	}
	cfg, err := Load("seance.yaml")
	require.NoError(t, err)

	type dest struct{ name, url string }
	got := map[string][]dest{}
	for _, ch := range cfg.Channels {
		got[ch.Name] = []dest{}
		for _, d := range ch.Destinations {
			got[ch.Name] = append(got[ch.Name], dest{d.Name, d.URL})
		}
	}
	require.Equal(t, map[string][]dest{
		"bourg-sur-gironde": {
			{"youtube-commune", "rtmps://a.rtmps.youtube.com/live2"},
			{"youtube-commune-backup", "rtmp://b.rtmp.youtube.com/live2?backup=1"},
		},
		"saint-andre-de-cubzac": {},
		"prignac":               {{"youtube", "rtmps://a.rtmps.youtube.com/live2"}},
		"tauriac":               {},
	}, got)

	bourg := cfg.Channels[0]
	require.Equal(t, "Conseil municipal de Bourg", bourg.Title)
	require.True(t, bourg.Ingest.Key.Equal(testEnv["BOURG_INGEST_KEY"]))
	require.Equal(t, Duration(30*time.Second), bourg.Grace)
	require.True(t, bourg.Record.Enabled)
	for _, d := range bourg.Destinations {
		require.Equal(t, StartAuto, d.Start)
		require.True(t, d.Key.Equal(testEnv["BOURG_YT_KEY"]))
		_, err := d.PublishURL()
		require.NoError(t, err)
	}
	require.Equal(t, "rtsp://seance:cam-S3CR3T-pw-0004@camera-salle-conseil.cubzac.lan:554/stream1", cfg.Channels[1].Ingest.Pull)
	require.True(t, cfg.Admin.Token.Equal(testEnv["SEANCE_ADMIN_TOKEN"]))
	require.Equal(t, []string{"127.0.0.1", "::1"}, cfg.Public.TrustedProxies, "behind a local reverse proxy")

	prignac := cfg.Channels[2].Ingest.Meeting
	require.Equal(t, configsJitsi(testEnv["PRIGNAC_JITSI_URL"], testEnv["PRIGNAC_JITSI_JWT"]), prignac.Jitsi)
	require.Equal(t, PlatformJitsi, prignac.Platform())
	require.Equal(t, Meeting{Jitsi: prignac.Jitsi, DisplayName: DefaultDisplayName, Size: Size720p, Start: StartAuto,
		Layout: LayoutSpeaker, AloneAfter: DefaultAloneAfter}, prignac)
	tauriac := cfg.Channels[3].Ingest.Meeting
	require.Equal(t, PlatformBBB, tauriac.Platform())
	require.Equal(t, "conseil-tauriac", tauriac.BBB.MeetingID)
	require.True(t, tauriac.BBB.Secret.Equal(testEnv["TAURIAC_BBB_SECRET"]))
	require.Equal(t, StartManual, tauriac.Start)

	// Apart from what the example sets on purpose, it documents the defaults.
	def := defaults()
	require.Equal(t, def.Log, cfg.Log)
	require.Equal(t, def.Public.Listen, cfg.Public.Listen)
	require.Equal(t, def.Admin.Listen, cfg.Admin.Listen)
	require.Equal(t, def.RTMP, cfg.RTMP)
	require.Equal(t, def.RTSP, cfg.RTSP)
	require.Equal(t, def.WebRTC.UDPPort, cfg.WebRTC.UDPPort)
}

func TestExampleNeedsEnv(t *testing.T) {
	data, err := os.ReadFile("seance.yaml")
	require.NoError(t, err)
	_, err = Parse(data, envFunc(nil))
	require.ErrorIs(t, err, ErrEnvNotSet)
}

func TestDefault(t *testing.T) {
	cfg := Default()
	require.NoError(t, cfg.Validate())
	want := defaults()
	// The laptop demo announces loopback and LAN addresses.
	want.WebRTC.AnnounceLoopback, want.WebRTC.AnnouncePrivate = true, true
	want.Channels = []Channel{{
		Name: "demo", Title: "Démonstration seance", Ingest: Ingest{Demo: true}, Grace: defaultGrace,
		Replay: ReplayOff, Slate: Slate{Enabled: true}, Record: Record{Segment: defaultSegment},
	}}
	require.Equal(t, want, cfg)
	require.NotSame(t, cfg, Default())
}

func TestListReplacesDefault(t *testing.T) {
	cfg, err := Parse([]byte("public: {frame_ancestors: [\"https://www.bourg.fr\"]}\n"), nil)
	require.NoError(t, err)
	require.Equal(t, []string{"https://www.bourg.fr"}, cfg.Public.FrameAncestors)
	cfg, err = Parse([]byte("channels: []\n"), nil)
	require.NoError(t, err)
	require.Equal(t, []string{"*"}, cfg.Public.FrameAncestors)
}

func configsJitsi(url, jwt string) Jitsi { return Jitsi{URL: Secret(url), JWT: Secret(jwt)} }

// TestParseMeeting: a meeting ingest gets its defaults, describes itself
// without its secrets, and encodes them redacted.
func TestParseMeeting(t *testing.T) {
	cfg, err := Parse([]byte(`
channels:
  - name: a
    ingest: {meeting: {jitsi: {url: "${JITSI_URL}", jwt: "${JITSI_JWT}"}}}
  - name: b
    ingest:
      meeting:
        bbb: {api: "https://bbb.example.fr/bigbluebutton/api", secret: "${BBB_SECRET}", meeting_id: conseil}
        display_name: "Mairie de Bourg"
        size: 1920x1080
        start: manual
        layout: tiles
        rejoin_after: 10m
        alone_after: 2m
`), envFunc(testEnv))
	require.NoError(t, err)
	a, b := cfg.Channels[0].Ingest, cfg.Channels[1].Ingest
	require.Equal(t, Meeting{
		Jitsi:       Jitsi{URL: Secret(testEnv["JITSI_URL"]), JWT: Secret(testEnv["JITSI_JWT"])},
		DisplayName: DefaultDisplayName, Size: Size720p, Start: StartAuto,
		Layout: LayoutSpeaker, AloneAfter: DefaultAloneAfter,
	}, a.Meeting)
	require.Equal(t, Meeting{
		BBB:         BBB{API: "https://bbb.example.fr/bigbluebutton/api", Secret: Secret(testEnv["BBB_SECRET"]), MeetingID: "conseil"},
		DisplayName: "Mairie de Bourg", Size: Size1080p, Start: StartManual,
		Layout: LayoutTiles, RejoinAfter: Duration(10 * time.Minute), AloneAfter: Duration(2 * time.Minute),
	}, b.Meeting)
	w, h := b.Meeting.Dimensions()
	require.Equal(t, [2]int{1920, 1080}, [2]int{w, h})
	require.Equal(t, "meeting (Jitsi on visio.example.fr)", a.String())
	require.Equal(t, `meeting (BigBlueButton on bbb.example.fr, meeting "conseil")`, b.String())
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

// TestTrustedProxies: IPs and CIDR ranges of either family become address
// ranges (IPv4-mapped ones IPv4, host bits cleared); none by default.
func TestTrustedProxies(t *testing.T) {
	require.Empty(t, Default().Public.TrustedProxyPrefixes())
	cfg, err := Parse([]byte(`public: {trusted_proxies: ["127.0.0.1", "10.1.2.3/8", "::1", "2001:db8::/32", "::ffff:192.0.2.1", "::ffff:192.0.2.0/120"]}`+"\n"), nil)
	require.NoError(t, err)
	var got []string
	for _, p := range cfg.Public.TrustedProxyPrefixes() {
		got = append(got, p.String())
	}
	require.Equal(t, []string{"127.0.0.1/32", "10.0.0.0/8", "::1/128", "2001:db8::/32", "192.0.2.1/32", "192.0.2.0/24"}, got)
	_, err = Parse([]byte(`public: {trusted_proxies: ["::ffff:0:0/90"]}`+"\n"), nil)
	require.ErrorContains(t, err, `public.trusted_proxies[0]: "::ffff:0:0/90" is not an IP address or CIDR range`)
}
