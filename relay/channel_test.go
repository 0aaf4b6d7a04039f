package relay

import (
	"encoding/json"
	"errors"
	"testing"
	"testing/synctest"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"
)

func TestStateString(t *testing.T) {
	for _, tc := range []struct {
		s    State
		want string
	}{
		{StateIdle, "idle"},
		{StateLive, "live"},
		{StateInterrupted, "interrupted"},
	} {
		t.Run(tc.want, func(t *testing.T) {
			require.Equal(t, tc.want, tc.s.String())
			b, err := json.Marshal(tc.s)
			require.NoError(t, err)
			require.JSONEq(t, `"`+tc.want+`"`, string(b))
		})
	}
}

func TestHubChannel(t *testing.T) {
	h, _ := newTestHub(t, ChannelConfig{Name: "zeta"}, ChannelConfig{Name: "alpha", Title: "Alpha"})
	c, err := h.Channel("alpha")
	require.NoError(t, err)
	require.Equal(t, "alpha", c.Name())
	require.Equal(t, "Alpha", c.Title())

	_, err = h.Channel("nope")
	require.ErrorIs(t, err, ErrChannelNotFound)

	names := []string{}
	for _, c := range h.Channels() {
		names = append(names, c.Name())
	}
	require.Equal(t, []string{"alpha", "zeta"}, names)
}

func TestPublishErrors(t *testing.T) {
	for _, tc := range []struct {
		name    string
		prepare func(t *testing.T, c *Channel)
		tracks  Tracks
		want    error
	}{
		{
			name:   "no video",
			tracks: Tracks{Audio: &AudioTrack{Config: aacLC44()}},
			want:   ErrNoVideo,
		},
		{
			name:    "second publisher",
			prepare: func(t *testing.T, c *Channel) { publish(t, c, avTracks()) },
			tracks:  avTracks(),
			want:    ErrChannelBusy,
		},
		{
			name:    "channel closed",
			prepare: func(t *testing.T, c *Channel) { c.close() },
			tracks:  avTracks(),
			want:    ErrChannelNotFound,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, _ := newTestChannel(t, time.Minute)
			if tc.prepare != nil {
				tc.prepare(t, c)
			}
			before, _ := c.State()
			s, err := c.Publish(testPublisher, tc.tracks)
			require.Nil(t, s)
			require.True(t, errors.Is(err, tc.want), "got %v, want %v", err, tc.want)
			requireState(t, c, before)
		})
	}
}

func TestPublishStates(t *testing.T) {
	c, reg := newTestChannel(t, 0)
	live := func() float64 { return testutil.ToFloat64(c.met.live) }

	st, changed := c.State()
	require.Equal(t, StateIdle, st)
	require.Nil(t, c.Tracks())
	require.Zero(t, live())
	requireOpen(t, changed)

	s := publish(t, c, avTracks())
	requireClosed(t, changed)
	st, changed = c.State()
	require.Equal(t, StateLive, st)
	require.Equal(t, sps720, c.Tracks().Video.SPS)
	require.Equal(t, 1.0, live())
	h := c.Health()
	require.Equal(t, "rtmp", h.Protocol)
	require.Equal(t, "192.0.2.10:50000", h.RemoteAddr)
	require.Equal(t, 1.0, testutil.ToFloat64(c.met.m.publishers.WithLabelValues("bourg", "rtmp")))

	s.Close()
	requireClosed(t, changed)
	st, changed = c.State()
	require.Equal(t, StateIdle, st)
	require.Nil(t, c.Tracks())
	require.Zero(t, live())
	h = c.Health()
	require.Empty(t, h.Protocol)
	require.Empty(t, h.RemoteAddr)

	// Close is idempotent and a closed session writes nothing.
	s.Close()
	requireOpen(t, changed)
	s.WriteH264(0, 0, [][]byte{sps720, testPPS, idrNALU(100)})
	requireState(t, c, StateIdle)
	require.Zero(t, testutil.ToFloat64(c.met.frames[KindVideo]))

	// Unknown protocols are not metric labels.
	s, err := c.Publish(PublisherInfo{Protocol: "srt"}, videoOnly())
	require.NoError(t, err)
	defer s.Close()
	n, err := testutil.GatherAndCount(reg, "seance_ingest_publishers_total")
	require.NoError(t, err)
	require.Equal(t, 2, n)
	require.Equal(t, 1.0, testutil.ToFloat64(c.met.m.publishers.WithLabelValues("bourg", "_other")))
}

