package relay

import (
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"
)

// requireIncreasing checks that DTS strictly increases per track and
// returns, per kind, the DTS steps between consecutive frames.
func requireIncreasing(t *testing.T, frames []*Frame) (steps [2][]time.Duration) {
	t.Helper()
	var last [2]time.Duration
	var have [2]bool
	for i, f := range frames {
		if have[f.Kind] {
			require.Greater(t, f.DTS, last[f.Kind], "frame %d (%s): DTS went backwards or repeated", i, f.Kind)
			steps[f.Kind] = append(steps[f.Kind], f.DTS-last[f.Kind])
		}
		last[f.Kind], have[f.Kind] = f.DTS, true
	}
	return steps
}

func TestTimelineStartsAtZero(t *testing.T) {
	c, _ := newTestChannel(t, 0)
	s := publish(t, c, avTracks())
	defer s.Close()
	sub := c.Subscribe("rtmp", 64)
	defer sub.Close()

	base := 5*time.Hour + 123*time.Millisecond
	f := newFeed(s, base, 30)
	f.cts = 66 * time.Millisecond
	f.audio = true
	f.frames(3)

	got := drain(sub)
	require.Len(t, got, 6)
	require.Equal(t, time.Duration(0), got[0].DTS)
	require.Equal(t, 66*time.Millisecond, got[0].PTS, "PTS keeps its offset from DTS")
	require.Equal(t, videoStep, got[2].DTS)
	require.Equal(t, videoStep+66*time.Millisecond, got[2].PTS)
	require.Equal(t, time.Duration(0), got[1].DTS, "audio is on the same timeline")
	require.Equal(t, KindAudio, got[1].Kind)
}

// avFeed writes interleaved video (30 fps) and audio (44.1 kHz AAC) in
// timestamp order, the way an RTMP publisher does, for the given duration
// from base, with a keyframe every second.
func avFeed(s *Session, base, dur time.Duration) {
	v, a := time.Duration(0), time.Duration(0)
	n := 0
	for v < dur || a < dur {
		if v <= a && v < dur {
			if n%30 == 0 {
				s.WriteH264(base+v, base+v, [][]byte{sps720, testPPS, idrNALU(200)})
			} else {
				s.WriteH264(base+v, base+v, [][]byte{pNALU(100)})
			}
			n++
			v += videoStep
		} else {
			s.WriteAAC(base+a, make([]byte, 50))
			a += audioStep
		}
	}
}

func TestTimelineContinuousAcrossReconnect(t *testing.T) {
	c, _ := newTestChannel(t, time.Minute)
	sub := c.Subscribe("rtmp", 4096)
	defer sub.Close()

	s := publish(t, c, avTracks())
	avFeed(s, 7*time.Second, 2*time.Second)
	before := drain(sub)
	require.NotEmpty(t, before)
	lastV := onlyKind(before, KindVideo)
	lastA := onlyKind(before, KindAudio)
	require.Equal(t, KindVideo, before[len(before)-1].Kind, "the first publisher's last frame is video")
	s.Close()
	requireState(t, c, StateInterrupted)

	// The publisher comes back with unrelated timestamps.
	s = publish(t, c, avTracks())
	defer s.Close()
	avFeed(s, time.Hour, 2*time.Second)
	after := drain(sub)
	require.NotEmpty(t, after)
	require.True(t, after[0].Key, "first frame after the reconnect is a keyframe")

	all := append(before, after...)
	steps := requireIncreasing(t, all)
	nv := len(lastV)
	gapV := steps[KindVideo][nv-1]
	// The new publisher's first keyframe goes one frame after the last one.
	require.Equal(t, videoStep, gapV, "video step across the reconnect")
	gapA := onlyKind(after, KindAudio)[0].DTS - lastA[len(lastA)-1].DTS
	require.Positive(t, gapA)
	require.LessOrEqual(t, gapA, videoStep+audioStep, "audio step across the reconnect")
	for k, st := range steps {
		for i, d := range st {
			require.LessOrEqual(t, d, 2*videoStep, "%s step %d", Kind(k), i)
		}
	}

	h := c.Health()
	require.Equal(t, uint64(1), h.Reconnects)
	require.Zero(t, h.TimestampJumps, "a reconnect is not a timestamp jump")
	require.Equal(t, 1.0, testutil.ToFloat64(c.met.reconnects))
	require.Zero(t, testutil.ToFloat64(c.met.jumps))
}

