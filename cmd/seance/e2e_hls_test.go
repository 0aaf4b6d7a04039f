package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestE2EHLS: Jibri pushes a session; ffprobe finds H.264 + AAC in its
// live HLS playlist on the public listener, ffmpeg decodes it without an
// error and is counted as an HLS viewer (metrics, public and admin APIs);
// unknown and idle channels answer 404 at once; segments are immutable for
// a CDN, playlists are not; nothing leaks the ingest key.
func TestE2EHLS(t *testing.T) {
	requireTools(t)
	s := startSeance(t, listeners+fmt.Sprintf(`
admin: {listen: "127.0.0.1:0"}
channels:
  - name: conseil
    ingest: {key: %q}
  - name: commission
    ingest: {key: %q}
`, secretIngestKey, secretIngestKey+"-2"), "")
	pub := startPublisher(t, s.publishURL("conseil", secretIngestKey), 25*time.Second)
	s.waitChannel("conseil", "live", "", 15*time.Second)
	base := "http://" + s.app.public.Addr().String() + "/hls/"
	url := base + "conseil/index.m3u8"

	// The first playlist answer waits for the first segment.
	res, body := httpGet(t, url)
	require.Equal(t, http.StatusOK, res.StatusCode, body)
	require.Equal(t, "application/vnd.apple.mpegurl", res.Header.Get("Content-Type"))
	require.Equal(t, "*", res.Header.Get("Access-Control-Allow-Origin"))
	require.NotContains(t, res.Header.Get("Cache-Control"), "immutable")

	out, err := exec.CommandContext(t.Context(), "ffprobe", "-v", "error",
		"-show_entries", "stream=codec_name,width,height", "-of", "json", url).CombinedOutput()
	require.NoError(t, err, "ffprobe: %s", out)
	var probe struct {
		Streams []struct {
			CodecName string `json:"codec_name"`
			Width     int    `json:"width"`
			Height    int    `json:"height"`
		} `json:"streams"`
	}
	require.NoError(t, json.Unmarshal(out, &probe), string(out))
	var codecs []string
	for _, st := range probe.Streams {
		codecs = append(codecs, st.CodecName)
		if st.CodecName == "h264" {
			require.Equal(t, [2]int{1280, 720}, [2]int{st.Width, st.Height})
		}
	}
	require.ElementsMatch(t, []string{"h264", "aac"}, codecs, string(out))

	// A player that reads for a while is an HLS viewer.
	reader := exec.CommandContext(t.Context(), "ffmpeg", "-nostdin", "-v", "error", "-re", "-i", url,
		"-t", "6", "-f", "null", "-")
	var readerOut syncBuffer
	reader.Stdout, reader.Stderr = &readerOut, &readerOut
	require.NoError(t, reader.Start())
	readerDone := make(chan error, 1)
	go func() { readerDone <- reader.Wait() }()
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		code, body, err := s.get("/metrics", true)
		require.NoError(c, err)
		require.Equal(c, http.StatusOK, code)
		require.Regexp(c, `(?m)^seance_viewers\{channel="conseil",protocol="hls"\} [1-9]`, body)
		var pubCh, adm struct {
			Viewers any `json:"viewers"`
		}
		res, body := httpGet(t, "http://"+s.app.public.Addr().String()+"/api/public/channels/conseil")
		require.Equal(c, http.StatusOK, res.StatusCode)
		require.NoError(c, json.Unmarshal([]byte(body), &pubCh))
		require.GreaterOrEqual(c, pubCh.Viewers, 1.0, "public API viewers")
		code, body, err = s.get("/api/v1/channels/conseil", true)
		require.NoError(c, err)
		require.Equal(c, http.StatusOK, code)
		require.NoError(c, json.Unmarshal([]byte(body), &adm))
		require.GreaterOrEqual(c, adm.Viewers.(map[string]any)["hls"], 1.0, "admin API viewers.hls")
	}, 10*time.Second, 200*time.Millisecond)
	select {
	case err := <-readerDone:
		require.NoError(t, err, "ffmpeg reading HLS: %s", readerOut.String())
	case <-time.After(30 * time.Second):
		t.Fatal("ffmpeg reading HLS did not finish")
	}
	require.Empty(t, readerOut.String(), "ffmpeg -v error decoding the live playlist")
	metrics := s.mustGet("/metrics")
	require.GreaterOrEqual(t, metric(t, metrics, `seance_viewer_sessions_total{channel="conseil",protocol="hls"}`), 1.0)
	require.Positive(t, metric(t, metrics, `seance_hls_requests_total{channel="conseil",kind="segment"}`))

	// Segments are immutable, media playlists are short-lived. The default
	// variant (mpegts) has one media playlist, audio and video muxed.
	res, media := httpGet(t, base+"conseil/main_stream.m3u8")
	require.Equal(t, http.StatusOK, res.StatusCode, media)
	require.Equal(t, "public, max-age=1", res.Header.Get("Cache-Control"))
	seg := regexp.MustCompile(`(?m)^[0-9a-f]+_main_seg\d+\.ts$`).FindString(media)
	require.NotEmpty(t, seg, media)
	res, _ = httpGet(t, base+"conseil/"+seg)
	require.Equal(t, http.StatusOK, res.StatusCode)
	require.Equal(t, "public, max-age=86400, immutable", res.Header.Get("Cache-Control"))

	for path, want := range map[string]string{
		"nope/index.m3u8":       "no such channel\n",
		"commission/index.m3u8": "channel is not live\n",
	} {
		start := time.Now()
		res, body := httpGet(t, base+path)
		require.Equal(t, http.StatusNotFound, res.StatusCode, path)
		require.Equal(t, want, body, path)
		require.Less(t, time.Since(start), time.Second, path)
		require.Equal(t, "*", res.Header.Get("Access-Control-Allow-Origin"), path)
	}

	require.NoError(t, pub.cmd.Process.Kill())
	requireNoSecrets(t, allSecrets, map[string]string{"logs": s.logs.String(), "/metrics": metrics, "playlist": media})
}

