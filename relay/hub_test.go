package relay

import (
	"context"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"
)

func TestHubRunEndsChannels(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h, reg := newTestHub(t,
			ChannelConfig{Name: "live", Grace: time.Minute},
			ChannelConfig{Name: "interrupted", Grace: time.Minute},
			ChannelConfig{Name: "idle", Grace: time.Minute},
		)
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- h.Run(ctx) }()

		live, _ := h.Channel("live")
		sLive := publish(t, live, avTracks())
		sub := live.Subscribe("rtmp", 64)
		defer sub.Close()
		newFeed(sLive, 0, 30).frames(3)
		interrupted, _ := h.Channel("interrupted")
		publish(t, interrupted, avTracks()).Close()

		time.Sleep(2500 * time.Millisecond)
		synctest.Wait()
		require.Equal(t, 2.0, testutil.ToFloat64(live.met.liveSeconds), "ticks while live")

		_, liveChanged := live.State()
		_, intChanged := interrupted.State()
		cancel()
		synctest.Wait()
		select {
		case err := <-done:
			require.NoError(t, err)
		default:
			t.Fatal("Run did not return after cancel")
		}
		requireClosed(t, liveChanged)
		requireClosed(t, intChanged)
		for _, c := range h.Channels() {
			requireState(t, c, StateIdle)
		}
		require.NoError(t, testutil.GatherAndCompare(reg, strings.NewReader(`
# HELP seance_channel_live 1 while the channel is live (a publisher is sending, or the channel is within its grace period after the publisher left), else 0.
# TYPE seance_channel_live gauge
seance_channel_live{channel="idle"} 0
seance_channel_live{channel="interrupted"} 0
seance_channel_live{channel="live"} 0
`), "seance_channel_live"))

		// The publisher's session is over; no new one is accepted and the
		// interrupted channel's grace timer no longer fires.
		sLive.WriteH264(0, time.Second, [][]byte{idrNALU(100)})
		require.Len(t, drain(sub), 3)
		_, err := live.Publish(testPublisher, avTracks())
		require.ErrorIs(t, err, ErrChannelNotFound)
		sLive.Close()
		time.Sleep(2 * time.Minute)
		synctest.Wait()
		requireState(t, interrupted, StateIdle)
	})
}

// TestHubAddRemove: a reload adds and removes channels; removing one
// disconnects its publisher at once (no grace), ends its subscribers'
// session and leaves the other channels alone.
func TestHubAddRemove(t *testing.T) {
	h, _ := newTestHub(t, ChannelConfig{Name: "b", Grace: time.Minute}, ChannelConfig{Name: "keep", Grace: time.Minute})
	list, changed := h.Watch()
	require.Len(t, list, 2)

	a, added := h.Add(ChannelConfig{Name: "a", Title: "A"})
	require.True(t, added)
	requireClosed(t, changed)
	_, again := h.Add(ChannelConfig{Name: "a"})
	require.False(t, again, "a name already there is kept")
	names := func() []string {
		var out []string
		for _, c := range h.Channels() {
			out = append(out, c.Name())
		}
		return out
	}
	require.Equal(t, []string{"a", "b", "keep"}, names())
	a.SetTitle("A2")
	require.Equal(t, "A2", a.Title())

	keep, _ := h.Channel("keep")
	sKeep := publish(t, keep, avTracks())
	b, _ := h.Channel("b")
	sB := publish(t, b, avTracks())
	sub := b.Subscribe("rtmp", 64)
	defer sub.Close()
	_, bChanged := b.State()
	_, changed = h.Watch()

	require.True(t, h.Remove("b"))
	require.False(t, h.Remove("b"))
	requireClosed(t, changed)
	requireClosed(t, sB.Done())
	requireClosed(t, bChanged)
	requireState(t, b, StateIdle) // not interrupted: no grace for a removed channel
	_, err := h.Channel("b")
	require.ErrorIs(t, err, ErrChannelNotFound)
	require.Equal(t, []string{"a", "keep"}, names())
	requireState(t, keep, StateLive)
	select {
	case <-sKeep.Done():
		t.Fatal("keep's publisher was disconnected")
	default:
	}
}
