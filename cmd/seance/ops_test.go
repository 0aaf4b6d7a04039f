package main

import (
	"bufio"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/pion/rtcp"
	"github.com/pion/webrtc/v4"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v3"
)

// metricNameRE finds seance's metric names in PromQL. Recording rules
// (seance:…) do not match.
var metricNameRE = regexp.MustCompile(`\bseance_[a-z0-9_]+`)

// alertMetricNames returns the metric names used by the expressions of
// configs/prometheus/alerts.yml.
func alertMetricNames(t *testing.T) []string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("..", "..", "configs", "prometheus", "alerts.yml"))
	require.NoError(t, err)
	var f struct {
		Groups []struct {
			Rules []struct {
				Expr string `yaml:"expr"`
			} `yaml:"rules"`
		} `yaml:"groups"`
	}
	require.NoError(t, yaml.Unmarshal(data, &f))
	var names []string
	for _, g := range f.Groups {
		for _, r := range g.Rules {
			names = append(names, metricNameRE.FindAllString(r.Expr, -1)...)
		}
	}
	slices.Sort(names)
	return slices.Compact(names)
}

// grafanaMetricNames returns the metric names used by the queries of
// configs/grafana/dashboards/seance.json: panel targets and template
// variables.
func grafanaMetricNames(t *testing.T) []string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("..", "..", "configs", "grafana", "dashboards", "seance.json"))
	require.NoError(t, err)
	var dash any
	require.NoError(t, json.Unmarshal(data, &dash))
	var names []string
	var walk func(v any)
	walk = func(v any) {
		switch v := v.(type) {
		case map[string]any:
			for k, c := range v {
				if s, ok := c.(string); ok && (k == "expr" || k == "query" || k == "definition") {
					names = append(names, metricNameRE.FindAllString(s, -1)...)
				}
				walk(c)
			}
		case []any:
			for _, c := range v {
				walk(c)
			}
		}
	}
	walk(dash)
	slices.Sort(names)
	return slices.Compact(names)
}

// scrapeFamilies returns the metric families of a /metrics body, by name,
// with their type.
func scrapeFamilies(body string) map[string]string {
	fams := map[string]string{}
	sc := bufio.NewScanner(strings.NewReader(body))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "# TYPE "); ok {
			if name, typ, ok := strings.Cut(rest, " "); ok {
				fams[name] = typ
			}
		}
	}
	return fams
}

// missingMetrics returns the names no family of the scrape provides. A
// histogram's series (_bucket, _sum, _count) belong to its family.
func missingMetrics(fams map[string]string, names []string) []string {
	var missing []string
	for _, n := range names {
		if _, ok := fams[n]; ok {
			continue
		}
		found := false
		for _, suffix := range []string{"_bucket", "_sum", "_count"} {
			if base, ok := strings.CutSuffix(n, suffix); ok && (fams[base] == "histogram" || (suffix != "_bucket" && fams[base] == "summary")) {
				found = true
			}
		}
		if !found {
			missing = append(missing, n)
		}
	}
	return missing
}

// envExample returns .env.example's variables, the values the compose
// config is documented and tested with.
func envExample(t *testing.T) map[string]string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("..", "..", ".env.example"))
	require.NoError(t, err)
	env := map[string]string{}
	for line := range strings.Lines(string(data)) {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		require.True(t, ok, ".env.example: %q", line)
		env[k] = v
	}
	return env
}

// composeEnvRE matches ${NAME} in the compose config.
var composeEnvRE = regexp.MustCompile(`\$\{([A-Za-z_][A-Za-z0-9_]*)\}`)

// composeConfig returns configs/compose/seance.yaml — what seance runs in
// docker-compose — with .env.example's values, made to run in a test:
// listeners on loopback free ports, RTSP off (its UDP ports are fixed),
// recordings in recDir. A meeting channel that waits to be started is
// added: the compose image has no Chromium, so the compose config has
// none, but the alerts and the dashboard use the meeting metrics. It
// returns the config and the admin token.
func composeConfig(t *testing.T, recDir string) (string, string) {
	t.Helper()
	env := envExample(t)
	data, err := os.ReadFile(filepath.Join("..", "..", "configs", "compose", "seance.yaml"))
	require.NoError(t, err)
	var cfg map[string]any
	require.NoError(t, yaml.Unmarshal(data, &cfg))
	// ${NAME} in values (not comments) as seance expands them.
	var expand func(v any) any
	expand = func(v any) any {
		switch v := v.(type) {
		case string:
			return composeEnvRE.ReplaceAllStringFunc(v, func(m string) string {
				val, ok := env[composeEnvRE.FindStringSubmatch(m)[1]]
				require.True(t, ok, "%s: not in .env.example", m)
				return val
			})
		case map[string]any:
			for k, c := range v {
				v[k] = expand(c)
			}
		case []any:
			for i, c := range v {
				v[i] = expand(c)
			}
		}
		return v
	}
	expand(cfg)
	section := func(k string) map[string]any {
		m, ok := cfg[k].(map[string]any)
		require.True(t, ok, "compose config: %s", k)
		return m
	}
	section("public")["listen"] = "127.0.0.1:0"
	section("admin")["listen"] = "127.0.0.1:0"
	section("rtmp")["listen"] = "127.0.0.1:0"
	section("rtsp")["listen"] = ""
	section("webrtc")["udp_port"] = 0
	channels, ok := cfg["channels"].([]any)
	require.True(t, ok, "compose config: channels")
	recorded := 0
	for _, c := range channels {
		if rec, ok := c.(map[string]any)["record"].(map[string]any); ok {
			rec["dir"] = recDir
			recorded++
		}
	}
	require.NotZero(t, recorded, "the compose config records no channel")
	cfg["channels"] = append(channels, map[string]any{
		"name": "reunion",
		"ingest": map[string]any{"meeting": map[string]any{
			"jitsi": map[string]any{"url": "https://visio.example.invalid/ConseilOps"},
			"start": "manual",
		}},
	})
	out, err := yaml.Marshal(cfg)
	require.NoError(t, err)
	return string(out), env["SEANCE_ADMIN_TOKEN"]
}

