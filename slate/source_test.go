package slate

import (
	"bytes"
	"context"
	"image"
	"image/color"
	"image/png"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/bluenviron/mediacommon/v2/pkg/codecs/mpeg4audio"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/rs/zerolog"
	"github.com/stretchr/testify/require"

	"github.com/seance-relay/seance/relay"
)

var stereo44 = &relay.AudioTrack{Config: &mpeg4audio.AudioSpecificConfig{Type: mpeg4audio.ObjectTypeAACLC, SampleRate: 44100, ChannelConfig: 2}}

func testLog(t *testing.T) zerolog.Logger { return zerolog.New(zerolog.NewTestWriter(t)) }

func TestSourceBuiltin(t *testing.T) {
	src, err := NewSource("", nil, testLog(t))
	require.NoError(t, err)
	src.Prepare(relay.SlateParams{Width: 1280, Height: 720}) // nothing to render, no renderer needed

	for _, tc := range []struct {
		name    string
		p       relay.SlateParams
		slate   string
		silence bool
	}{
		{"Jibri", relay.SlateParams{Width: 1280, Height: 720, FPS: 30, Audio: stereo44}, "built-in 1280x720 30 fps", true},
		{"no audio", relay.SlateParams{Width: 1920, Height: 1080, FPS: 25}, "built-in 1920x1080 25 fps", false},
		{"audio without a silent frame", relay.SlateParams{Width: 640, Height: 360, FPS: 30,
			Audio: &relay.AudioTrack{Config: &mpeg4audio.AudioSpecificConfig{Type: mpeg4audio.ObjectTypeAACLC, SampleRate: 48000}}},
			"built-in 640x360 30 fps", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sl := src.Slate(tc.p)
			require.NotNil(t, sl)
			require.Equal(t, tc.slate, sl.Name)
			require.True(t, sl.Frames[0].Key)
			require.NotEmpty(t, sl.SPS)
			require.NotEmpty(t, sl.PPS)
			require.Equal(t, tc.silence, sl.Silence != nil)
			if tc.silence {
				want, err := Silence(tc.p.Audio.Config)
				require.NoError(t, err)
				require.Equal(t, want, sl.Silence)
			}
			require.InDelta(t, time.Second/time.Duration(tc.p.FPS), sl.FrameDuration, float64(time.Microsecond))
		})
	}
}

// writePNG writes a w×h image of one colour.
func writePNG(t *testing.T, w, h int, c color.RGBA) string {
	t.Helper()
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	for y := range h {
		for x := range w {
			img.Set(x, y, c)
		}
	}
	var b bytes.Buffer
	require.NoError(t, png.Encode(&b, img))
	path := filepath.Join(t.TempDir(), "slate.png")
	require.NoError(t, os.WriteFile(path, b.Bytes(), 0o600))
	return path
}

func runRenderer(t *testing.T, r *Renderer) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		require.NoError(t, <-done)
	})
}

// TestSourceImage renders a 4:3 red picture with the real ffmpeg for a
// 1024x576 stream at 29.97 fps, a size no built-in slate has: until it is
// ready the built-in slate is used, then the rendered one, at the exact
// size and rate, letterboxed, looping without a decoding error.
func TestSourceImage(t *testing.T) {
	requireFFmpeg(t)
	reg := prometheus.NewRegistry()
	r := NewRenderer(testLog(t), reg)
	red := color.RGBA{R: 220, G: 20, B: 20, A: 255}
	src, err := NewSource(writePNG(t, 400, 300, red), r, testLog(t))
	require.NoError(t, err)
	p := relay.SlateParams{Width: 1024, Height: 576, FPS: 30000.0 / 1001, Audio: stereo44}

	sl := src.Slate(p)
	require.True(t, strings.HasPrefix(sl.Name, "built-in 854x480"), "not rendered yet: %s", sl.Name)
	src.Prepare(p) // already requested by Slate: no second render
	runRenderer(t, r)
	require.Eventually(t, func() bool { return r.lookup(src.renderKey(p)) != nil }, 30*time.Second, 20*time.Millisecond)

	sl = src.Slate(p)
	require.True(t, strings.HasPrefix(sl.Name, "image "), sl.Name)
	require.NotNil(t, sl.Silence)
	require.Equal(t, time.Second*1001/30000, sl.FrameDuration)
	c := r.lookup(src.renderKey(p))
	require.Equal(t, [2]int{1024, 576}, [2]int{c.width, c.height})
	require.Len(t, c.frames, 60)
	require.Equal(t, 1.0, testutil.ToFloat64(r.ok))

	var stream bytes.Buffer
	for range 2 {
		for _, f := range sl.Frames {
			if f.Key {
				writeAnnexB(&stream, sl.SPS, sl.PPS)
			}
			writeAnnexB(&stream, f.NALUs...)
		}
	}
	requireDecodes(t, "h264", stream.Bytes(), 120)

	// The picture: red in the middle, black bars on the sides (4:3 in 16:9).
	cmd := exec.CommandContext(t.Context(), "ffmpeg", "-nostdin", "-v", "error", "-f", "h264", "-i", "pipe:0",
		"-frames:v", "1", "-f", "rawvideo", "-pix_fmt", "rgb24", "pipe:1")
	cmd.Stdin = bytes.NewReader(stream.Bytes())
	rgb, err := cmd.Output()
	require.NoError(t, err)
	require.Len(t, rgb, 1024*576*3)
	at := func(x, y int) [3]int {
		i := (y*1024 + x) * 3
		return [3]int{int(rgb[i]), int(rgb[i+1]), int(rgb[i+2])}
	}
	mid := at(512, 288)
	require.InDelta(t, 220, mid[0], 12, "red in the middle: %v", mid)
	require.InDelta(t, 20, mid[1], 12, "red in the middle: %v", mid)
	edge := at(20, 288)
	require.InDelta(t, 0, edge[0], 12, "black bar on the left: %v", edge)

	// Another channel with the same image and stream shares the render.
	src2, err := NewSource(src.image.path, r, testLog(t))
	require.NoError(t, err)
	require.True(t, strings.HasPrefix(src2.Slate(p).Name, "image "))
	require.Equal(t, 1.0, testutil.ToFloat64(r.ok), "rendered once")
}

