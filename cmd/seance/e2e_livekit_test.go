package main

import (
	"encoding/json"
	"fmt"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"
	"github.com/pion/webrtc/v4/pkg/media/h264writer"
	"github.com/pion/webrtc/v4/pkg/media/oggwriter"
	"github.com/stretchr/testify/require"

	"github.com/seance-relay/seance/ingest/meeting/meetingtest"
)

const (
	liveKitRoom  = "conseil-S3CR3T-visio-Jq8"
	liveKitYTKey = "yt-livekit-key-Pm3Wd6"
)

// TestE2EMeetingLiveKit: a real livekit-server room where a headless
// Chromium publishes its fake camera and a 440 Hz microphone. seance joins
// it hidden and subscribe-only through its own layout page, and
// broadcasts it: a WHEP viewer and the YouTube stand-in get a moving
// picture and the tone, keyframes at most 4 s apart at the RTMP side. A
// second participant joins and the first leaves: the broadcast goes on
// with no capture restart. Chromium is killed: seance restarts it within
// the grace, the viewer and YouTube stay connected. The API secret, the
// room and seance's tokens appear in no log, metric or API answer.
func TestE2EMeetingLiveKit(t *testing.T) {
	requireTools(t)
	requireChromium(t)
	lk := meetingtest.StartLiveKit(t)
	first := lk.Join(t, liveKitRoom, "elu-1", "Marie Curie", 320, 240)
	ng := startNginx(t)
	started := time.Now()
	s := startSeance(t, listeners+fmt.Sprintf(`
admin: {listen: "127.0.0.1:0"}
channels:
  - name: conseil
    ingest:
      meeting:
        livekit: {url: %q, api_key: %q, api_secret: %q, room: %q}
        layout: speaker
    grace: 30s
    destinations:
      - {name: youtube, url: %q, key: %q}
`, lk.URL, lk.APIKey, lk.APISecret, liveKitRoom, ng.url(), liveKitYTKey), "")
	s.waitChannel("conseil", "live", "", 30*time.Second)
	t.Logf("channel live %s after seance started", time.Since(started).Round(time.Millisecond))

	v := startWHEPViewer(t, "http://"+s.app.public.Addr().String()+"/whep/conseil")
	require.Eventually(t, func() bool { return len(v.packets(false)) >= 150 && len(v.packets(true)) > 60 },
		15*time.Second, 50*time.Millisecond, "the viewer gets audio and video")
	s.waitChannel("conseil", "live", "live", 10*time.Second)

	// seance in the room: hidden, publishing nothing.
	ps, err := lk.Participants(liveKitRoom)
	require.NoError(t, err)
	i := slices.IndexFunc(ps, func(p meetingtest.ServerParticipant) bool { return p.Identity == "seance-diffusion" })
	require.GreaterOrEqual(t, i, 0, "seance in the room: %+v", ps)
	require.True(t, ps[i].Permission.Hidden)
	require.False(t, ps[i].Permission.CanPublish)
	require.Empty(t, ps[i].Tracks)

	// Participants come and go: the page re-lays itself, no restart.
	second := lk.Join(t, liveKitRoom, "elu-2", "Pierre Curie", 320, 240)
	require.Eventually(t, func() bool {
		ps, err := lk.Participants(liveKitRoom)
		return err == nil && len(ps) == 3
	}, 20*time.Second, 100*time.Millisecond, "the second participant joined")
	first.Leave()
	before := len(v.packets(true))
	require.Eventually(t, func() bool {
		ps, err := lk.Participants(liveKitRoom)
		return err == nil && len(ps) == 2 && len(v.packets(true)) > before+90
	}, 30*time.Second, 100*time.Millisecond, "the first participant left; the viewer keeps receiving video")
	ch, err := s.channel("conseil")
	require.NoError(t, err)
	require.Equal(t, "live", ch.Health.State)
	require.Zero(t, ch.Health.Reconnects, "participants' leaves and joins restart nothing")

	// Kill seance's browser (not the participant's): restarted within
	// the grace, the same session continues.
	pids := slices.DeleteFunc(browserPIDs(t), func(pid int) bool { return pid == second.PID() })
	require.Len(t, pids, 1, "one capture browser")
	require.NoError(t, syscall.Kill(pids[0], syscall.SIGKILL))
	var back apiChannel
	require.Eventually(t, func() bool {
		ch, err := s.channel("conseil")
		back = ch
		return err == nil && ch.Health.State == "live" && ch.Health.Reconnects == 1
	}, 30*time.Second, 50*time.Millisecond, "the same session continues: %+v", &back)
	before = len(v.packets(true))
	require.Eventually(t, func() bool { return len(v.packets(true)) > before+150 }, 20*time.Second, 50*time.Millisecond,
		"the viewer keeps receiving video after the restart")
	require.Equal(t, webrtc.PeerConnectionStateConnected, v.pc.ConnectionState(), "the viewer stayed connected")

	var status struct {
		Channels []struct {
			Meeting struct {
				State    string `json:"state"`
				Platform string `json:"platform"`
				Server   string `json:"server"`
			} `json:"meeting"`
		} `json:"channels"`
	}
	api := s.mustGet("/api/v1/channels")
	require.NoError(t, json.Unmarshal([]byte(api), &status))
	require.Equal(t, "livekit", status.Channels[0].Meeting.Platform)
	require.Equal(t, "127.0.0.1", status.Channels[0].Meeting.Server)
	require.Equal(t, "capturing", status.Channels[0].Meeting.State)

	metrics := s.mustGet("/metrics")
	api += s.mustGet("/api/v1/channels/conseil")
	dir := t.TempDir()
	viewerVideo, viewerAudio := v.save(t, dir)
	s.stop()
	ng.stop()

	// The WHEP viewer: a moving picture, the participants' tone.
	requirePictureMoves(t, "WHEP viewer", viewerVideo)
	require.InDelta(t, 440, whipToneHz(t, viewerAudio), 5, "the participants' tone at the viewer")

	// YouTube's stand-in: one connection, H.264 + AAC, keyframes ≤ 4 s,
	// a moving picture and the tone.
	files := ng.recordings(liveKitYTKey)
	require.Len(t, files, 1, "the destination kept its one connection")
	codecs, w, h, dur := ffprobe(t, files[0])
	require.Equal(t, []string{"aac", "h264"}, codecs)
	require.Equal(t, [2]int{1280, 720}, [2]int{w, h})
	gaps := requireKeyframes(t, files[0], 2)
	t.Logf("destination: %.1f s, keyframe intervals %v s", dur, gaps)
	requirePictureMoves(t, "destination", files[0])
	require.InDelta(t, 440, whipToneHz(t, files[0]), 5, "the participants' tone at the destination")

	texts := map[string]string{"logs": s.logs.String(), "/metrics": metrics, "API": api}
	requireNoSecrets(t, []string{lk.APISecret, liveKitRoom, liveKitYTKey}, texts)
	for name, text := range texts {
		require.False(t, regexp.MustCompile(`eyJ[A-Za-z0-9_-]+\.eyJ`).MatchString(text), "a token in the %s", name)
	}
	t.Logf("test took %s", time.Since(started).Round(100*time.Millisecond))
}

