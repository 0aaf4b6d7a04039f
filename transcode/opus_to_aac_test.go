package transcode

import (
	"bytes"
	"encoding/binary"
	"math"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/thesyncim/gopus"
)

// toneAmplitude is the test tone's peak: 1/8 on both channels, -21.1 dBFS
// RMS.
const (
	toneAmplitude = 0.125
	toneLevelDB   = -21.07
)

// encodeTone returns dur of a 440 Hz stereo tone at 48 kHz as 20 ms Opus
// packets stamped from start, preceded by silence of the given length, as a
// browser would send it over WHIP.
func encodeTone(t testing.TB, start, silence, dur time.Duration) []opusPacket {
	t.Helper()
	enc, err := gopus.NewEncoder(gopus.EncoderConfig{SampleRate: opusRate, Channels: opusChannels, Application: gopus.ApplicationAudio})
	require.NoError(t, err)
	require.NoError(t, enc.SetBitrate(96000))
	silent := int(silence / opusFrameDuration)
	n := silent + int(dur/opusFrameDuration)
	pcm := make([]float32, opusFrameSamples*opusChannels)
	buf := make([]byte, opusMaxPacketBytes)
	var pkts []opusPacket
	sample := 0
	for i := range n {
		for j := range opusFrameSamples {
			v := float32(0)
			if i >= silent {
				v = float32(toneAmplitude * math.Sin(2*math.Pi*toneFreq*float64(sample)/opusRate))
				sample++
			}
			pcm[2*j], pcm[2*j+1] = v, v
		}
		m, err := enc.Encode(pcm, buf)
		require.NoError(t, err)
		pkts = append(pkts, opusPacket{pts: start + time.Duration(i)*opusFrameDuration, data: bytes.Clone(buf[:m])})
	}
	return pkts
}

type aacUnit struct {
	pts time.Duration
	au  []byte
}

func aacCollector(aus *[]aacUnit) func(time.Duration, []byte) {
	return func(pts time.Duration, au []byte) {
		*aus = append(*aus, aacUnit{pts: pts, au: bytes.Clone(au)})
	}
}

// decodeAAC decodes the units with go-aac and returns the left and right
// channels.
func decodeAAC(t testing.TB, tr *OpusToAAC, aus []aacUnit) (left, right []float64) {
	t.Helper()
	asc, err := tr.Config().Marshal()
	require.NoError(t, err)
	dec, err := newAACDecoder(asc, aacChannels)
	require.NoError(t, err)
	for i, u := range aus {
		pcm, err := dec.decode(u.au)
		require.NoError(t, err, "unit %d", i)
		for j := 0; j < len(pcm); j += 4 {
			left = append(left, float64(int16(binary.LittleEndian.Uint16(pcm[j:])))/32768)
			right = append(right, float64(int16(binary.LittleEndian.Uint16(pcm[j+2:])))/32768)
		}
	}
	return left, right
}

// requireAACSteps checks that consecutive units are exactly 1024 samples
// apart (to the nanosecond rounding of time.Duration).
func requireAACSteps(t testing.TB, aus []aacUnit) {
	t.Helper()
	for i := 1; i < len(aus); i++ {
		step := aus[i].pts - aus[i-1].pts
		require.InDelta(t, float64(aacFrameDuration), float64(step), 1, "unit %d: step %v", i, step)
	}
}

func transcodeAll(t testing.TB, tr *OpusToAAC, pkts []opusPacket) []aacUnit {
	t.Helper()
	var aus []aacUnit
	for i, p := range pkts {
		require.NoError(t, tr.Transcode(p.pts, p.data, aacCollector(&aus)), "packet %d", i)
	}
	return aus
}

func TestOpusToAAC(t *testing.T) {
	tr, err := NewOpusToAAC(0)
	require.NoError(t, err)
	cfg := tr.Config()
	require.Equal(t, 48000, cfg.SampleRate)
	require.EqualValues(t, 2, cfg.ChannelConfig)
	asc, err := cfg.Marshal()
	require.NoError(t, err)
	require.Equal(t, tr.enc.AudioSpecificConfig(), asc, "the config describes what the encoder writes")

	start := 3 * time.Hour // past a 32-bit wrap of a 48 kHz RTP clock
	pkts := encodeTone(t, start, 0, 2*time.Second)
	aus := transcodeAll(t, tr, pkts)

	// 2 s in, one unit held back by the encoder, one partial frame pending.
	require.InDelta(t, float64(2*aacRate/aacFrameSamples-1), float64(len(aus)), 1)
	require.Equal(t, start-aacFrameDuration, aus[0].pts, "the first unit is the encoder's priming")
	requireAACSteps(t, aus)

	left, right := decodeAAC(t, tr, aus)
	requireTone(t, left, toneLevelDB, "left")
	requireTone(t, right, toneLevelDB, "right")
}

