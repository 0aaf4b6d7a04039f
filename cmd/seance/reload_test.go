package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/seance-relay/seance/configs"
)

func parseCfg(t *testing.T, y string) *configs.Config {
	t.Helper()
	cfg, err := configs.Parse([]byte(y), func(string) (string, bool) { return "", false })
	require.NoError(t, err)
	return cfg
}

func TestReloadDiff(t *testing.T) {
	const base = `
public: {listen: "127.0.0.1:0"}
admin: {listen: "127.0.0.1:0"}
channels:
  - {name: a, ingest: {demo: true}}
  - name: b
    title: B
    ingest: {key: k1}
    destinations: [{name: yt, url: "rtmp://x.example/live2", key: y1}]
  - {name: c, ingest: {pull: "rtsp://cam.example/s"}}
`
	cases := []struct {
		name string
		cur  string
		want reloadResult
	}{
		{"same", base, reloadResult{Unchanged: []string{"a", "b", "c"}}},
		{"add and remove", `
public: {listen: "127.0.0.1:0"}
admin: {listen: "127.0.0.1:0"}
channels:
  - {name: a, ingest: {demo: true}}
  - name: b
    title: B
    ingest: {key: k1}
    destinations: [{name: yt, url: "rtmp://x.example/live2", key: y1}]
  - {name: d, ingest: {demo: true}}
`, reloadResult{Added: []string{"d"}, Removed: []string{"c"}, Unchanged: []string{"a", "b"}}},
		{"title, key, destination, pull", `
public: {listen: "127.0.0.1:0"}
admin: {listen: "127.0.0.1:0"}
channels:
  - {name: a, ingest: {demo: true}}
  - name: b
    title: B2
    ingest: {key: k2}
    destinations: [{name: yt, url: "rtmp://x.example/live2", key: y2}, {name: fb, url: "rtmp://f.example/app", key: f}]
  - {name: c, ingest: {pull: "rtsp://cam.example/t"}}
`, reloadResult{
			Changed: []channelChange{
				{Channel: "b", What: []string{"title", "ingest.key", "destination yt changed", "destination fb added"}},
				{Channel: "c", What: []string{"ingest"}},
			},
			Unchanged: []string{"a"},
		}},
		{"listeners need a restart", `
public: {listen: "127.0.0.1:0"}
admin: {listen: "127.0.0.1:9999"}
webrtc: {udp_port: 0, announce_loopback: true}
hls: {variant: fmp4}
channels:
  - {name: a, ingest: {demo: true}}
  - name: b
    title: B
    ingest: {key: k1}
    destinations: [{name: yt, url: "rtmp://x.example/live2", key: y1}]
  - {name: c, ingest: {pull: "rtsp://cam.example/s"}, max_viewers: 3}
`, reloadResult{Unchanged: []string{"a", "b", "c"}, RestartNeeded: []string{"admin", "webrtc", "hls", "channels.c.max_viewers"}}},
		{"recording", `
public: {listen: "127.0.0.1:0"}
admin: {listen: "127.0.0.1:0"}
channels:
  - {name: a, ingest: {demo: true}, record: {enabled: true, dir: /srv/rec}, replay: public}
  - name: b
    title: B
    ingest: {key: k1}
    destinations: [{name: yt, url: "rtmp://x.example/live2", key: y1}]
  - {name: c, ingest: {pull: "rtsp://cam.example/s"}}
`, reloadResult{
			Changed:   []channelChange{{Channel: "a", What: []string{"record", "replay"}}},
			Unchanged: []string{"b", "c"},
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := configDiff(parseCfg(t, base), parseCfg(t, tc.cur))
			for i := range got.Changed {
				c := &got.Changed[i]
				c.title, c.grace, c.key, c.source, c.destsAdded, c.destsRemoved = false, false, false, false, nil, nil
				c.record, c.limits, c.replay = false, false, false
			}
			want := tc.want
			for _, s := range []*[]string{&want.Added, &want.Removed, &want.Unchanged, &want.RestartNeeded} {
				if *s == nil {
					*s = []string{}
				}
			}
			if want.Changed == nil {
				want.Changed = []channelChange{}
			}
			require.Equal(t, want, got)
		})
	}
}

