package transcode

import (
	"bytes"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/bluenviron/mediacommon/v2/pkg/codecs/mpeg4audio"
	"github.com/stretchr/testify/require"
	"github.com/thesyncim/gopus"
)

// Test streams: 2 s of a 440 Hz sine at amplitude 1/8 (-21 dBFS RMS; ffmpeg's
// mono-to-stereo upmix takes 3 dB off each channel), made by
//
//	ffmpeg -f lavfi -i sine=frequency=440:sample_rate=RATE -t 2 -ac CH \
//	  -c:a aac -b:a 64k -f adts FILE   (48k for mono)
var testStreams = []struct {
	name     string
	file     string
	rate     int
	channels int
	levelDB  float64 // RMS per channel, dBFS
}{
	{name: "44.1 kHz stereo", file: "sine440_44100_stereo.aac", rate: 44100, channels: 2, levelDB: -24.1},
	{name: "48 kHz stereo", file: "sine440_48000_stereo.aac", rate: 48000, channels: 2, levelDB: -24.1},
	{name: "44.1 kHz mono", file: "sine440_44100_mono.aac", rate: 44100, channels: 1, levelDB: -21.1},
}

const toneFreq = 440

// loadADTS returns the config and raw access units of an ADTS test file.
func loadADTS(t testing.TB, file string) (*mpeg4audio.AudioSpecificConfig, [][]byte) {
	t.Helper()
	buf, err := os.ReadFile(filepath.Join("testdata", file))
	require.NoError(t, err)
	var pkts mpeg4audio.ADTSPackets
	require.NoError(t, pkts.Unmarshal(buf))
	require.NotEmpty(t, pkts)
	cfg := &mpeg4audio.AudioSpecificConfig{
		Type:          pkts[0].Type,
		SampleRate:    pkts[0].SampleRate,
		ChannelConfig: pkts[0].ChannelConfig,
	}
	aus := make([][]byte, len(pkts))
	for i, p := range pkts {
		aus[i] = p.AU
	}
	return cfg, aus
}

// auPTS is the PTS of access unit i in a stream starting at start, rounded to
// the millisecond as RTMP carries it.
func auPTS(start time.Duration, i, rate int) time.Duration {
	return start + samplesDuration(int64(i)*aacFrameSamples, rate).Round(time.Millisecond)
}

type opusPacket struct {
	pts  time.Duration
	data []byte
}

// collector returns an emit func that copies each packet into *pkts.
func collector(pkts *[]opusPacket) func(time.Duration, []byte) {
	return func(pts time.Duration, opus []byte) {
		*pkts = append(*pkts, opusPacket{pts: pts, data: bytes.Clone(opus)})
	}
}

// decodeOpus decodes packets with gopus and returns the left and right
// channels.
func decodeOpus(t testing.TB, pkts []opusPacket) (left, right []float64) {
	t.Helper()
	dec, err := gopus.NewDecoder(gopus.DefaultDecoderConfig(opusRate, opusChannels))
	require.NoError(t, err)
	pcm := make([]float32, 5760*opusChannels)
	for _, p := range pkts {
		n, err := dec.Decode(p.data, pcm)
		require.NoError(t, err)
		require.Equal(t, opusFrameSamples, n)
		for i := range n {
			left = append(left, float64(pcm[2*i]))
			right = append(right, float64(pcm[2*i+1]))
		}
	}
	return left, right
}

// goertzel returns the squared magnitude of x's DFT at freq Hz.
func goertzel(x []float64, freq float64) float64 {
	coeff := 2 * math.Cos(2*math.Pi*freq/opusRate)
	var s1, s2 float64
	for _, v := range x {
		s1, s2 = v+coeff*s1-s2, s1
	}
	return s1*s1 + s2*s2 - coeff*s1*s2
}

