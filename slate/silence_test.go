package slate

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/bluenviron/mediacommon/v2/pkg/codecs/mpeg4audio"
	"github.com/bluenviron/mediacommon/v2/pkg/formats/fmp4"
	"github.com/bluenviron/mediacommon/v2/pkg/formats/fmp4/seekablebuffer"
	mp4codecs "github.com/bluenviron/mediacommon/v2/pkg/formats/mp4/codecs"
	"github.com/stretchr/testify/require"
	aacpcm "github.com/tphakala/go-aac/pcm"
)

// silenceCases: every channel configuration at 48 kHz, and mono and
// stereo at the other common rates (IP cameras send 8 or 16 kHz).
func silenceCases() []*mpeg4audio.AudioSpecificConfig {
	var out []*mpeg4audio.AudioSpecificConfig
	for ch := uint8(1); ch <= 7; ch++ {
		out = append(out, &mpeg4audio.AudioSpecificConfig{Type: mpeg4audio.ObjectTypeAACLC, SampleRate: 48000, ChannelConfig: ch})
	}
	for _, rate := range []int{8000, 16000, 22050, 32000, 44100, 96000} {
		for ch := uint8(1); ch <= 2; ch++ {
			out = append(out, &mpeg4audio.AudioSpecificConfig{Type: mpeg4audio.ObjectTypeAACLC, SampleRate: rate, ChannelConfig: ch})
		}
	}
	return out
}

func channelCount(cfg *mpeg4audio.AudioSpecificConfig) int {
	if cfg.ChannelConfig == 7 {
		return 8
	}
	return int(cfg.ChannelConfig)
}

// adts frames n copies of au for cfg.
func adts(t *testing.T, cfg *mpeg4audio.AudioSpecificConfig, au []byte, n int) []byte {
	t.Helper()
	pkts := make(mpeg4audio.ADTSPackets, n)
	for i := range pkts {
		pkts[i] = &mpeg4audio.ADTSPacket{Type: cfg.Type, SampleRate: cfg.SampleRate, ChannelConfig: cfg.ChannelConfig, AU: au}
	}
	b, err := pkts.Marshal()
	require.NoError(t, err)
	return b
}

// TestSilenceDecodes: the silent access unit decodes, in ffmpeg (as
// YouTube's ingestion would) and in go-aac (as seance's own AAC → Opus
// transcoder does), to exactly one frame of zeros per unit for each
// configuration.
func TestSilenceDecodes(t *testing.T) {
	requireFFmpeg(t)
	const frames = 20
	for _, cfg := range silenceCases() {
		t.Run(fmt.Sprintf("%dHz-%dch", cfg.SampleRate, channelCount(cfg)), func(t *testing.T) {
			au, err := Silence(cfg)
			require.NoError(t, err)
			require.LessOrEqual(t, len(au), 1+4*channelCount(cfg), "a few bytes per channel")
			stream := adts(t, cfg, au, frames)

			cmd := exec.CommandContext(t.Context(), "ffmpeg", "-nostdin", "-v", "error", "-f", "aac", "-i", "pipe:0",
				"-f", "s16le", "-acodec", "pcm_s16le", "pipe:1")
			cmd.Stdin = bytes.NewReader(stream)
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			pcm, err := cmd.Output()
			require.NoError(t, err, "ffmpeg: %s", stderr.String())
			require.Empty(t, stderr.String(), "ffmpeg reported errors")
			require.Len(t, pcm, frames*1024*channelCount(cfg)*2, "one 1024-sample frame per unit")
			require.Equal(t, make([]byte, len(pcm)), pcm, "silence")
		})
	}
}

