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
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestE2EAllSinksOneBroadcast is issue 6's "one continuous broadcast":
// Jibri publishes 6 s, is away 6 s and publishes 6 s again; the channel
// (grace 30 s, then 5 s by a reload so that the session ends soon after
// the final stop) records with public replays and pushes to YouTube
// (nginx-rtmp). Every sink sees live, slate, live, slate as one stream:
//   - YouTube: one connection, no DTS gap over 1 s, decodes without an
//     error, the slate's picture between the live parts;
//   - the recording: one file, as long as the session, decodes without an
//     error, with the same live/slate/live/slate sections;
//   - a WHEP viewer: video frames all along until the session ended, the
//     slate's SPS in band;
//   - an ffmpeg HLS reader: decodes across the interruption without an
//     error, sees the slate then live again, and is counted as a viewer;
//   - the replay in Chromium: seeks into the slate and into the live part
//     after it, and plays across both seams, frames decoded everywhere.
func TestE2EAllSinksOneBroadcast(t *testing.T) {
	requireTools(t)
	driver := browserDriver(t)
	const (
		leg      = 6 * time.Second
		gap      = 6 * time.Second
		endGrace = 5 * time.Second
		token    = "allsinks-admin-Tk8Q2"
	)
	ng := startNginx(t)
	recDir := t.TempDir()
	cfgPath := filepath.Join(t.TempDir(), "seance.yaml")
	writeCfg := func(grace time.Duration) {
		require.NoError(t, os.WriteFile(cfgPath, fmt.Appendf(nil, listeners+`
admin: {listen: "127.0.0.1:0", token: %q}
channels:
  - name: conseil
    title: "Conseil municipal"
    ingest: {key: %q}
    grace: %s
    record: {enabled: true, dir: %q}
    replay: public
    destinations:
      - {name: youtube, url: %q, key: %q}
`, token, secretIngestKey, grace, recDir, ng.url(), secretYTKeyOne), 0o600))
	}
	writeCfg(30 * time.Second)
	s := startSeanceFile(t, cfgPath, token)
	public := "http://" + s.app.public.Addr().String()
	admin := "http://" + s.app.admin.Addr().String()
	url := s.publishURL("conseil", secretIngestKey)

	pub1 := startPublisher(t, url, leg)
	s.waitChannel("conseil", "live", "", 15*time.Second)
	liveAt := time.Now()
	v := startWHEPViewer(t, public+"/whep/conseil")

	// The HLS reader decodes the live playlist (video to a 16×9 picture,
	// ten per second, whose corner tells the slate from the live picture;
	// audio to nothing) until it is told to quit with q.
	reader := exec.CommandContext(t.Context(), "ffmpeg", "-v", "error", "-i", public+"/hls/conseil/index.m3u8",
		"-map", "0:v", "-vf", "fps=10,scale=16:9", "-f", "rawvideo", "-pix_fmt", "rgb24", "pipe:1",
		"-map", "0:a", "-f", "null", "-")
	readerIn, err := reader.StdinPipe()
	require.NoError(t, err)
	var readerOut, readerErr syncBuffer
	reader.Stdout, reader.Stderr = &readerOut, &readerErr
	require.NoError(t, reader.Start())
	readerDone := make(chan error, 1)
	go func() { readerDone <- reader.Wait() }()
	t.Cleanup(func() {
		_ = reader.Process.Kill()
		<-readerDone
	})

	require.NoError(t, pub1.wait(t, leg+15*time.Second), "ffmpeg: %s", pub1.output())
	s.waitChannel("conseil", "interrupted", "live", 5*time.Second)
	gapStart := time.Now()
	require.True(t, slateOnAir(t, s), "the slate is on air")
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		code, body, err := s.get("/metrics", true)
		require.NoError(c, err)
		require.Equal(c, http.StatusOK, code)
		require.Regexp(c, `(?m)^seance_viewers\{channel="conseil",protocol="hls"\} 1$`, body)
		require.Regexp(c, `(?m)^seance_viewers\{channel="conseil",protocol="webrtc"\} 1$`, body)
	}, 5*time.Second, 100*time.Millisecond, "the HLS reader and the WHEP viewer are counted during the slate")

	time.Sleep(time.Until(gapStart.Add(gap))) // the scenario: the publisher is away for gap
	pub2 := startPublisher(t, url, leg)
	back := time.Now()
	ch := s.waitChannel("conseil", "live", "live", 10*time.Second)
	backLive := time.Now()
	require.Equal(t, 1, ch.Health.Reconnects)
	require.Eventually(t, func() bool { return !slateOnAir(t, s) }, 5*time.Second, 20*time.Millisecond,
		"the slate goes off air at the publisher's first keyframe")
	// From now on a publisher that leaves ends the session endGrace later.
	writeCfg(endGrace)
	code, body := s.postReload()
	require.Equal(t, http.StatusOK, code, body)
	require.Contains(t, body, `"grace"`)

	// The reader quits once it has decoded 2 s of the live picture after
	// the slate (HLS players are a segment or two behind: that may be
	// after Jibri stopped, but before the session ends endGrace later).
	require.Eventually(t, func() bool {
		l := sectionsOf(readerOut.String())
		n := len(l)
		return n >= 3 && !l[n-1].slate && l[n-1].dur >= 2 && l[n-2].slate
	}, leg+endGrace, 100*time.Millisecond, "the HLS reader decodes the live picture after the slate")
	_, err = io.WriteString(readerIn, "q")
	require.NoError(t, err)
	select {
	case err := <-readerDone:
		readerDone <- err // for the cleanup
		require.NoError(t, err, "ffmpeg reading HLS: %s", readerErr.String())
	case <-time.After(endGrace):
		t.Fatal("ffmpeg reading HLS did not quit")
	}

	require.NoError(t, pub2.wait(t, leg+15*time.Second), "ffmpeg: %s", pub2.output())
	finalStop := time.Now() // or later: the reader may have quit after Jibri
	s.waitChannel("conseil", "idle", "", endGrace+5*time.Second)
	idleAt := time.Now()
	metrics := s.mustGet("/metrics")

	// WHEP: video all along, from the first frame until the session ended.
	var maxGap time.Duration
	var gapAt time.Time
	var last time.Time
	var slateSPS, liveSPSAfter bool
	for _, p := range v.packets(true) {
		if p.at.After(idleAt) {
			break
		}
		if p.marker {
			if !last.IsZero() && p.at.Sub(last) > maxGap {
				maxGap = p.at.Sub(last)
				gapAt = p.at
			}
			last = p.at
		}
		if h264NAL(p.payload) == 7 && len(p.payload) > 1 {
			switch {
			case p.at.After(gapStart) && p.at.Before(back) && p.payload[1] == 66:
				slateSPS = true
			case p.at.After(back) && p.payload[1] == 100:
				liveSPSAfter = true
			}
		}
	}
	t.Logf("WHEP: longest time between two video frames %s (at %s after the first stop; back at %s)", maxGap, gapAt.Sub(gapStart), back.Sub(gapStart))
	require.False(t, last.IsZero(), "the WHEP viewer got video")
	require.True(t, last.After(idleAt.Add(-time.Second)), "the WHEP viewer got the slate until the session ended (last frame %s before)", idleAt.Sub(last))
	require.Less(t, maxGap, time.Second, "the WHEP viewer gets video frames all along")
	require.True(t, slateSPS, "the slate's SPS (Constrained Baseline) reached the WHEP viewer in band")
	require.True(t, liveSPSAfter, "the live SPS (High) came back for the WHEP viewer")

	// HLS: no error, and the reader saw the slate between live pictures.
	require.Empty(t, readerErr.String(), "ffmpeg -v error reading the live playlist across the interruption")
	hlsRuns := sections(t, []byte(readerOut.String()))
	t.Logf("HLS reader: %s", hlsRuns)
	require.Positive(t, metric(t, metrics, `seance_viewer_sessions_total{channel="conseil",protocol="hls"}`))
	// Not asserted: gohlslib reports a PART-TARGET change when a part
	// spans a seam (docs/design-notes.md, Tests).
	t.Logf("HLS muxer errors: %v", metric(t, metrics, `seance_hls_muxer_errors_total{channel="conseil"}`))
	require.Zero(t, metric(t, metrics, `seance_destination_reconnects_total{channel="conseil",destination="youtube"}`))

	// The recording: one finished file of one session, as long as it.
	var rec apiRecording
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		st, list, err := recordingsAt(c, admin, token, "conseil")
		require.NoError(c, err)
		require.Equal(c, "idle", st.State)
		require.Len(c, list, 1, "one file for the whole session")
		require.True(c, list[0].Complete)
		rec = list[0]
	}, 10*time.Second, 50*time.Millisecond)
	file := filepath.Join(recDir, "conseil", rec.Name)
	recDur := requireRecording(t, file, 2*leg)
	recRuns := sections(t, decodeCorners(t, file))
	// The session's timeline is Jibri's two legs (ffmpeg sends the first
	// seconds of each faster than real time: it catches up after its
	// start) and the slate in real time: while Jibri was away, and for
	// the grace period after the final stop.
	slateWall := backLive.Sub(gapStart)
	session := (2*leg + slateWall + endGrace).Seconds()
	t.Logf("wall clock: live %.2f s, away %.2f s (live again after %.2f s), back until the stop %.2f s, idle after %.2f s",
		gapStart.Sub(liveAt).Seconds(), back.Sub(gapStart).Seconds(), slateWall.Seconds(),
		finalStop.Sub(back).Seconds(), idleAt.Sub(finalStop).Seconds())
	t.Logf("recording %s: %.2f s (API %.2f s) for a session of %.2f s: %s", rec.Name, recDur, rec.Duration, session, recRuns)
	require.InDelta(t, session, recDur, 1.5, "the recording covers the whole session, slate included")
	requireBroadcast(t, "recording", recRuns, leg, slateWall, endGrace)

	// YouTube: one connection, continuous, the same sections.
	ng.stop()
	files := ng.recordings(secretYTKeyOne)
	require.Len(t, files, 1, "YouTube got one connection through the interruption")
	requireRecording(t, files[0], 2*leg)
	dts := videoDTS(t, files[0])
	require.NotEmpty(t, dts)
	for i := 1; i < len(dts); i++ {
		step := dts[i] - dts[i-1]
		require.Positive(t, step, "video DTS not increasing at packet %d (%.3f → %.3f)", i, dts[i-1], dts[i])
		require.LessOrEqual(t, step, 1.0, "video DTS jumps at packet %d (%.3f → %.3f)", i, dts[i-1], dts[i])
	}
	ytRuns := sections(t, decodeCorners(t, files[0]))
	t.Logf("YouTube: %s", ytRuns)
	requireBroadcast(t, "YouTube", ytRuns, leg, slateWall, endGrace)

	// HLS again: the reader's sections are the recording's, cut where it
	// started and stopped reading.
	require.Len(t, hlsRuns, 3, "the HLS reader saw live, slate, live: %s", hlsRuns)
	require.Equal(t, []bool{false, true, false}, []bool{hlsRuns[0].slate, hlsRuns[1].slate, hlsRuns[2].slate}, "HLS: %s", hlsRuns)
	require.InDelta(t, recRuns[1].dur, hlsRuns[1].dur, 0.5, "the HLS reader saw the whole slate: %s", hlsRuns)
	require.GreaterOrEqual(t, hlsRuns[2].dur, 2.0, "the HLS reader went on with the live picture: %s", hlsRuns)

	// The replay in Chromium, across the seams.
	seam1, seam2 := recRuns[1].start, recRuns[2].start
	plays := [][2]float64{
		{seam1 - 0.8, seam1 + 1.2},                   // live into slate
		{(seam1 + seam2) / 2, (seam1+seam2)/2 + 0.8}, // the slate's middle
		{seam2 - 0.8, seam2 + 1.2},                   // slate into live
		{seam2 + 3, seam2 + 3.8},                     // live after the slate
	}
	r := runSeamsDriver(t, driver, public, plays)
	require.Empty(t, r.Errors, "driver steps failed")
	for _, e := range r.ConsoleErrors {
		// The live player's WHEP answers 409 while the channel is idle.
		require.Contains(t, e, "the server responded with a status of 409", "console errors")
	}
	require.Equal(t, "/replay/conseil/"+rec.Name, r.Href)
	require.Len(t, r.Plays, len(plays))
	for i, p := range r.Plays {
		first, lastS := p.Samples[0], p.Samples[len(p.Samples)-1]
		require.Empty(t, lastS.Error, "the video element's error")
		require.Zero(t, lastS.Corrupted, "corrupted frames")
		require.GreaterOrEqual(t, lastS.T, p.To, "Chromium played %.1f → %.1f", p.From, p.To)
		require.Greater(t, lastS.Frames, first.Frames, "frames decoded from %.1f s", p.From)
		var slate, live int
		for _, sm := range p.Samples {
			if sm.RGB == nil {
				continue
			}
			want, ok := recRuns.at(sm.T, 0.4)
			if !ok {
				continue // too close to a seam
			}
			require.Equal(t, want, isSlatePixel(*sm.RGB), "Chromium at %.2f s shows %v (slate: %v); recording: %s",
				sm.T, *sm.RGB, want, recRuns)
			if want {
				slate++
			} else {
				live++
			}
		}
		t.Logf("Chromium %.1f → %.1f s: seeked in %d ms, frames %d → %d, %d samples of the slate and %d of the live picture as expected",
			p.From, p.To, p.SeekedMs, first.Frames, lastS.Frames, slate, live)
		switch i {
		case 0, 2: // across a seam: both pictures
			require.Positive(t, slate, "Chromium showed the slate after %.1f s", p.From)
			require.Positive(t, live, "Chromium showed the live picture after %.1f s", p.From)
		case 1:
			require.GreaterOrEqual(t, slate, 5, "Chromium showed the slate")
		case 3:
			require.GreaterOrEqual(t, live, 5, "Chromium showed the live picture after the slate")
		}
	}

	requireNoSecrets(t, append(allSecrets, token), map[string]string{"logs": s.logs.String(), "/metrics": metrics})
}

