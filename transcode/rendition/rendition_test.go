package rendition

import (
	"context"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h264"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/rs/zerolog"
	"github.com/stretchr/testify/require"

	"github.com/seance-relay/seance/ingest/demo"
	"github.com/seance-relay/seance/relay"
	"github.com/seance-relay/seance/slate"
)

func requireFFmpeg(t *testing.T) string {
	t.Helper()
	p, err := LookFFmpeg()
	require.NoError(t, err, "ffmpeg must be installed for this test (scripts/install-test-deps.sh)")
	return p
}

// keyframes collects the PTS of a channel's keyframes and their heights.
type keyframes struct {
	mu      sync.Mutex
	pts     map[time.Duration]int
	arrived map[time.Duration]time.Time
	frames  int
}

func (k *keyframes) collect(ctx context.Context, sub *relay.Subscription) {
	for {
		select {
		case <-ctx.Done():
			return
		case f := <-sub.Frames():
			if f.Kind != relay.KindVideo {
				continue
			}
			k.mu.Lock()
			k.frames++
			if f.Key {
				var sps h264.SPS
				if sps.Unmarshal(f.Tracks.Video.SPS) == nil {
					k.pts[f.PTS] = sps.Height()
				}
				if k.arrived == nil {
					k.arrived = map[time.Duration]time.Time{}
				}
				k.arrived[f.PTS] = f.Arrived
			}
			k.mu.Unlock()
		}
	}
}

func (k *keyframes) snapshot() (map[time.Duration]int, int) {
	k.mu.Lock()
	defer k.mu.Unlock()
	out := make(map[time.Duration]int, len(k.pts))
	for p, h := range k.pts {
		out[p] = h
	}
	return out, k.frames
}

// TestMakerFollowsTheChannel: the demo clip (720p30, 2 s GOP) goes through
// one ffmpeg into a 360-line rendition whose keyframes fall on the
// source's, with the same timestamps; ffmpeg killed restarts; the channel
// going idle stops it.
func TestMakerFollowsTheChannel(t *testing.T) {
	ff := requireFFmpeg(t)
	log := zerolog.New(zerolog.NewTestWriter(t))
	reg := prometheus.NewRegistry()
	hub := relay.NewHub([]relay.ChannelConfig{{
		Name: "bourg", Renditions: []relay.RenditionConfig{{Name: "basse", Height: 360, VideoBitrate: 500_000}},
	}}, log, relay.NewMetrics(reg))
	ch, err := hub.Channel("bourg")
	require.NoError(t, err)
	r := ch.Rendition("basse")
	require.NotNil(t, r)
	met := NewMetrics(reg)
	mk, err := New(Config{FFmpeg: ff}, ch, r, log, met)
	require.NoError(t, err)

	ctx, cancel := context.WithCancel(t.Context())
	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel()
	src, full, low := &keyframes{pts: map[time.Duration]int{}}, ch.Subscribe("webrtc", 1024), r.Channel.Subscribe("webrtc", 1024)
	defer full.Close()
	defer low.Close()
	srcK, lowK := src, &keyframes{pts: map[time.Duration]int{}}
	wg.Go(func() { srcK.collect(ctx, full) })
	wg.Go(func() { lowK.collect(ctx, low) })
	wg.Go(func() { _ = hub.Run(ctx) })
	wg.Go(func() { _ = mk.Run(ctx) })
	dctx, dcancel := context.WithCancel(ctx)
	d, err := demo.New(ch, log)
	require.NoError(t, err)
	demoDone := make(chan struct{})
	go func() { defer close(demoDone); _ = d.Run(dctx) }()

	// Three rendition keyframes, each on a source keyframe's PTS, 360
	// lines high (the source is 720).
	require.Eventually(t, func() bool {
		lk, _ := lowK.snapshot()
		return len(lk) >= 3
	}, 30*time.Second, 50*time.Millisecond, "the rendition sends keyframes")
	sk, _ := srcK.snapshot()
	lk, _ := lowK.snapshot()
	for pts, h := range lk {
		require.Equal(t, 360, h, "rendition keyframe at %s", pts)
		sh, ok := sk[pts]
		require.True(t, ok, "the rendition's keyframe at %s is on a source keyframe (source: %v)", pts, sk)
		require.Equal(t, 720, sh)
	}
	srcK.mu.Lock()
	lowK.mu.Lock()
	for pts, at := range lowK.arrived {
		if src, ok := srcK.arrived[pts]; ok {
			t.Logf("keyframe at %s: the rendition's %s after the source's", pts, at.Sub(src).Round(time.Millisecond))
		}
	}
	lowK.mu.Unlock()
	srcK.mu.Unlock()
	require.Equal(t, StateLive, mk.Status().State)
	require.Eventually(t, func() bool { return mk.Status().FPS > 20 }, 5*time.Second, 50*time.Millisecond, "about 30 fps out")
	require.Greater(t, testutil.ToFloat64(met.cpu.WithLabelValues("bourg", "basse")), 0.0, "ffmpeg's CPU is counted")

	// ffmpeg killed: the rendition comes back after a backoff.
	pid := ffmpegPID(t, mk)
	require.NoError(t, syscall.Kill(pid, syscall.SIGKILL))
	require.Eventually(t, func() bool { return mk.Status().Restarts == 1 }, 5*time.Second, 20*time.Millisecond)
	_, before := lowK.snapshot()
	require.Eventually(t, func() bool {
		_, n := lowK.snapshot()
		return n > before+30 && mk.Status().State == StateLive
	}, 20*time.Second, 50*time.Millisecond, "the rendition restarts")
	require.Equal(t, 1.0, testutil.ToFloat64(met.restarts.WithLabelValues("bourg", "basse")))
	require.NotEqual(t, pid, ffmpegPID(t, mk))

	// The channel ends: ffmpeg stops, the rendition goes idle.
	dcancel()
	<-demoDone
	require.Eventually(t, func() bool {
		st, _ := r.Channel.State()
		return mk.Status().State == StateIdle && st == relay.StateIdle
	}, 10*time.Second, 20*time.Millisecond)
	require.Equal(t, 1.0, testutil.ToFloat64(met.state.WithLabelValues("bourg", "basse", "idle")))
}

