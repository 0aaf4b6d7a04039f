package main

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"os/exec"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/seance-relay/seance/ingest/whip/whiptest"
)

// TestE2EWHIPToYouTube: a WHIP publisher (pion, H.264 + a 440 Hz Opus
// tone) that sends a keyframe only when asked pushes to seance; the RTMP
// destination gets H.264 + AAC that decodes clean, with keyframes at most
// 4 s apart (seance asks every 2 s while the destination is live) and the
// tone.
func TestE2EWHIPToYouTube(t *testing.T) {
	requireTools(t)
	const frames = 12 * 30 // 12 s at 30 fps
	video, err := whiptest.EncodeH264(t.Context(), "640x360", 30, 8)
	require.NoError(t, err)
	ng := startNginx(t)
	s := startSeance(t, listeners+fmt.Sprintf(`
admin: {listen: "127.0.0.1:0"}
channels:
  - name: conseil
    ingest: {key: %q}
    grace: 1s
    destinations:
      - {name: youtube, url: %q, key: %q}
`, secretIngestKey, ng.url(), secretYTKeyOne), "")

	c, err := whiptest.New(whiptest.Options{Video: video, ToneHz: 440})
	require.NoError(t, err)
	t.Cleanup(c.Abandon)
	endpoint := "http://" + s.app.public.Addr().String() + "/whip/conseil"
	require.NoError(t, c.Publish(t.Context(), endpoint, secretIngestKey))
	require.NoError(t, c.WaitConnected(10*time.Second))
	s.waitChannel("conseil", "live", "live", 15*time.Second)
	require.Eventually(t, func() bool { return c.Frames.Load() >= frames }, 30*time.Second, 50*time.Millisecond)
	code, err := c.Close()
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, code)
	s.waitChannel("conseil", "idle", "idle", 15*time.Second)
	t.Logf("the publisher got %d PLIs and sent %d keyframes", c.PLIs.Load(), c.Keyframes.Load())

	metrics := s.mustGet("/metrics")
	require.Equal(t, 1.0, metric(t, metrics, `seance_whip_sessions_total{result="accepted"}`))
	require.GreaterOrEqual(t, metric(t, metrics, `seance_ingest_keyframe_requests_total{channel="conseil"}`), 5.0)
	s.stop()
	ng.stop()

	files := ng.recordings(secretYTKeyOne)
	require.Len(t, files, 1)
	file := files[0]
	codecs, w, h, dur := ffprobe(t, file)
	require.Equal(t, []string{"aac", "h264"}, codecs)
	require.Equal(t, [2]int{640, 360}, [2]int{w, h})
	require.GreaterOrEqual(t, dur, 10.0)
	out, err := exec.CommandContext(t.Context(), "ffmpeg", "-nostdin", "-v", "error", "-i", file, "-f", "null", "-").CombinedOutput()
	require.NoError(t, err, "decoding %s: %s", file, out)
	require.Empty(t, string(out), "decoding %s", file)

	gaps := requireKeyframes(t, file, 4)
	t.Logf("keyframes at the destination: %d, intervals %v s", len(gaps)+1, gaps)

	hz := whipToneHz(t, file)
	t.Logf("audio at the destination: %.1f Hz", hz)
	require.InDelta(t, 440, hz, 5)
	requireNoSecrets(t, allSecrets, map[string]string{"logs": s.logs.String(), "/metrics": metrics})
}

// whipKeyframes returns the PTS (s) of the video keyframes in file, and of
// its last video frame.
// requireKeyframes requires at least minKeys keyframes in file, none
// more than 4 s apart (YouTube's limit), and no tail longer than 4 s
// without one; it returns the intervals, in seconds to the millisecond.
func requireKeyframes(t *testing.T, file string, minKeys int) (gaps []float64) {
	t.Helper()
	keys, last := whipKeyframes(t, file)
	require.GreaterOrEqual(t, len(keys), minKeys, "keyframes in %s", file)
	maxGap := 0.0
	for i := 1; i < len(keys); i++ {
		gaps = append(gaps, math.Round((keys[i]-keys[i-1])*1000)/1000)
		maxGap = max(maxGap, keys[i]-keys[i-1])
	}
	require.LessOrEqual(t, maxGap, 4.0, "keyframe intervals %v s", gaps)
	require.LessOrEqual(t, last-keys[len(keys)-1], 4.0, "no long tail without a keyframe")
	return gaps
}

func whipKeyframes(t *testing.T, file string) (keys []float64, last float64) {
	t.Helper()
	out, err := exec.CommandContext(t.Context(), "ffprobe", "-v", "error", "-select_streams", "v",
		"-show_frames", "-show_entries", "frame=key_frame,pts_time", "-of", "json", file).Output()
	require.NoError(t, err, "ffprobe frames of %s", file)
	var res struct {
		Frames []struct {
			KeyFrame int    `json:"key_frame"`
			PTSTime  string `json:"pts_time"`
		} `json:"frames"`
	}
	require.NoError(t, json.Unmarshal(out, &res))
	require.NotEmpty(t, res.Frames)
	for _, f := range res.Frames {
		pts, err := strconv.ParseFloat(f.PTSTime, 64)
		require.NoError(t, err, "pts_time %q", f.PTSTime)
		if f.KeyFrame == 1 {
			keys = append(keys, pts)
		}
		last = max(last, pts)
	}
	return keys, last
}

// whipToneHz decodes one second from the middle of file's audio to PCM
// with ffmpeg and returns its dominant frequency (Goertzel scan in 1 Hz
// steps over 100–2000 Hz).
func whipToneHz(t *testing.T, file string) float64 {
	t.Helper()
	const rate = 48000
	raw, err := exec.CommandContext(t.Context(), "ffmpeg", "-nostdin", "-v", "error", "-i", file,
		"-vn", "-ac", "1", "-ar", strconv.Itoa(rate), "-f", "s16le", "-").Output()
	require.NoError(t, err)
	n := len(raw) / 2
	require.Greater(t, n, 3*rate, "at least 3 s of audio")
	x := make([]float64, rate)
	// Analyse the loudest second: a slate (silence) may fill an
	// interruption anywhere in the file.
	from, loudest := 0, -1.0
	for start := 0; start+rate <= n; start += rate / 4 {
		var e float64
		for i := start; i < start+rate; i++ {
			v := float64(int16(binary.LittleEndian.Uint16(raw[2*i:])))
			e += v * v
		}
		if e > loudest {
			from, loudest = start, e
		}
	}
	for i := range x {
		v := float64(int16(binary.LittleEndian.Uint16(raw[2*(from+i):])))
		x[i] = v * (0.5 - 0.5*math.Cos(2*math.Pi*float64(i)/float64(len(x)))) // Hann
	}
	power := func(freq float64) float64 {
		coeff := 2 * math.Cos(2*math.Pi*freq/rate)
		var s1, s2 float64
		for _, v := range x {
			s1, s2 = v+coeff*s1-s2, s1
		}
		return s1*s1 + s2*s2 - coeff*s1*s2
	}
	best, at := 0.0, 0.0
	for f := 100.0; f <= 2000; f++ {
		if p := power(f); p > best {
			best, at = p, f
		}
	}
	return at
}
