package webrtc

import (
	"context"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/require"
)

// TestPace: the frames replayed from the cache go out at paceRate after a
// burst of paceBurst: a 2 s GOP of a 2.5 Mbit/s stream (~600 KiB) takes
// (600 KiB - paceBurst) / paceRate, its first 64 KiB (the IDR's start) none;
// a session that ends stops the wait.
func TestPace(t *testing.T) {
	for _, tc := range []struct {
		name  string
		bytes int
		want  float64 // seconds
	}{
		{"within the burst", paceBurst, 0},
		{"a 2 s GOP at 2.5 Mbit/s", 600 << 10, float64((600<<10)-paceBurst) / (paceRate / 8)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				s := &session{}
				s.ctx, s.cancel = context.WithCancelCause(t.Context())
				start := time.Now()
				for sent := 0; sent < tc.bytes; sent += 1200 {
					require.True(t, s.pace(min(1200, tc.bytes-sent)))
				}
				require.InDelta(t, tc.want, time.Since(start).Seconds(), 0.002)
			})
		})
	}
	t.Run("refills up to paceBurst while idle", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			s := &session{}
			s.ctx, s.cancel = context.WithCancelCause(t.Context())
			require.True(t, s.pace(paceBurst))
			time.Sleep(100 * time.Millisecond) // fake time: 150 kB at paceRate, capped
			start := time.Now()
			require.True(t, s.pace(paceBurst))
			require.Zero(t, time.Since(start), "refilled while idle")
			require.True(t, s.pace(paceRate/8/10))
			require.InDelta(t, 0.1, time.Since(start).Seconds(), 0.002, "then paced again")
		})
	})
	t.Run("the session ends", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			s := &session{}
			s.ctx, s.cancel = context.WithCancelCause(t.Context())
			require.True(t, s.pace(paceBurst))
			done := make(chan bool)
			go func() { done <- s.pace(1 << 20) }()
			synctest.Wait()
			s.cancel(nil)
			require.False(t, <-done)
		})
	})
}
