package configs

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// testEnv holds recognisable secret values: no error message may contain one.
var testEnv = map[string]string{
	"SEANCE_ADMIN_TOKEN":     "tok-S3CR3T-admin-0001",
	"BOURG_INGEST_KEY":       "ingest-S3CR3T-bourg-0002",
	"BOURG_YT_KEY":           "yt-S3CR3T-abcd-efgh-0003",
	"CUBZAC_CAMERA_PASSWORD": "cam-S3CR3T-pw-0004",
	"BAD_NAME":               "Name-S3CR3T-0005",
	"BAD_URL":                "http://h/app/url-S3CR3T-0006",
	"BAD_PULL":               "ftp://u:pull-S3CR3T-0007@h/x",
	"BAD_PORT":               "port-S3CR3T-0008",
	"BAD_GRACE":              "grace-S3CR3T-0009",
	"BAD_LEVEL":              "level-S3CR3T-0010",
	"NEG_GRACE":              "-5s",
	"JITSI_URL":              "https://visio.example.fr/Conseil-S3CR3T-0011",
	"JITSI_JWT":              "eyJ-S3CR3T-jwt-0012",
	"BAD_JITSI_URL":          "https:///Conseil-S3CR3T-0013",
	"BAD_JWT":                "eyJ S3CR3T-0014",
	"BBB_SECRET":             "bbb-S3CR3T-0015",
	"PRIGNAC_JITSI_URL":      "https://visio.cc-bourg.fr/Prignac-S3CR3T-0016",
	"PRIGNAC_JITSI_JWT":      "eyJ-S3CR3T-prignac-0017",
	"PRIGNAC_YT_KEY":         "yt-S3CR3T-prignac-0018",
	"TAURIAC_BBB_SECRET":     "bbb-S3CR3T-tauriac-0019",
	"EMPTY":                  "",
}

func envFunc(env map[string]string) func(string) (string, bool) {
	return func(name string) (string, bool) {
		v, ok := env[name]
		return v, ok
	}
}

type badCase struct {
	name string
	yaml string
	want string
}

