package rtsp

import (
	"bytes"
	"errors"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/bluenviron/gortsplib/v4/pkg/description"
	"github.com/bluenviron/gortsplib/v4/pkg/format"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h264"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/mpeg4audio"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
	"github.com/stretchr/testify/require"

	"github.com/seance-relay/seance/relay"
)

func TestMain(m *testing.M) {
	goleakVerify(m)
}

func TestNewSource(t *testing.T) {
	for _, tc := range []struct {
		name, url, transport, err string
	}{
		{"tcp", "rtsp://cam.lan/stream", "tcp", ""},
		{"udp", "rtsps://cam.lan/stream", "udp", ""},
		{"auto", "rtsp://cam.lan/stream", "auto", ""},
		{"default", "rtsp://cam.lan/stream", "", ""},
		{"bad transport", "rtsp://cam.lan/stream", "multicast", `RTSP transport "multicast" is not valid: use tcp, udp or auto`},
		{"rtmp", "rtmp://cam.lan/stream", "", "needs an rtsp:// or rtsps:// URL"},
		{"no host", "rtsp:///stream", "", "needs an rtsp:// or rtsps:// URL"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			u, err := url.Parse(tc.url)
			require.NoError(t, err)
			s, err := NewSource(Config{URL: u, Transport: tc.transport}, zerolog.Nop())
			if tc.err != "" {
				require.ErrorContains(t, err, tc.err)
				return
			}
			require.NoError(t, err)
			require.Equal(t, DefaultReadTimeout, s.cfg.ReadTimeout)
			require.Equal(t, DefaultFirstKeyframeTimeout, s.cfg.FirstKeyframeTimeout)
		})
	}
}

func TestPick(t *testing.T) {
	h264f := &format.H264{PayloadTyp: 96, PacketizationMode: 1}
	aac := &format.MPEG4Audio{PayloadTyp: 97, Config: &mpeg4audio.AudioSpecificConfig{Type: mpeg4audio.ObjectTypeAACLC, SampleRate: 48000, ChannelConfig: 2}, SizeLength: 13, IndexLength: 3, IndexDeltaLength: 3}
	video := func(f ...format.Format) *description.Media {
		return &description.Media{Type: description.MediaTypeVideo, Formats: f}
	}
	audio := func(f ...format.Format) *description.Media {
		return &description.Media{Type: description.MediaTypeAudio, Formats: f}
	}
	for _, tc := range []struct {
		name     string
		medias   []*description.Media
		err      error
		msg      string
		hasAudio bool
	}{
		{"h264 and aac", []*description.Media{video(h264f), audio(aac)}, nil, "", true},
		{"h264 only", []*description.Media{video(h264f)}, nil, "", false},
		{"aac first", []*description.Media{audio(aac), video(h264f)}, nil, "", true},
		{"aac among other audio", []*description.Media{video(h264f), audio(&format.G711{PayloadTyp: 0, MULaw: true, SampleRate: 8000, ChannelCount: 1}), audio(aac)}, nil, "", true},
		{"metadata ignored", []*description.Media{video(h264f), {Type: description.MediaTypeApplication, Formats: []format.Format{&format.Generic{PayloadTyp: 107, RTPMa: "vnd.onvif.metadata/90000"}}}}, nil, "", false},
		{"h265", []*description.Media{video(&format.H265{PayloadTyp: 96}), audio(aac)}, ErrNoH264, "the source offers no H.264 video: its video is H265: set the camera's video codec to H.264", false},
		{"audio only", []*description.Media{audio(aac)}, ErrNoH264, "the source offers no H.264 video: it offers no video track", false},
		{"opus", []*description.Media{video(h264f), audio(&format.Opus{PayloadTyp: 111, ChannelCount: 2})}, nil, "", true},
		{"g711", []*description.Media{video(h264f), audio(&format.G711{PayloadTyp: 8, SampleRate: 8000, ChannelCount: 1})}, ErrAudioCodec, "audio codec not supported: the source's audio is G711: set it to AAC", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := &stream{}
			err := s.pick(&description.Session{Medias: tc.medias})
			if tc.err != nil {
				require.ErrorIs(t, err, tc.err)
				require.EqualError(t, err, tc.msg)
				return
			}
			require.NoError(t, err)
			require.Same(t, h264f, s.video)
			require.Equal(t, tc.hasAudio, s.audio != nil || s.opus != nil)
			require.Equal(t, s.opus != nil, s.tc != nil, "Opus is transcoded to AAC")
			require.Len(t, s.medias(), map[bool]int{false: 1, true: 2}[tc.hasAudio])
		})
	}
}

