package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os/exec"
	"regexp"
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

	// Segments are immutable, media playlists are short-lived.
	res, media := httpGet(t, base+"conseil/video1_stream.m3u8")
	require.Equal(t, http.StatusOK, res.StatusCode, media)
	require.Equal(t, "public, max-age=1", res.Header.Get("Cache-Control"))
	seg := regexp.MustCompile(`(?m)^[0-9a-f]+_video1_seg\d+\.mp4$`).FindString(media)
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
