package demo

import (
	"os"
	"testing"
	"time"

	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h264"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/mpeg4audio"
	"github.com/stretchr/testify/require"
)

func TestClip(t *testing.T) {
	c, err := loadClip()
	require.NoError(t, err)

	require.Equal(t, 8*time.Second, c.duration)

	var sps h264.SPS
	require.NoError(t, sps.Unmarshal(c.sps))
	require.Equal(t, 1280, sps.Width())
	require.Equal(t, 720, sps.Height())
	require.InDelta(t, float64(videoFPS), sps.FPS(), 0.01)
	require.NotEmpty(t, c.pps)

	require.Len(t, c.video, 240)
	for i, au := range c.video {
		require.Equal(t, i%60 == 0, au.idr, "frame %d: an IDR every 60 frames and only there", i)
		types := naluTypes(au.nalus)
		require.NotContains(t, types, h264.NALUTypeAccessUnitDelimiter, "frame %d", i)
		if au.idr {
			require.Contains(t, types, h264.NALUTypeSPS, "frame %d", i)
			require.Contains(t, types, h264.NALUTypePPS, "frame %d", i)
		}
	}

	require.Len(t, c.audio, 375)
	require.Equal(t, &mpeg4audio.AudioSpecificConfig{
		Type:          mpeg4audio.ObjectTypeAACLC,
		SampleRate:    48000,
		ChannelConfig: 2,
	}, c.audioConfig)
	require.Equal(t, c.duration, c.audioTS(len(c.audio)), "audio loop must last exactly as long as video")
}

// TestClipScript checks the encoder settings that the parser cannot see:
// closed 2 s GOPs and no B-frames (so PTS = DTS).
func TestClipScript(t *testing.T) {
	script, err := os.ReadFile("gen-clip.sh")
	require.NoError(t, err)
	for _, flag := range []string{"-g 60", "-keyint_min 60", "-sc_threshold 0", "-bf 0", "aud=1", "rate=30"} {
		require.Contains(t, string(script), flag)
	}
	info, err := os.Stat("gen-clip.sh")
	require.NoError(t, err)
	require.NotZero(t, info.Mode()&0o111, "gen-clip.sh must be executable")

	require.Less(t, len(clipH264)+len(clipAAC), 2<<20, "the embedded clip must stay under 2 MB")
}

func TestParseClipErrors(t *testing.T) {
	for _, tc := range corruptClips() {
		t.Run(tc.name, func(t *testing.T) {
			_, err := parseClip(tc.h264, tc.aac)
			require.ErrorContains(t, err, tc.err)
		})
	}
}

func FuzzParseClip(f *testing.F) {
	for _, tc := range corruptClips() {
		f.Add(tc.h264, tc.aac)
	}
	f.Add(clipH264[:4096], clipAAC[:4096])
	f.Fuzz(func(t *testing.T, h264Data, aacData []byte) {
		c, err := parseClip(h264Data, aacData)
		if err == nil {
			require.NotEmpty(t, c.video)
			require.NotEmpty(t, c.audio)
		}
	})
}

type corruptClip struct {
	name      string
	h264, aac []byte
	err       string
}

func corruptClips() []corruptClip {
	secondAU := indexOfAU(clipH264, 1)
	return []corruptClip{
		{"empty video", nil, clipAAC, "does not start with an access unit delimiter"},
		{"garbage video", []byte("not a video"), clipAAC, "does not start with an access unit delimiter"},
		{"no keyframe first", clipH264[secondAU:], clipAAC, "first access unit is not an IDR"},
		{"delimiters only", []byte{0, 0, 0, 1, 9, 0xf0, 0, 0, 0, 1, 9, 0xf0}, clipAAC, "has no picture"},
		{"empty audio", clipH264, nil, "demo clip audio: invalid length"},
		{"garbage audio", clipH264, []byte("not an ADTS stream"), "invalid syncword"},
		{"short audio", clipH264, adtsPrefix(clipAAC, 200), "shorter than the video"},
	}
}

// adtsPrefix returns the first n frames of an ADTS stream.
func adtsPrefix(buf []byte, n int) []byte {
	var pkts mpeg4audio.ADTSPackets
	if err := pkts.Unmarshal(buf); err != nil {
		panic(err)
	}
	size := 0
	for _, p := range pkts[:n] {
		size += 7 + len(p.AU)
	}
	return buf[:size]
}

// indexOfAU returns the offset of the n-th access unit delimiter.
func indexOfAU(buf []byte, n int) int {
	chunks, err := splitAtAUD(buf)
	if err != nil {
		panic(err)
	}
	return len(buf) - lenFrom(chunks[n:])
}

func lenFrom(chunks [][]byte) int {
	n := 0
	for _, c := range chunks {
		n += len(c)
	}
	return n
}

func naluTypes(nalus [][]byte) []h264.NALUType {
	types := make([]h264.NALUType, len(nalus))
	for i, n := range nalus {
		types[i] = h264.NALUType(n[0] & 0x1f)
	}
	return types
}
