package slate

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
	"github.com/rs/zerolog"
)

// Bounds of one render: a 2 s loop of a still picture takes well under a
// second of ffmpeg at 1080p; the limits only stop a runaway.
const (
	renderTimeout  = time.Minute
	maxRenderBytes = 32 << 20
	maxCached      = 16 // rendered slates kept (a few channels × sizes)
	queueLen       = 16
)

// renderKey is one rendering of an image.
type renderKey struct {
	image         imageStamp
	width, height int
	fps           float64
}

// rendered is a cache entry: pending, done (c) or failed (err).
type rendered struct {
	c   *clip
	err error
	at  time.Time
}

// Renderer renders slate images with ffmpeg, one at a time, in the
// background, and keeps the results. Create it with NewRenderer and run it
// with Run; its other methods are safe for concurrent use and never block.
type Renderer struct {
	log    zerolog.Logger
	ffmpeg string // "" when ffmpeg is not installed
	reqs   chan renderKey
	ok     prometheus.Counter
	failed prometheus.Counter

	mu    sync.Mutex
	cache map[renderKey]*rendered
	order []renderKey // insertion order, for eviction
}

// NewRenderer looks ffmpeg up in PATH (not finding it is only an error for
// channels that set an image, see NewSource) and registers the render
// metrics on reg.
func NewRenderer(log zerolog.Logger, reg prometheus.Registerer) *Renderer {
	renders := promauto.With(reg).NewCounterVec(prometheus.CounterOpts{
		Name: "seance_slate_renders_total",
		Help: "Slate images rendered with ffmpeg at a live stream's size and frame rate, by result (ok, error: the built-in slate is used).",
	}, []string{"result"})
	ffmpeg, _ := exec.LookPath("ffmpeg")
	return &Renderer{
		log:    log.With().Str("component", "slate").Logger(),
		ffmpeg: ffmpeg,
		reqs:   make(chan renderKey, queueLen),
		ok:     renders.WithLabelValues("ok"),
		failed: renders.WithLabelValues("error"),
		cache:  map[renderKey]*rendered{},
	}
}

// request queues a render of key unless it is done, pending, or failed
// less than retryFailedAfter ago. A full queue drops the request; the next
// one retries.
func (r *Renderer) request(key renderKey) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if e, ok := r.cache[key]; ok && (e.err == nil || time.Since(e.at) < retryFailedAfter) {
		return
	}
	select {
	case r.reqs <- key:
		r.putLocked(key, &rendered{at: time.Now()})
	default:
	}
}

// lookup returns the rendered clip of key, nil if it is not ready.
func (r *Renderer) lookup(key renderKey) *clip {
	r.mu.Lock()
	defer r.mu.Unlock()
	if e, ok := r.cache[key]; ok {
		return e.c
	}
	return nil
}

func (r *Renderer) putLocked(key renderKey, e *rendered) {
	if _, ok := r.cache[key]; !ok {
		r.order = append(r.order, key)
	}
	r.cache[key] = e
	for len(r.order) > maxCached {
		delete(r.cache, r.order[0])
		r.order = r.order[1:]
	}
}

// Run renders the requested images until ctx is cancelled (which stops a
// render under way).
func (r *Renderer) Run(ctx context.Context) error {
	for {
		select {
		case <-ctx.Done():
			return nil
		case key := <-r.reqs:
			started := time.Now()
			c, err := r.render(ctx, key)
			if ctx.Err() != nil {
				return nil
			}
			ev := r.log.Info()
			if err != nil {
				ev = r.log.Error().Err(err)
				r.failed.Inc()
			} else {
				r.ok.Inc()
			}
			ev.Str("image", key.image.path).Int("width", key.width).Int("height", key.height).
				Float64("fps", key.fps).Dur("took", time.Since(started))
			if err != nil {
				ev.Msg("cannot render the slate image: the built-in slate is used instead")
			} else {
				ev.Msg("slate image rendered for the live stream's size and frame rate")
			}
			r.mu.Lock()
			r.putLocked(key, &rendered{c: c, err: err, at: time.Now()})
			r.mu.Unlock()
		}
	}
}

