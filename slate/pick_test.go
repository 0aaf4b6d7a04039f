package slate

import (
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestPick(t *testing.T) {
	list, err := builtins()
	require.NoError(t, err)
	for _, tc := range []struct {
		name          string
		width, height int
		fps           float64
		want          string
	}{
		{"Jibri 720p30", 1280, 720, 30, "1280x720-30"},
		{"1080p25", 1920, 1080, 25, "1920x1080-25"},
		{"480p 29.97", 854, 480, 30000.0 / 1001, "854x480-30"},
		{"360p 25", 640, 360, 25, "640x360-25"},
		{"50 fps maps to 25", 1280, 720, 50, "1280x720-25"},
		{"60 fps maps to 30", 1920, 1080, 60, "1920x1080-30"},
		{"24 fps maps to 25", 1920, 1080, 24, "1920x1080-25"},
		{"15 fps maps to 30", 640, 360, 15, "640x360-30"},
		{"12.5 fps maps to 25", 640, 360, 12.5, "640x360-25"},
		{"unknown rate is 30", 1280, 720, 0, "1280x720-30"},
		{"16:9 between sizes: nearest area", 1600, 900, 30, "1920x1080-30"},
		{"small 16:9", 426, 240, 25, "640x360-25"},
		{"huge 16:9", 3840, 2160, 30, "1920x1080-30"},
		{"nearest area ratio: 854x480 for 1024x576", 1024, 576, 30, "854x480-30"},
		{"4:3: no same aspect, nearest area", 640, 480, 30, "640x360-30"},
		{"4:3 large", 1440, 1080, 25, "1920x1080-25"},
		{"portrait phone", 720, 1280, 30, "1280x720-30"},
		{"unknown size", 0, 0, 25, "1280x720-25"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := pick(list, tc.width, tc.height, tc.fps)
			require.Equal(t, tc.want, fmt.Sprintf("%dx%d-%g", c.width, c.height, c.fps))
		})
	}
}

func TestRenderRate(t *testing.T) {
	for _, tc := range []struct {
		in, want float64
	}{
		{0, 30},
		{-1, 30},
		{500, 30},
		{30, 30},
		{29.97, 30000.0 / 1001},
		{30000.0 / 1001, 30000.0 / 1001},
		{29.4, 30}, // measured, jittery
		{25.6, 25}, // measured, jittery
		{23.976, 24000.0 / 1001},
		{59.94, 60000.0 / 1001},
		{7.2, 7},
		{0.4, 1},
	} {
		t.Run(fmt.Sprint(tc.in), func(t *testing.T) {
			require.InDelta(t, tc.want, renderRate(tc.in), 1e-9)
		})
	}
}