// startSeanceFile runs the app on a config file, as -config does.
func startSeanceFile(t *testing.T, path, token string) *seance {
	t.Helper()
	cfg, err := configs.Load(path)
	require.NoError(t, err)
	logs := &syncBuffer{}
	a, err := newApp(cfg, zerolog.New(logs).With().Timestamp().Logger())
	require.NoError(t, err)
	a.path = path
	ctx, cancel := context.WithCancel(context.Background())
	s := &seance{
		t: t, app: a, logs: logs, token: token, cancel: cancel,
		done: make(chan error, 1),
		http: &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}},
	}
	go func() { s.done <- a.run(ctx) }()
	t.Cleanup(func() {
		s.stop()
		if t.Failed() {
			t.Logf("seance logs:\n%s", logs)
		}
	})
	return s
}

// postReload calls POST /api/v1/reload with the token.
func (s *seance) postReload() (int, string) {
	s.t.Helper()
	req, err := http.NewRequest(http.MethodPost, "http://"+s.app.admin.Addr().String()+"/api/v1/reload", nil)
	require.NoError(s.t, err)
	req.Header.Set("Authorization", "Bearer "+s.token)
	resp, err := s.http.Do(req)
	require.NoError(s.t, err)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	require.NoError(s.t, err)
	return resp.StatusCode, string(body)
}

func (s *seance) publicStatus(channel string) int {
	s.t.Helper()
	resp, err := s.http.Get("http://" + s.app.public.Addr().String() + "/api/public/channels/" + channel)
	require.NoError(s.t, err)
	resp.Body.Close()
	return resp.StatusCode
}

