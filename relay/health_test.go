package relay

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/bluenviron/mediacommon/v2/pkg/codecs/mpeg4audio"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"
)

// paced writes n frames of f, one every videoStep of (fake) wall time.
func paced(f *feed, n int, every time.Duration) {
	for range n {
		f.next()
		time.Sleep(every)
	}
}

// untilTick sleeps until start+d and lets the hub's tick run.
func untilTick(start time.Time, d time.Duration) {
	time.Sleep(time.Until(start.Add(d)))
	synctest.Wait()
}

// requireWarningGauges compares seance_health_warning with the active set.
func requireWarningGauges(t *testing.T, reg *prometheus.Registry, active ...string) {
	t.Helper()
	var b strings.Builder
	b.WriteString("# HELP seance_health_warning 1 while the health warning is active for the channel (see the README for each warning).\n")
	b.WriteString("# TYPE seance_health_warning gauge\n")
	for _, w := range Warnings {
		v := 0
		if slices.Contains(active, w) {
			v = 1
		}
		fmt.Fprintf(&b, "seance_health_warning{channel=%q,warning=%q} %d\n", "bourg", w, v)
	}
	require.NoError(t, testutil.GatherAndCompare(reg, strings.NewReader(b.String()), "seance_health_warning"))
}

func TestHealthRates(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h, reg := newTestHub(t, ChannelConfig{Name: "bourg"})
		c, _ := h.Channel("bourg")
		stop := startHub(t, h)
		defer stop()

		sub := c.Subscribe("record", 4096)
		defer sub.Close()
		start := time.Now()
		s := publish(t, c, avTracks())
		f := newFeed(s, 0, 60)
		f.audio = true
		size := func() (n int) {
			for _, fr := range drain(sub) {
				n += len(fr.AVCC) + len(fr.AU)
			}
			return n
		}

		// First second: 30 fps. The first tick already reports it.
		paced(f, 30, videoStep)
		untilTick(start, time.Second)
		hl := c.Health()
		require.Equal(t, 30.0, hl.FPS)
		require.Equal(t, float64(size()*8), hl.Bitrate)
		require.InDelta(t, 29*videoStep.Seconds(), hl.KeyframeInterval, 1e-9, "a late keyframe already counts")
		require.Equal(t, 30.0, testutil.ToFloat64(c.met.fps))
		require.Equal(t, hl.Bitrate, testutil.ToFloat64(c.met.bitrate))

		// Second: 30 more frames, then a keyframe at 2 s of stream time.
		paced(f, 30, videoStep)
		untilTick(start, 2*time.Second)
		require.Equal(t, 30.0, c.Health().FPS)
		size()

		// Third second: 15 fps.
		paced(f, 15, 2*videoStep)
		untilTick(start, 3*time.Second)
		hl = c.Health()
		require.Equal(t, 15.0, hl.FPS)
		require.Equal(t, float64(size()*8), hl.Bitrate)
		require.InDelta(t, 2.0, hl.KeyframeInterval, 1e-6)
		require.InDelta(t, 2.0, testutil.ToFloat64(c.met.keyint), 1e-6)
		require.Empty(t, hl.Warnings)
		require.Equal(t, 3.0, testutil.ToFloat64(c.met.liveSeconds))

		// Idle: everything back to zero, and ticks leave it there.
		s.Close()
		untilTick(start, 5*time.Second)
		hl = c.Health()
		require.Equal(t, StateIdle, hl.State)
		require.Zero(t, hl.FPS)
		require.Zero(t, hl.Bitrate)
		require.Zero(t, hl.KeyframeInterval)
		require.Nil(t, hl.Video)
		require.Nil(t, hl.Audio)
		require.Empty(t, hl.Warnings)
		require.NotNil(t, hl.Warnings, "warnings is [] in JSON, not null")
		require.NoError(t, testutil.GatherAndCompare(reg, strings.NewReader(`
# HELP seance_ingest_frames_per_second Video frames received over the last second.
# TYPE seance_ingest_frames_per_second gauge
seance_ingest_frames_per_second{channel="bourg"} 0
# HELP seance_ingest_bitrate_bits_per_second Ingest bitrate (video + audio payload) over the last second.
# TYPE seance_ingest_bitrate_bits_per_second gauge
seance_ingest_bitrate_bits_per_second{channel="bourg"} 0
# HELP seance_ingest_keyframe_interval_seconds Time between the last two video keyframes (YouTube requires 4 s or less).
# TYPE seance_ingest_keyframe_interval_seconds gauge
seance_ingest_keyframe_interval_seconds{channel="bourg"} 0
# HELP seance_channel_live_seconds_total Seconds the channel has been live.
# TYPE seance_channel_live_seconds_total counter
seance_channel_live_seconds_total{channel="bourg"} 3
`), "seance_ingest_frames_per_second", "seance_ingest_bitrate_bits_per_second",
			"seance_ingest_keyframe_interval_seconds", "seance_channel_live_seconds_total"))
	})
}