// ffmpegPID waits for the maker's ffmpeg and returns its pid.
func ffmpegPID(t *testing.T, mk *Maker) int {
	t.Helper()
	require.Eventually(t, func() bool { return mk.PID() > 0 }, 10*time.Second, 20*time.Millisecond, "ffmpeg runs")
	return mk.PID()
}

// TestMakerNeverHoldsThePublisher: ffmpeg stopped (SIGSTOP) stops reading
// its input; the channel's other sinks keep their frames, the rendition's
// input queue overflows and is counted as dropped, and once ffmpeg runs
// again the rendition resumes at a keyframe.
func TestMakerNeverHoldsThePublisher(t *testing.T) {
	ff := requireFFmpeg(t)
	log := zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.WarnLevel)
	reg := prometheus.NewRegistry()
	hub := relay.NewHub([]relay.ChannelConfig{{
		Name: "bourg", Renditions: []relay.RenditionConfig{{Name: "basse", Height: 360, VideoBitrate: 500_000}},
	}}, log, relay.NewMetrics(reg))
	ch, _ := hub.Channel("bourg")
	r := ch.Rendition("basse")
	mk, err := New(Config{FFmpeg: ff}, ch, r, log, NewMetrics(reg))
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(t.Context())
	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel()
	other, low := ch.Subscribe("webrtc", 1024), r.Channel.Subscribe("webrtc", 1024)
	defer other.Close()
	defer low.Close()
	otherK, lowK := &keyframes{pts: map[time.Duration]int{}}, &keyframes{pts: map[time.Duration]int{}}
	wg.Go(func() { otherK.collect(ctx, other) })
	wg.Go(func() { lowK.collect(ctx, low) })
	wg.Go(func() { _ = hub.Run(ctx) })
	wg.Go(func() { _ = mk.Run(ctx) })
	d, err := demo.New(ch, log)
	require.NoError(t, err)
	wg.Go(func() { _ = d.Run(ctx) })
	require.Eventually(t, func() bool { return mk.Status().State == StateLive }, 20*time.Second, 20*time.Millisecond)

	pid := ffmpegPID(t, mk)
	require.NoError(t, syscall.Kill(pid, syscall.SIGSTOP))
	_, before := otherK.snapshot()
	dropped := func() float64 { return relayDropped(t, reg) }
	require.Eventually(t, func() bool { return dropped() > 0 }, 30*time.Second, 50*time.Millisecond,
		"ffmpeg's input overflows and drops")
	_, after := otherK.snapshot()
	require.Greater(t, after-before, 60, "the other sink got its frames meanwhile")

	require.NoError(t, syscall.Kill(pid, syscall.SIGCONT))
	_, lowBefore := lowK.snapshot()
	require.Eventually(t, func() bool { _, n := lowK.snapshot(); return n > lowBefore+60 }, 20*time.Second, 50*time.Millisecond,
		"the rendition resumes")
	require.Equal(t, pid, mk.PID(), "the same ffmpeg: it was slow, not dead")
}

