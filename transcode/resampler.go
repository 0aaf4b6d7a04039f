package transcode

import (
	"encoding/binary"
	"math"
)

const (
	// resamplerTaps is the subfilter length, in input samples, when
	// upsampling (44.1 kHz to 48 kHz: 48 multiply-adds per output sample and
	// channel). Downsampling scales it by in/out to keep the same transition
	// band measured at the output rate.
	resamplerTaps = 48
	// resamplerBeta is the Kaiser window shape. With 48 taps and a
	// transition band of 10 % of the lower rate (90 % to 110 % of its
	// Nyquist frequency) it gives about 75 dB of stopband attenuation
	// (Kaiser's formula A = 14.36·N·Δf + 7.95), well under the noise of a
	// 64 kbit/s Opus or 128 kbit/s AAC stream.
	resamplerBeta = 7.5
)

// resampler converts planar float32 audio from one sample rate to another
// with a polyphase windowed-sinc FIR (Crochiere & Rabiner): the input is
// conceptually upsampled by l, low-pass filtered at the Nyquist frequency of
// the lower rate, and decimated by m, but only the l subfilters that land on
// output samples are ever computed. Equal rates use a single unit tap, an
// exact copy.
//
// Output sample n is aligned with input time n·m/l: the filter's group delay
// is absorbed by priming the history with taps/2-1 zeros instead of taps-1.
//
// A resampler is not safe for concurrent use.
type resampler struct {
	l, m     int       // output rate / input rate = l / m, reduced
	taps     int       // subfilter length
	coef     []float32 // l rows of taps; row p is phase p, reversed so it dots the window in order
	channels int
	in       [2][]float32 // planar input history plus the pending block
	n        int          // valid samples in in[c]
	start    int          // first input sample of the next output's window
	phase    int          // position of the next output past start+taps-1, in 1/l input samples
}

// newResampler returns a resampler from inRate to outRate for 1 or 2
// channels, accepting up to maxBlock samples per channel per push.
func newResampler(inRate, outRate, channels, maxBlock int) *resampler {
	g := gcd(inRate, outRate)
	r := &resampler{l: outRate / g, m: inRate / g, channels: channels}
	if r.l == 1 && r.m == 1 {
		r.taps = 1
		r.coef = []float32{1}
	} else {
		r.taps = resamplerTaps
		if inRate > outRate {
			r.taps = (resamplerTaps*inRate + outRate - 1) / outRate
			r.taps += r.taps & 1
		}
		r.coef = designPolyphase(r.l, r.taps, float64(min(inRate, outRate))/2/float64(r.l*inRate))
	}
	for c := range channels {
		r.in[c] = make([]float32, r.taps+maxBlock)
	}
	r.reset()
	return r
}

// designPolyphase returns the l subfilters of a Kaiser-windowed sinc low-pass
// of l·taps coefficients with cutoff fc (cycles per sample at the upsampled
// rate), each normalised to unit DC gain so no phase modulates the level.
func designPolyphase(l, taps int, fc float64) []float32 {
	n := l * taps
	center := float64(n) / 2 // even length: t=-center is a window edge, t=+center is dropped
	h := make([]float64, n)
	i0beta := besselI0(resamplerBeta)
	for j := range h {
		t := float64(j) - center
		x := t / center
		w := besselI0(resamplerBeta*math.Sqrt(max(0, 1-x*x))) / i0beta
		h[j] = 2 * fc * sinc(2*fc*t) * w
	}
	coef := make([]float32, n)
	for p := range l {
		var sum float64
		for k := range taps {
			sum += h[p+k*l]
		}
		for k := range taps {
			coef[p*taps+taps-1-k] = float32(h[p+k*l] / sum)
		}
	}
	return coef
}

// reset forgets all input, as at construction.
func (r *resampler) reset() {
	prime := max(r.taps/2-1, 0)
	for c := range r.channels {
		clear(r.in[c][:prime])
	}
	r.n, r.start, r.phase = prime, 0, 0
}

// push appends interleaved little-endian int16 samples, one frame per
// channel group, scaled to [-1, 1).
func (r *resampler) push(s16 []byte) {
	if r.start > 0 {
		for c := range r.channels {
			copy(r.in[c], r.in[c][r.start:r.n])
		}
		r.n -= r.start
		r.start = 0
	}
	const scale = 1.0 / 32768
	if r.channels == 2 {
		frames := len(s16) / 4
		left := r.in[0][r.n : r.n+frames]
		right := r.in[1][r.n : r.n+frames]
		for i := range left {
			b := s16[4*i : 4*i+4]
			left[i] = float32(int16(binary.LittleEndian.Uint16(b))) * scale
			right[i] = float32(int16(binary.LittleEndian.Uint16(b[2:]))) * scale
		}
		r.n += frames
		return
	}
	frames := len(s16) / 2
	mono := r.in[0][r.n : r.n+frames]
	for i := range mono {
		mono[i] = float32(int16(binary.LittleEndian.Uint16(s16[2*i:]))) * scale
	}
	r.n += frames
}

// pull writes as many interleaved stereo output frames as the pushed input
// allows, up to len(out)/2, and returns how many it wrote. Mono input is
// copied to both channels.
func (r *resampler) pull(out []float32) int {
	frames := 0
	for ; frames < len(out)/2 && r.start+r.taps <= r.n; frames++ {
		c := r.coef[r.phase*r.taps:][:r.taps]
		x0 := r.in[0][r.start:][:len(c)]
		var a0, a1 float32
		if r.channels == 2 {
			x1 := r.in[1][r.start:][:len(c)]
			for k, v := range c {
				a0 += v * x0[k]
				a1 += v * x1[k]
			}
		} else {
			for k, v := range c {
				a0 += v * x0[k]
			}
			a1 = a0
		}
		out[2*frames] = a0
		out[2*frames+1] = a1
		r.phase += r.m
		for r.phase >= r.l {
			r.phase -= r.l
			r.start++
		}
	}
	return frames
}

func sinc(x float64) float64 {
	if x == 0 {
		return 1
	}
	return math.Sin(math.Pi*x) / (math.Pi * x)
}

// besselI0 is the zeroth-order modified Bessel function of the first kind,
// by its power series (converges fast for the arguments a Kaiser window uses).
func besselI0(x float64) float64 {
	sum, term := 1.0, 1.0
	for k := 1; k < 50; k++ {
		term *= (x / 2 / float64(k)) * (x / 2 / float64(k))
		sum += term
		if term < sum*1e-17 {
			break
		}
	}
	return sum
}

func gcd(a, b int) int {
	for b != 0 {
		a, b = b, a%b
	}
	return a
}
