package relay

import (
	"bytes"
	"encoding/binary"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"
)

// avcc is the length-prefixed form of nalus.
func avcc(nalus ...[]byte) []byte {
	var b []byte
	for _, n := range nalus {
		b = binary.BigEndian.AppendUint32(b, uint32(len(n)))
		b = append(b, n...)
	}
	return b
}

func TestWriteH264(t *testing.T) {
	idr, p := idrNALU(500), pNALU(300)
	for _, tc := range []struct {
		name  string
		in    [][]byte
		want  [][]byte // nil: no frame
		key   bool
		track []byte // SPS in force afterwards
	}{
		{
			name:  "parameter sets only (RTMP's first callback)",
			in:    [][]byte{sps360, testPPS},
			track: sps360,
		},
		{
			name:  "AUD only",
			in:    [][]byte{audNALU},
			track: sps720,
		},
		{
			name:  "IDR gets SPS and PPS prepended",
			in:    [][]byte{idr},
			want:  [][]byte{sps720, testPPS, idr},
			key:   true,
			track: sps720,
		},
		{
			name:  "in-band parameter sets are not repeated, AUD dropped",
			in:    [][]byte{audNALU, sps720, testPPS, seiNALU, idr},
			want:  [][]byte{sps720, testPPS, seiNALU, idr},
			key:   true,
			track: sps720,
		},
		{
			name:  "in-band SPS change is used for this IDR",
			in:    [][]byte{sps360, testPPS, idr},
			want:  [][]byte{sps360, testPPS, idr},
			key:   true,
			track: sps360,
		},
		{
			name:  "non-IDR: AUD and filler dropped",
			in:    [][]byte{audNALU, p, fdNALU},
			want:  [][]byte{p},
			track: sps720,
		},
		{
			name:  "empty NALUs ignored",
			in:    [][]byte{{}, p, nil},
			want:  [][]byte{p},
			track: sps720,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, _ := newTestChannel(t, 0)
			s := publish(t, c, videoOnly())
			defer s.Close()
			sub := c.Subscribe("rtmp", 16)
			defer sub.Close()
			// Leave waitStart so that non-key frames reach the queue.
			s.WriteH264(0, 0, [][]byte{idrNALU(10)})
			require.Len(t, drain(sub), 1)

			s.WriteH264(time.Second, time.Second, tc.in)
			got := drain(sub)
			require.Equal(t, tc.track, c.Tracks().Video.SPS)
			if tc.want == nil {
				require.Empty(t, got)
				require.Equal(t, 1.0, testutil.ToFloat64(c.met.frames[KindVideo]))
				return
			}
			require.Len(t, got, 1)
			f := got[0]
			require.Equal(t, KindVideo, f.Kind)
			require.Equal(t, tc.key, f.Key)
			require.Equal(t, tc.want, f.NALUs)
			require.Equal(t, avcc(tc.want...), f.AVCC)
			require.Nil(t, f.AU)
			require.Same(t, c.Tracks(), f.Tracks)
			require.Equal(t, 2.0, testutil.ToFloat64(c.met.frames[KindVideo]))
			require.Equal(t, float64(10+4+len(sps720)+len(testPPS)+8+len(f.AVCC)),
				testutil.ToFloat64(c.met.bytes[KindVideo]))

			// NALUs point into AVCC (one allocation shared by all sinks)
			// and cannot grow into each other.
			for _, n := range f.NALUs {
				require.Equal(t, len(n), cap(n))
			}
			f.NALUs[0][0] ^= 0xff
			require.Equal(t, f.NALUs[0][0], f.AVCC[4])
		})
	}
}

func TestWriteH264DoesNotKeepCallerBuffers(t *testing.T) {
	c, _ := newTestChannel(t, 0)
	s := publish(t, c, videoOnly())
	defer s.Close()
	sub := c.Subscribe("rtmp", 16)
	defer sub.Close()

	sps := bytes.Clone(sps360)
	idr := idrNALU(64)
	s.WriteH264(0, 0, [][]byte{sps, testPPS, idr})
	clear(sps)
	clear(idr)
	f := <-sub.Frames()
	require.Equal(t, sps360, c.Tracks().Video.SPS)
	require.Equal(t, [][]byte{sps360, testPPS, idrNALU(64)}, f.NALUs)
}