// analyzeTone returns the dominant frequency of x (Hann-windowed Goertzel
// scan in 10 Hz steps over 50-4000 Hz, refined in 0.05 Hz steps), its RMS
// level in dBFS, and the fraction of x's power in that tone.
func analyzeTone(t testing.TB, x []float64) (freq, levelDB, purity float64) {
	t.Helper()
	var power float64
	w := make([]float64, len(x))
	for i, v := range x {
		require.False(t, math.IsNaN(v) || math.IsInf(v, 0), "sample %d is %v", i, v)
		power += v * v
		w[i] = v * (0.5 - 0.5*math.Cos(2*math.Pi*float64(i)/float64(len(x))))
	}
	power /= float64(len(x))

	best := 0.0
	for f := 50.0; f <= 4000; f += 10 {
		if p := goertzel(w, f); p > best {
			best, freq = p, f
		}
	}
	coarse := freq
	for f := coarse - 10; f <= coarse+10; f += 0.05 {
		if p := goertzel(w, f); p > best {
			best, freq = p, f
		}
	}
	amp := 2 * math.Sqrt(goertzel(x, freq)) / float64(len(x))
	return freq, 10 * math.Log10(power), amp * amp / 2 / power
}

// requireTone checks that one second of x starting at 0.3 s (past the codecs'
// start-up delays) is a clean 440 Hz tone at wantDB dBFS.
func requireTone(t *testing.T, x []float64, wantDB float64, label string) float64 {
	t.Helper()
	start := opusRate * 3 / 10
	require.GreaterOrEqual(t, len(x), start+opusRate, "%s: need 1.3 s of audio", label)
	freq, level, purity := analyzeTone(t, x[start:start+opusRate])
	t.Logf("%s: %.2f Hz, %.1f dBFS, %.2f %% of power in the tone", label, freq, level, 100*purity)
	require.InDelta(t, toneFreq, freq, 5, label)
	require.InDelta(t, wantDB, level, 1, "%s: level in dBFS", label)
	require.Greater(t, purity, 0.95, label)
	return freq
}

func requireSteps(t testing.TB, pkts []opusPacket) {
	t.Helper()
	for i := 1; i < len(pkts); i++ {
		require.Equal(t, opusFrameDuration, pkts[i].pts-pkts[i-1].pts, "packet %d", i)
	}
}

func TestAACToOpus(t *testing.T) {
	for _, ts := range testStreams {
		t.Run(ts.name, func(t *testing.T) {
			cfg, aus := loadADTS(t, ts.file)
			require.Equal(t, ts.rate, cfg.SampleRate)
			require.Equal(t, ts.channels, int(cfg.ChannelConfig))
			tr, err := NewAACToOpus(cfg)
			require.NoError(t, err)

			start := 90 * time.Second
			var pkts []opusPacket
			for i, au := range aus {
				require.NoError(t, tr.Transcode(auPTS(start, i, ts.rate), au, collector(&pkts)))
			}

			duration := samplesDuration(int64(len(aus))*aacFrameSamples, ts.rate)
			require.InDelta(t, float64(duration/opusFrameDuration), len(pkts), 1.5)
			require.Equal(t, start, pkts[0].pts)
			requireSteps(t, pkts)

			left, right := decodeOpus(t, pkts)
			requireTone(t, left, ts.levelDB, "left")
			requireTone(t, right, ts.levelDB, "right")
		})
	}
}

func TestAACToOpusBadFrame(t *testing.T) {
	cfg, aus := loadADTS(t, testStreams[0].file)
	const bad = 20 // replaced by the bad unit
	rng := rand.New(rand.NewPCG(1, 2))
	random := make([]byte, 300)
	for i := range random {
		random[i] = byte(rng.Uint32())
	}

	for _, tc := range []struct {
		name string
		au   []byte
	}{
		{name: "random bytes", au: random},
		{name: "truncated", au: aus[bad][:len(aus[bad])/2]},
		{name: "one byte", au: aus[bad][:1]},
		{name: "empty", au: []byte{}},
		{name: "nil", au: nil},
		{name: "oversize", au: bytes.Repeat(aus[bad], 20)},
		{name: "all ones", au: bytes.Repeat([]byte{0xff}, 200)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tr, err := NewAACToOpus(cfg)
			require.NoError(t, err)
			var pkts []opusPacket
			emit := collector(&pkts)
			for i, au := range aus {
				if i != bad {
					require.NoError(t, tr.Transcode(auPTS(0, i, cfg.SampleRate), au, emit), "unit %d", i)
					continue
				}
				before := len(pkts)
				err := tr.Transcode(auPTS(0, i, cfg.SampleRate), tc.au, emit)
				require.ErrorIs(t, err, ErrBadFrame)
				require.NotErrorIs(t, err, errDecoderPanic)
				require.Equal(t, before, len(pkts), "a bad unit emits nothing")
			}
			// One unit (23 ms) is missing: under the resync threshold, so
			// the output timeline simply continues.
			requireSteps(t, pkts)
			require.InDelta(t, float64((len(aus)-1)*aacFrameSamples*opusRate/cfg.SampleRate/opusFrameSamples), len(pkts), 1.5)

			// The second after the bad unit is still a clean tone.
			left, right := decodeOpus(t, pkts)
			from := (bad*aacFrameSamples*opusRate/cfg.SampleRate + opusRate/10) - opusRate*3/10
			requireTone(t, left[from:], testStreams[0].levelDB, "left")
			requireTone(t, right[from:], testStreams[0].levelDB, "right")
		})
	}
}