// section is a stretch of a stream showing the slate or the live picture.
type section struct {
	slate      bool
	start, dur float64 // seconds
}

type sectionList []section

func (l sectionList) String() string {
	var b strings.Builder
	for _, s := range l {
		kind := "live"
		if s.slate {
			kind = "slate"
		}
		fmt.Fprintf(&b, "[%s %.1f+%.1f s] ", kind, s.start, s.dur)
	}
	return strings.TrimSpace(b.String())
}

// at says whether the stream shows the slate at t, unless t is within
// margin of a seam.
func (l sectionList) at(t, margin float64) (slate, ok bool) {
	for _, s := range l {
		if t >= s.start+margin && t < s.start+s.dur-margin {
			return s.slate, true
		}
	}
	return false, false
}

// isSlatePixel tells the slate's dark blue background from testsrc2's
// corner.
func isSlatePixel(px [3]int) bool {
	return px[0] < 60 && px[1] < 70 && px[2] > 45 && px[2] < 100
}

// decodeCorners decodes a file's video to 16×9 RGB pictures, ten per
// second, and requires that ffmpeg report no error.
func decodeCorners(t *testing.T, file string) []byte {
	t.Helper()
	cmd := exec.CommandContext(t.Context(), "ffmpeg", "-nostdin", "-v", "error", "-i", file,
		"-map", "0:v", "-vf", "fps=10,scale=16:9", "-f", "rawvideo", "-pix_fmt", "rgb24", "pipe:1")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	require.NoError(t, err, "decoding %s: %s", file, stderr.String())
	require.Empty(t, stderr.String(), "decoding %s", file)
	return out
}

