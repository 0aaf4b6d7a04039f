package relay

import (
	"testing"
	"testing/synctest"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"
)

// fakeSlates is a SlateSource with a synthetic clip: 640x360, 25 fps, an
// IDR then 49 P-frames (2 s), and a 6-byte "silence".
type fakeSlates struct {
	prepared []SlateParams
	asked    []SlateParams
	none     bool          // Slate returns nil
	step     time.Duration // FrameDuration; slateStep when zero
}

var slateSilence = []byte{0x21, 0x10, 0x04, 0x60, 0x8c, 0x1c}

const slateStep = time.Second / 25

func (f *fakeSlates) Prepare(p SlateParams) { f.prepared = append(f.prepared, p) }

func (f *fakeSlates) Slate(p SlateParams) *Slate {
	f.asked = append(f.asked, p)
	if f.none {
		return nil
	}
	step := f.step
	if step == 0 {
		step = slateStep
	}
	sl := &Slate{SPS: sps360, PPS: testPPS, FrameDuration: step, Name: "test slate"}
	sl.Frames = append(sl.Frames, SlateFrame{Key: true, NALUs: [][]byte{idrNALU(300)}})
	for range 49 {
		sl.Frames = append(sl.Frames, SlateFrame{NALUs: [][]byte{pNALU(20)}})
	}
	if p.Audio != nil {
		sl.Silence = slateSilence
	}
	return sl
}

func newSlateChannel(t *testing.T, grace time.Duration, src SlateSource) *Channel {
	t.Helper()
	h, _ := newTestHub(t, ChannelConfig{Name: "bourg", Grace: grace, Slate: src})
	c, err := h.Channel("bourg")
	require.NoError(t, err)
	return c
}

func isSlate(f *Frame) bool {
	return f.Tracks != nil && f.Tracks.Video != nil && string(f.Tracks.Video.SPS) == string(sps360)
}

// requireContinuous checks that each track's DTS increase, by at most
// maxStep.
func requireContinuous(t *testing.T, frames []*Frame, maxStep time.Duration) {
	t.Helper()
	var last [2]time.Duration
	var seen [2]bool
	for i, f := range frames {
		if seen[f.Kind] {
			step := f.DTS - last[f.Kind]
			require.Positive(t, step, "frame %d (%s): DTS %v after %v", i, f.Kind, f.DTS, last[f.Kind])
			require.LessOrEqual(t, step, maxStep, "frame %d (%s): gap from %v to %v", i, f.Kind, last[f.Kind], f.DTS)
		}
		last[f.Kind], seen[f.Kind] = f.DTS, true
	}
}

