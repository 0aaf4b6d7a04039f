// Package rendition makes a channel's reduced renditions: one ffmpeg
// process per rendition and channel, supervised (restarted with backoff
// when it dies), fed the channel's live stream as MPEG-TS on its stdin and
// read back as MPEG-TS on its stdout into the rendition's derived relay
// channel. Every viewer of the rendition shares that one encode.
package rendition

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os/exec"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"

	"github.com/seance-relay/seance/relay"
)

// Backoff bounds, as for destinations: the wait doubles from minBackoff to
// maxBackoff; a run that lasted stableAfter starts again from minBackoff.
const (
	minBackoff  = time.Second
	maxBackoff  = 30 * time.Second
	stableAfter = 30 * time.Second
)

// State is a rendition's state, for the dashboard.
type State string

// Rendition states.
const (
	// StateIdle: the channel is not live; no ffmpeg runs.
	StateIdle State = "idle"
	// StateStarting: ffmpeg runs and has not sent a picture yet.
	StateStarting State = "starting"
	// StateLive: ffmpeg sends pictures.
	StateLive State = "live"
	// StateRetrying: ffmpeg died; it starts again after a backoff.
	StateRetrying State = "retrying"
)

// ErrNoFFmpeg means a channel has renditions but ffmpeg, which makes them,
// is not installed.
var ErrNoFFmpeg = errors.New("ffmpeg is not installed (Debian: apt-get install ffmpeg)")

// LookFFmpeg returns ffmpeg's path in PATH, or ErrNoFFmpeg.
func LookFFmpeg() (string, error) {
	p, err := exec.LookPath("ffmpeg")
	if err != nil {
		return "", ErrNoFFmpeg
	}
	return p, nil
}

// Config configures one rendition maker.
type Config struct {
	// FFmpeg is the ffmpeg binary (LookFFmpeg).
	FFmpeg string
	// AudioBitrate is the AAC bit rate of the rendition's audio, in bits
	// per second, for HLS's reduced and audio-only variants (WebRTC
	// viewers keep the channel's Opus). Default 40 000: with MPEG-TS or fMP4 framing the audio-only HLS rendition stays under 64 kbit/s.
	AudioBitrate int
}

// Status is what the admin API shows of a rendition.
type Status struct {
	Name         string    `json:"name"`
	Height       int       `json:"height"`
	VideoBitrate int64     `json:"video_bitrate"`
	State        State     `json:"state"`
	Since        time.Time `json:"since"`
	Restarts     int       `json:"restarts"`
	// FPS is the frame rate ffmpeg sent over the last second.
	FPS float64 `json:"fps"`
	// CPU is ffmpeg's CPU use over the last second, in cores.
	CPU float64 `json:"cpu"`
	// LastError is why ffmpeg last stopped, empty when it never did.
	LastError string `json:"last_error,omitempty"`
}

// Maker runs the ffmpeg of one rendition of one channel.
type Maker struct {
	cfg     Config
	channel string
	src     *relay.Channel
	r       *relay.Rendition
	log     zerolog.Logger
	met     *makerMetrics

	mu     sync.Mutex
	status Status
	pid    atomic.Int64 // ffmpeg's while it runs, for tests
}

// New returns the maker of rendition r of channel src. It fails with
// ErrNoFFmpeg when cfg.FFmpeg is empty.
func New(cfg Config, src *relay.Channel, r *relay.Rendition, log zerolog.Logger, m *Metrics) (*Maker, error) {
	if cfg.FFmpeg == "" {
		return nil, fmt.Errorf("rendition %s: %w", r.Name, ErrNoFFmpeg)
	}
	if cfg.AudioBitrate == 0 {
		cfg.AudioBitrate = 40_000
	}
	mk := &Maker{
		cfg: cfg, channel: src.Name(), src: src, r: r,
		log: log.With().Str("component", "rendition").Str("channel", src.Name()).Str("rendition", r.Name).Logger(),
		met: m.forRendition(src.Name(), r.Name),
		status: Status{
			Name: r.Name, Height: r.Height, VideoBitrate: r.VideoBitrate,
			State: StateIdle, Since: time.Now(),
		},
	}
	return mk, nil
}

// Status returns the rendition's state. It is safe for concurrent use.
func (mk *Maker) Status() Status {
	mk.mu.Lock()
	defer mk.mu.Unlock()
	return mk.status
}

// PID returns the process id of ffmpeg while it runs, 0 otherwise
// (diagnostics and tests).
func (mk *Maker) PID() int { return int(mk.pid.Load()) }

func (mk *Maker) setState(s State, err error) {
	mk.mu.Lock()
	defer mk.mu.Unlock()
	if err != nil {
		mk.status.LastError = err.Error()
	}
	if mk.status.State == s {
		return
	}
	mk.status.State, mk.status.Since = s, time.Now()
	if s != StateLive {
		mk.status.FPS, mk.status.CPU = 0, 0
	}
	mk.met.setState(s)
	ev := mk.log.Info()
	if err != nil {
		ev = mk.log.Warn().Err(err)
	}
	ev.Str("state", string(s)).Msg(stateMessage[s])
}

var stateMessage = map[State]string{
	StateIdle:     "rendition idle",
	StateStarting: "rendition: ffmpeg started",
	StateLive:     "rendition: ffmpeg sends pictures",
	StateRetrying: "rendition: ffmpeg stopped, restarting after a pause",
}

// Run makes the rendition while the channel is live (interruptions
// included: the slate is encoded like the live picture), until ctx is
// cancelled. It returns once ffmpeg and every goroutine it started have
// exited.
func (mk *Maker) Run(ctx context.Context) error {
	backoff := time.Duration(0)
	for {
		st, changed := mk.src.State()
		if st == relay.StateIdle {
			mk.setState(StateIdle, nil)
			backoff = 0
			select {
			case <-ctx.Done():
				return nil
			case <-changed:
			}
			continue
		}
		started := time.Now()
		err := mk.runSession(ctx)
		if ctx.Err() != nil {
			mk.setState(StateIdle, nil)
			return nil
		}
		if err == nil {
			continue // the channel went idle
		}
		if time.Since(started) > stableAfter {
			backoff = 0
		}
		backoff = min(max(backoff*2, minBackoff), maxBackoff)
		wait := backoff + time.Duration((rand.Float64()*0.4-0.2)*float64(backoff))
		mk.mu.Lock()
		mk.status.Restarts++
		mk.mu.Unlock()
		mk.met.restarts.Inc()
		mk.setState(StateRetrying, err)
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			mk.setState(StateIdle, nil)
			return nil
		case <-t.C:
		}
	}
}

// runSession runs ffmpeg once, until it fails (the error says why), the
// channel goes idle (nil) or ctx is cancelled.
func (mk *Maker) runSession(ctx context.Context) error {
	sctx, cancel := context.WithCancel(ctx)
	idle := make(chan struct{})
	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel() // before wg.Wait: it stops the watcher
	wg.Go(func() {
		for {
			st, changed := mk.src.State()
			if st == relay.StateIdle {
				close(idle)
				cancel()
				return
			}
			select {
			case <-changed:
			case <-sctx.Done():
				return
			}
		}
	})
	mk.setState(StateStarting, nil)
	err := mk.runFFmpeg(sctx)
	select {
	case <-idle:
		return nil
	default:
	}
	if ctx.Err() != nil {
		return nil
	}
	if err == nil {
		err = errors.New("ffmpeg stopped")
	}
	return err
}
