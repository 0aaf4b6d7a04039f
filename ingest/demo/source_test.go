package demo

import (
	"context"
	"testing"
	"testing/synctest"
	"time"

	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h264"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
	"github.com/stretchr/testify/require"

	"github.com/seance-relay/seance/relay"
)

// fakeChannel is a Channel whose Publish calls a function field.
type fakeChannel struct {
	publish func(relay.PublisherInfo, relay.Tracks) (*fakeSession, error)
}

func (c *fakeChannel) Publish(info relay.PublisherInfo, tracks relay.Tracks) (*fakeSession, error) {
	return c.publish(info, tracks)
}

// fakeSession records every write with the (bubble) time it was made at.
// It is used from the source's goroutine only; the test reads it after Run
// returns.
type fakeSession struct {
	start   time.Time
	frames  []writtenFrame
	closed  int
	onWrite func(f writtenFrame) // optional, called after recording
}

type writtenFrame struct {
	video    bool
	pts, dts time.Duration
	at       time.Duration // since start
	nalus    [][]byte
}

func (s *fakeSession) WriteH264(pts, dts time.Duration, nalus [][]byte) {
	s.record(writtenFrame{video: true, pts: pts, dts: dts, at: time.Since(s.start), nalus: nalus})
}

func (s *fakeSession) WriteAAC(pts time.Duration, au []byte) {
	s.record(writtenFrame{pts: pts, dts: pts, at: time.Since(s.start)})
}

func (s *fakeSession) record(f writtenFrame) {
	s.frames = append(s.frames, f)
	if s.onWrite != nil {
		s.onWrite(f)
	}
}

func (s *fakeSession) Close()                { s.closed++ }
func (s *fakeSession) Done() <-chan struct{} { return nil }

func (s *fakeSession) track(video bool) []writtenFrame {
	var out []writtenFrame
	for _, f := range s.frames {
		if f.video == video {
			out = append(out, f)
		}
	}
	return out
}

func testLogger(t *testing.T) zerolog.Logger {
	return zerolog.New(zerolog.NewTestWriter(t))
}

// runFor runs a source on sess for d of bubble time, cancels it, and
// checks that Run returns at once, with nil, after closing the session.
func runFor(t *testing.T, sess *fakeSession, d time.Duration) (relay.PublisherInfo, relay.Tracks) {
	var info relay.PublisherInfo
	var tracks relay.Tracks
	ch := &fakeChannel{publish: func(i relay.PublisherInfo, tr relay.Tracks) (*fakeSession, error) {
		info, tracks = i, tr
		return sess, nil
	}}
	src, err := New(ch, testLogger(t))
	require.NoError(t, err)

	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	sess.start = time.Now()
	done := make(chan error, 1)
	go func() { done <- src.Run(ctx) }()

	time.Sleep(d)
	synctest.Wait()
	cancel()
	cancelled := time.Now()
	require.NoError(t, <-done)
	require.Equal(t, cancelled, time.Now(), "Run must return as soon as ctx is cancelled")
	require.Equal(t, 1, sess.closed)
	return info, tracks
}

func TestSourceRealTime(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		sess := &fakeSession{}
		info, tracks := runFor(t, sess, 20*time.Second)

		require.Equal(t, relay.PublisherInfo{Protocol: "demo", RemoteAddr: "built-in"}, info)
		require.NotNil(t, tracks.Video)
		require.NotEmpty(t, tracks.Video.SPS)
		require.NotEmpty(t, tracks.Video.PPS)
		require.NotNil(t, tracks.Audio)
		require.Equal(t, 48000, tracks.Audio.Config.SampleRate)

		// Frames at 0 s and at exactly 20 s are both written.
		video, audio := sess.track(true), sess.track(false)
		require.Len(t, video, 20*30+1)
		require.Len(t, audio, 20*48000/1024+1)

		for i, f := range sess.frames {
			require.Equal(t, f.dts, f.at, "frame %d written off time", i)
			require.Equal(t, f.pts, f.dts, "frame %d", i)
			if i > 0 {
				require.GreaterOrEqual(t, f.dts, sess.frames[i-1].dts, "tracks interleaved by timestamp")
			}
		}
		checkSteps(t, video, time.Second/30)
		checkSteps(t, audio, time.Second*1024/48000)

		for i, f := range video {
			types := naluTypes(f.nalus)
			require.NotContains(t, types, h264.NALUTypeAccessUnitDelimiter, "frame %d", i)
			if i%60 == 0 {
				require.Contains(t, types, h264.NALUTypeIDR, "frame %d", i)
				require.Contains(t, types, h264.NALUTypeSPS, "frame %d", i)
				require.Contains(t, types, h264.NALUTypePPS, "frame %d", i)
			} else {
				require.NotContains(t, types, h264.NALUTypeIDR, "frame %d", i)
			}
		}
	})
}