// sections cuts 16×9 RGB pictures, ten per second, into slate and live
// sections by their top-left pixel.
func sections(t *testing.T, raw []byte) sectionList {
	t.Helper()
	require.NotEmpty(t, raw, "no picture decoded")
	require.Zero(t, len(raw)%pictureSize, "partial picture")
	return sectionsOf(string(raw))
}

const pictureSize = 16 * 9 * 3

// sectionsOf cuts the whole pictures of raw into sections.
func sectionsOf(raw string) sectionList {
	const size = pictureSize
	var out sectionList
	for i := 0; i < len(raw)/size; i++ {
		px := raw[i*size:]
		slate := isSlatePixel([3]int{int(px[0]), int(px[1]), int(px[2])})
		if n := len(out); n > 0 && out[n-1].slate == slate {
			out[n-1].dur += 0.1
			continue
		}
		out = append(out, section{slate: slate, start: float64(i) / 10, dur: 0.1})
	}
	return out
}

// requireBroadcast checks a whole session's sections: live for leg, the
// slate for gap (until the publisher's first keyframe), live for leg, and
// the slate until the grace period ended.
func requireBroadcast(t *testing.T, what string, l sectionList, leg, gap, grace time.Duration) {
	t.Helper()
	require.Len(t, l, 4, "%s: live, slate, live, slate: %s", what, l)
	for i, s := range l {
		require.Equal(t, i%2 == 1, s.slate, "%s: live, slate, live, slate: %s", what, l)
	}
	require.InDelta(t, leg.Seconds(), l[0].dur, 1.0, "%s: the first live part: %s", what, l)
	require.InDelta(t, gap.Seconds(), l[1].dur, 0.75, "%s: the slate during the interruption: %s", what, l)
	require.InDelta(t, leg.Seconds(), l[2].dur, 1.0, "%s: the second live part: %s", what, l)
	require.InDelta(t, grace.Seconds(), l[3].dur, 1.0, "%s: the slate until the session ended: %s", what, l)
}