// TestSilenceHEAAC: with explicit SBR or PS signalling (which ADTS cannot
// carry, hence MP4), the core AAC-LC silence decodes without error to
// silence at the output rate.
func TestSilenceHEAAC(t *testing.T) {
	requireFFmpeg(t)
	const frames = 20
	for _, tc := range []struct {
		name        string
		cfg         *mpeg4audio.AudioSpecificConfig
		outChannels int
	}{
		{"SBR stereo", &mpeg4audio.AudioSpecificConfig{Type: mpeg4audio.ObjectTypeAACLC, SampleRate: 24000, ChannelConfig: 2,
			ExtensionType: mpeg4audio.ObjectTypeSBR, ExtensionSampleRate: 48000}, 2},
		{"PS", &mpeg4audio.AudioSpecificConfig{Type: mpeg4audio.ObjectTypeAACLC, SampleRate: 22050, ChannelConfig: 1,
			ExtensionType: mpeg4audio.ObjectTypePS, ExtensionSampleRate: 44100}, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			au, err := Silence(tc.cfg)
			require.NoError(t, err)
			file := filepath.Join(t.TempDir(), "silence.mp4")
			writeMP4Audio(t, file, tc.cfg, au, frames)
			cmd := exec.CommandContext(t.Context(), "ffmpeg", "-nostdin", "-v", "error", "-i", file,
				"-f", "s16le", "-acodec", "pcm_s16le", "-ac", strconv.Itoa(tc.outChannels), "pipe:1")
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			pcm, err := cmd.Output()
			require.NoError(t, err, "ffmpeg: %s", stderr.String())
			require.Empty(t, stderr.String(), "ffmpeg reported errors")
			require.NotEmpty(t, pcm)
			require.Equal(t, make([]byte, len(pcm)), pcm, "silence")
		})
	}
}

// writeMP4Audio writes n copies of au as a fragmented MP4 audio track.
func writeMP4Audio(t *testing.T, file string, cfg *mpeg4audio.AudioSpecificConfig, au []byte, n int) {
	t.Helper()
	var buf seekablebuffer.Buffer
	init := fmp4.Init{Tracks: []*fmp4.InitTrack{{ID: 1, TimeScale: uint32(cfg.SampleRate), Codec: &mp4codecs.MPEG4Audio{Config: *cfg}}}}
	require.NoError(t, init.Marshal(&buf))
	part := fmp4.Part{SequenceNumber: 1, Tracks: []*fmp4.PartTrack{{ID: 1}}}
	for range n {
		part.Tracks[0].Samples = append(part.Tracks[0].Samples, &fmp4.Sample{Duration: 1024, Payload: au})
	}
	require.NoError(t, part.Marshal(&buf))
	require.NoError(t, os.WriteFile(file, buf.Bytes(), 0o600))
}

func TestSilenceGoAACDecoder(t *testing.T) {
	const frames = 10
	for _, cfg := range silenceCases() {
		if cfg.SampleRate != 44100 && cfg.SampleRate != 48000 || cfg.ChannelConfig > 2 {
			continue
		}
		t.Run(fmt.Sprintf("%dHz-%dch", cfg.SampleRate, channelCount(cfg)), func(t *testing.T) {
			au, err := Silence(cfg)
			require.NoError(t, err)
			dec, err := aacpcm.NewDecoder(bytes.NewReader(adts(t, cfg, au, frames)))
			require.NoError(t, err)
			require.Equal(t, channelCount(cfg), dec.Info().Channels)
			pcm, err := io.ReadAll(dec)
			require.NoError(t, err)
			require.Len(t, pcm, frames*1024*channelCount(cfg)*2)
			require.Equal(t, make([]byte, len(pcm)), pcm)
		})
	}
}

func TestSilenceUnsupported(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  *mpeg4audio.AudioSpecificConfig
	}{
		{"nil", nil},
		{"program config element", &mpeg4audio.AudioSpecificConfig{Type: mpeg4audio.ObjectTypeAACLC, SampleRate: 48000, ChannelConfig: 0}},
		{"reserved channel config", &mpeg4audio.AudioSpecificConfig{Type: mpeg4audio.ObjectTypeAACLC, SampleRate: 48000, ChannelConfig: 8}},
		{"not AAC-LC", &mpeg4audio.AudioSpecificConfig{Type: mpeg4audio.ObjectType(1), SampleRate: 48000, ChannelConfig: 2}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Silence(tc.cfg)
			require.ErrorIs(t, err, ErrUnsupportedAudio)
		})
	}
}