func TestGrace(t *testing.T) {
	t.Run("publisher comes back within grace", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			c, _ := newTestChannel(t, 30*time.Second)
			sub := c.Subscribe("rtmp", 256)
			defer sub.Close()

			s := publish(t, c, avTracks())
			f := newFeed(s, 0, 30)
			f.frames(45)
			require.Len(t, drain(sub), 45)

			_, changed := c.State()
			s.Close()
			requireClosed(t, changed)
			st, changed := c.State()
			require.Equal(t, StateInterrupted, st)
			require.Equal(t, 1.0, testutil.ToFloat64(c.met.live), "interrupted counts as live")
			require.NotNil(t, c.Tracks(), "tracks kept during the grace period")

			time.Sleep(29 * time.Second)
			synctest.Wait()
			requireState(t, c, StateInterrupted)
			requireOpen(t, changed)

			s2 := publish(t, c, avTracks())
			defer s2.Close()
			requireClosed(t, changed)
			requireState(t, c, StateLive)

			// The new publisher starts mid-GOP: sinks must wait for its
			// first keyframe.
			f2 := &feed{s: s2, base: time.Hour, gop: 30, n: 10, size: 1000}
			f2.frames(25) // 10..34: keyframe at 30
			got := drain(sub)
			require.Len(t, got, 5)
			require.True(t, got[0].Key, "first frame after resume is a keyframe")
			require.Equal(t, uint64(0), sub.Dropped(), "waiting for the new publisher's keyframe is not a loss")

			// The grace timer was stopped: the session lives on.
			time.Sleep(time.Minute)
			synctest.Wait()
			requireState(t, c, StateLive)
			require.Equal(t, uint64(1), c.Health().Reconnects)
		})
	})

	t.Run("publisher does not come back", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			c, _ := newTestChannel(t, 30*time.Second)
			s := publish(t, c, avTracks())
			newFeed(s, 0, 30).frames(10)
			s.Close()
			st, changed := c.State()
			require.Equal(t, StateInterrupted, st)

			time.Sleep(30*time.Second - time.Nanosecond)
			synctest.Wait()
			requireState(t, c, StateInterrupted)

			time.Sleep(time.Nanosecond)
			synctest.Wait()
			requireClosed(t, changed)
			requireState(t, c, StateIdle)
			require.Nil(t, c.Tracks())
			require.Zero(t, testutil.ToFloat64(c.met.live))

			// A publisher now starts a new session, not a reconnect.
			s2 := publish(t, c, avTracks())
			defer s2.Close()
			require.Zero(t, c.Health().Reconnects)
		})
	})

	t.Run("a second departure restarts the grace period", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			c, _ := newTestChannel(t, 30*time.Second)
			s := publish(t, c, avTracks())
			s.Close()
			time.Sleep(20 * time.Second)
			s = publish(t, c, avTracks())
			s.Close()
			time.Sleep(20 * time.Second) // 40 s after the first departure
			synctest.Wait()
			requireState(t, c, StateInterrupted)
			time.Sleep(10 * time.Second)
			synctest.Wait()
			requireState(t, c, StateIdle)
		})
	})

	t.Run("grace zero ends at once", func(t *testing.T) {
		c, _ := newTestChannel(t, 0)
		s := publish(t, c, avTracks())
		_, changed := c.State()
		s.Close()
		requireClosed(t, changed)
		requireState(t, c, StateIdle)
		require.Nil(t, c.Tracks())
	})
}
