package slate

import "math"

// Default size when the live stream's is unknown (an SPS that does not
// parse): the most common size of council streams.
const defaultWidth, defaultHeight = 1280, 720

// pick returns the built-in slate closest to a live stream of width×height
// at fps: the same size if there is one, else the nearest size of the same
// aspect ratio, else the nearest size; at the built-in frame rate nearest
// to fps (see nominalRate). list must not be empty.
func pick(list []*clip, width, height int, fps float64) *clip {
	if width <= 0 || height <= 0 {
		width, height = defaultWidth, defaultHeight
	}
	rate := nominalRate(fps)
	var best *clip
	bestScore := math.Inf(1)
	for _, c := range list {
		// Lower is better: an exact size beats the same aspect ratio,
		// which beats any other; then the nearest area; then the rate.
		score := 0.0
		switch {
		case c.width == width && c.height == height:
		case sameAspect(c.width, c.height, width, height):
			score = 1000 + math.Abs(math.Log(float64(c.width*c.height)/float64(width*height)))
		default:
			score = 2000 + math.Abs(math.Log(float64(c.width*c.height)/float64(width*height)))
		}
		if c.fps != rate {
			score += 0.5 / 1000 // only breaks ties between sizes
		}
		if score < bestScore {
			best, bestScore = c, score
		}
	}
	return best
}

// sameAspect reports whether two sizes have the same aspect ratio within
// 1 % (854x480 is 16:9 to 0.1 %).
func sameAspect(w1, h1, w2, h2 int) bool {
	a, b := float64(w1)*float64(h2), float64(w2)*float64(h1)
	return math.Abs(a-b) <= 0.01*b
}

// nominalRate maps a frame rate to 25 or 30, the built-in slates' rates:
// multiples and halves of a rate map as the rate does (50 and 12.5 → 25,
// 60 and 15 → 30), and an unknown rate (0) is 30.
func nominalRate(fps float64) float64 {
	if fps <= 0 || math.IsNaN(fps) || math.IsInf(fps, 0) {
		return 30
	}
	for fps >= 40 {
		fps /= 2
	}
	for fps < 20 {
		fps *= 2
	}
	if math.Abs(fps-25) < math.Abs(fps-30) {
		return 25
	}
	return 30
}