// seamsReport is what web/browsertest/seams.mjs prints.
type seamsReport struct {
	Errors        []string `json:"errors"`
	ConsoleErrors []string `json:"consoleErrors"`
	Href          string   `json:"href"`
	Plays         []struct {
		From     float64 `json:"from"`
		To       float64 `json:"to"`
		SeekedMs int     `json:"seekedMs"`
		Samples  []struct {
			T         float64 `json:"t"`
			Frames    int     `json:"frames"`
			Corrupted int     `json:"corrupted"`
			Error     string  `json:"error"`
			RGB       *[3]int `json:"rgb"`
		} `json:"samples"`
	} `json:"plays"`
}

// runSeamsDriver plays the channel's replay in Chromium: each play seeks
// to its first time and plays until its second.
func runSeamsDriver(t *testing.T, driver, public string, plays [][2]float64) seamsReport {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	pj, err := json.Marshal(plays)
	require.NoError(t, err)
	cmd := exec.CommandContext(ctx, "node", "seams.mjs")
	cmd.Dir = driver
	cmd.Env = append(os.Environ(),
		"PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1",
		"SEANCE_URL="+public,
		"CHANNEL=conseil",
		"CHROMIUM="+chromiumPath,
		"PLAYS="+string(pj),
	)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	start := time.Now()
	err = cmd.Run()
	t.Logf("seams driver ran %s:\n%s", time.Since(start).Round(time.Millisecond), stderr.String())
	require.NoError(t, err, "node seams.mjs")
	var r seamsReport
	require.NoError(t, json.Unmarshal(stdout.Bytes(), &r), "driver output: %s", stdout.String())
	return r
}
