package meeting

import (
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"

	"github.com/seance-relay/seance/configs"
	"github.com/seance-relay/seance/ingest/meeting/meetingtest"
	"github.com/seance-relay/seance/relay"
)

// TestCaptureJitsi joins a stand-in Jitsi meeting in Chromium: the
// channel goes live within 5 s with H.264 and AAC; the bot joined muted,
// camera off, under its name, with the JWT, as a normal Chrome, and sends
// nothing into the meeting; the page's error reaches the status. Then the
// browser is killed, frozen and thrown out of the meeting: each time it
// is restarted and the channel continues the same session. At the end,
// no process and no file is left, and no secret was logged.
func TestCaptureJitsi(t *testing.T) {
	requireChromium(t)
	e := newEnv(t)
	meetingURL := e.meet.JitsiURL(testRoom)
	// A council of 4: Jitsi would switch to tile view; the server's own
	// config would join audio only.
	e.meet.SetParticipants(3)
	e.meet.SetServerConfig("startLowBandwidthMode", true)
	c := e.capture(t, configs.Meeting{Jitsi: configs.Jitsi{URL: configs.Secret(meetingURL), JWT: testJWT}})
	require.Equal(t, StateIdle, c.Status().State)
	sub := e.ch.Subscribe("test", 256)
	defer sub.Close()

	start := time.Now()
	stop := runCapture(t, c)
	var video, audio int
	var keyframe bool
	deadline := time.After(5 * time.Second)
	for !keyframe || audio < 10 {
		select {
		case f := <-sub.Frames():
			if f.Kind == relay.KindVideo {
				video++
				keyframe = keyframe || f.Key
			} else {
				audio++
			}
		case <-deadline:
			t.Fatalf("within 5 s of start: %d video frames (keyframe %t), %d audio frames; status %+v", video, keyframe, audio, c.Status())
		}
	}
	live := time.Since(start)
	st := waitState(t, c, StateCapturing, 5*time.Second)
	h := e.ch.Health()
	require.Equal(t, "meeting", h.Protocol)
	require.Equal(t, 1280, h.Video.Width)
	require.Equal(t, 720, h.Video.Height)
	require.Equal(t, "AAC-LC", h.Audio.Codec)
	t.Logf("live %s after start", live.Round(time.Millisecond))

	// Resource figures arrive every other second.
	require.Eventually(t, func() bool {
		st = c.Status()
		return st.MemoryBytes > 0 && st.CPUCores > 0 && st.CaptureFPS > 15 && st.Processes >= 3 && st.PageErrors > 0
	}, 10*time.Second, 100*time.Millisecond, "status %+v", &st)
	require.Equal(t, "jitsi", st.Platform)
	require.Equal(t, "127.0.0.1", st.Server)
	require.Contains(t, st.LastPageError, "this page logs one error on purpose")
	t.Logf("capturing: %.1f fps, %.2f cores, %d MiB PSS in %d processes", st.CaptureFPS, st.CPUCores, st.MemoryBytes>>20, st.Processes)

	// What the meeting saw of the bot.
	var rep = e.meet.Reports()
	require.Eventually(t, func() bool {
		rep = e.meet.Reports()
		return len(rep) == 1 && rep[0].Joined && rep[0].AudioPlaying
	}, 5*time.Second, 50*time.Millisecond, "reports %+v", rep)
	r := rep[0]
	require.Equal(t, "Diffusion publique", r.DisplayName)
	require.Equal(t, testJWT, r.JWT)
	require.Equal(t, "hash", r.JWTFrom, "the JWT is in the fragment, not the query")
	require.Empty(t, r.Ignored, "every URL override is in Jitsi's whitelists")
	require.Equal(t, false, r.Prejoin)
	require.Equal(t, true, r.DeepLinking)
	require.Equal(t, true, r.AutoKnock)
	require.Equal(t, false, r.LowBandwidth, "the bot receives video")
	require.Equal(t, []any{}, r.ToolbarButtons)
	require.Equal(t, true, r.Filmstrip)
	require.Equal(t, true, r.TileViewOff)
	require.Equal(t, 4, r.Participants)
	require.Equal(t, "speaker", r.Shown, "layout speaker: the active speaker large, as Jibri broadcasts")
	require.Zero(t, r.GUMCalls, "the bot never opens its microphone or camera")
	require.Zero(t, r.SentAudioBytes+r.SentVideoBytes, "the bot sends nothing into the meeting")
	for _, ua := range e.meet.UserAgents() {
		require.Contains(t, ua, "Chrome/")
		require.NotContains(t, ua, "Headless")
	}

	t.Logf("%s: figures and reports checked", time.Since(start).Round(time.Millisecond))
	// 1. Chromium crashes: restarted, the channel's session continues.
	pid := c.browserPID()
	require.Positive(t, pid)
	require.NoError(t, syscall.Kill(pid, syscall.SIGKILL))
	waitState(t, c, StateRetrying, 5*time.Second)
	st = waitState(t, c, StateCapturing, 15*time.Second)
	require.EqualValues(t, 1, st.Restarts)
	require.Contains(t, st.LastError, "the browser (chromium) exited")
	require.NotEqual(t, pid, c.browserPID())
	require.Eventually(t, func() bool { return stateOf(e.ch) == relay.StateLive }, 10*time.Second, 20*time.Millisecond)
	require.EqualValues(t, 1, e.ch.Health().Reconnects, "the same session continues")

	t.Logf("%s: restarted after a crash", time.Since(start).Round(time.Millisecond))
	// 2. Chromium freezes (every process stopped): a hang, restarted.
	pid = c.browserPID()
	require.NoError(t, syscall.Kill(-pid, syscall.SIGSTOP))
	require.Eventually(t, func() bool { return c.Status().Restarts == 2 }, 10*time.Second, 50*time.Millisecond)
	st = waitState(t, c, StateCapturing, 15*time.Second)
	require.EqualValues(t, 2, st.Restarts)
	require.Contains(t, st.LastError, "the browser stopped working")

	t.Logf("%s: restarted after a hang", time.Since(start).Round(time.Millisecond))
	// 3. A moderator removes the bot: it stays out until started again.
	e.meet.Kick()
	st = waitState(t, c, StateRemoved, 15*time.Second)
	require.EqualValues(t, 2, st.Restarts, "a removal is not a failure")
	require.Contains(t, st.LastError, "removed from the meeting by a moderator")
	require.Eventually(t, func() bool { return c.browserPID() == 0 }, 5*time.Second, 20*time.Millisecond, "the browser is gone")
	require.Eventually(t, func() bool { return stateOf(e.ch) == relay.StateInterrupted }, 5*time.Second, 20*time.Millisecond,
		"the publisher left: the channel shows its slate")
	require.Never(t, func() bool { return c.Status().State != StateRemoved }, 2*time.Second, 50*time.Millisecond, "no rejoin on its own")
	require.Equal(t, 1.0, testutil.ToFloat64(e.met.state.WithLabelValues("conseil", "removed")))
	c.Start()
	st = waitState(t, c, StateCapturing, 15*time.Second)
	require.EqualValues(t, 2, st.Restarts)
	require.Equal(t, 2.0, testutil.ToFloat64(e.met.restarts.WithLabelValues("conseil")))
	require.Equal(t, 1.0, testutil.ToFloat64(e.met.state.WithLabelValues("conseil", "capturing")))
	require.Positive(t, testutil.ToFloat64(e.met.cpu.WithLabelValues("conseil")))

	t.Logf("%s: joined again when started after the removal", time.Since(start).Round(time.Millisecond))
	// Stop: the browser tree and the files are gone.
	pid = c.browserPID()
	pids := descendants(pid)
	require.GreaterOrEqual(t, len(pids), 3)
	stop()
	require.Equal(t, StateIdle, c.Status().State)
	for _, p := range pids {
		require.True(t, processGone(p.pid), "process %d of the browser tree survived", p.pid)
	}
	require.Empty(t, leftovers(t, e.tmp), "extension and profiles are deleted")
	require.Eventually(t, func() bool { return stateOf(e.ch) != relay.StateLive }, 5*time.Second, 20*time.Millisecond,
		"the publisher left when the capture stopped")
	requireNoSecret(t, e.logs.String(), testJWT, testRoom, e.whip.InternalToken("conseil").Value())
}