func TestSlateDuringInterruption(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		src := &fakeSlates{}
		c := newSlateChannel(t, 30*time.Second, src)
		sub := c.Subscribe("rtmp", 4096)
		defer sub.Close()

		tracks := avTracks()
		s := publish(t, c, tracks)
		require.Len(t, src.prepared, 1, "the source hears of the live parameters when the channel goes live")
		require.Equal(t, 1280, src.prepared[0].Width)
		f := newFeed(s, 0, 30)
		f.audio = true
		f.frames(45)
		live := drain(sub)
		require.Len(t, live, 90)
		framesBefore := testutil.ToFloat64(c.met.frames[KindVideo])

		s.Close()
		requireState(t, c, StateInterrupted)
		require.True(t, c.Health().Slate, "health says the slate is on air")
		require.Equal(t, 1.0, testutil.ToFloat64(c.met.slateActive))
		require.Len(t, src.asked, 1)
		require.Equal(t, SlateParams{Width: 1280, Height: 720, FPS: 30, Audio: tracks.Audio}, src.asked[0],
			"the slate is asked for the live size, the SPS's rate and the live audio")

		time.Sleep(2*time.Second - time.Nanosecond)
		synctest.Wait()
		got := drain(sub)
		video, audio := onlyKind(got, KindVideo), onlyKind(got, KindAudio)
		// Real-time pacing: 2 s of slate, both ends included.
		require.Len(t, video, 50, "25 fps for 2 s")
		require.InDelta(t, 2*44100/1024, len(audio), 1, "one silent frame per 1024 samples at 44.1 kHz")
		require.True(t, video[0].Key, "the slate starts with its keyframe")
		require.True(t, isSlate(video[0]))
		require.Equal(t, sps360, video[0].NALUs[0], "SPS in front of the slate's IDR")
		require.Equal(t, testPPS, video[0].NALUs[1], "PPS in front of the slate's IDR")
		require.Same(t, tracks.Audio, video[0].Tracks.Audio, "slate frames carry the live audio track")
		for _, a := range audio {
			require.Equal(t, slateSilence, a.AU)
			require.Same(t, video[0].Tracks, a.Tracks)
		}
		require.NotEmpty(t, video[0].RTPPayloads())

		all := append(live, got...)
		requireContinuous(t, all, 50*time.Millisecond)
		lastLive := live[len(live)-2].DTS // the last video frame
		require.Equal(t, lastLive+videoStep, video[0].DTS, "the slate starts one frame after the last live frame")
		require.Equal(t, framesBefore, testutil.ToFloat64(c.met.frames[KindVideo]), "slate frames are not ingest")
		require.InDelta(t, 2.0, testutil.ToFloat64(c.met.slateSeconds), 0.05)
		require.Zero(t, c.Health().FPS, "health shows no ingest during the slate")

		// A sink joining now starts at the slate's keyframe.
		late := c.Subscribe("webrtc", 4096)
		defer late.Close()
		cached := drain(late)
		require.NotEmpty(t, cached)
		require.True(t, cached[0].Key && isSlate(cached[0]))

		// The publisher comes back mid-GOP: its frames before its first
		// keyframe are dropped and the slate goes on.
		s2 := publish(t, c, avTracks())
		defer s2.Close()
		requireState(t, c, StateLive)
		require.True(t, c.Health().Slate, "slate on air until the first keyframe")
		f2 := &feed{s: s2, base: time.Hour, gop: 30, n: 20, size: 1000, audio: true}
		f2.frames(5) // P-frames 20..24
		time.Sleep(500 * time.Millisecond)
		synctest.Wait()
		waiting := drain(sub)
		require.NotEmpty(t, waiting)
		for _, f := range waiting {
			require.True(t, isSlate(f), "no frame of the new publisher before its keyframe")
		}
		f2.frames(5) // 25..29
		f2.next()    // 30: the keyframe
		after := drain(sub)
		require.NotEmpty(t, after)
		require.True(t, after[0].Key && !isSlate(after[0]), "the live picture resumes at its keyframe")
		for _, f := range after {
			require.False(t, isSlate(f))
		}
		require.False(t, c.Health().Slate)
		require.Zero(t, testutil.ToFloat64(c.met.slateActive))
		all = append(append(all, waiting...), after...)
		requireContinuous(t, all, 50*time.Millisecond)

		// The slate is off: nothing more arrives from it.
		time.Sleep(time.Second)
		synctest.Wait()
		require.Empty(t, drain(sub))
		f2.frames(3)
		require.Len(t, drain(sub), 6)
		require.Zero(t, sub.Dropped())
	})
}

// TestSlateTimestampsDoNotDrift: a 30 fps slate's FrameDuration is 1/30 s
// rounded down to 33 333 333 ns; its frames are nevertheless exactly on
// the 1/30 s grid from the first one (frame n at ⌊n/30 s⌋), as the audio
// is on its 1024-sample grid. Six frames span exactly 200 ms, so that HLS
// parts of 200 ms hold six slate frames, as they hold six live ones.
func TestSlateTimestampsDoNotDrift(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		fps := 30.0
		src := &fakeSlates{step: time.Duration(float64(time.Second) / fps)} // as package slate makes it
		require.Equal(t, 33333333*time.Nanosecond, src.step)
		c := newSlateChannel(t, time.Minute, src)
		sub := c.Subscribe("rtmp", 4096)
		defer sub.Close()
		s := publish(t, c, avTracks())
		f := newFeed(s, 0, 30)
		f.audio = true
		f.frames(30)
		live := len(drain(sub))
		s.Close()
		time.Sleep(10 * time.Second)
		synctest.Wait()
		got := drain(sub)
		require.Equal(t, 60, live)
		video, audio := onlyKind(got, KindVideo), onlyKind(got, KindAudio)
		require.GreaterOrEqual(t, len(video), 300)
		require.GreaterOrEqual(t, len(audio), 430)
		for n, v := range video {
			want := video[0].DTS + time.Duration(int64(n)*int64(time.Second)/30)
			require.Equal(t, want, v.DTS, "slate frame %d", n)
			if n >= 6 {
				require.Equal(t, 200*time.Millisecond, v.DTS-video[n-6].DTS, "six slate frames from frame %d", n-6)
			}
		}
		for n, a := range audio {
			want := audio[0].DTS + time.Duration(int64(n)*1024*int64(time.Second)/44100)
			require.Equal(t, want, a.DTS, "slate audio frame %d", n)
		}
	})
}