func TestToDuration(t *testing.T) {
	require.Equal(t, time.Second, toDuration(90000, 90000))
	require.Equal(t, 1024*time.Second/48000, toDuration(1024, 48000))
	require.Equal(t, -time.Second, toDuration(-90000, 90000))
	// A month of 90 kHz timestamps does not overflow.
	month := int64(30*24*3600) * 90000
	require.Equal(t, 30*24*time.Hour, toDuration(month, 90000))
}

// tsAU is an access unit read back from an MPEG-TS file, with the
// timestamps the encoder gave it.
type tsAU struct {
	pts, dts int64
	au       [][]byte
}

// encode has ffmpeg encode 2 s of video (bf B-frames) and returns its
// access units in decoding order, with the timestamps ffprobe reads from
// the MPEG-TS file.
func encode(t *testing.T, bf string) []tsAU {
	t.Helper()
	dir := t.TempDir()
	ts, raw := filepath.Join(dir, "v.ts"), filepath.Join(dir, "v.h264")
	run := func(name string, args ...string) []byte {
		out, err := exec.CommandContext(t.Context(), name, args...).Output()
		require.NoError(t, err, "%s (run make test to install it)", name)
		return out
	}
	run("ffmpeg", "-nostdin", "-v", "error", "-f", "lavfi", "-i", "testsrc2=size=320x180:rate=30", "-t", "2",
		"-c:v", "libx264", "-preset", "veryfast", "-pix_fmt", "yuv420p", "-g", "30", "-bf", bf,
		"-x264-params", "aud=1", ts)
	run("ffmpeg", "-nostdin", "-v", "error", "-i", ts, "-c", "copy", "-f", "h264", raw)
	var aus []tsAU
	for line := range strings.FieldsSeq(string(run("ffprobe", "-v", "error", "-select_streams", "v",
		"-show_entries", "packet=pts,dts", "-of", "csv=p=0", ts))) {
		pts, dts, ok := strings.Cut(strings.TrimSuffix(line, ","), ",")
		require.True(t, ok, line)
		p, err := strconv.ParseInt(pts, 10, 64)
		require.NoError(t, err)
		d, err := strconv.ParseInt(dts, 10, 64)
		require.NoError(t, err)
		aus = append(aus, tsAU{pts: p, dts: d})
	}
	data, err := os.ReadFile(raw)
	require.NoError(t, err)
	i := -1
	for _, n := range splitAnnexB(data) {
		if h264.NALUType(n[0]&0x1f) == h264.NALUTypeAccessUnitDelimiter {
			i++
			continue
		}
		require.GreaterOrEqual(t, i, 0)
		require.Less(t, i, len(aus))
		aus[i].au = append(aus[i].au, n)
	}
	require.Len(t, aus, 60)
	require.Equal(t, 59, i)
	return aus
}