func TestWriteH264TracksChange(t *testing.T) {
	c, _ := newTestChannel(t, 0)
	s := publish(t, c, avTracks())
	defer s.Close()
	sub := c.Subscribe("rtmp", 64)
	defer sub.Close()

	f := newFeed(s, 0, 3)
	f.frames(3) // I P P, parameter sets unchanged
	first := c.Tracks()
	require.Equal(t, 1280, c.Health().Video.Width)

	// Same parameter sets again: same pointer.
	s.WriteH264(0, f.dts(), [][]byte{sps720, testPPS})
	require.Same(t, first, c.Tracks())

	// New resolution.
	s.WriteH264(0, f.dts(), [][]byte{sps360, testPPS, idrNALU(100)})
	f.n++
	f.next() // P, and an AAC frame
	s.WriteAAC(f.dts(), []byte{1, 2, 3})

	second := c.Tracks()
	require.NotSame(t, first, second)
	require.Equal(t, sps360, second.Video.SPS)
	require.Same(t, first.Audio, second.Audio, "audio track unchanged")
	require.Equal(t, sps720, first.Video.SPS, "frames already sent keep their track")

	frames := drain(sub)
	require.Len(t, frames, 6)
	for i, fr := range frames[:3] {
		require.Same(t, first, fr.Tracks, "frame %d", i)
	}
	for i, fr := range frames[3:] {
		require.Same(t, second, fr.Tracks, "frame %d", i+3)
	}
	require.Equal(t, [][]byte{sps360, testPPS, idrNALU(100)}, frames[3].NALUs)

	h := c.Health()
	require.Equal(t, 640, h.Video.Width)
	require.Equal(t, 360, h.Video.Height)
	require.Equal(t, "AAC-LC", h.Audio.Codec, "audio info kept on a video change")
}

func TestVideoInfoFromSPS(t *testing.T) {
	c, _ := newTestChannel(t, 0)
	s := publish(t, c, videoOnly())
	defer s.Close()
	v := c.Health().Video
	require.NotNil(t, v)
	require.Equal(t, videoInfo{Codec: "H.264", Profile: "High", Level: "3.1", Width: 1280, Height: 720, FPS: 30}, *v)
}

func TestWriteAAC(t *testing.T) {
	t.Run("with audio track", func(t *testing.T) {
		c, _ := newTestChannel(t, 0)
		s := publish(t, c, avTracks())
		defer s.Close()
		sub := c.Subscribe("rtmp", 16)
		defer sub.Close()
		s.WriteH264(0, 0, [][]byte{idrNALU(10)})

		au := []byte{0x21, 0x10, 0x04}
		s.WriteAAC(10*time.Millisecond, au)
		s.WriteAAC(20*time.Millisecond, nil) // ignored
		au[0] = 0
		got := drain(sub)
		require.Len(t, got, 2)
		a := got[1]
		require.Equal(t, KindAudio, a.Kind)
		require.Equal(t, []byte{0x21, 0x10, 0x04}, a.AU, "AU is copied")
		require.Equal(t, 10*time.Millisecond, a.DTS)
		require.Equal(t, a.DTS, a.PTS)
		require.Same(t, c.Tracks(), a.Tracks)
		require.Equal(t, 1.0, testutil.ToFloat64(c.met.frames[KindAudio]))
		require.Equal(t, 3.0, testutil.ToFloat64(c.met.bytes[KindAudio]))
	})
	t.Run("without audio track", func(t *testing.T) {
		c, _ := newTestChannel(t, 0)
		s := publish(t, c, videoOnly())
		defer s.Close()
		s.WriteAAC(0, []byte{1})
		require.Zero(t, testutil.ToFloat64(c.met.frames[KindAudio]))
	})
}
