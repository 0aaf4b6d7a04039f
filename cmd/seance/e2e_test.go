package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/bluenviron/gortmplib"
	"github.com/stretchr/testify/require"
)

// Distinctive secrets, so that a leak cannot be a coincidence.
const (
	secretIngestKey = "ingest-Kq7vX2pLm9TzW4"
	secretYTKeyOne  = "yt-key-one-8Hd3Jw5QnB"
	secretYTKeyTwo  = "yt-key-two-R4cY6bVe1M"
	secretAdmin     = "admtok-Zp3Wq8Lx5Nc2Gh"
)

var allSecrets = []string{secretIngestKey, secretYTKeyOne, secretYTKeyTwo, secretAdmin}

// listeners puts every listener on a free loopback port.
const listeners = `
public: {listen: "127.0.0.1:0"}
rtmp: {listen: "127.0.0.1:0"}
rtsp: {listen: ""}
webrtc: {udp_port: 0, announce_loopback: true}
`

// TestE2EJibriToTwoDestinations: Jibri pushes a session; seance forwards it
// to two YouTube-like servers, one with the key in `key`, one with the key
// at the end of the URL.
func TestE2EJibriToTwoDestinations(t *testing.T) {
	requireTools(t)
	const dur = 12 * time.Second
	ng := startNginx(t)
	s := startSeance(t, listeners+fmt.Sprintf(`
admin: {listen: "127.0.0.1:0", token: %q}
channels:
  - name: conseil
    ingest: {key: %q}
    grace: 2s
    destinations:
      - {name: youtube, url: %q, key: %q}
      - {name: youtube-backup, url: %q}
`, secretAdmin, secretIngestKey, ng.url(), secretYTKeyOne, ng.url()+"/"+secretYTKeyTwo), secretAdmin)

	pub := startPublisher(t, s.publishURL("conseil", secretIngestKey), dur)
	s.waitChannel("conseil", "live", "live", 15*time.Second)
	require.NoError(t, pub.wait(t, dur+30*time.Second), "ffmpeg: %s", pub.output())
	// The grace period runs out, then the destinations close.
	s.waitChannel("conseil", "idle", "idle", 15*time.Second)

	metrics := s.mustGet("/metrics")
	api := s.mustGet("/api/v1/channels")
	for _, d := range []string{"youtube", "youtube-backup"} {
		require.Zero(t, metric(t, metrics, `seance_destination_reconnects_total{channel="conseil",destination="`+d+`"}`), d)
	}
	require.Equal(t, 1.0, metric(t, metrics, `seance_rtmp_connections_total{result="accepted"}`))
	for _, path := range []string{"/metrics", "/api/v1/channels"} {
		code, body, err := s.get(path, false)
		require.NoError(t, err)
		require.Equal(t, http.StatusUnauthorized, code, "%s without the token: %s", path, body)
	}
	s.stop()
	ng.stop()

	for _, key := range []string{secretYTKeyOne, secretYTKeyTwo} {
		files := ng.recordings(key)
		require.Len(t, files, 1, "one connection per destination")
		requireRecording(t, files[0], dur*9/10)
	}
	requireNoSecrets(t, allSecrets, map[string]string{
		"logs": s.logs.String(), "/metrics": metrics, "/api/v1/channels": api, "ffmpeg output": pub.output(),
	})
}

// TestE2EDestinationDownAtStart: one destination's server comes up 5 s
// after the session starts; seance keeps retrying it, and the other
// destination never notices.
func TestE2EDestinationDownAtStart(t *testing.T) {
	requireTools(t)
	const (
		dur   = 14 * time.Second
		delay = 5 * time.Second
	)
	ngA := startNginx(t)
	ngB := newNginx(t)
	s := startSeance(t, listeners+fmt.Sprintf(`
admin: {listen: "127.0.0.1:0"}
channels:
  - name: conseil
    ingest: {key: %q}
    grace: 1s
    destinations:
      - {name: a, url: %q, key: %q}
      - {name: b, url: %q, key: %q}
`, secretIngestKey, ngA.url(), secretYTKeyOne, ngB.url(), secretYTKeyTwo), "")

	pub := startPublisher(t, s.publishURL("conseil", secretIngestKey), dur)
	started := time.Now()
	s.waitChannel("conseil", "live", "", 15*time.Second)
	time.Sleep(time.Until(started.Add(delay))) // schedules B's server start
	ngB.start()
	require.NoError(t, pub.wait(t, dur+30*time.Second), "ffmpeg: %s", pub.output())
	s.waitChannel("conseil", "idle", "idle", 15*time.Second)

	ch, err := s.channel("conseil")
	require.NoError(t, err)
	require.Zero(t, ch.Destinations[0].Reconnects, "a")
	require.Positive(t, ch.Destinations[1].Reconnects, "b was down: seance retried it")
	s.stop()
	ngA.stop()
	ngB.stop()

	files := ngA.recordings(secretYTKeyOne)
	require.Len(t, files, 1, "a: one connection")
	requireRecording(t, files[0], dur*9/10)

	// B: the longest connection covers the session from about when its
	// server came up (minus the backoff).
	files = ngB.recordings(secretYTKeyTwo)
	require.NotEmpty(t, files, "b got nothing")
	best, bestDur := "", 0.0
	for _, f := range files {
		if _, _, _, d := ffprobe(t, f); d > bestDur {
			best, bestDur = f, d
		}
	}
	requireRecording(t, best, 5*time.Second)
	requireNoSecrets(t, allSecrets, map[string]string{"logs": s.logs.String()})
}