// save writes what the viewer received: its H.264 as an Annex B stream
// and its Opus in Ogg, for ffmpeg.
func (v *whepViewer) save(t *testing.T, dir string) (video, audio string) {
	t.Helper()
	video, audio = filepath.Join(dir, "viewer.h264"), filepath.Join(dir, "viewer.ogg")
	hw, err := h264writer.New(video)
	require.NoError(t, err)
	for _, p := range v.packets(true) {
		require.NoError(t, hw.WriteRTP(&rtp.Packet{Header: rtp.Header{SequenceNumber: p.seq, Timestamp: p.ts, Marker: p.marker}, Payload: p.payload}))
	}
	require.NoError(t, hw.Close())
	ow, err := oggwriter.New(audio, 48000, 2)
	require.NoError(t, err)
	for _, p := range v.packets(false) {
		require.NoError(t, ow.WriteRTP(&rtp.Packet{Header: rtp.Header{SequenceNumber: p.seq, Timestamp: p.ts, Marker: p.marker}, Payload: p.payload}))
	}
	require.NoError(t, ow.Close())
	return video, audio
}

// requirePictureMoves decodes two frames a second of file, 64x36 in grey, and
// requires that successive ones differ: the participants' cameras move.
// One still stretch of at most 10 s is the slate through the capture
// browser's restart; beside it, at least half the pairs must differ (on a
// 2-core machine loaded by other work, freezes of several seconds were
// seen while a participant's Chromium started; a frozen or static page
// has no pair that differs).
func requirePictureMoves(t *testing.T, what, file string) {
	t.Helper()
	const fw, fh = 64, 36
	raw, err := exec.CommandContext(t.Context(), "ffmpeg", "-nostdin", "-v", "error", "-i", file, "-an",
		"-vf", "fps=2,scale="+strconv.Itoa(fw)+":"+strconv.Itoa(fh)+",format=gray", "-f", "rawvideo", "-").Output()
	require.NoError(t, err, "decoding %s", file)
	n := len(raw) / (fw * fh)
	require.GreaterOrEqual(t, n, 8, "%s: at least 4 s of picture", what)
	still, run, longest := 0, 0, 0
	var diffs []string
	for i := 1; i < n; i++ {
		a, b := raw[(i-1)*fw*fh:i*fw*fh], raw[i*fw*fh:(i+1)*fw*fh]
		d := meanAbsDiff(a, b)
		diffs = append(diffs, strconv.FormatFloat(d, 'f', 1, 64))
		if d < 0.2 {
			still++
			run++
			longest = max(longest, run)
		} else {
			run = 0
		}
	}
	t.Logf("%s: %d frames (2 a second), %d successive pairs alike, longest still stretch %d; differences %v",
		what, n, still, longest, diffs)
	require.LessOrEqual(t, longest, 20, "%s: a still stretch longer than 10 s", what)
	require.LessOrEqual(t, 2*(still-longest), n-1-longest, "%s: the picture moves", what)
}

func meanAbsDiff(a, b []byte) float64 {
	var sum int
	for i := range a {
		d := int(a[i]) - int(b[i])
		if d < 0 {
			d = -d
		}
		sum += d
	}
	return float64(sum) / float64(len(a))
}
