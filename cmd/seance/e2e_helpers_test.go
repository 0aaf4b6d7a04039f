package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/seance-relay/seance/configs"
)

// The end-to-end tests talk to real peers: ffmpeg publishing as Jibri does,
// nginx with the RTMP module standing in for YouTube, ffprobe checking what
// arrived. They are installed by `make test`, never skipped.

const (
	toolsHint       = "run make test (installs ffmpeg and nginx with libnginx-mod-rtmp)"
	nginxRTMPModule = "/usr/lib/nginx/modules/ngx_rtmp_module.so"
)

func requireTools(t *testing.T) {
	t.Helper()
	for _, tool := range []string{"ffmpeg", "ffprobe", "nginx"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s is missing: %s", tool, toolsHint)
		}
	}
	if _, err := os.Stat(nginxRTMPModule); err != nil {
		t.Fatalf("%s is missing: %s", nginxRTMPModule, toolsHint)
	}
}

// syncBuffer is a bytes.Buffer safe for concurrent writers (zerolog, exec).
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// ---- seance in-process ----

// seance is the app under test, run in-process with its JSON logs captured.
type seance struct {
	t       *testing.T
	app     *app
	logs    *syncBuffer
	token   string
	cancel  context.CancelFunc
	done    chan error
	stopped bool
	http    *http.Client
}

// startSeance parses cfgYAML, binds every listener with newApp and runs the
// app until the test ends (or stop).
func startSeance(t *testing.T, cfgYAML, adminToken string) *seance {
	t.Helper()
	cfg, err := configs.Parse([]byte(cfgYAML), func(string) (string, bool) { return "", false })
	require.NoError(t, err)
	logs := &syncBuffer{}
	a, err := newApp(cfg, zerolog.New(logs).With().Timestamp().Logger())
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	s := &seance{
		t: t, app: a, logs: logs, token: adminToken, cancel: cancel,
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

// stop cancels the app and waits for run to return. It is idempotent.
func (s *seance) stop() {
	s.t.Helper()
	if s.stopped {
		return
	}
	s.stopped = true
	s.cancel()
	select {
	case err := <-s.done:
		assert.NoError(s.t, err, "app.run")
	case <-time.After(10 * time.Second):
		s.t.Error("seance did not stop within 10 s of its context being cancelled")
	}
}

// publishURL is the URL Jitsi's "Start live stream" dialog would get.
func (s *seance) publishURL(channel, key string) string {
	u := fmt.Sprintf("rtmp://%s/live/%s", s.app.rtmp.Addr(), channel)
	if key != "" {
		u += "?key=" + key
	}
	return u
}

// get fetches an admin path, with the bearer token when auth is set.
func (s *seance) get(path string, auth bool) (int, string, error) {
	req, err := http.NewRequest(http.MethodGet, "http://"+s.app.admin.Addr().String()+path, nil)
	if err != nil {
		return 0, "", err
	}
	if auth && s.token != "" {
		req.Header.Set("Authorization", "Bearer "+s.token)
	}
	resp, err := s.http.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body), err
}

// mustGet fetches an admin path with the token and requires a 200.
func (s *seance) mustGet(path string) string {
	s.t.Helper()
	code, body, err := s.get(path, true)
	require.NoError(s.t, err)
	require.Equal(s.t, http.StatusOK, code, body)
	return body
}

// apiChannel is the part of /api/v1/channels the tests read.
type apiChannel struct {
	Name   string `json:"name"`
	Health struct {
		State      string `json:"state"`
		Reconnects int    `json:"publisher_reconnects"`
	} `json:"health"`
	Destinations []struct {
		Name       string `json:"name"`
		State      string `json:"state"`
		Bytes      uint64 `json:"bytes"`
		Reconnects int    `json:"reconnects"`
		LastError  string `json:"last_error"`
	} `json:"destinations"`
}

// channel reads one channel from the admin API.
func (s *seance) channel(name string) (apiChannel, error) {
	code, body, err := s.get("/api/v1/channels", true)
	if err != nil {
		return apiChannel{}, err
	}
	if code != http.StatusOK {
		return apiChannel{}, fmt.Errorf("GET /api/v1/channels: %d %s", code, body)
	}
	var out struct {
		Channels []apiChannel `json:"channels"`
	}
	if err := json.Unmarshal([]byte(body), &out); err != nil {
		return apiChannel{}, err
	}
	for _, c := range out.Channels {
		if c.Name == name {
			return c, nil
		}
	}
	return apiChannel{}, fmt.Errorf("no channel %q in %s", name, body)
}

// waitChannel waits until the channel is in state and every destination
// in destState ("" for any).
func (s *seance) waitChannel(name, state, destState string, timeout time.Duration) apiChannel {
	s.t.Helper()
	var last apiChannel
	require.EventuallyWithT(s.t, func(c *assert.CollectT) {
		ch, err := s.channel(name)
		require.NoError(c, err)
		last = ch
		require.Equal(c, state, ch.Health.State, "channel state")
		if destState != "" {
			for _, d := range ch.Destinations {
				require.Equal(c, destState, d.State, "destination %s state (last error: %s)", d.Name, d.LastError)
			}
		}
	}, timeout, 50*time.Millisecond)
	return last
}

// metric returns a sample of the /metrics body, e.g.
// `seance_rtmp_connections_total{result="busy"}`; the series must exist.
func metric(t *testing.T, body, series string) float64 {
	t.Helper()
	sc := bufio.NewScanner(strings.NewReader(body))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), series+" "); ok {
			f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
			require.NoError(t, err, series)
			return f
		}
	}
	t.Fatalf("no series %s in /metrics", series)
	return 0
}