// TestE2EPublisherRestartWithinGrace: Jibri crashes and a new Jibri comes
// back within the grace period: YouTube sees one continuous stream on one
// connection.
func TestE2EPublisherRestartWithinGrace(t *testing.T) {
	requireTools(t)
	const leg = 6 * time.Second
	ng := startNginx(t)
	s := startSeance(t, listeners+fmt.Sprintf(`
admin: {listen: "127.0.0.1:0"}
channels:
  - name: conseil
    ingest: {key: %q}
    grace: 10s
    destinations:
      - {name: youtube, url: %q, key: %q}
      - {name: youtube-backup, url: %q}
`, secretIngestKey, ng.url(), secretYTKeyOne, ng.url()+"/"+secretYTKeyTwo), "")
	url := s.publishURL("conseil", secretIngestKey)

	pub1 := startPublisher(t, url, 5*leg)
	started := time.Now()
	s.waitChannel("conseil", "live", "live", 15*time.Second)
	time.Sleep(time.Until(started.Add(leg))) // schedules the crash
	require.NoError(t, pub1.cmd.Process.Kill())
	require.Error(t, pub1.wait(t, 5*time.Second))
	s.waitChannel("conseil", "interrupted", "live", 5*time.Second)

	time.Sleep(2 * time.Second) // schedules the new publisher
	pub2 := startPublisher(t, url, leg)
	ch := s.waitChannel("conseil", "live", "live", 10*time.Second)
	require.Equal(t, 1, ch.Health.Reconnects, "publisher_reconnects")
	require.NoError(t, pub2.wait(t, leg+30*time.Second), "ffmpeg: %s", pub2.output())
	// The ingest has read everything once the channel is interrupted;
	// shutting seance down then ends the destinations' streams.
	s.waitChannel("conseil", "interrupted", "live", 10*time.Second)

	metrics := s.mustGet("/metrics")
	for _, d := range []string{"youtube", "youtube-backup"} {
		require.Zero(t, metric(t, metrics, `seance_destination_reconnects_total{channel="conseil",destination="`+d+`"}`), d)
	}
	s.stop()
	ng.stop()

	for _, key := range []string{secretYTKeyOne, secretYTKeyTwo} {
		files := ng.recordings(key)
		require.Len(t, files, 1, "one connection across the publisher restart")
		requireRecording(t, files[0], 10*time.Second)
		dts := videoDTS(t, files[0])
		require.NotEmpty(t, dts)
		for i := 1; i < len(dts); i++ {
			step := dts[i] - dts[i-1]
			require.Positive(t, step, "video DTS not increasing at packet %d (%.3f → %.3f)", i, dts[i-1], dts[i])
			require.LessOrEqual(t, step, 1.0, "video DTS jumps at packet %d (%.3f → %.3f)", i, dts[i-1], dts[i])
		}
	}
	requireNoSecrets(t, allSecrets, map[string]string{"logs": s.logs.String(), "/metrics": metrics})
}