func TestAACToOpusResync(t *testing.T) {
	cfg, aus := loadADTS(t, testStreams[0].file)
	const cut = 30 // first unit after the jump
	for _, tc := range []struct {
		name   string
		jump   time.Duration
		resync bool
	}{
		{name: "publisher reconnect", jump: 5 * time.Second, resync: true},
		{name: "backwards", jump: -3 * time.Second, resync: true},
		{name: "just over threshold", jump: 101 * time.Millisecond, resync: true},
		{name: "gap under threshold", jump: 90 * time.Millisecond, resync: false},
		{name: "early under threshold", jump: -90 * time.Millisecond, resync: false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tr, err := NewAACToOpus(cfg)
			require.NoError(t, err)
			start := time.Hour
			var pkts []opusPacket
			var jumpPTS time.Duration
			for i, au := range aus {
				pts := auPTS(start, i, cfg.SampleRate)
				if i >= cut {
					pts += tc.jump
				}
				if i == cut {
					jumpPTS = pts
				}
				require.NoError(t, tr.Transcode(pts, au, collector(&pkts)))
			}

			require.Equal(t, start, pkts[0].pts)
			breaks := 0
			for i := 1; i < len(pkts); i++ {
				if step := pkts[i].pts - pkts[i-1].pts; step != opusFrameDuration {
					breaks++
					require.True(t, tc.resync, "unexpected step %v at packet %d", step, i)
					require.Equal(t, jumpPTS, pkts[i].pts, "timeline restarts at the jump's PTS")
				}
			}
			if tc.resync {
				require.Equal(t, 1, breaks)
			}
		})
	}
}

func TestNewAACToOpusUnsupported(t *testing.T) {
	lc := func(rate int, ch uint8) *mpeg4audio.AudioSpecificConfig {
		return &mpeg4audio.AudioSpecificConfig{Type: mpeg4audio.ObjectTypeAACLC, SampleRate: rate, ChannelConfig: ch}
	}
	for _, tc := range []struct {
		name string
		cfg  *mpeg4audio.AudioSpecificConfig
	}{
		{name: "nil", cfg: nil},
		{name: "AAC main", cfg: &mpeg4audio.AudioSpecificConfig{Type: 1, SampleRate: 44100, ChannelConfig: 2}},
		{name: "HE-AAC", cfg: &mpeg4audio.AudioSpecificConfig{Type: mpeg4audio.ObjectTypeAACLC, SampleRate: 22050, ChannelConfig: 2, ExtensionType: mpeg4audio.ObjectTypeSBR, ExtensionSampleRate: 44100}},
		{name: "HE-AAC v2", cfg: &mpeg4audio.AudioSpecificConfig{Type: mpeg4audio.ObjectTypeAACLC, SampleRate: 22050, ChannelConfig: 1, ExtensionType: mpeg4audio.ObjectTypePS, ExtensionSampleRate: 44100}},
		{name: "960-sample frames", cfg: &mpeg4audio.AudioSpecificConfig{Type: mpeg4audio.ObjectTypeAACLC, SampleRate: 48000, ChannelConfig: 2, FrameLengthFlag: true}},
		{name: "PCE channel config", cfg: lc(48000, 0)},
		{name: "5.1", cfg: lc(48000, 6)},
		{name: "odd sample rate", cfg: lc(44000, 2)},
		{name: "zero sample rate", cfg: lc(0, 2)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := NewAACToOpus(tc.cfg)
			require.ErrorIs(t, err, ErrUnsupported)
		})
	}
}