// ---- nginx-rtmp, the YouTube stand-in ----

type nginxRTMP struct {
	t      *testing.T
	dir    string
	port   int
	cmd    *exec.Cmd
	done   chan struct{}
	output syncBuffer
}

// newNginx reserves a port and writes the config; start runs it.
func newNginx(t *testing.T) *nginxRTMP {
	t.Helper()
	n := &nginxRTMP{t: t, dir: t.TempDir(), port: freePort(t), done: make(chan struct{})}
	require.NoError(t, os.Mkdir(filepath.Join(n.dir, "rec"), 0o755))
	conf := fmt.Sprintf(`load_module %s;
daemon off; master_process off; pid %[2]s/nginx.pid; error_log %[2]s/error.log info;
events {}
rtmp { server { listen 127.0.0.1:%[3]d; application live2 { live on; record all; record_path %[2]s/rec; record_unique on; } } }
`, nginxRTMPModule, n.dir, n.port)
	require.NoError(t, os.WriteFile(filepath.Join(n.dir, "nginx.conf"), []byte(conf), 0o644))
	t.Cleanup(func() {
		n.stop()
		if t.Failed() {
			errLog, _ := os.ReadFile(filepath.Join(n.dir, "error.log"))
			t.Logf("nginx on port %d: %s\nerror.log (tail):\n%s", n.port, n.output.String(), tail(string(errLog), 3000))
		}
	})
	return n
}

func startNginx(t *testing.T) *nginxRTMP {
	n := newNginx(t)
	n.start()
	return n
}

func (n *nginxRTMP) start() {
	n.t.Helper()
	n.cmd = exec.CommandContext(n.t.Context(), "nginx", "-e", filepath.Join(n.dir, "error.log"),
		"-c", filepath.Join(n.dir, "nginx.conf"), "-p", n.dir)
	n.cmd.Stdout, n.cmd.Stderr = &n.output, &n.output
	require.NoError(n.t, n.cmd.Start())
	go func() {
		_ = n.cmd.Wait()
		close(n.done)
	}()
	require.Eventually(n.t, func() bool {
		select {
		case <-n.done:
			return true
		default:
		}
		c, err := net.DialTimeout("tcp", n.addr(), time.Second)
		if err != nil {
			return false
		}
		c.Close()
		return true
	}, 10*time.Second, 20*time.Millisecond, "nginx does not accept on %s", n.addr())
	select {
	case <-n.done:
		n.t.Fatalf("nginx exited at start: %s", n.output.String())
	default:
	}
}