// TestSourceImageRenderFails: a render that fails (an odd size cannot be
// encoded in 4:2:0) is counted and the built-in slate stays.
func TestSourceImageRenderFails(t *testing.T) {
	requireFFmpeg(t)
	r := NewRenderer(testLog(t), prometheus.NewRegistry())
	src, err := NewSource(writePNG(t, 64, 64, color.RGBA{A: 255}), r, testLog(t))
	require.NoError(t, err)
	runRenderer(t, r)
	p := relay.SlateParams{Width: 1279, Height: 719, FPS: 30}
	src.Prepare(p)
	require.Eventually(t, func() bool { return testutil.ToFloat64(r.failed) == 1 }, 30*time.Second, 20*time.Millisecond)
	sl := src.Slate(p)
	require.Equal(t, "built-in 1280x720 30 fps", sl.Name)
	src.Prepare(p)
	time.Sleep(100 * time.Millisecond) // a retry would be counted by now
	require.Equal(t, 1.0, testutil.ToFloat64(r.failed), "a failed render is not retried at once")
}

func TestRendererStopsARenderUnderWay(t *testing.T) {
	requireFFmpeg(t)
	r := NewRenderer(testLog(t), prometheus.NewRegistry())
	src, err := NewSource(writePNG(t, 64, 64, color.RGBA{A: 255}), r, testLog(t))
	require.NoError(t, err)
	src.Prepare(relay.SlateParams{Width: 1920, Height: 1080, FPS: 30})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	cancel()
	select {
	case err := <-done:
		require.NoError(t, err)
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return after its context was cancelled")
	}
}

func TestNewSourceErrors(t *testing.T) {
	requireFFmpeg(t)
	r := NewRenderer(testLog(t), prometheus.NewRegistry())
	dir := t.TempDir()
	text := filepath.Join(dir, "slate.png")
	require.NoError(t, os.WriteFile(text, []byte("not a picture at all"), 0o600))
	short := filepath.Join(dir, "short.png")
	require.NoError(t, os.WriteFile(short, []byte{0x89, 'P'}, 0o600))
	jpeg := filepath.Join(dir, "ok.jpg")
	require.NoError(t, os.WriteFile(jpeg, []byte{0xff, 0xd8, 0xff, 0xe0, 0, 0x10, 'J', 'F', 'I', 'F'}, 0o600))
	for _, tc := range []struct {
		name  string
		image string
		r     *Renderer
		want  error
	}{
		{"missing file", filepath.Join(dir, "nope.png"), r, ErrBadImage},
		{"directory", dir, r, ErrBadImage},
		{"not an image", text, r, ErrBadImage},
		{"too short", short, r, ErrBadImage},
		{"no ffmpeg", jpeg, &Renderer{}, ErrNoFFmpeg},
		{"no renderer", jpeg, nil, ErrNoFFmpeg},
		{"JPEG", jpeg, r, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := NewSource(tc.image, tc.r, testLog(t))
			if tc.want == nil {
				require.NoError(t, err)
				return
			}
			require.ErrorIs(t, err, tc.want)
			require.Contains(t, err.Error(), tc.image, "the error names the file")
		})
	}
}