// relayDropped reads seance_sink_dropped_frames_total{channel="bourg",sink="rendition"}.
func relayDropped(t *testing.T, reg *prometheus.Registry) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	require.NoError(t, err)
	for _, mf := range mfs {
		if mf.GetName() != "seance_sink_dropped_frames_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			if labels["channel"] == "bourg" && labels["sink"] == "rendition" {
				return m.GetCounter().GetValue()
			}
		}
	}
	return 0
}

// TestMakerEncodesTheSlate: while the publisher is away within the grace
// period, the slate is encoded like the live picture, by the same ffmpeg,
// at the same size; the rendition goes on when the publisher is back.
func TestMakerEncodesTheSlate(t *testing.T) {
	ff := requireFFmpeg(t)
	log := zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.WarnLevel)
	reg := prometheus.NewRegistry()
	src, err := slate.NewSource("", nil, log)
	require.NoError(t, err)
	hub := relay.NewHub([]relay.ChannelConfig{{
		Name: "bourg", Grace: 30 * time.Second, Slate: src,
		Renditions: []relay.RenditionConfig{{Name: "basse", Height: 360, VideoBitrate: 500_000}},
	}}, log, relay.NewMetrics(reg))
	ch, _ := hub.Channel("bourg")
	r := ch.Rendition("basse")
	mk, err := New(Config{FFmpeg: ff}, ch, r, log, NewMetrics(reg))
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(t.Context())
	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel()
	low := r.Channel.Subscribe("webrtc", 1024)
	defer low.Close()
	lowK := &keyframes{pts: map[time.Duration]int{}}
	wg.Go(func() { lowK.collect(ctx, low) })
	wg.Go(func() { _ = hub.Run(ctx) })
	wg.Go(func() { _ = mk.Run(ctx) })
	publish := func() (stop func()) {
		d, err := demo.New(ch, log)
		require.NoError(t, err)
		dctx, dcancel := context.WithCancel(ctx)
		done := make(chan struct{})
		go func() { defer close(done); _ = d.Run(dctx) }()
		return func() { dcancel(); <-done }
	}
	stop := publish()
	require.Eventually(t, func() bool { return mk.Status().State == StateLive }, 20*time.Second, 20*time.Millisecond)
	stop()
	require.Eventually(t, func() bool { return ch.Health().Slate }, 5*time.Second, 20*time.Millisecond, "the slate is on air")
	_, n := lowK.snapshot()
	require.Eventually(t, func() bool { _, m := lowK.snapshot(); return m > n+60 }, 15*time.Second, 50*time.Millisecond,
		"the rendition encodes the slate")
	stop = publish()
	defer stop()
	require.Eventually(t, func() bool { return !ch.Health().Slate }, 10*time.Second, 20*time.Millisecond, "live again")
	_, n = lowK.snapshot()
	require.Eventually(t, func() bool { _, m := lowK.snapshot(); return m > n+60 }, 15*time.Second, 50*time.Millisecond)
	require.Zero(t, mk.Status().Restarts, "one ffmpeg throughout")
	heights, _ := lowK.snapshot()
	for pts, h := range heights {
		require.Equal(t, 360, h, "keyframe at %s", pts)
	}
}

func TestProfileOf(t *testing.T) {
	for _, tc := range []struct {
		name string
		sps  []byte
		want string
	}{
		{"constrained baseline (a browser over WHIP)", []byte{0x67, 66, 0xe0, 0x1f}, "baseline"},
		{"main", []byte{0x67, 77, 0x40, 0x1f}, "main"},
		{"high (Jibri)", []byte{0x67, 100, 0, 0x1f}, "high"},
		{"unknown", nil, "high"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			require.Equal(t, tc.want, profileOf(&relay.VideoTrack{SPS: tc.sps}))
		})
	}
}