// TestWriteVideo feeds real access units to a stream the way the RTP
// callback does (PTS only, parameter sets only in the SDP): it publishes
// at the first keyframe, prepends SPS and PPS to each IDR, and recovers
// the encoder's DTS, with and without B-frames.
func TestWriteVideo(t *testing.T) {
	for _, tc := range []struct {
		name    string
		bf      string
		bframes bool
	}{
		{"no B-frames", "0", false},
		{"B-frames", "2", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			aus := encode(t, tc.bf)
			var sps, pps []byte
			for _, n := range aus[0].au {
				switch h264.NALUType(n[0] & 0x1f) {
				case h264.NALUTypeSPS:
					sps = n
				case h264.NALUTypePPS:
					pps = n
				}
			}
			require.NotNil(t, sps)
			hub := relay.NewHub([]relay.ChannelConfig{{Name: "c"}}, zerolog.Nop(), relay.NewMetrics(prometheus.NewRegistry()))
			ch, err := hub.Channel("c")
			require.NoError(t, err)
			sub := ch.Subscribe("test", 1024)
			defer sub.Close()

			published := 0
			s := &stream{
				publish: func(info relay.PublisherInfo, tr relay.Tracks) (*relay.Session, error) {
					published++
					require.Equal(t, sps, tr.Video.SPS)
					require.Equal(t, pps, tr.Video.PPS)
					return ch.Publish(info, tr)
				},
				info:   relay.PublisherInfo{Protocol: "rtsp"},
				log:    zerolog.Nop(),
				failed: make(chan error, 1),
				live:   make(chan struct{}),
			}
			f := &format.H264{PayloadTyp: 96, PacketizationMode: 1, SPS: sps, PPS: pps}
			require.NoError(t, s.pick(&description.Session{Medias: []*description.Media{{Type: description.MediaTypeVideo, Formats: []format.Format{f}}}}))

			// A P-frame before the first keyframe (joining mid-GOP) is dropped.
			s.writeVideo(aus[5].pts, withoutParams(aus[5].au))
			require.Zero(t, published)
			for _, a := range aus {
				s.writeVideo(a.pts, withoutParams(a.au))
			}
			require.Equal(t, 1, published)
			requireClosed(t, s.live)
			s.close()

			var frames []*relay.Frame
			for len(sub.Frames()) > 0 {
				frames = append(frames, <-sub.Frames())
			}
			require.Len(t, frames, len(aus))
			keys := 0
			for i, fr := range frames {
				// The channel timeline starts at the first frame, whose
				// DTS the extractor takes to be its PTS.
				wantPTS := toDuration(aus[i].pts-aus[0].pts, 90000)
				require.InDelta(t, wantPTS.Seconds(), fr.PTS.Seconds(), 0.0015, "PTS of frame %d", i)
				if !tc.bframes {
					require.Equal(t, fr.PTS, fr.DTS, "DTS of frame %d", i)
				}
				require.LessOrEqual(t, fr.DTS, fr.PTS, "DTS of frame %d", i)
				if i > 0 {
					require.Greater(t, fr.DTS, frames[i-1].DTS, "DTS of frame %d", i)
				}
				if fr.Key {
					keys++
					require.Equal(t, h264.NALUTypeSPS, h264.NALUType(fr.NALUs[0][0]&0x1f))
					require.Equal(t, h264.NALUTypePPS, h264.NALUType(fr.NALUs[1][0]&0x1f))
				}
			}
			require.Equal(t, 2, keys)
			require.Equal(t, tc.bframes, hasReordering(aus), "the encoder's output")
		})
	}
}

// splitAnnexB splits an H.264 byte stream on its start codes (trailing
// zero bytes of a NALU are part of the next start code).
func splitAnnexB(b []byte) [][]byte {
	var out [][]byte
	start := -1
	for i := 0; i+2 < len(b); i++ {
		if b[i] == 0 && b[i+1] == 0 && b[i+2] == 1 {
			if start >= 0 {
				out = append(out, bytes.TrimRight(b[start:i], "\x00"))
			}
			start = i + 3
			i += 2
		}
	}
	if start >= 0 {
		out = append(out, b[start:])
	}
	return out
}

func withoutParams(au [][]byte) [][]byte {
	var out [][]byte
	for _, n := range au {
		switch h264.NALUType(n[0] & 0x1f) {
		case h264.NALUTypeSPS, h264.NALUTypePPS:
		default:
			out = append(out, n)
		}
	}
	return out
}

func hasReordering(aus []tsAU) bool {
	for _, a := range aus {
		if a.pts != a.dts {
			return true
		}
	}
	return false
}

// TestPublishRefused: a channel that refuses the publisher (busy) fails
// the connection with its error.
func TestPublishRefused(t *testing.T) {
	busy := errors.New("channel already has a live publisher")
	aus := encode(t, "0")
	s := &stream{
		publish: func(relay.PublisherInfo, relay.Tracks) (*relay.Session, error) { return nil, busy },
		log:     zerolog.Nop(),
		failed:  make(chan error, 1),
		live:    make(chan struct{}),
	}
	require.NoError(t, s.pick(&description.Session{Medias: []*description.Media{{Type: description.MediaTypeVideo, Formats: []format.Format{&format.H264{PayloadTyp: 96, PacketizationMode: 1}}}}}))
	for _, a := range aus[:3] {
		s.writeVideo(a.pts, a.au)
	}
	require.ErrorIs(t, <-s.failed, busy)
	require.True(t, s.done)
	s.close()
}

func requireClosed(t *testing.T, ch <-chan struct{}) {
	t.Helper()
	select {
	case <-ch:
	default:
		t.Fatal("channel not closed")
	}
}
