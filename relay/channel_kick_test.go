package relay

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestKick(t *testing.T) {
	t.Run("no publisher", func(t *testing.T) {
		c, _ := newTestChannel(t, time.Minute)
		require.False(t, c.Kick())
		requireState(t, c, StateIdle)
	})
	t.Run("within the grace a publisher continues the session", func(t *testing.T) {
		c, _ := newTestChannel(t, time.Minute)
		s := publish(t, c, videoOnly())
		requireOpen(t, s.Done())
		require.True(t, c.Kick())
		requireClosed(t, s.Done())
		require.True(t, s.Kicked())
		requireState(t, c, StateInterrupted)
		require.False(t, c.Kick(), "nobody left to kick")
		s.Close() // the ingest's own Close after a kick is harmless

		s2 := publish(t, c, videoOnly())
		defer s2.Close()
		requireState(t, c, StateLive)
		require.Equal(t, uint64(1), c.Health().Reconnects)
		requireOpen(t, s2.Done())
	})
	t.Run("no grace ends the session", func(t *testing.T) {
		c, _ := newTestChannel(t, 0)
		s := publish(t, c, videoOnly())
		require.True(t, c.Kick())
		requireClosed(t, s.Done())
		requireState(t, c, StateIdle)
	})
	t.Run("Done closes when the publisher leaves", func(t *testing.T) {
		c, _ := newTestChannel(t, 0)
		s := publish(t, c, videoOnly())
		s.Close()
		requireClosed(t, s.Done())
		require.False(t, s.Kicked())
	})
}