// TestCaptureBBBManual: a BigBlueButton meeting with start: manual waits
// for Start; then the capture waits, politely, for the meeting to start,
// joins it through the API as a listen-only viewer, and captures it; Stop
// ends it and leaves nothing behind.
func TestCaptureBBBManual(t *testing.T) {
	requireChromium(t)
	e := newEnv(t)
	e.meet.SetRunning(false)
	c := e.capture(t, configs.Meeting{
		BBB:   configs.BBB{API: e.meet.URL + "/bigbluebutton/", Secret: testBBBKey, MeetingID: "conseil-tauriac"},
		Start: configs.StartManual, DisplayName: "Mairie de Tauriac",
	})
	runCapture(t, c)
	require.Never(t, func() bool { return c.Status().State != StateIdle }, 300*time.Millisecond, 20*time.Millisecond, "start: manual waits")
	st := c.Status()
	require.True(t, st.Manual)
	require.False(t, st.Started)
	require.Zero(t, e.meet.BBBCalls("isMeetingRunning"))

	c.Start()
	st = waitState(t, c, StateWaiting, 5*time.Second)
	require.Equal(t, DetailMeetingNotStarted, st.Detail)
	require.Equal(t, "bbb", st.Platform)
	e.meet.SetRunning(true)
	st = waitState(t, c, StateCapturing, 20*time.Second)
	require.Empty(t, st.LastError)
	require.Zero(t, st.Restarts, "waiting for the meeting is not a failure")
	require.Eventually(t, func() bool { return stateOf(e.ch) == relay.StateLive }, 5*time.Second, 20*time.Millisecond)

	joins := e.meet.Joins()
	require.Len(t, joins, 1)
	require.Equal(t, "VIEWER", joins[0].Get("role"))
	require.Equal(t, "Mairie de Tauriac", joins[0].Get("fullName"))
	require.Equal(t, "conseil-tauriac", joins[0].Get("meetingID"))
	var rep []meetingtest.Report
	require.Eventually(t, func() bool {
		rep = e.meet.Reports()
		return len(rep) == 1 && rep[0].Joined
	}, 5*time.Second, 50*time.Millisecond)
	require.Equal(t, "bbb", rep[0].Platform)
	require.Zero(t, rep[0].GUMCalls, "listen only: no microphone")
	require.Zero(t, rep[0].SentAudioBytes+rep[0].SentVideoBytes)

	require.Equal(t, "true", joins[0].Get("userdata-bbb_hide_nav_bar"))
	require.Equal(t, "true", joins[0].Get("userdata-bbb_hide_actions_bar"))
	require.Equal(t, "true", joins[0].Get("userdata-bbb_force_listen_only"))

	// Removed by a moderator (BBB 3.x's meetingEndedModal while the
	// meeting still runs): stays out until started again.
	e.meet.Kick()
	st = waitState(t, c, StateRemoved, 15*time.Second)
	require.Contains(t, st.LastError, "removed from the meeting by a moderator")
	// Joined again, into a 2.x client (meetingEndedModalTitle); the meeting
	// ends: the capture waits for it to start again.
	e.meet.SetBBB2()
	c.Start()
	waitState(t, c, StateCapturing, 20*time.Second)
	e.meet.EndMeeting()
	st = waitState(t, c, StateWaiting, 15*time.Second)
	require.Contains(t, st.LastError, "no longer in the meeting")
	require.Equal(t, DetailMeetingNotStarted, st.Detail)

	c.Stop()
	st = waitState(t, c, StateIdle, 10*time.Second)
	require.False(t, st.Started)
	require.EqualValues(t, 1, st.Restarts, "the end of the meeting, not the stop nor the removal")
	require.Eventually(t, func() bool { return c.browserPID() == 0 }, 5*time.Second, 20*time.Millisecond)
	require.Eventually(t, func() bool { return stateOf(e.ch) == relay.StateInterrupted }, 5*time.Second, 20*time.Millisecond)
	secrets := append([]string{testBBBKey}, e.meet.SessionTokens()...)
	requireNoSecret(t, e.logs.String()+st.LastError, secrets...)
}

