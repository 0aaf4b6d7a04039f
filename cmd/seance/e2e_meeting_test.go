package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/pion/webrtc/v4"
	"github.com/stretchr/testify/require"
	"github.com/thesyncim/gopus"

	"github.com/seance-relay/seance/ingest/meeting/meetingtest"
)

const (
	meetingJWT       = "eyJhbGciOiJIUzI1NiJ9.eyJyb29tIjoiKiJ9.jwt-S3CR3T-Xq2"
	meetingRoom      = "ConseilMunicipal-S3CR3T-Lw7"
	meetingBBBSecret = "bbb-S3CR3T-Hn4Vz8"
	meetingYTKey     = "yt-meeting-key-Tc5Rn1"
)

func requireChromium(t *testing.T) {
	t.Helper()
	if _, err := exec.LookPath("chromium"); err != nil {
		t.Fatalf("chromium is missing: %s", browserHint)
	}
}

// browserPIDs returns the Chromium processes this test process started
// (the meeting captures' browsers, whose main process is our child).
func browserPIDs(t *testing.T) []int {
	t.Helper()
	ents, err := os.ReadDir("/proc")
	require.NoError(t, err)
	var out []int
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		stat, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		end := bytes.LastIndexByte(stat, ')')
		open := bytes.IndexByte(stat, '(')
		if end < 0 || open < 0 {
			continue
		}
		f := strings.Fields(string(stat[end+1:]))
		if len(f) < 2 || f[0] == "Z" || string(stat[open+1:end]) != "chromium" {
			continue
		}
		if ppid, _ := strconv.Atoi(f[1]); ppid == os.Getpid() {
			out = append(out, pid)
		}
	}
	return out
}

