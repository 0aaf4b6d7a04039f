package whiptest

import (
	"bytes"
	"context"
	"fmt"
	"os/exec"
	"strconv"
)

// EncodeH264 has ffmpeg (libx264) encode dur seconds of its testsrc2
// pattern at size (e.g. "640x360") and fps as one IDR followed only by
// P-frames (Constrained Baseline, one slice per frame), and returns the
// access units as NAL units without start codes: the shape Options.Video
// wants.
func EncodeH264(ctx context.Context, size string, fps int, seconds float64) ([][][]byte, error) {
	cmd := exec.CommandContext(ctx, "ffmpeg", "-nostdin", "-v", "error",
		"-f", "lavfi", "-i", "testsrc2=size="+size+":rate="+strconv.Itoa(fps),
		"-t", strconv.FormatFloat(seconds, 'f', -1, 64),
		"-c:v", "libx264", "-profile:v", "baseline", "-pix_fmt", "yuv420p", "-preset", "veryfast",
		"-x264-params", "keyint=infinite:min-keyint=infinite:scenecut=0:bframes=0:slices=1:threads=1",
		"-b:v", "1M", "-bsf:v", "h264_mp4toannexb", "-f", "h264", "-")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("ffmpeg: %w: %s", err, stderr.String())
	}
	aus := SplitAnnexB(out)
	if len(aus) < 2 {
		return nil, fmt.Errorf("ffmpeg produced %d access units", len(aus))
	}
	return aus, nil
}

// SplitAnnexB cuts an Annex-B stream with one slice per picture into
// access units: each ends with its slice, preceded by the parameter sets
// and SEI that came before it.
func SplitAnnexB(b []byte) [][][]byte {
	var (
		aus [][][]byte
		cur [][]byte
	)
	for _, n := range nalus(b) {
		cur = append(cur, n)
		if t := n[0] & 0x1f; t == 1 || t == 5 {
			aus = append(aus, cur)
			cur = nil
		}
	}
	return aus
}

// nalus splits on start codes (00 00 01, with or without a leading zero).
func nalus(b []byte) [][]byte {
	var out [][]byte
	start := -1
	for i := 0; i+2 < len(b); i++ {
		if b[i] != 0 || b[i+1] != 0 || b[i+2] != 1 {
			continue
		}
		if start >= 0 {
			end := i
			for end > start && b[end-1] == 0 {
				end--
			}
			if end > start {
				out = append(out, b[start:end])
			}
		}
		start = i + 3
		i += 2
	}
	if start >= 0 && start < len(b) {
		out = append(out, b[start:])
	}
	return out
}