// httpGet fetches url and returns the answer and its body.
func httpGet(t *testing.T, url string) (*http.Response, string) {
	t.Helper()
	c := &http.Client{Timeout: 15 * time.Second}
	res, err := c.Get(url)
	require.NoError(t, err, url)
	defer res.Body.Close()
	var b bytes.Buffer
	_, err = io.Copy(&b, res.Body)
	require.NoError(t, err, url)
	return res, b.String()
}

// TestE2EHLSBehindProxy: behind nginx (listed in public.trusted_proxies)
// HLS viewers with the same browser on different addresses count as
// different viewers, from nginx's X-Forwarded-For; an address a client
// writes in the header itself changes nothing, through nginx or directly.
func TestE2EHLSBehindProxy(t *testing.T) {
	requireTools(t)
	s := startSeance(t, `
public: {listen: "127.0.0.1:0", trusted_proxies: ["127.0.0.1"]}
admin: {listen: "127.0.0.1:0"}
rtmp: {listen: ""}
rtsp: {listen: ""}
webrtc: {udp_port: 0, announce_loopback: true}
channels:
  - name: demo
    ingest: {demo: true}
`, "")
	proxy := startHTTPProxy(t, s.app.public.Addr().String())
	viaProxy := "http://" + proxy + "/hls/demo/index.m3u8"
	direct := "http://" + s.app.public.Addr().String() + "/hls/demo/index.m3u8"
	// fetch gets url from the loopback address from (Linux routes all of
	// 127.0.0.0/8 to lo), as the same browser every time.
	fetch := func(from, url, xff string) {
		t.Helper()
		c := &http.Client{Timeout: 15 * time.Second, Transport: &http.Transport{
			DialContext:       (&net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}}).DialContext,
			DisableKeepAlives: true,
		}}
		req, err := http.NewRequest(http.MethodGet, url, nil)
		require.NoError(t, err)
		req.Header.Set("User-Agent", "Lavf/59.27.100")
		if xff != "" {
			req.Header.Set("X-Forwarded-For", xff)
		}
		res, err := c.Do(req)
		require.NoError(t, err, url)
		body, err := io.ReadAll(res.Body)
		res.Body.Close()
		require.NoError(t, err)
		require.Equal(t, http.StatusOK, res.StatusCode, "%s from %s: %s", url, from, body)
	}
	hls := func() (viewers, sessions float64) {
		m := s.mustGet("/metrics")
		return metric(t, m, `seance_viewers{channel="demo",protocol="hls"}`),
			metric(t, m, `seance_viewer_sessions_total{channel="demo",protocol="hls"}`)
	}

	fetch("127.0.0.2", viaProxy, "") // waits for the first segment
	v, n := hls()
	require.Equal(t, [2]float64{1, 1}, [2]float64{v, n}, "one viewer behind the proxy")
	fetch("127.0.0.3", viaProxy, "")
	v, n = hls()
	require.Equal(t, [2]float64{2, 2}, [2]float64{v, n}, "a second address behind the proxy is a second viewer")
	fetch("127.0.0.2", viaProxy, "198.51.100.1")
	v, n = hls()
	require.Equal(t, [2]float64{2, 2}, [2]float64{v, n}, "an address the client wrote itself is ignored (nginx appends the real one)")
	fetch("127.0.0.4", direct, "198.51.100.2")
	fetch("127.0.0.4", direct, "198.51.100.3")
	v, n = hls()
	require.Equal(t, [2]float64{3, 3}, [2]float64{v, n}, "X-Forwarded-For from a peer that is not a trusted proxy is ignored")
	require.NotContains(t, s.logs.String(), "198.51.100.")
}