// TestE2EMeetingJitsi: seance joins a stand-in Jitsi meeting of 4 (picture,
// and a 440 Hz tone played through WebRTC and an <audio> element) in
// headless Chromium. The room has a lobby: the bot knocks, the API says a
// moderator must admit it, and the channel is not live (the watch page says
// not started, YouTube gets nothing) until it is in; then the channel is
// live within 5 s, in the speaker layout; a WHEP viewer gets H.264 and
// Opus with the tone; the YouTube stand-in gets H.264 + AAC with keyframes
// at most 4 s apart. Chromium is killed mid-broadcast: seance restarts it,
// the viewer stays connected and the destination keeps its one
// connection. A moderator removes the bot: state removed, no rejoin, until
// POST …/meeting/start; back within the grace period, the session and the
// destination's connection continue. The bot sends nothing into the
// meeting, and the meeting's URL and JWT appear in no log, metric or API
// answer.
func TestE2EMeetingJitsi(t *testing.T) {
	requireTools(t)
	requireChromium(t)
	meet := meetingtest.New(meetingBBBSecret)
	t.Cleanup(meet.Close)
	meet.SetLobby(true)
	meet.SetParticipants(3)
	ng := startNginx(t)
	started := time.Now()
	s := startSeance(t, listeners+fmt.Sprintf(`
admin: {listen: "127.0.0.1:0"}
channels:
  - name: conseil
    ingest:
      meeting:
        jitsi: {url: %q, jwt: %q}
    grace: 30s
    destinations:
      - {name: youtube, url: %q, key: %q}
`, meet.JitsiURL(meetingRoom), meetingJWT, ng.url(), meetingYTKey), "")
	var ms meetingState
	require.Eventually(t, func() bool {
		ms = s.meeting("conseil")
		return ms.Detail == "lobby"
	}, 15*time.Second, 50*time.Millisecond, "the bot waits in the lobby: %+v", &ms)
	require.Equal(t, "joining", ms.State)
	require.Equal(t, "Diffusion publique", ms.DisplayName)
	lobbyAt := time.Now()
	t.Logf("in the lobby %s after seance started", lobbyAt.Sub(started).Round(time.Millisecond))
	require.Never(t, func() bool {
		ch, err := s.channel("conseil")
		return err != nil || ch.Health.State == "live"
	}, 3*time.Second, 100*time.Millisecond, "nothing goes on air from the lobby")
	var pub struct {
		Live  bool   `json:"live"`
		State string `json:"state"`
	}
	require.NoError(t, json.Unmarshal([]byte(s.publicGet("/api/public/channels/conseil")), &pub))
	require.False(t, pub.Live, "the watch page says the session has not started")
	require.Equal(t, "idle", pub.State)
	require.Empty(t, ng.recordings(meetingYTKey), "no destination started")
	reports := meet.Reports()
	require.Len(t, reports, 1)
	require.True(t, reports[0].Knocking, "the bot knocks")

	admitted := time.Now()
	meet.Admit()
	s.waitChannel("conseil", "live", "", 5*time.Second)
	live := time.Since(admitted)
	t.Logf("channel live %s after the moderator admitted the bot (%s after seance started)", live.Round(time.Millisecond),
		time.Since(started).Round(time.Millisecond))

	v := startWHEPViewer(t, "http://"+s.app.public.Addr().String()+"/whep/conseil")
	require.Eventually(t, func() bool { return len(v.packets(false)) >= 150 && len(v.packets(true)) > 60 },
		15*time.Second, 50*time.Millisecond, "the viewer gets audio and video")
	s.waitChannel("conseil", "live", "live", 10*time.Second)

	// Kill the browser: seance restarts it within the grace period.
	pids := browserPIDs(t)
	require.Len(t, pids, 1, "one browser for the one meeting")
	killedAt := time.Now()
	require.NoError(t, syscall.Kill(pids[0], syscall.SIGKILL))
	require.Eventually(t, func() bool {
		p := browserPIDs(t)
		return len(p) == 1 && p[0] != pids[0]
	}, 10*time.Second, 50*time.Millisecond, "a new browser")
	var back apiChannel
	require.Eventually(t, func() bool {
		ch, err := s.channel("conseil")
		back = ch
		return err == nil && ch.Health.State == "live" && ch.Health.Reconnects == 1
	}, 15*time.Second, 50*time.Millisecond, "the same session continues: %+v", &back)
	t.Logf("the broadcast continued %s after the browser was killed", time.Since(killedAt).Round(time.Millisecond))
	before := len(v.packets(true))
	require.Eventually(t, func() bool { return len(v.packets(true)) > before+90 }, 10*time.Second, 50*time.Millisecond,
		"the viewer keeps receiving video after the restart")
	require.Equal(t, webrtc.PeerConnectionStateConnected, v.pc.ConnectionState(), "the viewer stayed connected")

	var status struct {
		Channels []struct {
			Name    string `json:"name"`
			Meeting struct {
				State    string  `json:"state"`
				Restarts int     `json:"restarts"`
				FPS      float64 `json:"capture_fps"`
				Memory   int64   `json:"memory_bytes"`
				Platform string  `json:"platform"`
			} `json:"meeting"`
		} `json:"channels"`
	}
	api := s.mustGet("/api/v1/channels")
	require.NoError(t, json.Unmarshal([]byte(api), &status))
	m := status.Channels[0].Meeting
	require.Equal(t, "capturing", m.State)
	require.Equal(t, 1, m.Restarts)
	require.Equal(t, "jitsi", m.Platform)
	metrics := s.mustGet("/metrics")
	require.Equal(t, 1.0, metric(t, metrics, `seance_meeting_restarts_total{channel="conseil"}`))
	require.Equal(t, 1.0, metric(t, metrics, `seance_meeting_state{channel="conseil",state="capturing"}`))
	require.Equal(t, 2.0, metric(t, metrics, `seance_ingest_publishers_total{channel="conseil",protocol="meeting"}`))

	// What the meeting saw: a muted, camera-off viewer under its name.
	reports = meet.Reports()
	require.Len(t, reports, 2, "two joins: before and after the crash")
	for _, r := range reports {
		require.True(t, r.Joined)
		require.Equal(t, "speaker", r.Shown, "4 participants, layout speaker: no tile view")
		require.Empty(t, r.Ignored)
		require.Equal(t, "Diffusion publique", r.DisplayName)
		require.Equal(t, meetingJWT, r.JWT)
		require.Equal(t, "hash", r.JWTFrom)
		require.Zero(t, r.GUMCalls)
		require.Zero(t, r.SentAudioBytes+r.SentVideoBytes, "the bot never sends audio or video into the meeting")
	}
	for _, ua := range meet.UserAgents() {
		require.NotContains(t, ua, "Headless")
	}

	// WHEP: H.264, and Opus that decodes to the tone (1.5 s without loss).
	require.Contains(t, v.answer, "H264/90000")
	require.Contains(t, strings.ToLower(v.answer), "opus/48000")
	audio := v.packets(false)
	const run = 75
	from := len(audio) - run - 1
	for i := len(audio) - 1; i > 0 && i > len(audio)-400; i-- {
		if audio[i].seq != audio[i-1].seq+1 {
			from = i
			if len(audio)-from >= run {
				break
			}
		}
	}
	from = min(from, len(audio)-run)
	dec, err := gopus.NewDecoder(gopus.DefaultDecoderConfig(48000, 2))
	require.NoError(t, err)
	pcm := make([]float32, 5760*2)
	var left []float64
	energy := 0.0
	for _, p := range audio[from : from+run] {
		n, err := dec.Decode(p.payload, pcm)
		require.NoError(t, err)
		for j := range n {
			left = append(left, float64(pcm[2*j]))
			energy += float64(pcm[2*j]) * float64(pcm[2*j])
		}
	}
	rms := math.Sqrt(energy / float64(len(left)))
	freq := dominantFrequency(left)
	t.Logf("WHEP audio: %.1f Hz, RMS %.3f", freq, rms)
	require.Greater(t, rms, 0.01, "not silent")
	require.InDelta(t, 440, freq, 5)

	// A moderator removes the bot: it stays out until started again.
	meet.Kick()
	require.Eventually(t, func() bool { return s.meeting("conseil").State == "removed" }, 15*time.Second, 50*time.Millisecond)
	require.Eventually(t, func() bool { return len(browserPIDs(t)) == 0 }, 10*time.Second, 50*time.Millisecond)
	require.Never(t, func() bool { return s.meeting("conseil").State != "removed" }, 2*time.Second, 100*time.Millisecond,
		"no rejoin until started again")
	require.Equal(t, 202, s.post("/api/v1/channels/conseil/meeting/start"))
	require.Eventually(t, func() bool {
		ch, err := s.channel("conseil")
		return err == nil && ch.Health.State == "live" && ch.Health.Reconnects == 2 && s.meeting("conseil").State == "capturing"
	}, 15*time.Second, 50*time.Millisecond, "back within the grace period: the same session")

	metrics = s.mustGet("/metrics")
	api = s.mustGet("/api/v1/channels") + s.mustGet("/api/v1/channels/conseil")
	s.stop()
	require.Empty(t, browserPIDs(t), "no browser left after shutdown")
	ng.stop()

	// YouTube's stand-in: one connection, H.264 + AAC, keyframes ≤ 4 s.
	files := ng.recordings(meetingYTKey)
	require.Len(t, files, 1, "the destination kept its one connection through the restart and the removal")
	codecs, w, h, dur := ffprobe(t, files[0])
	require.Equal(t, []string{"aac", "h264"}, codecs)
	require.Equal(t, [2]int{1280, 720}, [2]int{w, h})
	require.GreaterOrEqual(t, dur, 3.0)
	gaps := requireKeyframes(t, files[0], 2)
	t.Logf("destination: %.1f s, keyframe intervals %v s", dur, gaps)
	require.InDelta(t, 440, whipToneHz(t, files[0]), 5)

	requireNoSecrets(t, []string{meetingJWT, meetingRoom, meetingYTKey}, map[string]string{
		"logs": s.logs.String(), "/metrics": metrics, "API": api,
	})
	t.Logf("test took %s", time.Since(started).Round(100*time.Millisecond))
}

