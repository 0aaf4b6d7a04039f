package relay

import (
	"testing"

	"github.com/bluenviron/mediacommon/v2/pkg/codecs/mpeg4audio"
	"github.com/stretchr/testify/require"
)

func TestKindString(t *testing.T) {
	require.Equal(t, "video", KindVideo.String())
	require.Equal(t, "audio", KindAudio.String())
}

func TestH264Names(t *testing.T) {
	for _, tc := range []struct {
		idc     uint8
		cs1     bool
		profile string
	}{
		{66, false, "Baseline"},
		{66, true, "Constrained Baseline"},
		{77, false, "Main"},
		{88, false, "Extended"},
		{100, false, "High"},
		{110, false, "High 10"},
		{122, false, "High 4:2:2"},
		{244, false, "High 4:4:4"},
		{1, false, "unknown"},
	} {
		t.Run(tc.profile, func(t *testing.T) {
			require.Equal(t, tc.profile, h264ProfileName(tc.idc, tc.cs1))
		})
	}
	for idc, want := range map[uint8]string{9: "1b", 10: "1", 11: "1.1", 31: "3.1", 40: "4", 51: "5.1"} {
		require.Equal(t, want, h264LevelName(idc), "level_idc %d", idc)
	}
}

func TestVideoInfoBadSPS(t *testing.T) {
	require.Equal(t, videoInfo{Codec: "H.264"}, parseVideoInfo(&VideoTrack{SPS: []byte{0x67, 0x01}}))
	require.Equal(t, videoInfo{Codec: "H.264"}, parseVideoInfo(nil))
}

func TestAudioInfo(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  *mpeg4audio.AudioSpecificConfig
		want *audioInfo
	}{
		{"AAC-LC 44.1 kHz stereo", aacLC44(), &audioInfo{Codec: "AAC-LC", SampleRate: 44100, Channels: 2}},
		{"HE-AACv2", &mpeg4audio.AudioSpecificConfig{Type: mpeg4audio.ObjectTypePS, SampleRate: 48000, ChannelConfig: 1},
			&audioInfo{Codec: "HE-AACv2", SampleRate: 48000, Channels: 1}},
		{"7.1", &mpeg4audio.AudioSpecificConfig{Type: mpeg4audio.ObjectTypeAACLC, SampleRate: 48000, ChannelConfig: 7},
			&audioInfo{Codec: "AAC-LC", SampleRate: 48000, Channels: 8}},
		{"other profile", &mpeg4audio.AudioSpecificConfig{Type: 23, SampleRate: 48000, ChannelConfig: 2},
			&audioInfo{Codec: "AAC (other profile)", SampleRate: 48000, Channels: 2}},
		{"no config", nil, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var h health
			h.onTracks(&Tracks{Video: &VideoTrack{SPS: sps720}, Audio: &AudioTrack{Config: tc.cfg}})
			require.Equal(t, tc.want, h.Audio)
		})
	}
}
