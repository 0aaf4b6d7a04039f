package relay

import (
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestSubscribeGOPCache(t *testing.T) {
	// The publisher sends video with a keyframe every 10 frames and one
	// audio frame per video frame, starting at video frame 5 (mid-GOP).
	for _, tc := range []struct {
		name   string
		frames int // video frames published before Subscribe
		size   int
		cached int // frames waiting in the new queue
	}{
		{name: "mid-GOP: starts with the cached GOP", frames: 14, size: 64, cached: 18},
		{name: "right after a keyframe", frames: 16, size: 64, cached: 2},
		{name: "GOP larger than the queue: waits for the next keyframe", frames: 14, size: 18, cached: 0},
		{name: "no keyframe yet: waits for the first", frames: 4, size: 64, cached: 0},
		{name: "idle channel: waits for the first keyframe", frames: 0, size: 64, cached: 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, _ := newTestChannel(t, 0)
			s := publish(t, c, avTracks())
			defer s.Close()
			f := newFeed(s, 0, 10)
			f.audio = true
			f.n = 5
			f.frames(tc.frames)

			sub := c.Subscribe("webrtc", tc.size)
			defer sub.Close()
			got := drain(sub)
			require.Len(t, got, tc.cached)
			if tc.cached > 0 {
				require.Equal(t, KindVideo, got[0].Kind)
				require.True(t, got[0].Key, "cached GOP starts with the keyframe")
				lastKey := (f.n - 1) / 10 * 10
				require.Equal(t, time.Duration(lastKey-5)*videoStep, got[0].DTS)
				requireIncreasing(t, got)
				for _, fr := range got[1:] {
					require.False(t, fr.Key)
				}
			}

			// Publish up to and including the next keyframe.
			pending := 10 - f.n%10
			f.frames(pending + 1)
			got = drain(sub)
			if tc.cached > 0 {
				require.Len(t, got, 2*(pending+1), "every frame after the cache")
				require.False(t, got[0].Key)
			} else {
				require.Len(t, got, 2, "only the keyframe and its audio")
				require.True(t, got[0].Key)
				require.Equal(t, KindAudio, got[1].Kind)
			}
			require.Zero(t, sub.Dropped(), "waiting for a first keyframe is not a loss")
		})
	}
}

func TestSlowSubscriber(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c, reg := newTestChannel(t, 0)
		sub := c.Subscribe("rtmp", 8)
		defer sub.Close()
		other := c.Subscribe("webrtc", 2048)
		defer other.Close()
		s := publish(t, c, videoOnly())
		defer s.Close()

		// Nobody reads sub. The publisher must never block: inside the
		// bubble a blocked send would be reported as a deadlock.
		f := newFeed(s, 0, 30)
		f.frames(1000)

		require.Equal(t, uint64(1000-8), sub.Dropped())
		require.Zero(t, other.Dropped())
		require.Len(t, drain(other), 1000, "a slow sink does not hurt another")
		require.Equal(t, float64(1000-8), testutil.ToFloat64(c.met.sinkDropped("rtmp")))
		require.NoError(t, testutil.GatherAndCompare(reg, strings.NewReader(`
# HELP seance_sink_dropped_frames_total Frames a slow sink (destination, viewer, recorder) could not take and skipped to the next keyframe.
# TYPE seance_sink_dropped_frames_total counter
seance_sink_dropped_frames_total{channel="bourg",sink="rtmp"} 992
seance_sink_dropped_frames_total{channel="bourg",sink="webrtc"} 0
`), "seance_sink_dropped_frames_total"))

		// The queue holds the first 8 frames.
		got := drain(sub)
		require.Len(t, got, 8)
		for i, fr := range got {
			require.Equal(t, time.Duration(i)*videoStep, fr.DTS)
		}

		// Drained: it skips the rest of the GOP (counted as dropped) and
		// resumes on the next keyframe.
		require.NotZero(t, f.n%30)
		rest := 30 - f.n%30
		f.frames(rest + 3)
		require.Equal(t, uint64(1000-8+rest), sub.Dropped())
		require.Equal(t, float64(1000-8+rest), testutil.ToFloat64(c.met.sinkDropped("rtmp")))
		got = drain(sub)
		require.Len(t, got, 3)
		require.True(t, got[0].Key, "after a drop the next frame is a keyframe")
		require.False(t, got[1].Key)
	})
}

