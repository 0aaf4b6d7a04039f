package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// apiRecording is a recording as the admin API lists it.
type apiRecording struct {
	Name       string  `json:"name"`
	Session    string  `json:"session"`
	Part       int     `json:"part"`
	Duration   float64 `json:"duration_seconds"`
	Size       int64   `json:"size_bytes"`
	InProgress bool    `json:"in_progress"`
	Complete   bool    `json:"complete"`
	URL        string  `json:"url"`
}

// apiRecordingStatus is a channel status's recording object.
type apiRecordingStatus struct {
	Enabled   bool   `json:"enabled"`
	State     string `json:"state"`
	File      string `json:"file"`
	Bytes     int64  `json:"bytes"`
	Errors    int    `json:"errors"`
	LastError string `json:"last_error"`
}

// httpDo sends one request and returns the status, headers and body.
func httpDo(t *testing.T, method, url string, header http.Header) (int, http.Header, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	require.NoError(t, err)
	for k, v := range header {
		req.Header[k] = v
	}
	c := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := c.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, resp.Header, string(body)
}

// recordingsAt lists a channel's recordings from the admin API at base.
func recordingsAt(_ require.TestingT, base, token, channel string) (apiRecordingStatus, []apiRecording, error) {
	req, err := http.NewRequest(http.MethodGet, base+"/api/v1/channels/"+channel+"/recordings", nil)
	if err != nil {
		return apiRecordingStatus{}, nil, err
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	c := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := c.Do(req)
	if err != nil {
		return apiRecordingStatus{}, nil, err
	}
	defer resp.Body.Close()
	var out struct {
		Recording  apiRecordingStatus `json:"recording"`
		Recordings []apiRecording     `json:"recordings"`
	}
	if resp.StatusCode != http.StatusOK {
		return apiRecordingStatus{}, nil, fmt.Errorf("GET recordings: %s", resp.Status)
	}
	err = json.NewDecoder(resp.Body).Decode(&out)
	return out.Recording, out.Recordings, err
}

// replayReport is what web/browsertest/replay.mjs prints.
type replayReport struct {
	Errors         []string `json:"errors"`
	OffOrigin      []string `json:"offOrigin"`
	ConsoleErrors  []string `json:"consoleErrors"`
	Cookies        int      `json:"cookies"`
	ReplayRequests []struct {
		Range  string `json:"range"`
		Status int    `json:"status"`
	} `json:"replayRequests"`
	List struct {
		Heading string `json:"heading"`
		Links   []struct {
			Text string `json:"text"`
			Href string `json:"href"`
		} `json:"links"`
		PlayerHidden bool           `json:"playerHidden"`
		Violations   []axeViolation `json:"violations"`
	} `json:"list"`
	Play struct {
		Focused string       `json:"focused"`
		Now     string       `json:"now"`
		Before  replaySample `json:"before"`
		After   replaySample `json:"after"`
		Current string       `json:"current"`
	} `json:"play"`
	Seek struct {
		Target       float64      `json:"target"`
		SeekedMs     int          `json:"seekedMs"`
		FramesBefore int          `json:"framesBefore"`
		At           replaySample `json:"at"`
		Later        replaySample `json:"later"`
	} `json:"seek"`
	AxePlaying []axeViolation `json:"axePlaying"`
	Keyboard   string         `json:"keyboard"`
	English    struct {
		Heading string `json:"heading"`
		First   string `json:"first"`
	} `json:"english"`
	Other struct {
		Replays int `json:"replays"`
	} `json:"other"`
}

type replaySample struct {
	CurrentTime float64   `json:"currentTime"`
	Duration    float64   `json:"duration"`
	Paused      bool      `json:"paused"`
	VideoWidth  int       `json:"videoWidth"`
	VideoHeight int       `json:"videoHeight"`
	Frames      int       `json:"frames"`
	Seekable    []float64 `json:"seekable"`
}

// TestRecordingSession: Jibri publishes a 10 s session; seance records it
// to one file that covers the whole session and decodes without an error.
// The admin API shows the recording while it runs, refuses to delete the
// file being written, lists, serves with range requests and deletes the
// finished file; the public replay list offers it, and Chromium plays it
// from the watch page and seeks to its middle (axe-core: no violation).
// No answer, metric or log holds a secret.
func TestRecordingSession(t *testing.T) {
	requireTools(t)
	driver := browserDriver(t)
	const dur = 10 * time.Second
	recDir := t.TempDir()
	const villeKey = "ville-ingest-Hy6Tr2"
	s := startSeance(t, listeners+fmt.Sprintf(`
admin: {listen: "127.0.0.1:0", token: %q}
channels:
  - name: bourg
    title: "Conseil municipal de Bourg"
    ingest: {key: %q}
    grace: 0s
    record: {enabled: true, dir: %q}
    replay: public
  - name: ville
    ingest: {key: %q}
    record: {enabled: true, dir: %q}
`, secretAdmin, secretIngestKey, recDir, villeKey, recDir), secretAdmin)
	admin := "http://" + s.app.admin.Addr().String()
	public := "http://" + s.app.public.Addr().String()
	auth := http.Header{"Authorization": {"Bearer " + secretAdmin}}
	texts := map[string]string{}

	pub := startPublisher(t, s.publishURL("bourg", secretIngestKey), dur)
	var live apiRecordingStatus
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		st, list, err := recordingsAt(c, admin, secretAdmin, "bourg")
		require.NoError(c, err)
		require.Equal(c, "recording", st.State)
		require.Len(c, list, 1)
		require.True(c, list[0].InProgress)
		require.Positive(c, list[0].Size)
		live = st
	}, 15*time.Second, 50*time.Millisecond)
	code, _, body := httpDo(t, "DELETE", admin+"/api/v1/channels/bourg/recordings/"+live.File, auth)
	require.Equal(t, http.StatusConflict, code, body)
	require.Contains(t, body, "recording_in_progress")
	code, _, body = httpDo(t, "GET", public+"/api/public/channels/bourg/recordings", nil)
	require.Equal(t, http.StatusOK, code)
	require.Contains(t, body, `"sessions": []`, "the file being written is not offered")
	texts["channel status while recording"] = s.mustGet("/api/v1/channels/bourg")

	require.NoError(t, pub.wait(t, dur+30*time.Second), "ffmpeg: %s", pub.output())
	s.waitChannel("bourg", "idle", "", 10*time.Second)
	var rec apiRecording
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		st, list, err := recordingsAt(c, admin, secretAdmin, "bourg")
		require.NoError(c, err)
		require.Equal(c, "idle", st.State)
		require.Len(c, list, 1)
		require.True(c, list[0].Complete)
		rec = list[0]
	}, 10*time.Second, 50*time.Millisecond)
	require.Equal(t, live.File, rec.Name)
	require.InDelta(t, dur.Seconds(), rec.Duration, 1.0, "the whole session is recorded")
	file := filepath.Join(recDir, "bourg", rec.Name)
	got := requireRecording(t, file, dur-time.Second)
	require.InDelta(t, dur.Seconds(), got, 1.0, "ffprobe's duration")

	t.Run("admin download with ranges", func(t *testing.T) {
		want, err := os.ReadFile(file)
		require.NoError(t, err)
		code, h, body := httpDo(t, "GET", admin+rec.URL, auth)
		require.Equal(t, http.StatusOK, code)
		require.Equal(t, "video/mp4", h.Get("Content-Type"))
		require.True(t, bytes.Equal(want, []byte(body)), "the download is the file")
		rng := http.Header{"Authorization": auth["Authorization"], "Range": {"bytes=1000000-1000999"}}
		code, h, body = httpDo(t, "GET", admin+rec.URL, rng)
		require.Equal(t, http.StatusPartialContent, code)
		require.Equal(t, fmt.Sprintf("bytes 1000000-1000999/%d", len(want)), h.Get("Content-Range"))
		require.True(t, bytes.Equal(want[1000000:1001000], []byte(body)))
		code, _, _ = httpDo(t, "GET", admin+rec.URL, nil)
		require.Equal(t, http.StatusUnauthorized, code)
		for _, name := range []string{"..%2F..%2Fbourg%2F" + rec.Name, "..%2Fville", "%2Fetc%2Fpasswd"} {
			code, _, body := httpDo(t, "GET", admin+"/api/v1/channels/bourg/recordings/"+name, auth)
			require.Equal(t, http.StatusNotFound, code, name)
			require.Contains(t, body, "recording_not_found")
		}
		texts["recordings"] = s.mustGet("/api/v1/channels/bourg/recordings")
		texts["all recordings"] = s.mustGet("/api/v1/recordings")
	})

	t.Run("public replay", func(t *testing.T) {
		code, _, body := httpDo(t, "GET", public+"/api/public/channels/bourg/recordings", nil)
		require.Equal(t, http.StatusOK, code)
		require.Contains(t, body, `"url": "/replay/bourg/`+rec.Name+`"`)
		texts["public recordings"] = body
		code, h, _ := httpDo(t, "GET", public+"/replay/bourg/"+rec.Name, http.Header{"Range": {"bytes=0-99"}})
		require.Equal(t, http.StatusPartialContent, code)
		require.Equal(t, "video/mp4", h.Get("Content-Type"))
		require.Equal(t, "public, max-age=3600, immutable", h.Get("Cache-Control"))
		code, _, _ = httpDo(t, "GET", public+"/api/public/channels/ville/recordings", nil)
		require.Equal(t, http.StatusNotFound, code, "ville's replays are not public")
	})

	t.Run("Chromium plays and seeks", func(t *testing.T) {
		shots := os.Getenv("SEANCE_SCREENSHOTS")
		if shots == "" {
			shots = os.TempDir()
		}
		ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, "node", "replay.mjs")
		cmd.Dir = driver
		cmd.Env = append(os.Environ(),
			"PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1",
			"SEANCE_URL="+public,
			"CHANNEL=bourg",
			"OTHER=ville",
			"CHROMIUM="+chromiumPath,
			"SCREENSHOTS="+shots,
		)
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		start := time.Now()
		err := cmd.Run()
		t.Logf("replay driver ran %s:\n%s", time.Since(start).Round(time.Millisecond), stderr.String())
		require.NoError(t, err, "node replay.mjs")
		var r replayReport
		require.NoError(t, json.Unmarshal(stdout.Bytes(), &r), "driver output: %s", stdout.String())
		require.Empty(t, r.Errors, "driver steps failed")

		require.Equal(t, "Revoir les séances", r.List.Heading)
		require.Len(t, r.List.Links, 1)
		require.Regexp(t, regexp.MustCompile(`^Revoir la séance du \d{1,2}(er)? \S+ à \d{1,2} h \d\d$`), r.List.Links[0].Text)
		require.Equal(t, "/replay/bourg/"+rec.Name, r.List.Links[0].Href)
		require.True(t, r.List.PlayerHidden, "no player before a choice")
		requireNoViolations(t, "/watch/bourg with its replay list", r.List.Violations)

		p := r.Play
		require.Equal(t, "replay-now", p.Focused, "focus moves to what plays")
		require.True(t, strings.HasPrefix(p.Now, "Lecture : Revoir la séance du"), p.Now)
		require.Equal(t, "true", p.Current)
		require.Equal(t, [2]int{1280, 720}, [2]int{p.After.VideoWidth, p.After.VideoHeight})
		require.False(t, p.After.Paused)
		require.Greater(t, p.After.CurrentTime-p.Before.CurrentTime, 0.5, "currentTime advances")
		require.Greater(t, p.After.Frames, p.Before.Frames, "frames are decoded")
		require.InDelta(t, rec.Duration, p.After.Duration, 0.5, "the browser knows the duration")
		require.Len(t, p.After.Seekable, 2)
		require.InDelta(t, p.After.Duration, p.After.Seekable[1], 0.5, "the whole file is seekable")

		k := r.Seek
		t.Logf("seek to %.1f s: %d ms", k.Target, k.SeekedMs)
		require.GreaterOrEqual(t, k.At.CurrentTime, k.Target)
		require.Greater(t, k.Later.CurrentTime, k.Target+1, "it plays on from the middle")
		require.Greater(t, k.Later.Frames, k.At.Frames, "frames decoded after the seek")
		requireNoViolations(t, "/watch/bourg while a replay plays", r.AxePlaying)
		require.Equal(t, "replay-video", r.Keyboard, "Tab reaches the video's controls")

		ranged := false
		for _, rq := range r.ReplayRequests {
			if rq.Status == http.StatusPartialContent && rq.Range != "" {
				ranged = true
			}
		}
		require.True(t, ranged, "Chromium reads the file with range requests: %+v", r.ReplayRequests)

		require.Equal(t, "Replay past sessions", r.English.Heading)
		require.True(t, strings.HasPrefix(r.English.First, "Replay the session of "), r.English.First)
		require.Zero(t, r.Other.Replays, "a channel without public replays shows none")
		require.Empty(t, r.OffOrigin)
		require.Zero(t, r.Cookies)
		var unexpected []string
		for _, e := range r.ConsoleErrors {
			// The live player's WHEP answers 409 while the channel is idle.
			if strings.Contains(e, "the server responded with a status of 409") {
				continue
			}
			unexpected = append(unexpected, e)
		}
		require.Empty(t, unexpected, "console errors (CSP violations show here)")
	})

	t.Run("delete", func(t *testing.T) {
		code, _, body := httpDo(t, "DELETE", admin+rec.URL, auth)
		require.Equal(t, http.StatusNoContent, code, body)
		_, err := os.Stat(file)
		require.ErrorIs(t, err, os.ErrNotExist)
		_, list, err := recordingsAt(t, admin, secretAdmin, "bourg")
		require.NoError(t, err)
		require.Empty(t, list)
	})

	metrics := s.mustGet("/metrics")
	require.Positive(t, metric(t, metrics, `seance_recording_bytes_total{channel="bourg"}`))
	require.Equal(t, 1.0, metric(t, metrics, `seance_recording_files_total{channel="bourg"}`))
	require.Zero(t, metric(t, metrics, `seance_recording_errors_total{channel="bourg"}`))
	require.Zero(t, metric(t, metrics, `seance_recording_up{channel="bourg"}`))
	require.Equal(t, 1.0, metric(t, metrics, `seance_recording_files_deleted_total{channel="bourg",reason="api"}`))
	texts["metrics"] = metrics
	s.stop()
	texts["logs"] = s.logs.String()
	requireNoSecrets(t, []string{secretAdmin, secretIngestKey, villeKey}, texts)
}