func TestTimelineJumps(t *testing.T) {
	const ms = time.Millisecond
	for _, tc := range []struct {
		name string
		// video DTS sequence (publisher side), audio written at the same
		// timestamps when withAudio
		dts       []time.Duration
		withAudio bool
		jumps     uint64
		want      []time.Duration // channel video DTS
	}{
		{
			name:  "steady",
			dts:   []time.Duration{1000 * ms, 1040 * ms, 1080 * ms},
			want:  []time.Duration{0, 40 * ms, 80 * ms},
			jumps: 0,
		},
		{
			name:  "backward jump",
			dts:   []time.Duration{1000 * ms, 1040 * ms, 1080 * ms, 200 * ms, 240 * ms},
			want:  []time.Duration{0, 40 * ms, 80 * ms, 120 * ms, 160 * ms},
			jumps: 1,
		},
		{
			name:  "forward jump of 10 s",
			dts:   []time.Duration{1000 * ms, 1040 * ms, 1080 * ms, 11080 * ms, 11120 * ms},
			want:  []time.Duration{0, 40 * ms, 80 * ms, 120 * ms, 160 * ms},
			jumps: 1,
		},
		{
			name:  "forward gap of 4 s is kept",
			dts:   []time.Duration{1000 * ms, 1040 * ms, 5040 * ms, 5080 * ms},
			want:  []time.Duration{0, 40 * ms, 4040 * ms, 4080 * ms},
			jumps: 0,
		},
		{
			name:  "both, with audio jumping along",
			dts:   []time.Duration{1000 * ms, 1040 * ms, 500 * ms, 540 * ms, 20540 * ms, 20580 * ms},
			want:  []time.Duration{0, 40 * ms, 80 * ms, 120 * ms, 160 * ms, 200 * ms},
			jumps: 2, withAudio: true,
		},
		{
			name:  "repeated timestamp",
			dts:   []time.Duration{1000 * ms, 1000 * ms, 1040 * ms},
			want:  []time.Duration{0, 1 * ms, 40 * ms},
			jumps: 0,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, _ := newTestChannel(t, 0)
			tr := videoOnly()
			if tc.withAudio {
				tr = avTracks()
			}
			s := publish(t, c, tr)
			defer s.Close()
			sub := c.Subscribe("rtmp", 64)
			defer sub.Close()
			for i, d := range tc.dts {
				if i == 0 {
					s.WriteH264(d, d, [][]byte{idrNALU(100)})
				} else {
					s.WriteH264(d, d, [][]byte{pNALU(100)})
				}
				if tc.withAudio {
					s.WriteAAC(d, []byte{1, 2})
				}
			}
			got := drain(sub)
			requireIncreasing(t, got)
			var video []time.Duration
			for _, f := range onlyKind(got, KindVideo) {
				video = append(video, f.DTS)
			}
			require.Equal(t, tc.want, video)
			if tc.withAudio {
				audio := onlyKind(got, KindAudio)
				require.Len(t, audio, len(tc.dts))
				for i, a := range audio {
					require.Equal(t, tc.want[i], a.DTS, "audio %d stays with its video", i)
				}
			}
			require.Equal(t, tc.jumps, c.Health().TimestampJumps)
			require.Equal(t, float64(tc.jumps), testutil.ToFloat64(c.met.jumps))
		})
	}
}