func TestSubscriptionSinkLabel(t *testing.T) {
	c, reg := newTestChannel(t, 0)
	sub := c.Subscribe("10.0.0.1:5555", 1) // not a known sink kind
	defer sub.Close()
	s := publish(t, c, videoOnly())
	defer s.Close()
	newFeed(s, 0, 30).frames(3)
	require.Equal(t, uint64(2), sub.Dropped())
	require.NoError(t, testutil.GatherAndCompare(reg, strings.NewReader(`
# HELP seance_sink_dropped_frames_total Frames a slow sink (destination, viewer, recorder) could not take and skipped to the next keyframe.
# TYPE seance_sink_dropped_frames_total counter
seance_sink_dropped_frames_total{channel="bourg",sink="_other"} 2
`), "seance_sink_dropped_frames_total"))
}

func TestSubscriptionClose(t *testing.T) {
	c, _ := newTestChannel(t, 0)
	s := publish(t, c, videoOnly())
	defer s.Close()
	a := c.Subscribe("rtmp", 64)
	b := c.Subscribe("hls", 64)
	defer b.Close()
	f := newFeed(s, 0, 5)
	f.frames(2)

	a.Close()
	a.Close() // idempotent
	f.frames(8)
	require.Len(t, drain(a), 2, "no frame after Close")
	require.Len(t, drain(b), 10)
	require.Equal(t, []*Subscription{b}, c.subs)
	require.Zero(t, a.Dropped())
}

func TestSubscriptionOutlivesSession(t *testing.T) {
	// A sink that has not yet closed when a new session starts (grace 0)
	// must not get the new publisher's P-frames first.
	c, _ := newTestChannel(t, 0)
	sub := c.Subscribe("record", 64)
	defer sub.Close()
	s := publish(t, c, videoOnly())
	newFeed(s, 0, 30).frames(5)
	s.Close()
	requireState(t, c, StateIdle)
	require.Len(t, drain(sub), 5)

	s = publish(t, c, videoOnly())
	defer s.Close()
	f := &feed{s: s, gop: 30, n: 25, size: 100}
	f.frames(6)
	got := drain(sub)
	require.Len(t, got, 1)
	require.True(t, got[0].Key)
	require.Zero(t, sub.Dropped())
}

func TestConcurrentSubscribeClose(t *testing.T) {
	c, _ := newTestChannel(t, time.Minute)
	done := make(chan struct{})
	var wg sync.WaitGroup
	var received atomic.Int64

	wg.Go(func() {
		defer close(done)
		for round := range 3 {
			s, err := c.Publish(testPublisher, avTracks())
			if !assert.NoError(t, err) {
				return
			}
			f := &feed{s: s, base: time.Duration(round) * time.Hour, gop: 15, size: 64, audio: true}
			f.frames(500)
			s.Close()
		}
	})
	for range 8 {
		wg.Go(func() {
			for {
				select {
				case <-done:
					return
				default:
				}
				sub := c.Subscribe("webrtc", 16)
				var last [2]time.Duration
				var have [2]bool
				first := true
				for range 40 {
					select {
					case f := <-sub.Frames():
						received.Add(1)
						if first {
							assert.True(t, f.Kind == KindVideo && f.Key, "first frame is a keyframe")
							first = false
						}
						if have[f.Kind] {
							assert.Greater(t, f.DTS, last[f.Kind])
						}
						last[f.Kind], have[f.Kind] = f.DTS, true
						assert.Equal(t, sps720, f.Tracks.Video.SPS)
					default:
					}
				}
				sub.Close()
			}
		})
	}
	wg.Wait()
	require.Empty(t, c.subs)
	require.Positive(t, received.Load())
}