// TestCaptureJitsiLobbyTilesAlone: the room has a lobby: the bot knocks,
// the dashboard says a moderator must admit it, and nothing goes on air
// until it is in. Layout tiles: Jitsi's tile view, filmstrip kept. Alone
// in the meeting for alone_after: the capture stops (the channel shows its
// slate) and the bot waits in the meeting; someone joins: live again.
// Removed with rejoin_after: it joins again on its own.
func TestCaptureJitsiLobbyTilesAlone(t *testing.T) {
	requireChromium(t)
	e := newEnv(t)
	e.meet.SetLobby(true)
	e.meet.SetParticipants(3)
	c := e.capture(t, configs.Meeting{Jitsi: configs.Jitsi{URL: configs.Secret(e.meet.JitsiURL(testRoom))},
		Layout: configs.LayoutTiles, AloneAfter: configs.Duration(2 * time.Second), RejoinAfter: configs.Duration(time.Second)})
	runCapture(t, c)
	require.Eventually(t, func() bool { return c.Status().Detail == DetailLobby }, 15*time.Second, 20*time.Millisecond,
		"status %+v", c.Status())
	require.Equal(t, StateJoining, c.Status().State)
	var rep []meetingtest.Report
	require.Eventually(t, func() bool {
		rep = e.meet.Reports()
		return len(rep) == 1 && rep[0].Knocking
	}, 5*time.Second, 50*time.Millisecond, "the bot knocks: %+v", rep)
	require.Never(t, func() bool { return stateOf(e.ch) == relay.StateLive }, 2*time.Second, 50*time.Millisecond,
		"nothing goes on air from the lobby")

	e.meet.Admit()
	st := waitState(t, c, StateCapturing, 15*time.Second)
	require.Empty(t, st.Detail)
	require.Eventually(t, func() bool { return stateOf(e.ch) == relay.StateLive }, 5*time.Second, 20*time.Millisecond)
	require.Eventually(t, func() bool {
		rep = e.meet.Reports()
		return len(rep) == 1 && rep[0].Joined && rep[0].Shown != "none"
	}, 5*time.Second, 50*time.Millisecond)
	require.Equal(t, "tiles", rep[0].Shown, "layout tiles: everyone, in the filmstrip")
	require.Equal(t, false, rep[0].Filmstrip)
	require.Empty(t, rep[0].Ignored)

	e.meet.SetParticipants(0)
	waitState(t, c, StateAlone, 15*time.Second)
	require.Eventually(t, func() bool { return stateOf(e.ch) == relay.StateInterrupted }, 5*time.Second, 20*time.Millisecond,
		"the capture stopped: the channel shows its slate")
	// The bot is back in the meeting, alone, not capturing.
	require.Eventually(t, func() bool {
		rep = e.meet.Reports()
		return len(rep) == 2 && rep[1].Joined
	}, 30*time.Second, 50*time.Millisecond)
	require.Equal(t, StateAlone, c.Status().State)
	require.Equal(t, relay.StateInterrupted, stateOf(e.ch))
	e.meet.SetParticipants(2)
	st = waitState(t, c, StateCapturing, 20*time.Second)
	require.Zero(t, st.Restarts, "being alone is not a failure")
	require.Eventually(t, func() bool { return stateOf(e.ch) == relay.StateLive }, 5*time.Second, 20*time.Millisecond)
	require.EqualValues(t, 1, e.ch.Health().Reconnects, "back within the grace period: the same session")

	e.meet.Kick()
	waitState(t, c, StateRemoved, 15*time.Second)
	st = waitState(t, c, StateCapturing, 20*time.Second)
	require.Zero(t, st.Restarts)
}