// TestAACToOpusRates checks every AAC-LC sample rate builds and produces
// 20 ms packets from silence.
func TestAACToOpusRates(t *testing.T) {
	for _, rate := range aacSampleRates {
		tr, err := NewAACToOpus(&mpeg4audio.AudioSpecificConfig{Type: mpeg4audio.ObjectTypeAACLC, SampleRate: rate, ChannelConfig: 1})
		require.NoError(t, err, "rate %d", rate)
		// Drive the resampler directly: there is no AAC stream at each rate.
		var frames int
		for range rate / aacFrameSamples {
			tr.rs.push(make([]byte, aacFrameSamples*2))
			frames += tr.rs.pull(make([]float32, 2*8000))
		}
		want := rate / aacFrameSamples * aacFrameSamples * opusRate / rate
		require.InDelta(t, want, frames, float64(tr.rs.taps*opusRate/rate+1), "rate %d", rate)
	}
}

func TestAACToOpusAllocs(t *testing.T) {
	cfg, aus := loadADTS(t, testStreams[0].file)
	tr, err := NewAACToOpus(cfg)
	require.NoError(t, err)
	emit := func(time.Duration, []byte) {}
	i := 0
	feed := func() {
		require.NoError(t, tr.Transcode(auPTS(0, i, cfg.SampleRate), aus[i%len(aus)], emit))
		i++
	}
	for range 20 {
		feed() // warm up
	}
	// The one allocation is go-aac's: pcm.Decoder.nextFrameRaw reads the
	// 2-byte length prefix into a local array through io.ReadFull, so the
	// array escapes (go-aac v0.4.0 pcm/decoder.go:259). Everything of ours
	// and all of gopus is allocation-free.
	require.LessOrEqual(t, testing.AllocsPerRun(100, feed), 1.0)
}

func FuzzAACToOpus(f *testing.F) {
	type stream struct {
		cfg *mpeg4audio.AudioSpecificConfig
		aus [][]byte
	}
	var streams []stream
	for _, ts := range testStreams {
		cfg, aus := loadADTS(f, ts.file)
		streams = append(streams, stream{cfg: cfg, aus: aus})
		for _, i := range []int{0, 1, 20, len(aus) - 1} {
			f.Add(byte(len(streams)-1), aus[i])
		}
	}
	f.Add(byte(0), []byte{})
	f.Add(byte(1), []byte{0})
	f.Add(byte(2), bytes.Repeat([]byte{0xff}, 64))
	f.Add(byte(0), []byte{0x21, 0x10, 0x05, 0x00, 0xa0, 0x19, 0x33})
	f.Add(byte(1), bytes.Repeat([]byte{0x00, 0x01}, 700))

	f.Fuzz(func(t *testing.T, sel byte, au []byte) {
		s := streams[int(sel)%len(streams)]
		tr, err := NewAACToOpus(s.cfg)
		require.NoError(t, err)
		var pkts []opusPacket
		emit := collector(&pkts)
		for i := range 3 {
			require.NoError(t, tr.Transcode(auPTS(0, i, s.cfg.SampleRate), s.aus[10+i], emit))
		}
		err = tr.Transcode(auPTS(0, 3, s.cfg.SampleRate), au, emit)
		if err != nil {
			require.ErrorIs(t, err, ErrBadFrame)
			require.NotErrorIs(t, err, errDecoderPanic)
		}
		// Good units still decode after whatever came before.
		for i := 4; i < 12; i++ {
			require.NoError(t, tr.Transcode(auPTS(0, i, s.cfg.SampleRate), s.aus[10+i], emit))
		}
		requireSteps(t, pkts)
		for _, p := range pkts {
			require.NotEmpty(t, p.data)
		}
	})
}

// BenchmarkAACToOpus44k measures the whole chain on 44.1 kHz stereo. %core is
// the share of one core needed to keep up with real time.
func BenchmarkAACToOpus44k(b *testing.B) {
	cfg, aus := loadADTS(b, testStreams[0].file)
	tr, err := NewAACToOpus(cfg)
	require.NoError(b, err)
	emit := func(time.Duration, []byte) {}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if err := tr.Transcode(samplesDuration(int64(i)*aacFrameSamples, cfg.SampleRate), aus[i%len(aus)], emit); err != nil {
			b.Fatal(err)
		}
		i++
	}
	nsPerAudioSecond := float64(b.Elapsed().Nanoseconds()) / float64(b.N) * float64(cfg.SampleRate) / aacFrameSamples
	b.ReportMetric(nsPerAudioSecond/1e9*100, "%core")
}
