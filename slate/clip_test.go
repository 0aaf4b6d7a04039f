package slate

import (
	"bytes"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"testing"

	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h264"
	"github.com/stretchr/testify/require"
)

// TestBuiltinSlates: every embedded slate parses, starts with an IDR that
// the relay sends with its SPS and PPS, has the size and rate its name
// says, loops every 2 s, and decodes looped without a single error.
func TestBuiltinSlates(t *testing.T) {
	list, err := builtins()
	require.NoError(t, err)
	var got []string
	total := 0
	for _, c := range list {
		name := fmt.Sprintf("%dx%d-%g", c.width, c.height, c.fps)
		got = append(got, name)
		t.Run(name, func(t *testing.T) {
			var sps h264.SPS
			require.NoError(t, sps.Unmarshal(c.sps))
			require.Equal(t, [2]int{c.width, c.height}, [2]int{sps.Width(), sps.Height()})
			require.InDelta(t, c.fps, sps.FPS(), 0.001, "the SPS's timing says the file name's rate")
			require.Equal(t, uint8(66), sps.ProfileIdc, "Constrained Baseline: every H.264 decoder plays it")
			require.True(t, sps.ConstraintSet1Flag, "Constrained Baseline")
			require.Equal(t, h264.NALUTypePPS, h264.NALUType(c.pps[0]&0x1f))

			require.Len(t, c.frames, int(2*c.fps), "a 2 s loop")
			require.True(t, c.frames[0].Key, "starts with an IDR")
			for i, f := range c.frames {
				require.Equal(t, i == 0, f.Key, "frame %d", i)
				for _, n := range f.NALUs {
					typ := h264.NALUType(n[0] & 0x1f)
					require.Contains(t, []h264.NALUType{h264.NALUTypeIDR, h264.NALUTypeNonIDR}, typ, "frame %d: only picture NALUs", i)
				}
			}

			// Two loops as the relay sends them (SPS and PPS before the
			// IDR), decoded by ffmpeg.
			var stream bytes.Buffer
			for range 2 {
				for _, f := range c.frames {
					if f.Key {
						writeAnnexB(&stream, c.sps, c.pps)
					}
					writeAnnexB(&stream, f.NALUs...)
				}
			}
			requireDecodes(t, "h264", stream.Bytes(), int(4*c.fps))
		})
		entries, err := fs.Glob(builtinFiles, fmt.Sprintf("slate-%dx%d-%g.h264", c.width, c.height, c.fps))
		require.NoError(t, err)
		require.Len(t, entries, 1)
		data, err := builtinFiles.ReadFile(entries[0])
		require.NoError(t, err)
		total += len(data)
	}
	require.Equal(t, []string{
		"640x360-25", "640x360-30", "854x480-25", "854x480-30",
		"1280x720-25", "1280x720-30", "1920x1080-25", "1920x1080-30",
	}, got)
	require.Less(t, total, 256<<10, "the embedded slates must stay small")
	t.Logf("embedded slates: %d bytes", total)
}

// TestGenSlatesScript checks the encoder settings the parser cannot see.
func TestGenSlatesScript(t *testing.T) {
	script, err := os.ReadFile("gen-slates.sh")
	require.NoError(t, err)
	for _, flag := range []string{"-bf 0", "-sc_threshold 0", "aud=1", "-profile:v baseline", `-g "$gop"`,
		"Séance interrompue", "reprise dans quelques instants", "Session interrupted — resuming shortly"} {
		require.Contains(t, string(script), flag)
	}
	info, err := os.Stat("gen-slates.sh")
	require.NoError(t, err)
	require.NotZero(t, info.Mode()&0o111, "gen-slates.sh must be executable")
}

func writeAnnexB(b *bytes.Buffer, nalus ...[]byte) {
	for _, n := range nalus {
		b.Write([]byte{0, 0, 0, 1})
		b.Write(n)
	}
}

// requireDecodes decodes data (format: h264 or aac) with ffmpeg and
// requires no error and the given number of frames.
func requireDecodes(t *testing.T, format string, data []byte, frames int) {
	t.Helper()
	requireFFmpeg(t)
	cmd := exec.CommandContext(t.Context(), "ffmpeg", "-nostdin", "-v", "error", "-f", format, "-i", "pipe:0",
		"-f", "null", "-stats_period", "100", "-progress", "pipe:1", "-")
	cmd.Stdin = bytes.NewReader(data)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	require.NoError(t, err, "ffmpeg: %s", stderr.String())
	require.Empty(t, stderr.String(), "ffmpeg reported errors")
	if format == "h264" {
		require.Contains(t, string(out), fmt.Sprintf("frame=%d\n", frames))
	}
}

func requireFFmpeg(t *testing.T) {
	t.Helper()
	if _, err := exec.LookPath("ffmpeg"); err != nil {
		t.Fatal("ffmpeg is missing: run make test (installs it)")
	}
}

func TestParseClipErrors(t *testing.T) {
	list, err := builtins()
	require.NoError(t, err)
	c := list[0]
	aud := []byte{0x09, 0xf0}
	build := func(frames ...[][]byte) []byte {
		var b bytes.Buffer
		for _, f := range frames {
			writeAnnexB(&b, aud)
			writeAnnexB(&b, f...)
		}
		return b.Bytes()
	}
	idr, p := c.frames[0].NALUs, c.frames[1].NALUs
	withParams := append([][]byte{c.sps, c.pps}, idr...)
	for _, tc := range []struct {
		name string
		data []byte
		fps  float64
	}{
		{"empty", nil, 25},
		{"no frame rate", build(withParams), 0},
		{"no access unit delimiter", func() []byte { var b bytes.Buffer; writeAnnexB(&b, withParams...); return b.Bytes() }(), 25},
		{"no SPS", build(append([][]byte{c.pps}, idr...)), 25},
		{"no PPS", build(append([][]byte{c.sps}, idr...)), 25},
		{"starts with a P-frame", build(append([][]byte{c.sps, c.pps}, p...), idr), 25},
		{"second IDR", build(withParams, p, idr), 25},
		{"access unit without picture", build(withParams, [][]byte{c.sps}), 25},
		{"mixed slices", build(append(withParams, p...)), 25},
		{"unexpected NALU", build(withParams, [][]byte{{0x0b}}), 25},
		{"bad SPS", build(append([][]byte{{0x67, 0xff}, c.pps}, idr...)), 25},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := parseClip(tc.data, tc.fps)
			require.ErrorIs(t, err, ErrBadClip)
		})
	}
	_, err = parseClip(build(withParams, p, p), 25)
	require.NoError(t, err, "the test's base case parses")
}

func FuzzParseClip(f *testing.F) {
	list, err := builtins()
	require.NoError(f, err)
	data, err := builtinFiles.ReadFile(fmt.Sprintf("slate-%dx%d-%g.h264", list[0].width, list[0].height, list[0].fps))
	require.NoError(f, err)
	f.Add(data[:min(len(data), 4096)])
	f.Add([]byte{0, 0, 1, 0x09, 0xf0, 0, 0, 1, 0x67})
	f.Add([]byte{0, 0, 0, 1})
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := parseClip(b, 30)
		if err != nil {
			require.ErrorIs(t, err, ErrBadClip)
			return
		}
		require.NotEmpty(t, c.frames)
		require.True(t, c.frames[0].Key)
	})
}