// TestE2EMeetingBBB: a BigBlueButton meeting that has not started: the
// dashboard's API says seance waits for it; once it starts, seance joins
// through the API (viewer, listen only) and the channel goes live. The
// BBB secret appears nowhere.
func TestE2EMeetingBBB(t *testing.T) {
	requireChromium(t)
	meet := meetingtest.New(meetingBBBSecret)
	t.Cleanup(meet.Close)
	meet.SetRunning(false)
	s := startSeance(t, listeners+fmt.Sprintf(`
admin: {listen: "127.0.0.1:0"}
channels:
  - name: tauriac
    ingest:
      meeting:
        bbb: {api: %q, secret: %q, meeting_id: conseil-tauriac}
        size: 1920x1080
`, meet.BBBAPI(), meetingBBBSecret), "")
	var st struct {
		Meeting struct {
			State  string `json:"state"`
			Detail string `json:"detail"`
			Size   string `json:"size"`
		} `json:"meeting"`
	}
	require.Eventually(t, func() bool {
		require.NoError(t, json.Unmarshal([]byte(s.mustGet("/api/v1/channels/tauriac")), &st))
		return st.Meeting.State == "waiting"
	}, 5*time.Second, 50*time.Millisecond)
	require.Equal(t, "meeting_not_started", st.Meeting.Detail)
	require.Equal(t, "1920x1080", st.Meeting.Size)

	// The meeting starts, but its guest policy refuses viewers: BBB's
	// redirect to the logout page is not broadcast; the API says why, in
	// French, with BBB's key.
	meet.SetGuestDeny(true)
	meet.SetRunning(true)
	var refused meetingState
	require.Eventually(t, func() bool {
		refused = s.meeting("tauriac")
		return refused.ErrorKey == "guestDeniedAccess"
	}, 15*time.Second, 50*time.Millisecond, "%+v", &refused)
	require.Contains(t, refused.LastError, "BigBlueButton refuse l'entrée dans la réunion : la politique d'invités")
	ch0, err := s.channel("tauriac")
	require.NoError(t, err)
	require.NotEqual(t, "live", ch0.Health.State)
	meet.SetGuestDeny(false)
	allowed := time.Now()
	s.waitChannel("tauriac", "live", "", 15*time.Second)
	t.Logf("BBB channel live %s after the guest policy let the bot in", time.Since(allowed).Round(time.Millisecond))
	require.Eventually(t, func() bool {
		m := s.meeting("tauriac")
		return m.State == "capturing" && m.ErrorKey == ""
	}, 5*time.Second, 50*time.Millisecond, "BBB's key goes once the capture runs")
	joins := meet.Joins()
	require.Len(t, joins, 1)
	require.Equal(t, "VIEWER", joins[0].Get("role"))
	require.Equal(t, "false", joins[0].Get("redirect"), "seance calls join itself and reads the XML")
	require.Equal(t, "true", joins[0].Get("userdata-bbb_force_listen_only"))
	require.Equal(t, "true", joins[0].Get("userdata-bbb_hide_nav_bar"))
	require.Equal(t, "true", joins[0].Get("userdata-bbb_skip_check_audio"))
	var ch struct {
		Health struct {
			Video struct {
				Width  int `json:"width"`
				Height int `json:"height"`
			} `json:"video"`
		} `json:"health"`
		Ingest struct {
			Protocol string `json:"protocol"`
		} `json:"ingest"`
	}
	require.Eventually(t, func() bool {
		require.NoError(t, json.Unmarshal([]byte(s.mustGet("/api/v1/channels/tauriac")), &ch))
		return ch.Health.Video.Width > 0
	}, 5*time.Second, 50*time.Millisecond)
	require.Equal(t, "meeting", ch.Ingest.Protocol)
	require.Equal(t, [2]int{1920, 1080}, [2]int{ch.Health.Video.Width, ch.Health.Video.Height})

	// Leave the meeting from the API: the browser goes, the channel is
	// interrupted (its publisher left).
	r := s.post("/api/v1/channels/tauriac/meeting/stop")
	require.Equal(t, 202, r)
	require.Eventually(t, func() bool { return len(browserPIDs(t)) == 0 }, 10*time.Second, 50*time.Millisecond)
	s.waitChannel("tauriac", "interrupted", "", 5*time.Second)
	metrics := s.mustGet("/metrics")
	api := s.mustGet("/api/v1/channels")
	s.stop()
	secrets := append([]string{meetingBBBSecret, "checksum="}, meet.SessionTokens()...)
	requireNoSecrets(t, secrets, map[string]string{"logs": s.logs.String(), "/metrics": metrics, "API": api})
}

