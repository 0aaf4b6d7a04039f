package record

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h264"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/mpeg4audio"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
	"github.com/stretchr/testify/require"

	"github.com/seance-relay/seance/relay"
)

// The tests record real H.264 and AAC made by ffmpeg and check the files
// with ffprobe and ffmpeg's decoder. Both are installed by make test.

func requireTools(t *testing.T) {
	t.Helper()
	for _, tool := range []string{"ffmpeg", "ffprobe"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s is missing: run make test (installs ffmpeg)", tool)
		}
	}
}

// media is a clip made by ffmpeg: H.264 access units (320x180, 30 fps, no
// B-frames) and AAC-LC frames.
type media struct {
	sps, pps []byte
	fps      int
	video    [][][]byte // NALUs without start codes or delimiters
	keys     []bool
	audio    [][]byte
	audioCfg *mpeg4audio.AudioSpecificConfig
}

func (m *media) tracks() relay.Tracks {
	return relay.Tracks{
		Video: &relay.VideoTrack{SPS: m.sps, PPS: m.pps},
		Audio: &relay.AudioTrack{Config: m.audioCfg},
	}
}

var (
	mediaMu    sync.Mutex
	mediaDir   string
	mediaCache = map[string]*media{}
)

func cleanupMedia() {
	if mediaDir != "" {
		os.RemoveAll(mediaDir)
	}
}

// clip returns seconds of media with a keyframe every gop frames and audio
// at rate Hz, made once per test binary.
func clip(t *testing.T, seconds, gop, rate int) *media {
	t.Helper()
	requireTools(t)
	mediaMu.Lock()
	defer mediaMu.Unlock()
	key := fmt.Sprint(seconds, gop, rate)
	if m := mediaCache[key]; m != nil {
		return m
	}
	if mediaDir == "" {
		d, err := os.MkdirTemp("", "seance-record-test-")
		require.NoError(t, err)
		mediaDir = d
	}
	v := filepath.Join(mediaDir, key+".h264")
	a := filepath.Join(mediaDir, key+".aac")
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, "ffmpeg", "-nostdin", "-v", "error", "-y",
		"-f", "lavfi", "-i", "testsrc2=size=320x180:rate=30",
		"-f", "lavfi", "-i", "sine=frequency=440:sample_rate="+strconv.Itoa(rate),
		"-map", "0:v", "-t", strconv.Itoa(seconds), "-c:v", "libx264", "-preset", "veryfast", "-pix_fmt", "yuv420p",
		"-g", strconv.Itoa(gop), "-keyint_min", strconv.Itoa(gop), "-sc_threshold", "0", "-bf", "0",
		"-x264-params", "aud=1:repeat-headers=1", "-f", "h264", v,
		"-map", "1:a", "-t", strconv.Itoa(seconds), "-c:a", "aac", "-b:a", "64k", "-f", "adts", a).CombinedOutput()
	require.NoError(t, err, "ffmpeg: %s", out)

	m := &media{fps: 30}
	raw, err := os.ReadFile(v)
	require.NoError(t, err)
	nalus := splitAnnexB(raw)
	require.NotEmpty(t, nalus)
	var au [][]byte
	idr := false
	end := func() {
		if len(au) > 0 {
			m.video = append(m.video, au)
			m.keys = append(m.keys, idr)
		}
		au, idr = nil, false
	}
	for _, n := range nalus {
		switch h264.NALUType(n[0] & 0x1f) {
		case h264.NALUTypeAccessUnitDelimiter:
			end()
			continue
		case h264.NALUTypeSPS:
			if m.sps == nil {
				m.sps = n
			}
		case h264.NALUTypePPS:
			if m.pps == nil {
				m.pps = n
			}
		case h264.NALUTypeIDR:
			idr = true
		}
		au = append(au, n)
	}
	end()
	require.True(t, m.keys[0], "the clip starts with an IDR")

	raw, err = os.ReadFile(a)
	require.NoError(t, err)
	var pkts mpeg4audio.ADTSPackets
	require.NoError(t, pkts.Unmarshal(raw))
	m.audioCfg = &mpeg4audio.AudioSpecificConfig{
		Type: pkts[0].Type, SampleRate: pkts[0].SampleRate, ChannelConfig: pkts[0].ChannelConfig,
	}
	for _, p := range pkts {
		m.audio = append(m.audio, p.AU)
	}
	mediaCache[key] = m
	return m
}

// splitAnnexB returns the NALUs of an Annex-B stream. Emulation
// prevention guarantees that 00 00 01 only occurs as a start code.
func splitAnnexB(b []byte) [][]byte {
	var out [][]byte
	start := -1
	for i := 0; i+3 <= len(b); i++ {
		if b[i] == 0 && b[i+1] == 0 && b[i+2] == 1 {
			if start >= 0 {
				end := i
				for end > start && b[end-1] == 0 {
					end--
				}
				out = append(out, b[start:end])
			}
			start = i + 3
			i += 2
		}
	}
	if start >= 0 && start < len(b) {
		out = append(out, b[start:])
	}
	return out
}

