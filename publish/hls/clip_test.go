package hls

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h264"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/mpeg4audio"
	"github.com/stretchr/testify/require"

	"github.com/seance-relay/seance/relay"
)

// clipFPS is the frame rate of the test clips.
const clipFPS = 30

// testClip is a short H.264 + AAC-LC clip made by ffmpeg, split into
// access units, for tests that publish faster than real time.
type testClip struct {
	sps, pps []byte
	video    [][][]byte // access units, without AUD
	idr      []bool
	audio    [][]byte
	asc      *mpeg4audio.AudioSpecificConfig
}

// encodeClip has ffmpeg encode dur of a test pattern at width×height,
// 30 fps, a keyframe every second, no B-frames, and a tone at sampleRate.
func encodeClip(t testing.TB, width, height int, dur time.Duration, sampleRate int) *testClip {
	t.Helper()
	dir := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	secs := strconv.FormatFloat(dur.Seconds(), 'f', -1, 64)
	vfile, afile := filepath.Join(dir, "v.h264"), filepath.Join(dir, "a.aac")
	out, err := exec.CommandContext(ctx, "ffmpeg", "-nostdin", "-v", "error", "-y",
		"-f", "lavfi", "-i", fmt.Sprintf("testsrc2=size=%dx%d:rate=%d", width, height, clipFPS), "-t", secs,
		"-c:v", "libx264", "-preset", "ultrafast", "-tune", "zerolatency", "-pix_fmt", "yuv420p",
		"-g", strconv.Itoa(clipFPS), "-bf", "0", "-x264-params", "aud=1:repeat-headers=1", "-f", "h264", vfile,
	).CombinedOutput()
	require.NoError(t, err, "ffmpeg video: %s", out)
	out, err = exec.CommandContext(ctx, "ffmpeg", "-nostdin", "-v", "error", "-y",
		"-f", "lavfi", "-i", "sine=frequency=440:sample_rate="+strconv.Itoa(sampleRate), "-t", secs,
		"-c:a", "aac", "-ac", "2", "-b:a", "96k", "-f", "adts", afile,
	).CombinedOutput()
	require.NoError(t, err, "ffmpeg audio: %s", out)

	c := &testClip{}
	raw, err := os.ReadFile(vfile)
	require.NoError(t, err)
	for _, chunk := range splitAtAUD(raw) {
		var nalus h264.AnnexB
		require.NoError(t, nalus.Unmarshal(chunk))
		var au [][]byte
		idr := false
		for _, n := range nalus {
			switch h264.NALUType(n[0] & 0x1f) {
			case h264.NALUTypeAccessUnitDelimiter:
				continue
			case h264.NALUTypeSPS:
				c.sps = n
			case h264.NALUTypePPS:
				c.pps = n
			case h264.NALUTypeIDR:
				idr = true
			}
			au = append(au, n)
		}
		c.video = append(c.video, au)
		c.idr = append(c.idr, idr)
	}
	require.NotEmpty(t, c.video)
	require.True(t, c.idr[0], "the clip starts with an IDR")
	raw, err = os.ReadFile(afile)
	require.NoError(t, err)
	var pkts mpeg4audio.ADTSPackets
	require.NoError(t, pkts.Unmarshal(raw))
	c.asc = &mpeg4audio.AudioSpecificConfig{Type: pkts[0].Type, SampleRate: pkts[0].SampleRate, ChannelConfig: pkts[0].ChannelConfig}
	for _, p := range pkts {
		c.audio = append(c.audio, p.AU)
	}
	return c
}

// tracks returns the clip's tracks, as a publisher announces them.
func (c *testClip) tracks() relay.Tracks {
	asc := *c.asc
	return relay.Tracks{Video: &relay.VideoTrack{SPS: c.sps, PPS: c.pps}, Audio: &relay.AudioTrack{Config: &asc}}
}

// frames returns the clip's frames in timestamp order, as the relay would
// deliver them, starting at offset on the timeline.
func (c *testClip) frames(offset time.Duration) []*relay.Frame {
	tr := c.tracks()
	var out []*relay.Frame
	vi, ai := 0, 0
	for vi < len(c.video) || ai < len(c.audio) {
		vts := time.Duration(vi) * time.Second / clipFPS
		ats := time.Duration(ai) * mpeg4audio.SamplesPerAccessUnit * time.Second / time.Duration(c.asc.SampleRate)
		if vi < len(c.video) && (ai >= len(c.audio) || vts <= ats) {
			out = append(out, &relay.Frame{Kind: relay.KindVideo, PTS: offset + vts, DTS: offset + vts,
				Key: c.idr[vi], NALUs: c.video[vi], Tracks: &tr})
			vi++
		} else {
			out = append(out, &relay.Frame{Kind: relay.KindAudio, PTS: offset + ats, DTS: offset + ats,
				AU: c.audio[ai], Tracks: &tr})
			ai++
		}
	}
	return out
}

// publish writes the clip on a relay session, paced at about 1 ms a
// frame so the sinks' queues never overflow, with timestamps from 0 (the
// relay places them on the channel's timeline).
func (c *testClip) publish(s *relay.Session) {
	for _, f := range c.frames(0) {
		if f.Kind == relay.KindVideo {
			s.WriteH264(f.PTS, f.DTS, f.NALUs)
		} else {
			s.WriteAAC(f.PTS, f.AU)
		}
		time.Sleep(time.Millisecond)
	}
}

// splitAtAUD cuts an Annex-B stream before each access unit delimiter.
func splitAtAUD(buf []byte) [][]byte {
	var cuts []int
	for pos := 0; ; {
		i := bytes.Index(buf[pos:], []byte{0, 0, 1})
		if i < 0 || pos+i+3 >= len(buf) {
			break
		}
		start := pos + i
		if h264.NALUType(buf[start+3]&0x1f) == h264.NALUTypeAccessUnitDelimiter {
			if start > 0 && buf[start-1] == 0 {
				start--
			}
			cuts = append(cuts, start)
		}
		pos += i + 3
	}
	chunks := make([][]byte, len(cuts))
	for i, start := range cuts {
		end := len(buf)
		if i+1 < len(cuts) {
			end = cuts[i+1]
		}
		chunks[i] = buf[start:end]
	}
	return chunks
}