func (n *nginxRTMP) addr() string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(n.port)) }

// url is the ingestion URL without stream key, like YouTube's.
func (n *nginxRTMP) url() string { return "rtmp://" + n.addr() + "/live2" }

// stop shuts nginx down gracefully (SIGQUIT), which closes the recordings.
func (n *nginxRTMP) stop() {
	if n.cmd == nil || n.cmd.Process == nil {
		return
	}
	select {
	case <-n.done:
		return
	default:
	}
	_ = n.cmd.Process.Signal(syscall.SIGQUIT)
	select {
	case <-n.done:
	case <-time.After(5 * time.Second):
		n.t.Errorf("nginx did not stop within 5 s of SIGQUIT: killing it")
		_ = n.cmd.Process.Kill()
		<-n.done
	}
}

// recordings lists the files recorded for a stream key, one per connection
// (record_unique: <key>-<unix time>.flv).
func (n *nginxRTMP) recordings(key string) []string {
	n.t.Helper()
	files, err := filepath.Glob(filepath.Join(n.dir, "rec", key+"-*.flv"))
	require.NoError(n.t, err)
	slices.Sort(files)
	return files
}

func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	port := ln.Addr().(*net.TCPAddr).Port
	require.NoError(t, ln.Close())
	return port
}

// ---- ffmpeg, publishing as Jibri does ----

type publisher struct {
	cmd    *exec.Cmd
	url    string
	stderr syncBuffer
	done   chan struct{}
	err    error
}

// startPublisher runs ffmpeg with Jibri's encoder settings for dur.
func startPublisher(t *testing.T, url string, dur time.Duration) *publisher {
	t.Helper()
	p := &publisher{url: url, done: make(chan struct{})}
	p.cmd = exec.CommandContext(t.Context(), "ffmpeg", "-nostdin", "-v", "error", "-re",
		"-f", "lavfi", "-i", "testsrc2=size=1280x720:rate=30",
		"-f", "lavfi", "-i", "sine=frequency=440:sample_rate=44100",
		"-t", strconv.FormatFloat(dur.Seconds(), 'f', -1, 64),
		"-c:v", "libx264", "-pix_fmt", "yuv420p", "-r", "30", "-crf", "25", "-preset", "veryfast",
		"-tune", "zerolatency", "-g", "60", "-maxrate", "2976k", "-bufsize", "5952k",
		"-c:a", "aac", "-ar", "44100", "-b:a", "128k",
		"-f", "flv", url)
	p.cmd.Stdout, p.cmd.Stderr = &p.stderr, &p.stderr
	require.NoError(t, p.cmd.Start())
	go func() {
		p.err = p.cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		_ = p.cmd.Process.Kill()
		<-p.done
	})
	return p
}

// wait waits for ffmpeg to exit and returns its exit error.
func (p *publisher) wait(t *testing.T, timeout time.Duration) error {
	t.Helper()
	select {
	case <-p.done:
		return p.err
	case <-time.After(timeout):
		t.Fatalf("ffmpeg publishing to %s did not exit within %s", p.url, timeout)
		return nil
	}
}

// output is ffmpeg's stderr with the URL it was given (which holds the
// ingest key the test itself chose) cut out: what is left came from the
// server or from ffmpeg's own reasoning.
func (p *publisher) output() string {
	return strings.ReplaceAll(p.stderr.String(), p.url, "<url>")
}

// ---- checks on what arrived ----

type probeResult struct {
	Streams []struct {
		CodecName string `json:"codec_name"`
		Width     int    `json:"width"`
		Height    int    `json:"height"`
	} `json:"streams"`
	Format struct {
		Duration string `json:"duration"`
	} `json:"format"`
}