// TestCaptureNotAMeeting: the address opens a page that is not the
// meeting (a login or logout page), or the meeting asks for a login (a
// secure domain, the JWT refused): the capture says so and never
// broadcasts it.
func TestCaptureNotAMeeting(t *testing.T) {
	requireChromium(t)
	for _, tc := range []struct {
		name, path, jwt string
		want            string
		never           time.Duration
	}{
		// Longer than the 30 s after which seance used to broadcast a page
		// whose join it could not confirm: the page is static, so this
		// costs little.
		{name: "logout page", path: "/logout", want: DetailOtherPage, never: 32 * time.Second},
		{name: "login required", path: "/" + testRoom, jwt: "expired.jwt.token", want: DetailLoginPage, never: 3 * time.Second},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			e.meet.RequireJWT(testJWT)
			c := e.capture(t, configs.Meeting{Jitsi: configs.Jitsi{URL: configs.Secret(e.meet.URL + tc.path), JWT: configs.Secret(tc.jwt)}})
			runCapture(t, c)
			require.Eventually(t, func() bool { return c.Status().Detail == tc.want }, 15*time.Second, 20*time.Millisecond,
				"status %+v", c.Status())
			require.Never(t, func() bool { return stateOf(e.ch) == relay.StateLive || c.Status().State != StateJoining },
				tc.never, 100*time.Millisecond, "never on air")
		})
	}
}