// badCases maps bad configurations to their exact error. It also seeds FuzzParse.
var badCases = []badCase{
	{
		name: "yaml syntax",
		yaml: "log:\n  level: info\n format: json\n",
		want: "line 2: invalid YAML: did not find expected key",
	},
	{
		name: "two documents",
		yaml: "log: {level: info}\n---\nlog: {level: warn}\n",
		want: "line 2: the file holds more than one YAML document: keep one",
	},
	{
		name: "not a mapping",
		yaml: "just words\n",
		want: "line 1: expected a mapping of keys (log, public, channels…), got a single value",
	},
	{
		name: "unknown key with path",
		yaml: `
channels:
  - name: a
    ingest: {demo: true}
    destinations:
      - {name: yt, url: "rtmp://h/app", stream_key: "${BOURG_YT_KEY}"}
`,
		want: `channels[0].destinations[0]: unknown key "stream_key"`,
	},
	{
		name: "unknown top-level key with suggestion",
		yaml: "channel:\n  - name: a\n",
		want: `unknown key "channel" (did you mean "channels"?)`,
	},
	{
		name: "duplicate key",
		yaml: "log:\n  level: info\n  level: warn\n",
		want: `log: key "level" is set twice (lines 2 and 3)`,
	},
	{
		name: "wrong kind",
		yaml: "channels: {name: a}\n",
		want: "channels: expected a list, got a mapping",
	},
	{
		name: "mapping for a string",
		yaml: "admin: {token: {value: x}}\n",
		want: "admin.token: expected a string, got a mapping",
	},
	{
		name: "not a number",
		yaml: "webrtc: {udp_port: abc}\n",
		want: `webrtc.udp_port: "abc" is not a whole number`,
	},
	{
		name: "not a bool",
		yaml: "channels:\n  - name: a\n    ingest: {demo: maybe}\n",
		want: `channels[0].ingest.demo: "maybe" is not true or false`,
	},
	{
		name: "env unset",
		yaml: `
log: {level: info}
public: {listen: ":8080"}
channels:
  - name: bourg-sur-gironde
    ingest:
      key: "${BOURG_INGEST_KEY_TYPO}"
`,
		want: "line 7: environment variable BOURG_INGEST_KEY_TYPO is not set",
	},
	{
		name: "env not closed",
		yaml: "admin: {token: \"${SEANCE_ADMIN_TOKEN\"}\n",
		want: `line 1: "${" is not closed: write "$${" for a literal "${"`,
	},
	{
		name: "env bad name",
		yaml: "admin: {token: \"${1TOKEN}\"}\n",
		want: `line 1: "1TOKEN" is not a valid environment variable name`,
	},
	{
		name: "log level and format",
		yaml: "log: {level: verbose, format: xml}\n",
		want: `log.level: "verbose" is not valid: use debug, info, warn or error` + "\n" +
			`log.format: "xml" is not valid: use json or console`,
	},
	{
		name: "listen without port",
		yaml: "public: {listen: \"8080\"}\n",
		want: `public.listen: "8080" is not a valid address: missing port in address: use host:port, e.g. ":8080"`,
	},
	{
		name: "listen bad port",
		yaml: "rtmp: {listen: \":99999\"}\n",
		want: `rtmp.listen: ":99999" has an invalid port: use a number from 0 to 65535`,
	},
	{
		name: "public listen empty",
		yaml: "public: {listen: \"\"}\n",
		want: `public.listen: must be set, e.g. ":8080"`,
	},
	{
		name: "same port twice",
		yaml: "rtsp: {listen: \"127.0.0.1:8080\"}\n",
		want: `rtsp.listen: "127.0.0.1:8080" uses the same port as public.listen`,
	},
	{
		name: "admin not loopback without token",
		yaml: "admin: {listen: \"0.0.0.0:9090\"}\n",
		want: `admin.listen: "0.0.0.0:9090" is not a loopback address: set admin.token to expose the admin API`,
	},
	{
		name: "admin from empty env",
		yaml: "admin: {listen: \":9090\", token: \"${EMPTY}\"}\n",
		want: `admin.listen: ":9090" is not a loopback address: set admin.token to expose the admin API`,
	},
	{
		name: "base url",
		yaml: "public: {base_url: \"live.example.fr\"}\n",
		want: `public.base_url: "[invalid URL]" is not valid: use an absolute http:// or https:// URL, e.g. "https://live.example.fr"`,
	},
	{
		name: "udp port out of range",
		yaml: "webrtc: {udp_port: 70000}\n",
		want: "webrtc.udp_port: 70000 is out of range 1-65535",
	},
	{
		name: "udp port negative",
		yaml: "webrtc: {udp_port: -1}\n",
		want: "webrtc.udp_port: -1 is out of range 1-65535",
	},
	{
		name: "tcp port out of range",
		yaml: "webrtc: {tcp_port: 65536}\n",
		want: "webrtc.tcp_port: 65536 is out of range 1-65535 (0 disables ICE-TCP)",
	},
	{
		name: "max viewers zero",
		yaml: "webrtc: {max_viewers: 0}\n",
		want: "webrtc.max_viewers: 0 must be at least 1",
	},
	{
		name: "channel max viewers negative",
		yaml: "channels: [{name: a, ingest: {demo: true}, max_viewers: -2}]\n",
		want: "channels[0].max_viewers: must not be negative (got -2): 0 means no limit but the server's",
	},
	{
		name: "rendition height odd",
		yaml: "channels: [{name: a, ingest: {demo: true}, renditions: [{name: basse, height: 361}]}]\n",
		want: "channels[0].renditions[0].height: must be an even number of lines from 144 to 720, e.g. 360 (got 361)",
	},
	{
		name: "rendition height too big",
		yaml: "channels: [{name: a, ingest: {demo: true}, renditions: [{name: basse, height: 1080}]}]\n",
		want: "channels[0].renditions[0].height: must be an even number of lines from 144 to 720, e.g. 360 (got 1080)",
	},
	{
		name: "rendition bitrate not a rate",
		yaml: "channels: [{name: a, ingest: {demo: true}, renditions: [{name: basse, video_bitrate: fast}]}]\n",
		want: "channels[0].renditions[0].video_bitrate: \"fast\" is not a bit rate: use a number and a unit, e.g. \"500k\" or \"2.5M\"",
	},
	{
		name: "rendition bitrate too low",
		yaml: "channels: [{name: a, ingest: {demo: true}, renditions: [{name: basse, video_bitrate: 10k}]}]\n",
		want: "channels[0].renditions[0].video_bitrate: must be from 50k to 5M, e.g. \"500k\" (got 10k)",
	},
	{
		name: "rendition name not URL-safe",
		yaml: "channels: [{name: a, ingest: {demo: true}, renditions: [{name: \"Basse/1\"}]}]\n",
		want: "channels[0].renditions[0].name: \"Basse/1\" is not valid: use lowercase letters, digits, '-' and '_'",
	},
	{
		name: "rendition name reserved",
		yaml: "channels: [{name: a, ingest: {demo: true}, renditions: [{name: full}]}]\n",
		want: "channels[0].renditions[0].name: \"full\" is reserved (the full rendition and the audio-only one): choose another name",
	},
	{
		name: "rendition name duplicate",
		yaml: "channels: [{name: a, ingest: {demo: true}, renditions: [{name: basse}, {name: basse, height: 240}]}]\n",
		want: "channels[0].renditions: duplicate name \"basse\" (also channels[0].renditions[0])",
	},
	{
		name: "frame ancestor with a space",
		yaml: "public: {frame_ancestors: [\"https://a.fr https://b.fr\"]}\n",
		want: "public.frame_ancestors[0]: \"https://a.fr https://b.fr\" is not a valid origin: use e.g. \"https://www.bourg.fr\", \"*\" or \"'self'\"",
	},
	{
		name: "trusted proxy host name",
		yaml: "public: {trusted_proxies: [\"127.0.0.1\", \"proxy.lan\"]}\n",
		want: "public.trusted_proxies[1]: \"proxy.lan\" is not an IP address or CIDR range: use e.g. \"127.0.0.1\", \"10.0.0.0/8\" or \"2001:db8::/32\"",
	},
	{
		name: "trusted proxy bad range",
		yaml: "public: {trusted_proxies: [\"10.0.0.0/33\"]}\n",
		want: "public.trusted_proxies[0]: \"10.0.0.0/33\" is not an IP address or CIDR range: use e.g. \"127.0.0.1\", \"10.0.0.0/8\" or \"2001:db8::/32\"",
	},
	{
		name: "trusted proxy with a zone",
		yaml: "public: {trusted_proxies: [\"fe80::1%eth0\"]}\n",
		want: "public.trusted_proxies[0]: \"fe80::1%eth0\" is not an IP address or CIDR range: use e.g. \"127.0.0.1\", \"10.0.0.0/8\" or \"2001:db8::/32\"",
	},
	{
		name: "trusted proxy from the environment",
		yaml: "public: {trusted_proxies: [\"${BAD_URL}\"]}\n",
		want: "public.trusted_proxies[0]: the value of ${BAD_URL} is not an IP address or CIDR range: use e.g. \"127.0.0.1\", \"10.0.0.0/8\" or \"2001:db8::/32\"",
	},
	{
		name: "nat ip",
		yaml: "webrtc: {nat_ips: [203.0.113.7, relay.example.fr]}\n",
		want: `webrtc.nat_ips[1]: "relay.example.fr" is not an IP address (or public/private pair of them)`,
	},
	{
		name: "ice servers",
		yaml: `
webrtc:
  ice_servers:
    - urls: []
    - urls: ["https://stun.example.fr", "turn:turn.example.fr:3478"]
      username: seance
`,
		want: "webrtc.ice_servers[0].urls: must list at least one stun:, stuns:, turn: or turns: URL\n" +
			`webrtc.ice_servers[1].urls[0]: "https://stun.example.fr" is not valid: use a stun:, stuns:, turn: or turns: URL, e.g. "stun:stun.example.fr:3478"` + "\n" +
			"webrtc.ice_servers[1]: a turn: server needs username and credential, or secret",
	},
	{
		name: "turn secret and static credential",
		yaml: `
webrtc:
  ice_servers:
    - {urls: ["turn:turn.example.fr:3478"], username: seance, credential: pw, secret: s3cret}
    - {urls: ["turn:turn.example.fr:3478"], secret: s3cret, ttl: -1s}
`,
		want: "webrtc.ice_servers[0]: set credential (static) or secret (short-lived credentials), not both\n" +
			`webrtc.ice_servers[1].ttl: "-1s" must not be negative: 0 means 1h`,
	},
	{
		name: "limits",
		yaml: `
public: {body_timeout: 0s, max_connections_per_address: 0}
admin: {hosts: ["admin.lan:9090"]}
rtmp: {max_unauthenticated_per_address: 0, first_byte_timeout: -1s}
rtsp: {udp_port: 8001, max_connections: 0}
webrtc: {max_candidates: 0, max_pending_per_address: -2}
auth_failures: {window: 0s}
`,
		want: `public.body_timeout: "0s" must be a positive duration, e.g. "10s"` + "\n" +
			"public.max_connections_per_address: 0 must be at least 1\n" +
			`admin.hosts[0]: "admin.lan:9090" is not a host name: use e.g. "admin.seance.lan" (no port, no scheme)` + "\n" +
			"rtmp.max_unauthenticated_per_address: 0 must be at least 1\n" +
			`rtmp.first_byte_timeout: "-1s" must be a positive duration, e.g. "10s"` + "\n" +
			"rtsp.udp_port: 8001 must be an even port from 2 to 65534 (RTCP uses the next one)\n" +
			"rtsp.max_connections: 0 must be at least 1\n" +
			"webrtc.max_candidates: 0 must be at least 1\n" +
			"webrtc.max_pending_per_address: -2 must be at least 1\n" +
			`auth_failures.window: "0s" must be a positive duration, e.g. "10s"`,
	},
	{
		name: "channel name",
		yaml: `
channels:
  - name: bourg
    ingest: {demo: true}
  - name: Bourg Sur
    ingest: {demo: true}
  - name: -bourg
    ingest: {demo: true}
  - name: ` + strings.Repeat("x", 65) + `
    ingest: {demo: true}
  - title: no name
    ingest: {demo: true}
`,
		want: `channels[1].name: "Bourg Sur" is not valid: use lowercase letters, digits, '-' and '_'` + "\n" +
			`channels[2].name: "-bourg" is not valid: start with a lowercase letter or digit` + "\n" +
			`channels[3].name: "` + strings.Repeat("x", 65) + `" is too long: use at most 64 characters` + "\n" +
			`channels[4].name: must be set: use lowercase letters, digits, '-' and '_'`,
	},
	{
		name: "channel name from env",
		yaml: "channels:\n  - name: ${BAD_NAME}\n    ingest: {demo: true}\n",
		want: `channels[0].name: the value of ${BAD_NAME} is not valid: use lowercase letters, digits, '-' and '_'`,
	},
	{
		name: "duplicate channel",
		yaml: "channels:\n  - {name: x, ingest: {demo: true}}\n  - {name: x, ingest: {demo: true}}\n",
		want: `channels: duplicate name "x" (also channels[0])`,
	},
	{
		name: "ingest none",
		yaml: "channels:\n  - name: a\n",
		want: "channels[0].ingest: set exactly one of key, pull, demo or meeting",
	},
	{
		name: "ingest two",
		yaml: "channels:\n  - name: a\n    ingest: {key: \"${BOURG_INGEST_KEY}\", demo: true}\n",
		want: "channels[0].ingest: set exactly one of key, pull, demo or meeting",
	},
	{
		name: "ingest key from empty env",
		yaml: "channels:\n  - name: a\n    ingest: {key: \"${EMPTY}\"}\n",
		want: "channels[0].ingest: set exactly one of key, pull, demo or meeting (${EMPTY} is empty)",
	},
	{
		name: "pull scheme",
		yaml: "channels:\n  - name: a\n    ingest: {pull: \"http://camera.lan/stream\"}\n",
		want: `channels[0].ingest.pull: scheme "http" is not supported: use rtsp://, rtsps://, rtmp:// or rtmps://`,
	},
	{
		name: "pull scheme from env",
		yaml: "channels:\n  - name: a\n    ingest: {pull: \"${BAD_PULL}\"}\n",
		want: "channels[0].ingest.pull: the value of ${BAD_PULL} has an unsupported scheme: use rtsp://, rtsps://, rtmp:// or rtmps://",
	},
	{
		name: "pull not a URL",
		yaml: "channels:\n  - name: a\n    ingest: {pull: \"rtsp://u:${CUBZAC_CAMERA_PASSWORD}@cam:99x/s\"}\n",
		want: "channels[0].ingest.pull: not a valid URL: use rtsp://, rtsps://, rtmp:// or rtmps://",
	},
	{
		name: "grace negative",
		yaml: "channels:\n  - name: a\n    ingest: {demo: true}\n    grace: -5s\n",
		want: "channels[0].grace: must not be negative (got -5s)",
	},
	{
		name: "grace negative from env",
		yaml: "channels:\n  - name: a\n    ingest: {demo: true}\n    grace: ${NEG_GRACE}\n",
		want: "channels[0].grace: must not be negative (got the value of ${NEG_GRACE})",
	},
	{
		name: "grace too long",
		yaml: "channels:\n  - name: a\n    ingest: {demo: true}\n    grace: 25h\n",
		want: "channels[0].grace: must be at most 24h (got 25h0m0s)",
	},
	{
		name: "grace not a duration",
		yaml: "channels:\n  - name: a\n    ingest: {demo: true}\n    grace: 30\n",
		want: `channels[0].grace: "30" is not a duration: use a number and a unit, e.g. "30s" or "1m"`,
	},
	{
		name: "grace from env not a duration",
		yaml: "channels:\n  - name: a\n    ingest: {demo: true}\n    grace: ${BAD_GRACE}\n",
		want: `channels[0].grace: the value of ${BAD_GRACE} is not a duration: use a number and a unit, e.g. "30s" or "1m"`,
	},
	{
		name: "destination url scheme",
		yaml: `
channels:
  - name: a
    ingest: {demo: true}
    destinations:
      - {name: yt, url: "http://a.rtmp.youtube.com/live2", key: "${BOURG_YT_KEY}"}
`,
		want: `channels[0].destinations[0].url: scheme "http" is not supported: use rtmp:// or rtmps://`,
	},
	{
		name: "destination url from env",
		yaml: `
channels:
  - name: a
    ingest: {demo: true}
    destinations:
      - {name: yt, url: "${BAD_URL}"}
`,
		want: `channels[0].destinations[0].url: the value of ${BAD_URL} has an unsupported scheme: use rtmp:// or rtmps://`,
	},
	{
		name: "destination url missing, no host, not a URL",
		yaml: `
channels:
  - name: a
    ingest: {demo: true}
    destinations:
      - {name: d1}
      - {name: d2, url: "rtmp:///live2/yt-S3CR3T-abcd-efgh-0003"}
      - {name: d3, url: "rtmp://a.rtmp.youtube.com:x/live2", key: "${BOURG_YT_KEY}"}
`,
		want: `channels[0].destinations[0].url: must be set, e.g. "rtmps://a.rtmps.youtube.com/live2"` + "\n" +
			`channels[0].destinations[1].url: "rtmp:///live2/[redacted]" has no host` + "\n" +
			`channels[0].destinations[2].url: not a valid URL: use rtmp:// or rtmps://`,
	},
	{
		name: "destination without key",
		yaml: `
channels:
  - name: a
    ingest: {demo: true}
    destinations:
      - {name: yt, url: "rtmps://a.rtmps.youtube.com/live2"}
      - {name: yt2, url: "rtmps://a.rtmps.youtube.com/live2/", key: "${EMPTY}"}
`,
		want: "channels[0].destinations[0].key: must be set, or the url must end with the stream key (rtmp://host/app/KEY)\n" +
			"channels[0].destinations[1].key: must be set, or the url must end with the stream key (rtmp://host/app/KEY)",
	},
	{
		name: "destination names and start",
		yaml: `
channels:
  - name: a
    ingest: {demo: true}
    destinations:
      - {name: yt, url: "rtmp://h/app/k1", start: later}
      - {name: yt, url: "rtmp://h/app/k2"}
      - {name: YT, url: "rtmp://h/app/k3"}
`,
		want: `channels[0].destinations[0].start: "later" is not valid: use auto or manual` + "\n" +
			`channels[0].destinations: duplicate name "yt" (also channels[0].destinations[0])` + "\n" +
			`channels[0].destinations[2].name: "YT" is not valid: use lowercase letters, digits, '-' and '_'`,
	},
	{
		name: "record without dir",
		yaml: "channels:\n  - name: a\n    ingest: {demo: true}\n    record: {enabled: true}\n",
		want: "channels[0].record.dir: must be set when record.enabled is true",
	},
	{
		name: "record, replay and sizes",
		yaml: "channels:\n  - name: a\n    ingest: {demo: true}\n    replay: public\n" +
			"  - name: b\n    ingest: {demo: true}\n    replay: yes\n" +
			"    record: {enabled: true, dir: /r, segment: 10s, max_age: -1h, max_size: lots}\n",
		want: `channels[1].record.max_size: "lots" is not a size: use a number and a unit, e.g. "500MB" or "50GiB"`,
	},
	{
		name: "record and replay values",
		yaml: "channels:\n  - name: a\n    ingest: {demo: true}\n    replay: public\n" +
			"  - name: b\n    ingest: {demo: true}\n    replay: \"yes\"\n" +
			"    record: {enabled: true, dir: /r, segment: 10s, max_age: -1h}\n",
		want: "channels[0].replay: public needs record.enabled: true (replays are the recordings)\n" +
			"channels[1].record.segment: must be between 1m and 24h (got 10s)\n" +
			"channels[1].record.max_age: must not be negative: 0 keeps recordings whatever their age\n" +
			`channels[1].replay: "yes" is not valid: use public or off`,
	},
	{
		name: "hls",
		yaml: "hls: {variant: dash, segment_count: 2, segment_duration: 1m, part_duration: 1ms}\n",
		want: `hls.variant: "dash" is not valid: use low_latency, fmp4 or mpegts` + "\n" +
			"hls.segment_count: must be at least 3 for variant dash (got 2)\n" +
			"hls.segment_duration: must be between 100ms and 30s (got 1m0s)\n" +
			"hls.part_duration: must be between 50ms and segment_duration (got 1ms)",
	},
	{
		name: "meeting without platform",
		yaml: "channels:\n  - name: a\n    ingest: {meeting: {display_name: Bourg}}\n",
		want: "channels[0].ingest.meeting: set jitsi (url), bbb (api, secret, meeting_id) or livekit (url, api_key, api_secret, room)",
	},
	{
		name: "meeting layout, rejoin_after and alone_after",
		yaml: "channels:\n  - name: a\n    ingest: {meeting: {jitsi: {url: \"${JITSI_URL}\"}, layout: grid, rejoin_after: -1m, alone_after: -5s}}\n",
		want: "channels[0].ingest.meeting.layout: \"grid\" is not valid: use speaker or tiles\n" +
			"channels[0].ingest.meeting.rejoin_after: must not be negative: 0 (never rejoin on its own) or a duration, e.g. \"10m\"\n" +
			"channels[0].ingest.meeting.alone_after: must not be negative: a duration, e.g. \"5m\"",
	},
	{
		name: "meeting and key",
		yaml: "channels:\n  - name: a\n    ingest: {key: \"${BOURG_INGEST_KEY}\", meeting: {jitsi: {url: \"${JITSI_URL}\"}}}\n",
		want: "channels[0].ingest: set exactly one of key, pull, demo or meeting",
	},
	{
		name: "meeting jitsi and bbb",
		yaml: "channels:\n  - name: a\n    ingest:\n      meeting:\n        jitsi: {url: \"${JITSI_URL}\"}\n" +
			"        bbb: {api: \"https://bbb.example.fr/bigbluebutton/api\", secret: \"${BBB_SECRET}\", meeting_id: c}\n",
		want: "channels[0].ingest.meeting: set jitsi or bbb, not both",
	},
	{
		name: "meeting jitsi url",
		yaml: "channels:\n  - name: a\n    ingest: {meeting: {jitsi: {url: \"${BAD_JITSI_URL}\"}}}\n" +
			"  - name: b\n    ingest: {meeting: {jitsi: {url: \"https://visio.example.fr/\", jwt: \"${BAD_JWT}\"}}}\n" +
			"  - name: c\n    ingest: {meeting: {jitsi: {url: \"ftp://visio.example.fr/Conseil-S3CR3T-room\"}}}\n" +
			"  - name: d\n    ingest: {meeting: {jitsi: {jwt: \"${JITSI_JWT}\"}}}\n",
		want: "channels[0].ingest.meeting.jitsi.url: is not a valid meeting address: it has no host\n" +
			"channels[1].ingest.meeting.jitsi.url: is not a valid meeting address: it names no room: add the room, e.g. https://visio.example.fr/ConseilBourg\n" +
			"channels[1].ingest.meeting.jitsi.jwt: is not a valid token: a JWT has no spaces, '&', '#' or '?'\n" +
			"channels[2].ingest.meeting.jitsi.url: is not a valid meeting address: use an https:// address\n" +
			`channels[3].ingest.meeting.jitsi.url: must be set, e.g. "https://visio.example.fr/ConseilBourg"`,
	},
	{
		name: "meeting bbb",
		yaml: "channels:\n  - name: a\n    ingest: {meeting: {bbb: {api: \"bbb.example.fr\", meeting_id: \"a,b\"}}}\n" +
			"  - name: b\n    ingest: {meeting: {bbb: {secret: \"${BBB_SECRET}\"}, size: 640x480, start: later, display_name: \" \"}}\n",
		want: `channels[0].ingest.meeting.bbb.api: "bbb.example.fr" is not a valid API address: use an https:// address` + "\n" +
			"channels[0].ingest.meeting.bbb.secret: must be set: the server's shared secret (bbb-conf --secret)\n" +
			`channels[0].ingest.meeting.bbb.meeting_id: "a,b" is not valid: BigBlueButton meeting IDs have no comma` + "\n" +
			`channels[1].ingest.meeting.bbb.api: must be set, e.g. "https://bbb.example.fr/bigbluebutton/api"` + "\n" +
			"channels[1].ingest.meeting.bbb.meeting_id: must be set: the meetingID the meeting is created with\n" +
			`channels[1].ingest.meeting.display_name: " " is not valid: use 1 to 64 characters, e.g. "Diffusion publique"` + "\n" +
			`channels[1].ingest.meeting.size: "640x480" is not valid: use 1280x720 or 1920x1080` + "\n" +
			`channels[1].ingest.meeting.start: "later" is not valid: use auto or manual`,
	},
	{
		name: "meeting with pull options",
		yaml: "channels:\n  - name: a\n    ingest: {meeting: {jitsi: {url: \"${JITSI_URL}\"}}, transport: tcp}\n",
		want: "channels[0].ingest: transport, username and password only apply to pull",
	},
	{
		name: "several problems from env",
		yaml: "log: {level: \"${BAD_LEVEL}\"}\nwebrtc: {udp_port: \"${BAD_PORT}\"}\n",
		want: "webrtc.udp_port: the value of ${BAD_PORT} is not a whole number",
	},
	{
		name: "level from env",
		yaml: "log: {level: \"${BAD_LEVEL}\"}\n",
		want: "log.level: the value of ${BAD_LEVEL} is not valid: use debug, info, warn or error",
	},
}

func TestParseErrors(t *testing.T) {
	for _, tc := range badCases {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := Parse([]byte(tc.yaml), envFunc(testEnv))
			require.Nil(t, cfg)
			require.EqualError(t, err, tc.want)
		})
	}
}

// TestParseErrorsHideSecrets checks that no error shows a value that came from
// the environment, nor a secret.
func TestParseErrorsHideSecrets(t *testing.T) {
	for _, tc := range badCases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse([]byte(tc.yaml), envFunc(testEnv))
			require.Error(t, err)
			require.NotContains(t, err.Error(), "S3CR3T")
			for name, v := range testEnv {
				if len(v) >= 4 {
					require.NotContains(t, err.Error(), v, "value of %s", name)
				}
			}
		})
	}
}