// TestE2EBadPublishers: while Jibri streams, wrong keys, unknown channels,
// a second publisher, garbage and a player are all turned away, and the
// live session does not notice.
func TestE2EBadPublishers(t *testing.T) {
	requireTools(t)
	const dur = 12 * time.Second
	ng := startNginx(t)
	s := startSeance(t, listeners+fmt.Sprintf(`
admin: {listen: "127.0.0.1:0", token: %q}
channels:
  - name: conseil
    ingest: {key: %q}
    grace: 1s
    destinations:
      - {name: youtube, url: %q, key: %q}
  - name: bibliotheque
    ingest: {key: %q}
    destinations:
      - {name: youtube, url: %q}
`, secretAdmin, secretIngestKey, ng.url(), secretYTKeyOne, "ingest-other-J6tRw0sPq3", ng.url()+"/"+secretYTKeyTwo), secretAdmin)

	live := startPublisher(t, s.publishURL("conseil", secretIngestKey), dur)
	s.waitChannel("conseil", "live", "live", 15*time.Second)

	garbage := make([]byte, 1<<20)
	_, _ = rand.Read(garbage)
	type garbageResult struct {
		how string
		err error
	}
	garbageDone := make(chan garbageResult, 1)
	go func() {
		how, err := rawGarbage(s.app.rtmp.Addr().String(), garbage, 15*time.Second)
		garbageDone <- garbageResult{how, err}
	}()

	observed := map[string]string{}
	for _, tc := range []struct {
		name string
		url  string
	}{
		{"wrong key", s.publishURL("conseil", "not-the-key")},
		{"missing key", s.publishURL("conseil", "")},
		{"unknown channel", s.publishURL("nowhere", secretIngestKey)},
		{"second publisher", s.publishURL("conseil", secretIngestKey)},
	} {
		p := startPublisher(t, tc.url, 3*time.Second)
		err := p.wait(t, 20*time.Second)
		require.Error(t, err, "%s: ffmpeg was not refused", tc.name)
		observed["ffmpeg, "+tc.name] = p.output() + err.Error()
	}

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	player := &gortmplib.Client{URL: mustParseURL(t, "rtmp://"+s.app.rtmp.Addr().String()+"/live#conseil"), Publish: false}
	err := player.Initialize(ctx)
	require.Error(t, err, "a player was accepted")
	observed["player"] = err.Error()

	g := <-garbageDone
	require.NoError(t, g.err, "garbage")
	observed["garbage"] = g.how

	st, err := s.channel("conseil")
	require.NoError(t, err)
	require.Equal(t, "live", st.Health.State, "the live session survived")
	require.NoError(t, live.wait(t, dur+30*time.Second), "ffmpeg: %s", live.output())
	s.waitChannel("conseil", "idle", "idle", 15*time.Second)

	metrics := s.mustGet("/metrics")
	api := s.mustGet("/api/v1/channels")
	for result, want := range map[string]float64{
		"accepted": 1, "bad_key": 2, "unknown_channel": 1, "busy": 1, "play_refused": 1, "bad_request": 1,
	} {
		require.Equal(t, want, metric(t, metrics, `seance_rtmp_connections_total{result="`+result+`"}`), result)
	}
	s.stop()
	ng.stop()

	files := ng.recordings(secretYTKeyOne)
	require.Len(t, files, 1)
	requireRecording(t, files[0], dur*9/10)
	require.Empty(t, ng.recordings(secretYTKeyTwo), "the channel nobody published to pushed something")

	observed["logs"] = s.logs.String()
	observed["/metrics"] = metrics
	observed["/api/v1/channels"] = api
	requireNoSecrets(t, append(allSecrets, "ingest-other-J6tRw0sPq3"), observed)
}

// TestRunVersionAndCheckConfig covers the subcommands that do not serve.
func TestRunVersionAndCheckConfig(t *testing.T) {
	var stdout, stderr bytes.Buffer
	require.Equal(t, 0, run([]string{"version"}, &stdout, &stderr))
	require.True(t, strings.HasPrefix(stdout.String(), "seance "), stdout.String())
	require.Empty(t, stderr.String())

	dir := t.TempDir()
	for _, tc := range []struct {
		name     string
		yaml     string
		code     int
		stdout   string
		stderrOK []string
	}{
		{
			name:   "good",
			yaml:   "channels:\n  - name: demo\n    ingest: {demo: true}\n",
			code:   0,
			stdout: "OK (1 channel(s))",
		},
		{
			name:     "negative grace",
			yaml:     "channels:\n  - name: demo\n    ingest: {demo: true}\n    grace: -5s\n",
			code:     1,
			stderrOK: []string{"channels[0].grace"},
		},
		{
			name:     "bad listen address",
			yaml:     "public: {listen: \"no-port\"}\n",
			code:     1,
			stderrOK: []string{"public.listen"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(dir, strings.ReplaceAll(tc.name, " ", "-")+".yaml")
			require.NoError(t, os.WriteFile(path, []byte(tc.yaml), 0o600))
			var stdout, stderr bytes.Buffer
			require.Equal(t, tc.code, run([]string{"check-config", "-config", path}, &stdout, &stderr), stderr.String())
			require.Contains(t, stdout.String(), tc.stdout)
			for _, s := range tc.stderrOK {
				require.Contains(t, stderr.String(), s)
			}
			if tc.code == 0 {
				require.Empty(t, stderr.String())
			}
		})
	}
}
