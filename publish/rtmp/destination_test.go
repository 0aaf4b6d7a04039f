package rtmp

import (
	"encoding/json"
	"errors"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/bluenviron/gortmplib/pkg/codecs"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h264"
	"github.com/stretchr/testify/require"

	"github.com/seance-relay/seance/configs"
)

func TestNextBackoff(t *testing.T) {
	want := []time.Duration{
		1 * time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second,
		16 * time.Second, 30 * time.Second, 30 * time.Second, 30 * time.Second,
	}
	for run := range 1000 {
		prev := time.Duration(0)
		for i, nominal := range want {
			step, wait := nextBackoff(prev)
			require.Equal(t, nominal, step, "run %d, attempt %d", run, i)
			require.GreaterOrEqual(t, wait, nominal*8/10, "run %d, attempt %d", run, i)
			require.LessOrEqual(t, wait, nominal*12/10, "run %d, attempt %d", run, i)
			prev = step
		}
	}
	t.Run("jitter spreads", func(t *testing.T) {
		seen := map[time.Duration]bool{}
		for range 100 {
			_, wait := nextBackoff(0)
			seen[wait] = true
		}
		require.Greater(t, len(seen), 50, "destinations would retry in lockstep")
	})
}

func TestStateText(t *testing.T) {
	for _, tc := range []struct {
		s    State
		want string
	}{
		{StateIdle, "idle"},
		{StateConnecting, "connecting"},
		{StateLive, "live"},
		{StateRetrying, "retrying"},
		{StateFailed, "failed"},
	} {
		t.Run(tc.want, func(t *testing.T) {
			require.Equal(t, tc.want, tc.s.String())
			b, err := json.Marshal(Status{State: tc.s})
			require.NoError(t, err)
			require.Contains(t, string(b), `"state":"`+tc.want+`"`)
		})
	}
}

// TestWrapRedacts checks the error text a destination keeps and logs.
func TestWrapRedacts(t *testing.T) {
	for _, tc := range []struct {
		name, url, err string
	}{
		{"fragment", "rtmp://h/live2#" + streamKey, "bad result: description " + streamKey},
		{"password", "rtmp://u:" + password + "@h/live2", "auth " + password + " failed"},
		{"both, repeated", "rtmps://u:" + password + "@h/app#" + streamKey, streamKey + password + streamKey},
	} {
		t.Run(tc.name, func(t *testing.T) {
			u, err := url.Parse(tc.url)
			require.NoError(t, err)
			d := &Destination{cfg: Config{URL: u}}
			got := d.wrap("connect", errors.New(tc.err)).Error()
			require.True(t, strings.HasPrefix(got, "connect: "), got)
			require.Contains(t, got, "[redacted]")
			requireNoSecrets(t, got, "the error")
		})
	}
}

// TestUnreachable pushes to a closed port: the destination goes
// connecting → retrying and counts the reconnect, and neither its status
// nor its logs hold the key or the password.
func TestUnreachable(t *testing.T) {
	e := newEnv(t)
	raw := closedURL(t)
	d := e.start(t, "youtube", raw, false)
	require.Equal(t, StateIdle, d.Status().State)

	e.goLive(t)
	requireState(t, d, StateRetrying)
	st := d.Status()
	require.GreaterOrEqual(t, st.Reconnects, uint64(1))
	require.Contains(t, st.LastError, "connect: ")
	require.Contains(t, st.LastError, "refused")
	require.Equal(t, configs.RedactURL(raw), st.URL)
	require.GreaterOrEqual(t, e.value(t, "seance_destination_reconnects_total", map[string]string{"channel": "bourg", "destination": "youtube"}), 1.0)
	require.Equal(t, 1.0, e.value(t, "seance_destination_state", map[string]string{"destination": "youtube", "state": "retrying"}))
	require.Equal(t, 0.0, e.value(t, "seance_destination_state", map[string]string{"destination": "youtube", "state": "idle"}))
	require.Equal(t, 0.0, e.value(t, "seance_destination_up", map[string]string{"destination": "youtube"}))
	require.Equal(t, []string{"connecting", "retrying"}, e.states(t)[:2])

	b, err := json.Marshal(d.Status())
	require.NoError(t, err)
	requireNoSecrets(t, string(b), "the status")
	requireNoSecrets(t, e.logs.String(), "the log")

	// Stopped while waiting to retry: idle.
	d.Stop()
	requireState(t, d, StateIdle)
	e.end(t)
}