// TestOpusToAACTiming checks that PTS say when the audio plays: a tone that
// starts 300 ms into the input starts 300 ms (plus Opus's 6.5 ms algorithmic
// delay) after the input's first PTS in the decoded AAC.
func TestOpusToAACTiming(t *testing.T) {
	tr, err := NewOpusToAAC(0)
	require.NoError(t, err)
	start := 10 * time.Second
	silence := 300 * time.Millisecond
	aus := transcodeAll(t, tr, encodeTone(t, start, silence, time.Second))
	left, _ := decodeAAC(t, tr, aus)
	onset := -1
	for i, v := range left {
		if math.Abs(v) > toneAmplitude/2 {
			onset = i
			break
		}
	}
	require.Positive(t, onset)
	at := aus[0].pts + samplesDuration(int64(onset), aacRate) - start
	t.Logf("tone onset at %v after the first input PTS (input: %v)", at, silence)
	require.InDelta(t, float64(silence+6500*time.Microsecond), float64(at), float64(5*time.Millisecond))
}

func TestOpusToAACLoss(t *testing.T) {
	pkts := encodeTone(t, time.Minute, 0, 2*time.Second)
	for _, tc := range []struct {
		name string
		drop []int
	}{
		{name: "one packet", drop: []int{30}},
		{name: "three in a row", drop: []int{30, 31, 32}},
		{name: "scattered", drop: []int{10, 20, 40, 60, 61}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tr, err := NewOpusToAAC(0)
			require.NoError(t, err)
			var aus []aacUnit
			for i, p := range pkts {
				if slicesContains(tc.drop, i) {
					continue
				}
				require.NoError(t, tr.Transcode(p.pts, p.data, aacCollector(&aus)))
			}
			// Concealment keeps the timeline: as many units as without loss.
			require.InDelta(t, float64(2*aacRate/aacFrameSamples-1), float64(len(aus)), 1)
			requireAACSteps(t, aus)
			left, _ := decodeAAC(t, tr, aus)
			from := (tc.drop[len(tc.drop)-1] + 5) * opusFrameSamples
			freq, _, _ := analyzeTone(t, left[from:from+aacRate/2])
			require.InDelta(t, toneFreq, freq, 5)
		})
	}
}

func slicesContains(s []int, v int) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

func TestOpusToAACBadFrame(t *testing.T) {
	pkts := encodeTone(t, 0, 0, 2*time.Second)
	const bad = 25
	rng := rand.New(rand.NewPCG(3, 4))
	random := make([]byte, 200)
	for i := range random {
		random[i] = byte(rng.Uint32())
	}
	for _, tc := range []struct {
		name string
		pkt  []byte
	}{
		{name: "empty", pkt: []byte{}},
		{name: "nil", pkt: nil},
		{name: "code 3 without count", pkt: []byte{0x03}},
		{name: "code 3 zero frames", pkt: []byte{0x03, 0x00}},
		{name: "code 2 bad length", pkt: []byte{0x02, 0xff, 0xff}},
		{name: "too many frames", pkt: []byte{0x03, 0x3f, 1, 2, 3}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tr, err := NewOpusToAAC(0)
			require.NoError(t, err)
			var aus []aacUnit
			for i, p := range pkts {
				if i != bad {
					require.NoError(t, tr.Transcode(p.pts, p.data, aacCollector(&aus)), "packet %d", i)
					continue
				}
				before := len(aus)
				require.ErrorIs(t, tr.Transcode(p.pts, tc.pkt, aacCollector(&aus)), ErrBadFrame)
				require.Equal(t, before, len(aus), "a bad packet emits nothing")
			}
			// The bad packet's 20 ms are concealed when the next one comes.
			requireAACSteps(t, aus)
			left, _ := decodeAAC(t, tr, aus)
			from := (bad + 5) * opusFrameSamples
			freq, _, _ := analyzeTone(t, left[from:from+aacRate/2])
			require.InDelta(t, toneFreq, freq, 5)
		})
	}
	// Random bytes may happen to be a valid packet; they must not break
	// the stream either way.
	tr, err := NewOpusToAAC(0)
	require.NoError(t, err)
	for i := range 50 {
		_ = tr.Transcode(time.Duration(i)*opusFrameDuration, random[:10+i*3], nil)
	}
}