func TestHealthWarnings(t *testing.T) {
	for _, tc := range []struct {
		name   string
		tracks Tracks
		run    func(f *feed)
		want   []string
		check  func(t *testing.T, h Health)
	}{
		{
			name:   "clean stream",
			tracks: avTracks(),
			run:    func(f *feed) { paced(f, 90, videoStep) },
			check: func(t *testing.T, h Health) {
				require.InDelta(t, 2.0, h.KeyframeInterval, 1e-6)
				require.False(t, h.BFrames)
				require.Equal(t, &audioInfo{Codec: "AAC-LC", SampleRate: 44100, Channels: 2}, h.Audio)
			},
		},
		{
			name:   "keyframe every 5 s",
			tracks: avTracks(),
			run:    func(f *feed) { f.gop = 150; paced(f, 151, videoStep) },
			want:   []string{WarnKeyframeInterval},
			check: func(t *testing.T, h Health) {
				require.InDelta(t, 5.0, h.KeyframeInterval, 1e-6)
			},
		},
		{
			name:   "B-frames",
			tracks: avTracks(),
			run:    func(f *feed) { f.cts = 2 * videoStep; paced(f, 30, videoStep) },
			want:   []string{WarnBFrames},
			check:  func(t *testing.T, h Health) { require.True(t, h.BFrames) },
		},
		{
			name: "32 kHz audio",
			tracks: Tracks{
				Video: &VideoTrack{SPS: sps720, PPS: testPPS},
				Audio: &AudioTrack{Config: aacConfig(mpeg4audio.ObjectTypeAACLC, 32000)},
			},
			run:  func(f *feed) { paced(f, 30, videoStep) },
			want: []string{WarnAudioSampleRate},
			check: func(t *testing.T, h Health) {
				require.Equal(t, 32000, h.Audio.SampleRate)
			},
		},
		{
			name: "HE-AAC",
			tracks: Tracks{
				Video: &VideoTrack{SPS: sps720, PPS: testPPS},
				Audio: &AudioTrack{Config: aacConfig(mpeg4audio.ObjectTypeSBR, 48000)},
			},
			run:  func(f *feed) { paced(f, 30, videoStep) },
			want: []string{WarnAudioCodec},
			check: func(t *testing.T, h Health) {
				require.Equal(t, "HE-AAC", h.Audio.Codec)
			},
		},
		{
			name:   "no audio",
			tracks: videoOnly(),
			run:    func(f *feed) { paced(f, 30, videoStep) },
			want:   []string{WarnNoAudio},
			check:  func(t *testing.T, h Health) { require.Nil(t, h.Audio) },
		},
		{
			name:   "timestamp jump",
			tracks: avTracks(),
			run: func(f *feed) {
				paced(f, 15, videoStep)
				f.base -= 10 * time.Second
				paced(f, 15, videoStep)
			},
			want: []string{WarnTimestampJumps},
			check: func(t *testing.T, h Health) {
				require.Equal(t, uint64(1), h.TimestampJumps, "audio follows the video jump")
			},
		},
		{
			name:   "stalled",
			tracks: avTracks(),
			run: func(f *feed) {
				paced(f, 30, videoStep)
				time.Sleep(5 * time.Second) // 5.03 s without a frame at the tick
			},
			want: []string{WarnStalled},
			check: func(t *testing.T, h Health) {
				require.Zero(t, h.FPS)
				require.Zero(t, h.Bitrate)
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				h, reg := newTestHub(t, ChannelConfig{Name: "bourg"})
				c, _ := h.Channel("bourg")
				stop := startHub(t, h)
				defer stop()

				start := time.Now()
				s := publish(t, c, tc.tracks)
				f := newFeed(s, time.Minute, 60)
				f.audio = tc.tracks.Audio != nil
				tc.run(f)
				untilTick(start, time.Since(start).Truncate(time.Second)+time.Second)

				hl := c.Health()
				want := tc.want
				if want == nil {
					want = []string{}
				}
				require.Equal(t, want, hl.Warnings)
				requireWarningGauges(t, reg, tc.want...)
				tc.check(t, hl)

				s.Close()
				requireWarningGauges(t, reg)
				require.Empty(t, c.Health().Warnings)
			})
		})
	}
}

func TestHealthWarningsClear(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h, reg := newTestHub(t, ChannelConfig{Name: "bourg", Grace: time.Hour})
		c, _ := h.Channel("bourg")
		stop := startHub(t, h)
		defer stop()

		start := time.Now()
		s := publish(t, c, avTracks())
		f := newFeed(s, 0, 30)
		f.audio = true
		paced(f, 30, videoStep)
		f.base += 20 * time.Second
		paced(f, 30, videoStep)
		untilTick(start, 2*time.Second)
		requireWarningGauges(t, reg, WarnTimestampJumps)

		// A jump (at about 1 s) is reported for a minute.
		paced(f, 58*30, videoStep)
		untilTick(start, 60*time.Second)
		requireWarningGauges(t, reg, WarnTimestampJumps)
		paced(f, 30, videoStep)
		untilTick(start, 61*time.Second)
		requireWarningGauges(t, reg)
		require.Equal(t, uint64(1), c.Health().TimestampJumps, "the count stays")

		// A publisher that left is not stalled: it is interrupted.
		s.Close()
		untilTick(start, 80*time.Second)
		require.Equal(t, StateInterrupted, c.Health().State)
		requireWarningGauges(t, reg)

		// Nor is one that just came back.
		s = publish(t, c, avTracks())
		defer s.Close()
		untilTick(start, 81*time.Second)
		requireWarningGauges(t, reg)
		require.Equal(t, uint64(1), c.Health().Reconnects)
	})
}
