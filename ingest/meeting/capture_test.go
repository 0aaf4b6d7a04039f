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
	require.Equal(t, false, r.Prejoin)
	require.Equal(t, true, r.DeepLinking)
	require.Equal(t, []any{}, r.ToolbarButtons)
	require.Equal(t, true, r.Filmstrip)
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
	// 3. A moderator throws the bot out: it joins again.
	e.meet.Kick()
	require.Eventually(t, func() bool { return c.Status().Restarts == 3 }, 15*time.Second, 50*time.Millisecond)
	st = waitState(t, c, StateCapturing, 15*time.Second)
	require.Contains(t, st.LastError, "no longer in the meeting")
	require.Equal(t, 3.0, testutil.ToFloat64(e.met.restarts.WithLabelValues("conseil")))
	require.Equal(t, 1.0, testutil.ToFloat64(e.met.state.WithLabelValues("conseil", "capturing")))
	require.Positive(t, testutil.ToFloat64(e.met.cpu.WithLabelValues("conseil")))

	t.Logf("%s: joined again after being thrown out", time.Since(start).Round(time.Millisecond))
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
	time.Sleep(300 * time.Millisecond)
	st := c.Status()
	require.Equal(t, StateIdle, st.State, "start: manual waits")
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

	pids := descendants(c.browserPID())
	c.Stop()
	st = waitState(t, c, StateIdle, 10*time.Second)
	require.False(t, st.Started)
	require.Zero(t, st.Restarts, "a stop is not a failure")
	for _, p := range pids {
		require.Eventually(t, func() bool { return processGone(p.pid) }, 5*time.Second, 20*time.Millisecond)
	}
	require.Eventually(t, func() bool { return stateOf(e.ch) == relay.StateInterrupted }, 5*time.Second, 20*time.Millisecond)
	requireNoSecret(t, e.logs.String(), testBBBKey)
}

// TestCaptureNoBrowser: without Chromium the capture says so, in words
// that tell what to install, and keeps trying.
func TestCaptureNoBrowser(t *testing.T) {
	e := newEnv(t)
	c := e.capture(t, configs.Meeting{Jitsi: configs.Jitsi{URL: configs.Secret(e.meet.JitsiURL(testRoom))}})
	c.cfg.Browser = "/nonexistent/chromium"
	runCapture(t, c)
	st := waitState(t, c, StateRetrying, 5*time.Second)
	require.Contains(t, st.LastError, "chromium is not installed: apt-get install chromium")
	require.Contains(t, e.logs.String(), "apt-get install chromium")
}

// TestCaptureWrongBBBSecret: BigBlueButton refuses the checksum with both
// algorithms: the capture says which key to check, without the secret.
func TestCaptureWrongBBBSecret(t *testing.T) {
	e := newEnv(t)
	c := e.capture(t, configs.Meeting{BBB: configs.BBB{API: e.meet.BBBAPI(), Secret: "wrong-S3CR3T-bbb-91", MeetingID: "x"}})
	runCapture(t, c)
	st := waitState(t, c, StateRetrying, 5*time.Second)
	require.Contains(t, st.LastError, "check ingest.meeting.bbb.secret")
	require.Equal(t, 2, e.meet.BBBCalls("isMeetingRunning"), "SHA-256, then SHA-1")
	requireNoSecret(t, e.logs.String()+st.LastError, "wrong-S3CR3T-bbb-91")
}