// TestOpsMetricNamesExist runs the real app with the compose config (its
// live demo channel, the council channel that records, plus a meeting
// channel), a pion WHEP viewer that reports some loss and an HLS player,
// scrapes /metrics with the admin token as Prometheus does, and requires
// every metric name the alerts and the Grafana dashboard use to be in the
// scrape. Vectors appear only once they have a child, hence the activity:
// no allowlist.
func TestOpsMetricNamesExist(t *testing.T) {
	alerts, dash := alertMetricNames(t), grafanaMetricNames(t)
	require.NotEmpty(t, alerts)
	require.NotEmpty(t, dash)

	cfg, token := composeConfig(t, t.TempDir())
	s := startSeance(t, cfg, token)
	s.waitChannel("demo", "live", "", 15*time.Second)

	// Prometheus authenticates with the Bearer token (credentials_file).
	code, _, err := s.get("/metrics", false)
	require.NoError(t, err)
	require.Equal(t, http.StatusUnauthorized, code, "/metrics without the token")

	// An HLS player's first request (held until the first segment).
	res, playlist := httpGet(t, "http://"+s.app.public.Addr().String()+"/hls/demo/index.m3u8")
	require.Equal(t, http.StatusOK, res.StatusCode, playlist)
	require.Contains(t, playlist, "#EXTM3U")

	v := startWHEPViewer(t, "http://"+s.app.public.Addr().String()+"/whep/demo")
	require.Eventually(t, func() bool { return len(v.packets(true)) > 0 && len(v.packets(false)) > 0 },
		10*time.Second, 20*time.Millisecond, "the WHEP viewer receives no media")

	// pion's API without interceptors sends no receiver reports, and
	// loopback loses nothing: answer seance's sender report with a receiver
	// report (RFC 3550 6.4.2) carrying its LSR and some loss, as a viewer on
	// a poor network would, so that seance_viewer_rtt_seconds and
	// seance_viewer_packets_lost_total have a child.
	var recv *webrtc.RTPReceiver
	var ssrc webrtc.SSRC
	for _, r := range v.pc.GetReceivers() {
		if tr := r.Track(); tr != nil && tr.Kind() == webrtc.RTPCodecTypeVideo && tr.SSRC() != 0 {
			recv, ssrc = r, tr.SSRC()
		}
	}
	require.NotNil(t, recv, "no video track")
	require.NoError(t, recv.SetReadDeadline(time.Now().Add(10*time.Second)))
	var lsr uint32
	for lsr == 0 {
		pkts, _, err := recv.ReadRTCP()
		require.NoError(t, err, "no RTCP sender report from seance")
		for _, p := range pkts {
			if sr, ok := p.(*rtcp.SenderReport); ok && sr.SSRC == uint32(ssrc) {
				lsr = uint32(sr.NTPTime >> 16) // the middle 32 bits (RFC 3550 6.4.1)
			}
		}
	}
	require.NoError(t, v.pc.WriteRTCP([]rtcp.Packet{&rtcp.ReceiverReport{
		SSRC:    1,
		Reports: []rtcp.ReceptionReport{{SSRC: uint32(ssrc), TotalLost: 3, LastSequenceNumber: 1000, LastSenderReport: lsr}},
	}}))

	used := slices.Concat(alerts, dash)
	slices.Sort(used)
	used = slices.Compact(used)
	var fams map[string]string
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		fams = scrapeFamilies(s.mustGet("/metrics"))
		assert.Empty(c, missingMetrics(fams, used), "metrics used by alerts.yml or seance.json but not in /metrics")
	}, 10*time.Second, 100*time.Millisecond)
	t.Logf("alerts.yml uses %s", strings.Join(alerts, ", "))
	t.Logf("seance.json uses %s", strings.Join(dash, ", "))

	// The parsers see what they should.
	for _, want := range []string{"seance_channel_live", "seance_destination_up", "seance_health_warning",
		"seance_ingest_keyframe_interval_seconds", "seance_viewer_packets_lost_total",
		"seance_viewer_packets_sent_total", "seance_transcode_frames_total", "seance_slate_active",
		"seance_recording_up", "seance_recording_errors_total", "seance_meeting_restarts_total",
		"seance_meeting_state", "seance_hls_muxer_errors_total"} {
		require.Contains(t, alerts, want)
	}
	for _, want := range []string{"seance_viewer_time_to_first_frame_seconds_bucket", "seance_viewers",
		"seance_hls_sent_bytes_total", "seance_slate_seconds_total", "seance_recording_bytes_total",
		"seance_meeting_browser_cpu_seconds_total", "seance_meeting_browser_memory_bytes",
		"seance_meeting_capture_frames_per_second"} {
		require.Contains(t, dash, want)
	}
	// The compose config's recorder and the meeting capture are there.
	body := s.mustGet("/metrics")
	require.Equal(t, 0.0, metric(t, body, `seance_recording_up{channel="conseil"}`), "conseil is not live: nothing is recorded")
	require.Equal(t, 0.0, metric(t, body, `seance_meeting_restarts_total{channel="reunion"}`))
	require.Equal(t, []string{"seance_nope_total", "seance_viewer_rtt_seconds_total"},
		missingMetrics(fams, []string{"seance_channel_live", "seance_nope_total", "seance_viewer_rtt_seconds_count", "seance_viewer_rtt_seconds_total"}))
}