func isSlateAudio(f *Frame) bool { return string(f.AU) == string(slateSilence) }

// TestSlateSeamsKeepTheVideoCadence: the publisher's audio ends 40 ms
// after its video (as ffmpeg's does); the slate's first frame still goes
// one video frame after the last live one, and the live keyframe after
// the slate one slate frame after the last slate frame: every video step
// of the whole broadcast is one frame (1/30 s). Audio never overlaps by
// half a frame or more, and leaves at most a video and an audio frame
// between two sources.
func TestSlateSeamsKeepTheVideoCadence(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		fps := 30.0
		c := newSlateChannel(t, time.Minute, &fakeSlates{step: time.Duration(float64(time.Second) / fps)})
		sub := c.Subscribe("rtmp", 4096)
		defer sub.Close()
		s := publish(t, c, avTracks())
		avFeed(s, 3*time.Second, time.Second)
		// Audio goes on 40 ms past the video, from where avFeed stopped.
		for a := (time.Second + audioStep - 1) / audioStep * audioStep; a < time.Second+40*time.Millisecond; a += audioStep {
			s.WriteAAC(3*time.Second+a, make([]byte, 50))
		}
		s.Close()
		time.Sleep(1500 * time.Millisecond)
		synctest.Wait()
		s2 := publish(t, c, avTracks())
		defer s2.Close()
		avFeed(s2, time.Hour, time.Second) // starts with a keyframe, audio at the same time
		got := drain(sub)

		video, audio := onlyKind(got, KindVideo), onlyKind(got, KindAudio)
		var slate, live2 int
		for i, v := range video {
			if isSlate(v) {
				slate++
			} else if slate > 0 {
				live2++
			}
			if i == 0 {
				continue
			}
			step := v.DTS - video[i-1].DTS
			require.True(t, step == videoStep || step == videoStep+1,
				"video step %d (%v → %v, slate: %v → %v) is %v, not one frame", i, video[i-1].DTS, v.DTS, isSlate(video[i-1]), isSlate(v), step)
		}
		require.Greater(t, slate, 40, "the slate played")
		require.GreaterOrEqual(t, live2, 30, "the second publisher's video, from its keyframe")
		for i := 1; i < len(audio); i++ {
			step := audio[i].DTS - audio[i-1].DTS
			require.GreaterOrEqual(t, step, audioStep/2, "audio step %d (%v → %v, slate: %v → %v)", i, audio[i-1].DTS, audio[i].DTS, isSlateAudio(audio[i-1]), isSlateAudio(audio[i]))
			require.LessOrEqual(t, step, videoStep+audioStep, "audio step %d (%v → %v, slate: %v → %v)", i, audio[i-1].DTS, audio[i].DTS, isSlateAudio(audio[i-1]), isSlateAudio(audio[i]))
		}
	})
}

func TestFrameClock(t *testing.T) {
	c := videoClock(33333333)
	require.Equal(t, 10*time.Hour, c.at(30*36000), "no drift in ten hours at 30 fps")
	require.Equal(t, 33333333*time.Nanosecond, c.at(1))
	require.Equal(t, 200*time.Millisecond, c.at(6))
	ntsc := 30000 / 1001.0
	require.Equal(t, 1001001001001*time.Nanosecond, videoClock(time.Duration(float64(time.Second)/ntsc)).at(30000),
		"29.97 fps is taken as 29.970: 1 ms off in 1000 s")
	require.Equal(t, 40*time.Millisecond, videoClock(40*time.Millisecond).at(1))
	require.Equal(t, time.Millisecond, videoClock(0).at(1), "a step under 1 ms counts as 1 ms")
	a := aacClock(aacLC44())
	require.Equal(t, 23219954*time.Nanosecond, a.at(1), "1024 samples at 44.1 kHz")
	require.Equal(t, 1024*time.Second, a.at(44100), "no drift: 44100 frames are 1024 s")
}