// render runs ffmpeg: the image scaled to fit the size (letterboxed on
// black), as a 2 s loop encoded like the built-in slates (gen-slates.sh).
func (r *Renderer) render(ctx context.Context, key renderKey) (*clip, error) {
	if key.width%2 != 0 || key.height%2 != 0 {
		return nil, fmt.Errorf("%dx%d: H.264 4:2:0 needs an even width and height", key.width, key.height)
	}
	ctx, cancel := context.WithTimeout(ctx, renderTimeout)
	defer cancel()
	gop := int(math.Round(2 * key.fps))
	rate := strconv.FormatFloat(key.fps, 'f', -1, 64)
	size := fmt.Sprintf("%d:%d", key.width, key.height)
	cmd := exec.CommandContext(ctx, r.ffmpeg, "-nostdin", "-hide_banner", "-loglevel", "error",
		"-loop", "1", "-framerate", rate, "-i", key.image.path,
		"-vf", "scale="+size+":force_original_aspect_ratio=decrease,pad="+size+":(ow-iw)/2:(oh-ih)/2:color=black,setsar=1,format=yuv420p",
		"-frames:v", strconv.Itoa(gop), "-an",
		"-c:v", "libx264", "-profile:v", "baseline", "-preset", "medium", "-qp", "20",
		"-g", strconv.Itoa(gop), "-keyint_min", strconv.Itoa(gop), "-sc_threshold", "0", "-bf", "0", "-refs", "1",
		"-x264-params", "aud=1", "-bsf:v", "filter_units=remove_types=6",
		"-f", "h264", "pipe:1")
	var out limitedBuffer
	var stderr bytes.Buffer
	out.max = maxRenderBytes
	cmd.Stdout, cmd.Stderr = &out, &stderr
	if err := cmd.Run(); err != nil {
		msg := strings.TrimSpace(stderr.String())
		if len(msg) > 500 {
			msg = msg[:500] + "…"
		}
		if msg != "" {
			return nil, fmt.Errorf("ffmpeg: %w: %s", err, msg)
		}
		return nil, fmt.Errorf("ffmpeg: %w", err)
	}
	c, err := parseClip(out.Bytes(), key.fps)
	if err != nil {
		return nil, err
	}
	if c.width != key.width || c.height != key.height {
		return nil, fmt.Errorf("%w: rendered %dx%d, want %dx%d", ErrBadClip, c.width, c.height, key.width, key.height)
	}
	return c, nil
}

// renderRate is the frame rate an image is rendered at for a live rate:
// a standard rate within 0.1 % (an SPS's rate, NTSC rates included), else
// the nearest whole standard rate within 3 % (a measured rate jitters),
// else the rate rounded; 30 when unknown or out of range.
func renderRate(fps float64) float64 {
	if fps <= 0 || math.IsNaN(fps) || fps > 120 {
		return 30
	}
	for _, tier := range []struct {
		tolerance float64
		rates     []float64
	}{
		{0.001, []float64{24000.0 / 1001, 30000.0 / 1001, 60000.0 / 1001}},
		{0.03, []float64{10, 12.5, 15, 20, 24, 25, 30, 48, 50, 60}},
	} {
		best, bestDist := 0.0, tier.tolerance
		for _, std := range tier.rates {
			if d := math.Abs(fps-std) / std; d <= bestDist {
				best, bestDist = std, d
			}
		}
		if best > 0 {
			return best
		}
	}
	return math.Max(1, math.Round(fps))
}

// limitedBuffer is a bytes.Buffer that refuses to grow past max.
type limitedBuffer struct {
	bytes.Buffer
	max int
}

var errTooBig = errors.New("ffmpeg output too big for a slate")

func (b *limitedBuffer) Write(p []byte) (int, error) {
	if b.Len()+len(p) > b.max {
		return 0, errTooBig
	}
	return b.Buffer.Write(p)
}