// TestRefusedStreamKey: a server that refuses the stream and repeats the
// key in its answer; the key must not reach LastError or the logs.
func TestRefusedStreamKey(t *testing.T) {
	e := newEnv(t)
	r := startReceiver(t, receiverOpts{refuse: true})
	d := e.start(t, "youtube", r.url(), false)
	e.goLive(t)
	requireState(t, d, StateRetrying)
	require.Equal(t, streamKey, r.snapshot()[0].streamKey, "the receiver got the key")
	require.Contains(t, d.Status().LastError, "invalid stream key [redacted]")
	requireNoSecrets(t, d.Status().LastError, "LastError")
	requireNoSecrets(t, e.logs.String(), "the log")
	e.end(t)
}

// TestPush streams to a real RTMP receiver: it gets the tracks, H.264
// frames starting with a keyframe at DTS 0, and the end of the stream
// when the channel ends.
func TestPush(t *testing.T) {
	e := newEnv(t)
	r := startReceiver(t, receiverOpts{})
	d := e.start(t, "youtube", r.url(), false)
	e.goLive(t)
	requireState(t, d, StateLive)
	e.write(3 * time.Second) // the receiver analyses 2 s before it reads

	require.Eventually(t, func() bool {
		s := r.snapshot()
		return len(s) == 1 && len(s[0].video) >= 60 && s[0].audio >= 60
	}, 10*time.Second, 5*time.Millisecond)
	s := r.snapshot()[0]
	require.Equal(t, streamKey, s.streamKey)
	require.Len(t, s.tracks, 2)
	vt, ok := s.tracks[0].Codec.(*codecs.H264)
	require.True(t, ok)
	require.Equal(t, e.media.sps, vt.SPS)
	require.Equal(t, e.media.pps, vt.PPS)
	_, ok = s.tracks[1].Codec.(*codecs.MPEG4Audio)
	require.True(t, ok)

	first := s.video[0]
	require.True(t, first.key, "the first frame must be a keyframe")
	require.Less(t, first.dts, 100*time.Millisecond, "timestamps start near 0")
	require.GreaterOrEqual(t, first.dts, time.Duration(0))
	require.Equal(t, h264.NALUTypeSPS, h264.NALUType(first.nalus[0][0]&0x1f))
	for i := 1; i < len(s.video); i++ {
		require.Greater(t, s.video[i].dts, s.video[i-1].dts, "frame %d", i)
	}

	st := d.Status()
	require.Equal(t, StateLive, st.State)
	require.Empty(t, st.LastError)
	require.Zero(t, st.Reconnects)
	require.Equal(t, 1.0, e.value(t, "seance_destination_up", map[string]string{"destination": "youtube"}))
	require.Eventually(t, func() bool { return d.Status().Bytes > 100_000 }, 5*time.Second, 5*time.Millisecond)
	require.Greater(t, e.value(t, "seance_destination_bytes_total", map[string]string{"destination": "youtube"}), 100_000.0)

	// The channel ends: the receiver is told, then the connection closes.
	e.end(t)
	requireState(t, d, StateIdle)
	require.Eventually(t, func() bool { return r.snapshot()[0].ended }, 10*time.Second, 5*time.Millisecond)
	require.Subset(t, r.snapshot()[0].commands, []string{"FCUnpublish", "deleteStream"})
	require.Equal(t, 0.0, e.value(t, "seance_destination_up", map[string]string{"destination": "youtube"}))
	require.Equal(t, []string{"connecting", "live", "idle"}, e.states(t))
	requireNoSecrets(t, e.logs.String(), "the log")

	// The next session connects again.
	e.goLive(t)
	requireState(t, d, StateLive)
	require.Eventually(t, func() bool { return len(r.snapshot()) == 2 }, 5*time.Second, 5*time.Millisecond)
	e.end(t)
	requireState(t, d, StateIdle)
}