// startHTTPProxy runs nginx as the reverse proxy a town hall puts in front
// of seance, as the README configures it, and returns its address.
func startHTTPProxy(t *testing.T, upstream string) string {
	t.Helper()
	dir := t.TempDir()
	port := freePort(t)
	conf := fmt.Sprintf(`daemon off; master_process off; pid %[1]s/nginx.pid; error_log %[1]s/error.log info;
events {}
http {
  access_log off;
  client_body_temp_path %[1]s/body; proxy_temp_path %[1]s/proxy; fastcgi_temp_path %[1]s/fastcgi;
  uwsgi_temp_path %[1]s/uwsgi; scgi_temp_path %[1]s/scgi;
  server {
    listen 127.0.0.1:%[2]d;
    location / {
      proxy_pass http://%[3]s;
      proxy_http_version 1.1;
      proxy_set_header Host $host;
      proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
      proxy_set_header X-Forwarded-Proto $scheme;
      proxy_buffering off;
      proxy_read_timeout 30s;
    }
  }
}
`, dir, port, upstream)
	require.NoError(t, os.WriteFile(filepath.Join(dir, "nginx.conf"), []byte(conf), 0o644))
	var out syncBuffer
	cmd := exec.CommandContext(t.Context(), "nginx", "-e", filepath.Join(dir, "error.log"), "-c", filepath.Join(dir, "nginx.conf"), "-p", dir)
	cmd.Stdout, cmd.Stderr = &out, &out
	require.NoError(t, cmd.Start())
	done := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(done)
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGQUIT)
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			t.Errorf("nginx (HTTP proxy) did not stop within 5 s of SIGQUIT: killing it")
			_ = cmd.Process.Kill()
			<-done
		}
		if t.Failed() {
			errLog, _ := os.ReadFile(filepath.Join(dir, "error.log"))
			t.Logf("nginx (HTTP proxy): %s\nerror.log (tail):\n%s", out.String(), tail(string(errLog), 3000))
		}
	})
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	require.Eventually(t, func() bool {
		select {
		case <-done:
			return true
		default:
		}
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err != nil {
			return false
		}
		c.Close()
		return true
	}, 10*time.Second, 20*time.Millisecond, "nginx does not accept on %s", addr)
	select {
	case <-done:
		t.Fatalf("nginx (HTTP proxy) exited at start: %s", out.String())
	default:
	}
	return addr
}