// TestReloadChannels: a reload adds, removes and changes channels while
// the untouched channel's WHEP viewer and destination stay connected.
func TestReloadChannels(t *testing.T) {
	requireTools(t)
	const (
		token   = "reload-admin-token-Zq81"
		keepKey = "reload-keep-Yw3"
		oldKey  = "reload-chg-old-Pt5"
		newKey  = "reload-chg-new-Lm9"
	)
	ng := startNginx(t)
	path := filepath.Join(t.TempDir(), "seance.yaml")
	head := fmt.Sprintf(`
public: {listen: "127.0.0.1:0"}
admin: {listen: "127.0.0.1:0", token: %q}
rtmp: {listen: "127.0.0.1:0"}
rtsp: {listen: ""}
webrtc: {udp_port: 0, announce_loopback: true}
channels:
  - name: keep
    ingest: {demo: true}
    destinations: [{name: yt, url: %q, key: %q}]
`, token, ng.url(), keepKey)
	write := func(rest string) { require.NoError(t, os.WriteFile(path, []byte(head+rest), 0o600)) }
	write(fmt.Sprintf(`
  - {name: gone, ingest: {demo: true}}
  - name: chg
    ingest: {demo: true}
    destinations: [{name: d, url: %q, key: %q}]
`, ng.url(), oldKey))
	s := startSeanceFile(t, path, token)
	s.waitChannel("keep", "live", "live", 15*time.Second)
	s.waitChannel("chg", "live", "live", 15*time.Second)
	s.waitChannel("gone", "live", "", 15*time.Second)
	v := startWHEPViewer(t, "http://"+s.app.public.Addr().String()+"/whep/keep")
	vGone := startWHEPViewer(t, "http://"+s.app.public.Addr().String()+"/whep/gone")
	require.Eventually(t, func() bool { return len(v.packets(true)) > 50 && len(vGone.packets(true)) > 0 },
		10*time.Second, 20*time.Millisecond)
	before := time.Now()

	// Add neu, remove gone, change chg's destination; call reload directly.
	write(fmt.Sprintf(`
  - {name: neu, ingest: {demo: true}}
  - name: chg
    ingest: {demo: true}
    destinations: [{name: d, url: %q, key: %q}]
`, ng.url(), newKey))
	res, err := s.app.reload(t.Context())
	require.NoError(t, err)
	require.True(t, res.Reloaded)
	require.Equal(t, []string{"neu"}, res.Added)
	require.Equal(t, []string{"gone"}, res.Removed)
	require.Equal(t, []string{"keep"}, res.Unchanged)
	require.Len(t, res.Changed, 1)
	require.Equal(t, []string{"destination d changed"}, res.Changed[0].What)
	require.Empty(t, res.RestartNeeded)

	s.waitChannel("neu", "live", "", 15*time.Second)
	require.Equal(t, http.StatusNotFound, s.publicStatus("gone"))
	require.Eventually(t, func() bool {
		return strings.Contains(s.mustGet("/metrics"), `seance_viewer_sessions_ended_total{channel="gone",protocol="webrtc",reason="stream_ended"} 1`)
	}, 10*time.Second, 50*time.Millisecond, "gone's viewer session ends with stream_ended")
	require.Equal(t, http.StatusOK, s.publicStatus("neu"))
	s.waitChannel("chg", "live", "live", 15*time.Second)
	require.Eventually(t, func() bool { return len(ng.recordings(newKey)) == 1 }, 15*time.Second, 50*time.Millisecond,
		"the changed destination connects with its new key")

	// The same through the API, adding one more channel.
	write(fmt.Sprintf(`
  - {name: neu, ingest: {demo: true}}
  - {name: neu2, title: Neu 2, ingest: {demo: true}}
  - name: chg
    ingest: {demo: true}
    destinations: [{name: d, url: %q, key: %q}]
`, ng.url(), newKey))
	code, body := s.postReload()
	require.Equal(t, http.StatusOK, code, body)
	var api reloadResult
	require.NoError(t, json.Unmarshal([]byte(body), &api))
	require.Equal(t, []string{"neu2"}, api.Added)
	require.Equal(t, []string{"chg", "keep", "neu"}, api.Unchanged)
	s.waitChannel("neu2", "live", "", 15*time.Second)

	// An invalid file is refused, naming the key; nothing changes.
	require.NoError(t, os.WriteFile(path, []byte(head+"\n  - {name: bad, ingest: {demo: true}, grace: forever}\n"), 0o600))
	code, body = s.postReload()
	require.Equal(t, http.StatusUnprocessableEntity, code, body)
	require.Contains(t, body, "grace")
	require.Contains(t, body, "invalid_config")
	require.NotContains(t, body, token)
	for _, c := range []string{"keep", "neu", "neu2", "chg"} {
		require.Equal(t, http.StatusOK, s.publicStatus(c), c)
	}
	require.Equal(t, http.StatusNotFound, s.publicStatus("bad"))

	// keep's viewer received video throughout, from before the first
	// reload to 2 s after the last: no gap over 500 ms.
	after := time.Now().Add(2 * time.Second)
	require.Eventually(t, func() bool {
		pk := v.packets(true)
		return pk[len(pk)-1].at.After(after)
	}, 10*time.Second, 20*time.Millisecond)
	pk := v.packets(true)
	arrival := make([]time.Time, len(pk))
	for i, p := range pk {
		arrival[i] = p.at
	}
	slices.SortFunc(arrival, time.Time.Compare)
	require.True(t, arrival[0].Before(before))
	for i := 1; i < len(arrival); i++ {
		assert.Less(t, arrival[i].Sub(arrival[i-1]), 500*time.Millisecond, "gap in keep's video at packet %d", i)
	}
	keep := s.waitChannel("keep", "live", "live", 5*time.Second)
	require.Zero(t, keep.Destinations[0].Reconnects)

	s.stop()
	ng.stop()
	require.Len(t, ng.recordings(keepKey), 1, "keep's destination: one connection")
	require.Len(t, ng.recordings(oldKey), 1, "chg's old destination: one connection, ended by the reload")
	require.Len(t, ng.recordings(newKey), 1, "chg's new destination: one connection")
	require.Contains(t, s.logs.String(), "config reloaded")
	require.NotContains(t, s.logs.String(), keepKey)
}

// TestReloadEmbedded: on the embedded config there is nothing to re-read.
func TestReloadEmbedded(t *testing.T) {
	s := startSeance(t, `
public: {listen: "127.0.0.1:0"}
admin: {listen: "127.0.0.1:0"}
rtmp: {listen: ""}
rtsp: {listen: ""}
webrtc: {udp_port: 0, announce_loopback: true}
channels:
  - {name: demo, ingest: {demo: true}}
`, "")
	code, body := s.postReload()
	require.Equal(t, http.StatusOK, code, body)
	require.Contains(t, body, `"reloaded": false`)
	require.Contains(t, body, "embedded")
	require.True(t, strings.Contains(body, `"unchanged": [`+"\n"+`    "demo"`), body)
}