// meetingState is a channel's meeting capture in the admin API.
type meetingState struct {
	State       string `json:"state"`
	Detail      string `json:"detail"`
	LastError   string `json:"last_error"`
	ErrorKey    string `json:"error_key"`
	DisplayName string `json:"display_name"`
}

func (s *seance) meeting(channel string) meetingState {
	s.t.Helper()
	var st struct {
		Meeting meetingState `json:"meeting"`
	}
	require.NoError(s.t, json.Unmarshal([]byte(s.mustGet("/api/v1/channels/"+channel)), &st))
	return st.Meeting
}

// post calls an admin route with POST and the token, and returns the
// status.
func (s *seance) post(path string) int {
	s.t.Helper()
	req, err := http.NewRequest(http.MethodPost, "http://"+s.app.admin.Addr().String()+path, nil)
	require.NoError(s.t, err)
	if s.token != "" {
		req.Header.Set("Authorization", "Bearer "+s.token)
	}
	resp, err := s.http.Do(req)
	require.NoError(s.t, err)
	resp.Body.Close()
	return resp.StatusCode
}

// TestReloadMeetingChannel: a reload adds a meeting channel (start:
// manual, so no browser starts): the admin API shows its capture and
// steers it; a second reload turns it into a pushed channel and its
// capture is gone from the API.
func TestReloadMeetingChannel(t *testing.T) {
	path := filepath.Join(t.TempDir(), "seance.yaml")
	write := func(channels string) {
		require.NoError(t, os.WriteFile(path, []byte(listeners+"admin: {listen: \"127.0.0.1:0\"}\nchannels:\n"+channels), 0o600))
	}
	write("  - {name: a, ingest: {demo: true}}\n")
	s := startSeanceFile(t, path, "")
	write(fmt.Sprintf("  - {name: a, ingest: {demo: true}}\n  - name: m\n    ingest: {meeting: {jitsi: {url: %q}, start: manual}}\n",
		"https://visio.example.fr/"+meetingRoom))
	code, body := s.postReload()
	require.Equal(t, http.StatusOK, code, body)
	require.Contains(t, body, `"added": [`+"\n"+`    "m"`)
	var st struct {
		Meeting *struct {
			State   string `json:"state"`
			Manual  bool   `json:"manual"`
			Started bool   `json:"started"`
			Server  string `json:"server"`
		} `json:"meeting"`
	}
	require.NoError(t, json.Unmarshal([]byte(s.mustGet("/api/v1/channels/m")), &st))
	require.NotNil(t, st.Meeting)
	require.Equal(t, "idle", st.Meeting.State)
	require.True(t, st.Meeting.Manual)
	require.False(t, st.Meeting.Started)
	require.Equal(t, "visio.example.fr", st.Meeting.Server)
	require.Equal(t, http.StatusNotFound, s.post("/api/v1/channels/a/meeting/start"), "a is no meeting")

	write("  - {name: a, ingest: {demo: true}}\n  - {name: m, ingest: {key: k-m}}\n")
	code, body = s.postReload()
	require.Equal(t, http.StatusOK, code, body)
	require.NoError(t, json.Unmarshal([]byte(s.mustGet("/api/v1/channels/m")), &st))
	require.Nil(t, st.Meeting)
	requireNoSecrets(t, []string{meetingRoom}, map[string]string{"logs": s.logs.String(), "API": s.mustGet("/api/v1/channels")})
}