func ffprobe(t *testing.T, file string) (codecs []string, width, height int, dur float64) {
	t.Helper()
	out, err := exec.CommandContext(t.Context(), "ffprobe", "-v", "error",
		"-show_entries", "stream=codec_name,width,height:format=duration", "-of", "json", file).Output()
	require.NoError(t, err, "ffprobe %s", file)
	var pr probeResult
	require.NoError(t, json.Unmarshal(out, &pr), string(out))
	for _, s := range pr.Streams {
		codecs = append(codecs, s.CodecName)
		if s.Width > 0 {
			width, height = s.Width, s.Height
		}
	}
	slices.Sort(codecs)
	dur, err = strconv.ParseFloat(pr.Format.Duration, 64)
	require.NoError(t, err, "duration of %s: %s", file, out)
	return codecs, width, height, dur
}

// requireRecording checks that file is Jibri's stream as sent: H.264
// 1280x720 with AAC, at least minDur long, and that it decodes without a
// single error.
func requireRecording(t *testing.T, file string, minDur time.Duration) float64 {
	t.Helper()
	codecs, w, h, dur := ffprobe(t, file)
	require.Equal(t, []string{"aac", "h264"}, codecs, file)
	require.Equal(t, [2]int{1280, 720}, [2]int{w, h}, file)
	require.GreaterOrEqual(t, dur, minDur.Seconds(), "duration of %s", file)
	out, err := exec.CommandContext(t.Context(), "ffmpeg", "-nostdin", "-v", "error", "-i", file, "-f", "null", "-").CombinedOutput()
	require.NoError(t, err, "decoding %s: %s", file, out)
	require.Empty(t, string(out), "decoding %s", file)
	return dur
}

// videoDTS returns the video packets' decoding timestamps, in seconds.
func videoDTS(t *testing.T, file string) []float64 {
	t.Helper()
	out, err := exec.CommandContext(t.Context(), "ffprobe", "-v", "error", "-select_streams", "v",
		"-show_entries", "packet=dts_time", "-of", "csv=p=0", file).Output()
	require.NoError(t, err, "ffprobe packets of %s", file)
	var dts []float64
	for line := range strings.FieldsSeq(string(out)) {
		v, err := strconv.ParseFloat(strings.TrimSuffix(line, ","), 64)
		require.NoError(t, err, "dts %q", line)
		dts = append(dts, v)
	}
	return dts
}

// requireNoSecrets checks that no secret appears in any of the texts.
func requireNoSecrets(t *testing.T, secrets []string, texts map[string]string) {
	t.Helper()
	for where, text := range texts {
		for _, s := range secrets {
			require.NotContains(t, text, s, "a secret leaked into %s", where)
		}
	}
}

// rawGarbage writes n random bytes to the RTMP port and reports how the
// server ended the connection; nil error means it did not within timeout.
func rawGarbage(addr string, data []byte, timeout time.Duration) (string, error) {
	c, err := net.DialTimeout("tcp", addr, timeout)
	if err != nil {
		return "", err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(timeout))
	if _, err := c.Write(data); err != nil {
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			return "", fmt.Errorf("write still blocked after %s: the server neither read nor closed", timeout)
		}
		return "write: " + err.Error(), nil
	}
	_, err = io.Copy(io.Discard, c)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return "", fmt.Errorf("connection still open %s after the garbage", timeout)
	}
	if err == nil {
		return "read: EOF", nil
	}
	return "read: " + err.Error(), nil
}

func tail(s string, n int) string {
	if len(s) > n {
		return "…" + s[len(s)-n:]
	}
	return s
}

func mustParseURL(t *testing.T, raw string) *url.URL {
	t.Helper()
	u, err := url.Parse(raw)
	require.NoError(t, err)
	return u
}

// publicGet fetches a path of the public listener and requires a 200.
func (s *seance) publicGet(path string) string {
	s.t.Helper()
	resp, err := s.http.Get("http://" + s.app.public.Addr().String() + path)
	require.NoError(s.t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(s.t, err)
	require.Equal(s.t, http.StatusOK, resp.StatusCode, "GET %s: %s", path, b)
	return string(b)
}
