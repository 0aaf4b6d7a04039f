package transcode

import (
	"encoding/binary"
	"math"
	"testing"

	"github.com/stretchr/testify/require"
)

// sineS16 returns frames of an interleaved int16 sine at freq Hz, identical in
// every channel.
func sineS16(freq float64, rate, channels, frames int, amp float64) []byte {
	b := make([]byte, 0, frames*channels*2)
	for i := range frames {
		v := int16(math.Round(amp * 32767 * math.Sin(2*math.Pi*freq*float64(i)/float64(rate))))
		for range channels {
			b = binary.LittleEndian.AppendUint16(b, uint16(v))
		}
	}
	return b
}

// resampleAll pushes in through r in 1024-frame blocks and returns the
// interleaved stereo output.
func resampleAll(r *resampler, in []byte, channels int) []float32 {
	var out []float32
	buf := make([]float32, 4096)
	block := 1024 * channels * 2
	for off := 0; off < len(in); off += block {
		r.push(in[off:min(off+block, len(in))])
		for {
			n := r.pull(buf)
			out = append(out, buf[:2*n]...)
			if n < len(buf)/2 {
				break
			}
		}
	}
	return out
}

func TestResampler(t *testing.T) {
	for _, tc := range []struct {
		name            string
		inRate, outRate int
		channels        int
		freq            float64
		minSNR          float64 // dB of the output against the ideal sine
	}{
		{name: "44100 to 48000, 1 kHz", inRate: 44100, outRate: 48000, channels: 2, freq: 1000, minSNR: 70},
		{name: "44100 to 48000, 15 kHz", inRate: 44100, outRate: 48000, channels: 2, freq: 15000, minSNR: 70},
		{name: "44100 to 48000 mono, 440 Hz", inRate: 44100, outRate: 48000, channels: 1, freq: 440, minSNR: 70},
		{name: "22050 to 48000, 5 kHz", inRate: 22050, outRate: 48000, channels: 1, freq: 5000, minSNR: 70},
		{name: "96000 to 48000, 10 kHz", inRate: 96000, outRate: 48000, channels: 2, freq: 10000, minSNR: 70},
		{name: "48000 passthrough", inRate: 48000, outRate: 48000, channels: 2, freq: 440, minSNR: 90},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := newResampler(tc.inRate, tc.outRate, tc.channels, 1024)
			in := sineS16(tc.freq, tc.inRate, tc.channels, tc.inRate/2, 0.5)
			out := resampleAll(r, in, tc.channels)

			wantFrames := len(in) / (2 * tc.channels) * tc.outRate / tc.inRate
			require.InDelta(t, wantFrames, len(out)/2, float64(r.taps*tc.outRate/tc.inRate))

			// Output sample n sits at input time n·in/out, so compare with
			// the ideal sine at the output rate, past the filter's warm-up.
			var sig, noise float64
			for n := 2 * r.taps * tc.outRate / tc.inRate; n < len(out)/2; n++ {
				want := 0.5 * 32767 / 32768 * math.Sin(2*math.Pi*tc.freq*float64(n)/float64(tc.outRate))
				for c := range 2 {
					got := float64(out[2*n+c])
					sig += want * want
					noise += (got - want) * (got - want)
				}
			}
			snr := 10 * math.Log10(sig/noise)
			t.Logf("SNR %.1f dB", snr)
			require.Greater(t, snr, tc.minSNR)
		})
	}
}

// TestResamplerRejectsAliases checks the stopband: a tone above the output
// Nyquist frequency must not fold back into the audible band.
func TestResamplerRejectsAliases(t *testing.T) {
	r := newResampler(96000, 48000, 1, 1024)
	in := sineS16(30000, 96000, 1, 48000, 0.5)
	out := resampleAll(r, in, 1)
	var sum float64
	skip := 2 * r.taps
	for n := skip; n < len(out)/2; n++ {
		sum += float64(out[2*n]) * float64(out[2*n])
	}
	rms := math.Sqrt(sum / float64(len(out)/2-skip))
	db := 20 * math.Log10(rms/(0.5/math.Sqrt2))
	t.Logf("30 kHz alias at %.1f dB", db)
	require.Less(t, db, -70.0)
}

func BenchmarkResampler44k(b *testing.B) {
	r := newResampler(44100, 48000, 2, 1024)
	in := sineS16(440, 44100, 2, 1024, 0.5)
	out := make([]float32, 2*1200)
	b.ReportAllocs()
	for b.Loop() {
		r.push(in)
		r.pull(out)
	}
	nsPerSecond := float64(b.Elapsed().Nanoseconds()) / float64(b.N) * 44100 / 1024
	b.ReportMetric(nsPerSecond/1e9*100, "%core")
}
