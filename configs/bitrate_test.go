package configs

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func TestBitRate(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want BitRate
	}{
		{"500k", 500_000},
		{"500K", 500_000},
		{"2.5M", 2_500_000},
		{"800kbit", 800_000},
		{"64 kbps", 64_000},
		{"1G", 1e9},
		{"48000", 48_000},
		{"1Mb/s", 1e6},
	} {
		t.Run(tc.in, func(t *testing.T) {
			got, err := parseBitRate(tc.in)
			require.NoError(t, err)
			require.Equal(t, tc.want, got)
		})
	}
	for _, in := range []string{"", "k", "fast", "-1k", "1T", "NaN", "1e13"} {
		t.Run("bad "+in, func(t *testing.T) {
			_, err := parseBitRate(in)
			require.ErrorIs(t, err, errBitRate)
		})
	}
	require.Equal(t, "500k", BitRate(500_000).String())
	require.Equal(t, "2500k", BitRate(2_500_000).String())
	require.Equal(t, "3M", BitRate(3_000_000).String())
	require.Equal(t, "1234", BitRate(1234).String())
}

func TestRenditionDefaults(t *testing.T) {
	cfg, err := Parse([]byte("channels: [{name: a, ingest: {demo: true}, renditions: [{name: basse}, {name: moyenne, height: 540, video_bitrate: 1.2M}]}]\n"), nil)
	require.NoError(t, err)
	require.Equal(t, []Rendition{
		{Name: "basse", Height: 360, VideoBitrate: 500_000},
		{Name: "moyenne", Height: 540, VideoBitrate: 1_200_000},
	}, cfg.Channels[0].Renditions)
}