// TestPushNewParameters: the video parameters change mid-session (the
// relay's slate, or a publisher back with other encoder settings): the
// destination announces them on the same connection with a new sequence
// header, before the first frame that needs them.
func TestPushNewParameters(t *testing.T) {
	e := newEnv(t)
	r := startReceiver(t, receiverOpts{})
	d := e.start(t, "youtube", r.url(), false)
	e.goLive(t)
	requireState(t, d, StateLive)
	e.write(time.Second)

	// 640x360 High (libx264): another size, another SPS.
	sps2 := []byte{0x67, 0x64, 0x00, 0x1e, 0xac, 0xd9, 0x40, 0xa0, 0x2f, 0xf9, 0x70, 0x11, 0x00, 0x00, 0x03, 0x00,
		0x01, 0x00, 0x00, 0x03, 0x00, 0x3c, 0x0f, 0x16, 0x2d, 0x96}
	idr := slices.Clone(e.media.aus[0])
	idr[0] = sps2
	e.media.aus[0] = idr
	for e.video%30 != 0 {
		e.write(videoStep) // to the next keyframe, which changes the SPS
	}
	changedAt := e.now
	e.write(3 * time.Second)

	require.Eventually(t, func() bool {
		s := r.snapshot()
		return len(s) == 1 && len(s[0].configs) == 2 && len(s[0].video) >= 100
	}, 10*time.Second, 5*time.Millisecond)
	s := r.snapshot()[0]
	require.Equal(t, [][]byte{e.media.sps, sps2}, s.configs, "the new SPS is announced in a second sequence header")
	var sawNew bool
	for _, f := range s.video {
		if f.dts >= changedAt-time.Millisecond && f.key {
			sawNew = true
			require.Equal(t, sps2, f.nalus[0], "the keyframe carries the new SPS in band too")
			break
		}
	}
	require.True(t, sawNew)
	require.Zero(t, d.Status().Reconnects, "one connection")
	require.Equal(t, 1, r.connections())
	e.end(t)
	requireState(t, d, StateIdle)
}

// TestManual: a manual destination waits for Start, Stop brings it back
// to idle, and a start lasts one session.
func TestManual(t *testing.T) {
	e := newEnv(t)
	r := startReceiver(t, receiverOpts{})
	d := e.start(t, "youtube", r.url(), true)
	e.goLive(t)
	require.Never(t, func() bool { return d.Status().State != StateIdle || len(r.snapshot()) > 0 },
		300*time.Millisecond, 10*time.Millisecond, "a manual destination started on its own")

	d.Start()
	requireState(t, d, StateLive)
	require.Eventually(t, func() bool { return len(r.snapshot()) == 1 }, 5*time.Second, 5*time.Millisecond)

	d.Stop()
	requireState(t, d, StateIdle)
	require.Eventually(t, func() bool { return r.snapshot()[0].ended }, 10*time.Second, 5*time.Millisecond)
	require.Subset(t, r.snapshot()[0].commands, []string{"FCUnpublish", "deleteStream"})
	e.write(time.Second)
	require.Never(t, func() bool { return d.Status().State != StateIdle },
		300*time.Millisecond, 10*time.Millisecond, "a stopped destination restarted on its own")

	// Started again, then the session ends: the next one does not start.
	d.Start()
	requireState(t, d, StateLive)
	e.end(t)
	requireState(t, d, StateIdle)
	e.goLive(t)
	require.Never(t, func() bool { return d.Status().State != StateIdle },
		300*time.Millisecond, 10*time.Millisecond, "a manual start lasted past its session")
	require.Len(t, r.snapshot(), 2)
	e.end(t)
}

// TestRestart is the admin API's restart: Stop then Start at once must
// drop the connection and make a new one, not cancel out.
func TestRestart(t *testing.T) {
	t.Run("while live", func(t *testing.T) {
		e := newEnv(t)
		r := startReceiver(t, receiverOpts{})
		d := e.start(t, "youtube", r.url(), false)
		e.goLive(t)
		requireState(t, d, StateLive)
		require.Eventually(t, func() bool { return len(r.snapshot()) == 1 }, 5*time.Second, 5*time.Millisecond)

		d.Stop()
		d.Start()
		require.Eventually(t, func() bool { return len(r.snapshot()) == 2 }, 10*time.Second, 5*time.Millisecond,
			"restart did not reconnect")
		require.Eventually(t, func() bool { return r.snapshot()[0].ended }, 10*time.Second, 5*time.Millisecond)
		requireState(t, d, StateLive)
		e.end(t)
		requireState(t, d, StateIdle)
	})
	t.Run("while connecting", func(t *testing.T) {
		e := newEnv(t)
		gate := make(chan struct{})
		r := startReceiver(t, receiverOpts{gate: gate})
		d := e.start(t, "youtube", r.url(), false)
		e.goLive(t)
		// The destination is in the RTMP handshake, not reading requests.
		require.Eventually(t, func() bool { return r.connections() == 1 }, 5*time.Second, 5*time.Millisecond)
		require.Equal(t, StateConnecting, d.Status().State)

		d.Stop()
		d.Start()
		close(gate)
		require.Eventually(t, func() bool { return len(r.snapshot()) == 2 }, 10*time.Second, 5*time.Millisecond,
			"restart did not reconnect")
		require.Eventually(t, func() bool { return r.snapshot()[0].ended }, 10*time.Second, 5*time.Millisecond)
		requireState(t, d, StateLive)
		e.end(t)
		requireState(t, d, StateIdle)
	})
}
