package pull

import (
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/bluenviron/mediacommon/v2/pkg/codecs/mpeg4audio"
	"github.com/stretchr/testify/require"

	"github.com/seance-relay/seance/relay"
)

// TestPullRTSPOpus: a source with H.264 + Opus (a media server relaying a
// WebRTC meeting, say) is pulled: RTMP/RTSP sinks get AAC-LC 48 kHz
// transcoded once per channel, WebRTC sinks the source's own Opus riding
// along on the same frames.
func TestPullRTSPOpus(t *testing.T) {
	file := filepath.Join(t.TempDir(), "opus.mkv")
	out, err := exec.CommandContext(t.Context(), "ffmpeg", "-nostdin", "-v", "error",
		"-f", "lavfi", "-i", "testsrc2=size=320x240:rate=30",
		"-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000",
		"-t", "4", "-c:v", "libx264", "-preset", "veryfast", "-pix_fmt", "yuv420p", "-g", "30", "-bf", "0",
		"-c:a", "libopus", "-b:a", "64k", "-ac", "2", file).CombinedOutput()
	require.NoError(t, err, "ffmpeg: %s", out)

	ports := freeRTSPPorts(t)
	startRTSPServer(t, ports, file, "", "")
	f := newFixture(t, 30*time.Second)
	sub := f.ch.Subscribe("test", 4096)
	defer sub.Close()
	p, err := New(Config{URL: "rtsp://" + ports.rtsp + "/cam", Transport: "tcp"}, f.ch, f.log, f.met)
	require.NoError(t, err)
	f.run(t, p)

	var aac, opus, video int
	deadline := time.After(20 * time.Second)
	for aac < 50 || video < 30 {
		select {
		case fr := <-sub.Frames():
			switch fr.Kind {
			case relay.KindVideo:
				video++
			case relay.KindAudio:
				require.NotEmpty(t, fr.AU, "an AAC unit for RTMP sinks")
				aac++
				opus += len(fr.Opus)
			}
		case <-deadline:
			t.Fatalf("after 20 s: %d video, %d AAC frames; pull state %+v", video, aac, p.Status())
		}
	}
	// 20 ms Opus packets and 21.3 ms AAC units: about one each.
	require.InDelta(t, float64(aac)*1024/960, float64(opus), float64(aac)/4+3, "the source's Opus packets ride along")
	tr := f.ch.Tracks()
	require.NotNil(t, tr.Audio)
	require.Equal(t, mpeg4audio.ObjectTypeAACLC, tr.Audio.Config.Type)
	require.Equal(t, 48000, tr.Audio.Config.SampleRate)
	require.Equal(t, StateLive, p.Status().State)
}