func TestSlateEndsWithTheGracePeriod(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		src := &fakeSlates{}
		c := newSlateChannel(t, 10*time.Second, src)
		sub := c.Subscribe("rtmp", 4096)
		defer sub.Close()
		s := publish(t, c, videoOnly())
		newFeed(s, 0, 30).frames(30)
		_, changed := c.State()
		s.Close()

		time.Sleep(10*time.Second - time.Millisecond)
		synctest.Wait()
		requireState(t, c, StateInterrupted)
		got := drain(sub)
		slate := got[30:]
		require.Len(t, slate, 250, "10 s at 25 fps")
		require.Empty(t, onlyKind(slate, KindAudio), "no audio track, no silence")
		requireContinuous(t, got, 50*time.Millisecond)

		time.Sleep(time.Millisecond)
		synctest.Wait()
		requireClosed(t, changed)
		requireState(t, c, StateIdle)
		require.False(t, c.Health().Slate)
		require.Zero(t, testutil.ToFloat64(c.met.slateActive))
		// The slate's frame due at the very instant the grace period ends
		// may or may not have gone out; nothing after it.
		require.LessOrEqual(t, len(drain(sub)), 1)
		time.Sleep(5 * time.Second)
		synctest.Wait()
		require.Empty(t, drain(sub), "no slate once the session ended")
		// synctest.Test fails if the slate goroutine is still running.
	})
}

func TestSlateSurvivesAPublisherThatLeavesBeforeItsKeyframe(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newSlateChannel(t, 30*time.Second, &fakeSlates{})
		sub := c.Subscribe("rtmp", 4096)
		defer sub.Close()
		s := publish(t, c, videoOnly())
		newFeed(s, 0, 30).frames(10)
		s.Close()
		time.Sleep(time.Second)
		synctest.Wait()

		s2 := publish(t, c, videoOnly())
		(&feed{s: s2, base: 0, gop: 30, n: 5, size: 100}).frames(3)
		s2.Close()
		requireState(t, c, StateInterrupted)
		time.Sleep(time.Second)
		synctest.Wait()
		got := drain(sub)
		requireContinuous(t, got, 50*time.Millisecond)
		for _, f := range got[10:] {
			require.True(t, isSlate(f))
		}
		require.InDelta(t, 50, len(got[10:]), 1, "one slate, 2 s, not two")
	})
}

func TestSlateStopsWhenTheChannelCloses(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newSlateChannel(t, time.Hour, &fakeSlates{})
		s := publish(t, c, avTracks())
		newFeed(s, 0, 30).frames(10)
		s.Close()
		time.Sleep(time.Second)
		synctest.Wait()
		require.True(t, c.Health().Slate)
		c.close() // waits for the slate goroutine
		requireState(t, c, StateIdle)
	})
}

func TestSlateNotSent(t *testing.T) {
	for _, tc := range []struct {
		name string
		src  SlateSource
	}{
		{"no source", nil},
		{"source has none", &fakeSlates{none: true}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				c := newSlateChannel(t, 30*time.Second, tc.src)
				sub := c.Subscribe("rtmp", 4096)
				defer sub.Close()
				s := publish(t, c, avTracks())
				newFeed(s, 0, 30).frames(10)
				s.Close()
				time.Sleep(5 * time.Second)
				synctest.Wait()
				require.Len(t, drain(sub), 10)
				require.False(t, c.Health().Slate)
			})
		})
	}
}

func TestSlateParamsUseTheMeasuredRate(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		src := &fakeSlates{}
		c := newSlateChannel(t, 30*time.Second, src)
		// An SPS without timing information (a browser's): the rate is
		// measured.
		// Constrained Baseline 640x352, no VUI.
		tr := Tracks{Video: &VideoTrack{SPS: mustHex("6742c01e5680a02d90"), PPS: testPPS}}
		s := publish(t, c, tr)
		require.Len(t, src.prepared, 1)
		require.Equal(t, SlateParams{Width: 640, Height: 352}, src.prepared[0])
		f := &feed{s: s, gop: 30, size: 100}
		for range 3 {
			for range 25 {
				f.s.WriteH264(f.dts(), f.dts(), [][]byte{pNALU(100)})
				f.n++
				time.Sleep(40 * time.Millisecond)
			}
			c.tick(time.Now())
		}
		require.Len(t, src.prepared, 2, "prepared again once the rate is measured, not on every tick")
		require.InDelta(t, 25, src.prepared[1].FPS, 1)
		s.Close()
		require.InDelta(t, 25, src.asked[0].FPS, 1)
	})
}

func TestSetSlate(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newSlateChannel(t, 30*time.Second, nil)
		src := &fakeSlates{}
		c.SetSlate(src)
		s := publish(t, c, videoOnly())
		newFeed(s, 0, 30).frames(3)
		s.Close()
		require.True(t, c.Health().Slate)
		c.SetSlate(nil)
		require.True(t, c.Health().Slate, "a slate on air stays until the publisher returns")
	})
}