func TestOpusToAACResync(t *testing.T) {
	pkts := encodeTone(t, time.Hour, 0, 2*time.Second)
	const cut = 40
	for _, tc := range []struct {
		name   string
		jump   time.Duration
		resync bool
	}{
		{name: "publisher reconnect", jump: 5 * time.Second, resync: true},
		{name: "backwards", jump: -3 * time.Second, resync: true},
		{name: "gap concealed", jump: 60 * time.Millisecond, resync: false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tr, err := NewOpusToAAC(0)
			require.NoError(t, err)
			var aus []aacUnit
			for i, p := range pkts {
				pts := p.pts
				if i >= cut {
					pts += tc.jump
				}
				require.NoError(t, tr.Transcode(pts, p.data, aacCollector(&aus)))
			}
			breaks := 0
			for i := 1; i < len(aus); i++ {
				if step := aus[i].pts - aus[i-1].pts; step < aacFrameDuration-1 || step > aacFrameDuration+1 {
					breaks++
					require.True(t, tc.resync, "unexpected step %v at unit %d", step, i)
					// The first unit after the jump carries the last
					// frame before it, then the new timeline begins.
					require.InDelta(t, float64(pkts[cut].pts+tc.jump), float64(aus[i].pts), float64(aacFrameDuration))
				}
			}
			if tc.resync {
				require.Equal(t, 1, breaks)
			}
		})
	}
}

// TestOpusToAACLate checks that a packet arriving after its audio was
// concealed (a late retransmission) or twice is dropped, not played late.
func TestOpusToAACLate(t *testing.T) {
	pkts := encodeTone(t, 0, 0, time.Second)
	tr, err := NewOpusToAAC(0)
	require.NoError(t, err)
	var aus []aacUnit
	for i, p := range pkts {
		if i == 20 {
			continue
		}
		require.NoError(t, tr.Transcode(p.pts, p.data, aacCollector(&aus)))
		if i == 22 {
			require.NoError(t, tr.Transcode(pkts[20].pts, pkts[20].data, aacCollector(&aus)), "late")
		}
		if i == 30 {
			require.NoError(t, tr.Transcode(p.pts, p.data, aacCollector(&aus)), "duplicate")
		}
	}
	requireAACSteps(t, aus)
	require.InDelta(t, float64(aacRate/aacFrameSamples-1), float64(len(aus)), 1)
}

func TestOpusToAACAllocs(t *testing.T) {
	pkts := encodeTone(t, 0, 0, time.Second)
	tr, err := NewOpusToAAC(0)
	require.NoError(t, err)
	emit := func(time.Duration, []byte) {}
	i := 0
	feed := func() {
		p := pkts[i%len(pkts)]
		require.NoError(t, tr.Transcode(time.Duration(i)*opusFrameDuration, p.data, emit))
		i++
	}
	for range 20 {
		feed()
	}
	require.Zero(t, testing.AllocsPerRun(100, feed))
}

func FuzzOpusToAAC(f *testing.F) {
	pkts := encodeTone(f, 0, 0, 500*time.Millisecond)
	for _, i := range []int{0, 1, 10, len(pkts) - 1} {
		f.Add(pkts[i].data, int16(0))
	}
	f.Add([]byte{}, int16(0))
	f.Add([]byte{0x03, 0x3f, 1, 2, 3}, int16(-5))
	f.Add([]byte{0xfc, 0xff, 0xfe}, int16(3))
	f.Add(bytes.Repeat([]byte{0xff}, 300), int16(100))
	f.Fuzz(func(t *testing.T, pkt []byte, shiftMs int16) {
		tr, err := NewOpusToAAC(0)
		require.NoError(t, err)
		var aus []aacUnit
		emit := aacCollector(&aus)
		for i := range 8 {
			require.NoError(t, tr.Transcode(pkts[i].pts, pkts[i].data, emit))
		}
		err = tr.Transcode(pkts[8].pts+time.Duration(shiftMs)*time.Millisecond, pkt, emit)
		if err != nil {
			require.ErrorIs(t, err, ErrBadFrame)
		}
		for i := 9; i < 20; i++ {
			require.NoError(t, tr.Transcode(pkts[i].pts, pkts[i].data, emit))
		}
		for _, u := range aus {
			require.NotEmpty(t, u.au)
		}
	})
}

// BenchmarkOpusToAAC measures the whole chain on 20 ms stereo packets. %core
// is the share of one core needed to keep up with real time.
func BenchmarkOpusToAAC(b *testing.B) {
	pkts := encodeTone(b, 0, 0, 2*time.Second)
	tr, err := NewOpusToAAC(0)
	require.NoError(b, err)
	emit := func(time.Duration, []byte) {}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if err := tr.Transcode(time.Duration(i)*opusFrameDuration, pkts[i%len(pkts)].data, emit); err != nil {
			b.Fatal(err)
		}
		i++
	}
	nsPerAudioSecond := float64(b.Elapsed().Nanoseconds()) / float64(b.N) * float64(time.Second/opusFrameDuration)
	b.ReportMetric(nsPerAudioSecond/1e9*100, "%core")
}