// buildSeance builds the binary into a temporary directory.
func buildSeance(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "seance")
	build := exec.Command("go", "build", "-o", bin, ".")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	out, err := build.CombinedOutput()
	require.NoError(t, err, string(out))
	return bin
}

// TestRecordingKill9: seance is killed with SIGKILL 15 s into a 20 s
// session. The file on disk holds everything but the fragment being
// assembled; started again on the same directory, seance finishes it, and
// it then probes and decodes without an error and covers at least 12 s.
func TestRecordingKill9(t *testing.T) {
	requireTools(t)
	bin := buildSeance(t)
	dir := t.TempDir()
	recDir := filepath.Join(dir, "records")
	adminPort, rtmpPort := freePort(t), freePort(t)
	cfg := filepath.Join(dir, "seance.yaml")
	require.NoError(t, os.WriteFile(cfg, fmt.Appendf(nil, `
public: {listen: "127.0.0.1:0"}
admin: {listen: "127.0.0.1:%d"}
rtmp: {listen: "127.0.0.1:%d"}
rtsp: {listen: ""}
webrtc: {udp_port: 0, announce_loopback: true}
channels:
  - name: bourg
    ingest: {key: %q}
    record: {enabled: true, dir: %q}
`, adminPort, rtmpPort, secretIngestKey, recDir), 0o600))
	admin := fmt.Sprintf("http://127.0.0.1:%d", adminPort)

	start := func() (*exec.Cmd, *lockedBuffer, chan struct{}) {
		var logs lockedBuffer
		cmd := exec.Command(bin, "-config", cfg)
		cmd.Stdout, cmd.Stderr = &logs, &logs
		require.NoError(t, cmd.Start())
		done := make(chan struct{}) // closed when it exited
		go func() {
			_ = cmd.Wait()
			close(done)
		}()
		t.Cleanup(func() {
			_ = cmd.Process.Kill()
			<-done
			if t.Failed() {
				t.Logf("seance logs:\n%s", logs.String())
			}
		})
		require.EventuallyWithT(t, func(c *assert.CollectT) {
			_, _, err := recordingsAt(c, admin, "", "bourg")
			require.NoError(c, err)
		}, 15*time.Second, 50*time.Millisecond, "seance does not answer")
		return cmd, &logs, done
	}

	first, _, done := start()
	pub := startPublisher(t, fmt.Sprintf("rtmp://127.0.0.1:%d/live/bourg?key=%s", rtmpPort, secretIngestKey), 20*time.Second)
	published := time.Now()
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		st, _, err := recordingsAt(c, admin, "", "bourg")
		require.NoError(c, err)
		require.Equal(c, "recording", st.State)
	}, 15*time.Second, 50*time.Millisecond)
	// The scenario, not a synchronisation: the crash comes 15 s into
	// the session.
	time.Sleep(time.Until(published.Add(15 * time.Second)))
	require.NoError(t, first.Process.Signal(syscall.SIGKILL))
	<-done
	_ = pub.wait(t, 10*time.Second) // its connection broke

	files, err := filepath.Glob(filepath.Join(recDir, "bourg", "bourg_*.mp4"))
	require.NoError(t, err)
	require.Len(t, files, 1)
	raw, err := os.ReadFile(files[0])
	require.NoError(t, err)
	require.NotEqual(t, "mfro", string(raw[len(raw)-12:len(raw)-8]), "killed, seance could not finish the file")

	_, logs, _ := start()
	var rec apiRecording
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		_, list, err := recordingsAt(c, admin, "", "bourg")
		require.NoError(c, err)
		require.Len(c, list, 1)
		require.True(c, list[0].Complete)
		rec = list[0]
	}, 15*time.Second, 50*time.Millisecond, "seance finishes the file at start")
	require.Equal(t, filepath.Base(files[0]), rec.Name)
	dur := requireRecording(t, files[0], 12*time.Second)
	t.Logf("after the crash at 15 s, the file holds %.2f s", dur)
	require.Contains(t, logs.String(), "finished a recording left unfinished")
	_, _, metrics := httpDo(t, "GET", admin+"/metrics", nil)
	require.Equal(t, 1.0, metric(t, metrics, `seance_recording_files_repaired_total{channel="bourg"}`))
}