// feed publishes m on sess, both tracks interleaved in time order, with
// publisher timestamps starting at from. pace, when set, is slept after
// every frame.
func feed(sess *relay.Session, m *media, from, pace time.Duration) {
	vi, ai := 0, 0
	vts := func(i int) time.Duration { return from + time.Duration(i)*time.Second/time.Duration(m.fps) }
	ats := func(i int) time.Duration {
		return from + time.Duration(i)*mpeg4audio.SamplesPerAccessUnit*time.Second/time.Duration(m.audioCfg.SampleRate)
	}
	for vi < len(m.video) || ai < len(m.audio) {
		if ai >= len(m.audio) || (vi < len(m.video) && vts(vi) <= ats(ai)) {
			sess.WriteH264(vts(vi), vts(vi), m.video[vi])
			vi++
		} else {
			sess.WriteAAC(ats(ai), m.audio[ai])
			ai++
		}
		if pace > 0 {
			time.Sleep(pace)
		}
	}
}

// testRecorder is a recorder running on a channel of its own.
type testRecorder struct {
	*Recorder
	ch   *relay.Channel
	reg  *prometheus.Registry
	dir  string
	stop func()
}

func startRecorder(t *testing.T, cfg Config, grace time.Duration) *testRecorder {
	t.Helper()
	reg := prometheus.NewRegistry()
	log := zerolog.New(zerolog.NewTestWriter(t))
	hub := relay.NewHub([]relay.ChannelConfig{{Name: "bourg", Grace: grace}}, log, relay.NewMetrics(reg))
	ch, err := hub.Channel("bourg")
	require.NoError(t, err)
	if cfg.Dir == "" {
		cfg.Dir = t.TempDir()
	}
	if cfg.queue == 0 {
		cfg.queue = 8192 // the tests publish faster than real time
	}
	r, err := New(cfg, ch, log, NewMetrics(reg))
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	tr := &testRecorder{Recorder: r, ch: ch, reg: reg, dir: filepath.Join(cfg.Dir, "bourg")}
	var once sync.Once
	tr.stop = func() {
		once.Do(func() {
			cancel()
			require.NoError(t, <-done)
		})
	}
	t.Cleanup(tr.stop)
	// Run subscribes after its first maintenance pass: wait for it, so
	// that the first frames published are not missed.
	select {
	case <-r.Ready():
	case <-time.After(5 * time.Second):
		t.Fatal("the recorder did not subscribe")
	}
	return tr
}

// waitFiles waits until the recorder is idle with n files, all finished,
// and returns them.
func (tr *testRecorder) waitFiles(t *testing.T, n int) []Recording {
	t.Helper()
	var list []Recording
	require.Eventually(t, func() bool {
		var err error
		list, err = tr.Recordings()
		if err != nil || len(list) != n || tr.Status().State != StateIdle {
			return false
		}
		for _, r := range list {
			if !r.Complete || r.InProgress {
				return false
			}
		}
		return true
	}, 10*time.Second, 5*time.Millisecond, "the recorder did not finish %d files", n)
	return list
}

// probe is what ffprobe says about a file.
type probe struct {
	Streams []struct {
		CodecName string `json:"codec_name"`
		Width     int    `json:"width"`
		Height    int    `json:"height"`
		Duration  string `json:"duration"`
	} `json:"streams"`
	Format struct {
		Duration string `json:"duration"`
	} `json:"format"`
}

// requirePlayable checks that ffprobe reads file without a complaint and
// ffmpeg decodes it without one error, and returns its duration.
func requirePlayable(t *testing.T, file string) float64 {
	t.Helper()
	out, err := exec.Command("ffprobe", "-v", "error", "-show_entries",
		"stream=codec_name,width,height,duration:format=duration", "-of", "json", file).CombinedOutput()
	require.NoError(t, err, "ffprobe %s: %s", file, out)
	var p probe
	require.NoError(t, json.Unmarshal(out, &p), "ffprobe %s: %s", file, out)
	var codecs []string
	for _, s := range p.Streams {
		codecs = append(codecs, s.CodecName)
	}
	require.ElementsMatch(t, []string{"h264", "aac"}, codecs, file)
	dur, err := strconv.ParseFloat(p.Format.Duration, 64)
	require.NoError(t, err, "duration of %s: %s", file, out)
	out, err = exec.Command("ffmpeg", "-nostdin", "-v", "error", "-i", file, "-f", "null", "-").CombinedOutput()
	require.NoError(t, err, "decoding %s: %s", file, out)
	require.Empty(t, string(out), "decoding %s", file)
	return dur
}

// requireMetric checks the sum of a metric family's samples.
func requireMetric(t *testing.T, reg *prometheus.Registry, name string, want float64) {
	t.Helper()
	fams, err := reg.Gather()
	require.NoError(t, err)
	for _, f := range fams {
		if f.GetName() != name {
			continue
		}
		sum := 0.0
		for _, m := range f.GetMetric() {
			switch {
			case m.GetCounter() != nil:
				sum += m.GetCounter().GetValue()
			case m.GetGauge() != nil:
				sum += m.GetGauge().GetValue()
			}
		}
		require.Equal(t, want, sum, name)
		return
	}
	t.Fatalf("no metric %s", name)
}

// clipAudioConfig is AAC-LC, 44.1 kHz, stereo.
func clipAudioConfig() *mpeg4audio.AudioSpecificConfig {
	return &mpeg4audio.AudioSpecificConfig{Type: mpeg4audio.ObjectTypeAACLC, SampleRate: 44100, ChannelConfig: 2}
}