// checkSteps checks that DTS starts at 0 and grows by step ± 1 ms, across
// loop boundaries too.
func checkSteps(t *testing.T, frames []writtenFrame, step time.Duration) {
	t.Helper()
	require.Zero(t, frames[0].dts)
	for i := 1; i < len(frames); i++ {
		require.InDelta(t, step, frames[i].dts-frames[i-1].dts, float64(time.Millisecond), "frame %d", i)
	}
}

// TestSourceStall checks that after a stall longer than maxLag the source
// resumes pacing instead of bursting, and keeps its timestamps continuous.
func TestSourceStall(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const stall = 5 * time.Second
		sess := &fakeSession{}
		stalled := false
		sess.onWrite = func(f writtenFrame) {
			if f.video && f.dts >= time.Second && !stalled {
				stalled = true
				time.Sleep(stall)
			}
		}
		runFor(t, sess, 10*time.Second)

		checkSteps(t, sess.track(true), time.Second/30)
		checkSteps(t, sess.track(false), time.Second*1024/48000)

		// Before the stall, frames are on time; after it, they all run late
		// by the same amount, so nothing was burst.
		var lag time.Duration
		for i, f := range sess.frames {
			late := f.at - f.dts
			switch {
			case f.dts <= time.Second:
				require.Zero(t, late, "frame %d", i)
			case lag == 0:
				lag = late
				require.InDelta(t, stall, lag, float64(50*time.Millisecond))
			default:
				require.Equal(t, lag, late, "frame %d", i)
			}
		}
	})
}

func TestSourcePublishError(t *testing.T) {
	ch := &fakeChannel{publish: func(relay.PublisherInfo, relay.Tracks) (*fakeSession, error) {
		return nil, relay.ErrChannelBusy
	}}
	src, err := New(ch, testLogger(t))
	require.NoError(t, err)
	err = src.Run(t.Context())
	require.ErrorIs(t, err, relay.ErrChannelBusy)
	require.ErrorContains(t, err, "publish demo clip")
}

// TestSourceRelay publishes on a real relay channel across a loop boundary
// and checks what a sink receives; a second publisher is refused.
func TestSourceRelay(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		log := testLogger(t)
		hub := relay.NewHub([]relay.ChannelConfig{{Name: "demo"}}, log, relay.NewMetrics(prometheus.NewRegistry()))
		ch, err := hub.Channel("demo")
		require.NoError(t, err)
		sub := ch.Subscribe("record", 2048)
		defer sub.Close()

		src, err := New(ch, log)
		require.NoError(t, err)
		ctx, cancel := context.WithCancel(t.Context())
		defer cancel()
		done := make(chan error, 1)
		go func() { done <- src.Run(ctx) }()

		time.Sleep(10 * time.Second)
		synctest.Wait()
		require.ErrorIs(t, src.Run(ctx), relay.ErrChannelBusy)
		cancel()
		require.NoError(t, <-done)

		var video, audio []*relay.Frame
		for len(sub.Frames()) > 0 {
			f := <-sub.Frames()
			if f.Kind == relay.KindVideo {
				video = append(video, f)
			} else {
				audio = append(audio, f)
			}
		}
		require.Len(t, video, 10*30+1)
		require.Len(t, audio, 10*48000/1024+1)
		require.Zero(t, sub.Dropped())
		for i, f := range video {
			require.Equal(t, i%60 == 0, f.Key, "frame %d", i)
			if i > 0 {
				require.InDelta(t, time.Second/30, f.DTS-video[i-1].DTS, float64(time.Millisecond), "frame %d", i)
			}
		}
		for i := 1; i < len(audio); i++ {
			require.InDelta(t, time.Second*1024/48000, audio[i].DTS-audio[i-1].DTS, float64(time.Millisecond), "frame %d", i)
		}
	})
}