// TestReloadRecording: a reload starts a channel's recorder, changes its
// retention in place (the file being written goes on), and stops it (its
// file is finished and plays); replays follow the replay key.
func TestReloadRecording(t *testing.T) {
	requireTools(t)
	const token = "reload-rec-token-Jq4"
	dir := t.TempDir()
	recDir := filepath.Join(dir, "records")
	path := filepath.Join(dir, "seance.yaml")
	write := func(channel string) {
		require.NoError(t, os.WriteFile(path, fmt.Appendf(nil, `
public: {listen: "127.0.0.1:0"}
admin: {listen: "127.0.0.1:0", token: %q}
rtmp: {listen: ""}
rtsp: {listen: ""}
webrtc: {udp_port: 0, announce_loopback: true}
channels:
  - %s
`, token, channel), 0o600))
	}
	write(`{name: demo, ingest: {demo: true}}`)
	s := startSeanceFile(t, path, token)
	admin := "http://" + s.app.admin.Addr().String()
	public := "http://" + s.app.public.Addr().String()
	s.waitChannel("demo", "live", "", 10*time.Second)
	code, _, body := httpDo(t, "GET", admin+"/api/v1/channels/demo/recordings", http.Header{"Authorization": {"Bearer " + token}})
	require.Equal(t, http.StatusNotFound, code)
	require.Contains(t, body, "recording_disabled")

	reload := func(want string) {
		t.Helper()
		code, body := s.postReload()
		require.Equal(t, http.StatusOK, code, body)
		require.Contains(t, body, want)
	}
	write(fmt.Sprintf(`{name: demo, ingest: {demo: true}, record: {enabled: true, dir: %q}, replay: public}`, recDir))
	reload(`"record",`)
	var first string
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		st, list, err := recordingsAt(c, admin, token, "demo")
		require.NoError(c, err)
		require.Equal(c, "recording", st.State)
		require.Len(c, list, 1)
		first = list[0].Name
	}, 10*time.Second, 50*time.Millisecond)
	code, _, _ = httpDo(t, "GET", public+"/api/public/channels/demo/recordings", nil)
	require.Equal(t, http.StatusOK, code, "replays follow the reload")

	write(fmt.Sprintf(`{name: demo, ingest: {demo: true}, record: {enabled: true, dir: %q, max_size: 10GiB}, replay: public}`, recDir))
	reload(`"record retention"`)
	st, list, err := recordingsAt(t, admin, token, "demo")
	require.NoError(t, err)
	require.Equal(t, "recording", st.State)
	require.Len(t, list, 1)
	require.Equal(t, first, list[0].Name, "a retention change keeps the file going")
	require.True(t, list[0].InProgress)

	// Let the file hold a few fragments, then stop recording.
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		_, list, err := recordingsAt(c, admin, token, "demo")
		require.NoError(c, err)
		require.Len(c, list, 1)
		require.Greater(c, list[0].Duration, 2.5)
	}, 15*time.Second, 100*time.Millisecond)
	write(`{name: demo, ingest: {demo: true}}`)
	reload(`"record"`)
	code, _, _ = httpDo(t, "GET", admin+"/api/v1/channels/demo/recordings", http.Header{"Authorization": {"Bearer " + token}})
	require.Equal(t, http.StatusNotFound, code)
	code, _, _ = httpDo(t, "GET", public+"/api/public/channels/demo/recordings", nil)
	require.Equal(t, http.StatusNotFound, code)
	file := filepath.Join(recDir, "demo", first)
	raw, err := os.ReadFile(file)
	require.NoError(t, err)
	require.Equal(t, "mfro", string(raw[len(raw)-12:len(raw)-8]), "the stopped recorder finished its file")
	requireRecording(t, file, 2*time.Second)
}
