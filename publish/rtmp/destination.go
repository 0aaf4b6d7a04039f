// Package rtmp pushes a channel to RTMP and RTMPS servers: YouTube (primary
// and backup ingestion), other platforms, or any RTMP server.
package rtmp

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/url"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"github.com/seance-relay/seance/relay"
)

// State is a destination's state as shown to IT staff.
type State int

// Destination states.
const (
	// StateIdle: the channel is not live, or a manual destination is stopped.
	StateIdle State = iota
	// StateConnecting: dialling the server.
	StateConnecting
	// StateLive: the server receives the stream.
	StateLive
	// StateRetrying: the last attempt failed; waiting before the next.
	StateRetrying
	// StateFailed: the server refused the stream for a reason retrying
	// will not fix (bad URL); see LastError.
	StateFailed
)

// String returns the state's name.
func (s State) String() string {
	return [...]string{"idle", "connecting", "live", "retrying", "failed"}[s]
}

// MarshalText makes a State print as its name in JSON.
func (s State) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// Backoff bounds: the wait doubles from MinBackoff to MaxBackoff, with
// ±20 % jitter so that destinations of several channels do not retry in
// lockstep. A connection that stayed up for stableAfter resets it.
const (
	MinBackoff  = time.Second
	MaxBackoff  = 30 * time.Second
	stableAfter = 30 * time.Second
)

// queueFrames is the destination's queue: about 20 s of 30 fps video with
// audio, enough to ride out a slow TLS handshake without dropping.
const queueFrames = 2048

// Config configures one destination.
type Config struct {
	// Name is the destination's name in the channel (metrics label).
	Name string
	// URL is where to publish, with the stream key in the fragment (see
	// configs.Destination.PublishURL). It is never logged.
	URL *url.URL
	// Display is the URL safe to log and show (configs.RedactURL).
	Display string
	// Manual destinations wait for Start; others start when the channel
	// goes live.
	Manual bool
	// WriteTimeout is how long a write may block before the server is
	// considered gone. Zero means 10 s.
	WriteTimeout time.Duration
}

// Status is what the dashboard shows about a destination.
type Status struct {
	Name       string    `json:"name"`
	URL        string    `json:"url"`
	State      State     `json:"state"`
	Since      time.Time `json:"since"`
	Bytes      uint64    `json:"bytes"`
	Reconnects uint64    `json:"reconnects"`
	LastError  string    `json:"last_error,omitempty"`
	Dropped    uint64    `json:"dropped_frames"`
}

// Destination pushes one channel to one RTMP server, reconnecting on its
// own. A slow or dead server never slows the channel: it reads from a
// bounded subscription.
type Destination struct {
	cfg Config
	ch  *relay.Channel
	log zerolog.Logger
	met *destMetrics

	control chan bool  // Start (true) / Stop (false) requests; at most 2 pending
	reqMu   sync.Mutex // serialises request

	mu     sync.Mutex
	status Status
}

// New creates a destination for ch.
func New(cfg Config, ch *relay.Channel, log zerolog.Logger, m *Metrics) *Destination {
	if cfg.WriteTimeout == 0 {
		cfg.WriteTimeout = 10 * time.Second
	}
	d := &Destination{
		cfg:     cfg,
		ch:      ch,
		log:     log.With().Str("component", "publish.rtmp").Str("channel", ch.Name()).Str("destination", cfg.Name).Logger(),
		met:     m.forDestination(ch.Name(), cfg.Name),
		control: make(chan bool, 2),
		status:  Status{Name: cfg.Name, URL: cfg.Display, State: StateIdle, Since: time.Now()},
	}
	d.met.state[StateIdle].Set(1)
	return d
}

// Start asks a manual destination to start (for the current or next live
// session). It does not block.
func (d *Destination) Start() { d.request(true) }

// Stop asks the destination to disconnect and stay idle until Start.
func (d *Destination) Stop() { d.request(false) }

// request replaces any pending request with on, except that a pending
// Stop is kept before a Start: Stop then Start (the admin API's restart)
// must drop the connection, not cancel out.
func (d *Destination) request(on bool) {
	d.reqMu.Lock()
	defer d.reqMu.Unlock()
	stopPending := false
	for drained := false; !drained; {
		select {
		case prev := <-d.control:
			stopPending = stopPending || !prev
		default:
			drained = true
		}
	}
	if on && stopPending {
		d.control <- false
	}
	d.control <- on
}

// Status returns a snapshot of the destination's state.
func (d *Destination) Status() Status {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.status
}

func (d *Destination) setState(s State, lastErr error) {
	d.mu.Lock()
	prev := d.status.State
	if prev != s {
		d.status.State, d.status.Since = s, time.Now()
		d.met.state[prev].Set(0)
		d.met.state[s].Set(1)
	}
	if lastErr != nil {
		d.status.LastError = lastErr.Error()
	}
	d.mu.Unlock()
	if s == StateLive {
		d.met.up.Set(1)
	} else {
		d.met.up.Set(0)
	}
	if prev == s {
		return
	}
	ev := d.log.Info()
	if s == StateRetrying || s == StateFailed {
		ev = d.log.Warn()
	}
	if lastErr != nil && s != StateLive {
		ev = ev.Str("reason", lastErr.Error())
	}
	ev.Str("url", d.cfg.Display).Str("state", s.String()).Msg(stateMessage[s])
}

var stateMessage = map[State]string{
	StateIdle:       "destination idle",
	StateConnecting: "connecting to destination",
	StateLive:       "destination is receiving the stream",
	StateRetrying:   "destination failed: retrying",
	StateFailed:     "destination failed: check its URL and key",
}

// Run drives the destination until ctx is cancelled.
func (d *Destination) Run(ctx context.Context) error {
	enabled := !d.cfg.Manual
	backoff := time.Duration(0)
	sawLive := false
	// sub is subscribed while the destination waits for the channel, so
	// that it gets the session from its first keyframe: subscribing only
	// once the channel is live races with the publisher's first frames
	// (the RTMP ingest replays ~2 s at once) and could start a GOP late.
	var sub *relay.Subscription
	defer func() {
		if sub != nil {
			sub.Close()
		}
	}()
	for {
		// Wait for the channel to be live and the destination enabled.
		st, changed := d.ch.State()
		if st == relay.StateIdle && sawLive {
			sawLive = false
			if d.cfg.Manual {
				// A manual start lasts one session.
				enabled = false
			}
		}
		if st != relay.StateIdle {
			sawLive = true
		}
		if !enabled || st != relay.StateLive {
			d.setState(StateIdle, nil)
			backoff = 0
			switch {
			case enabled && st == relay.StateIdle && sub == nil:
				sub = d.ch.Subscribe("rtmp", queueFrames)
			case !enabled && sub != nil:
				sub.Close()
				sub = nil
			}
			select {
			case <-ctx.Done():
				return nil
			case <-changed:
			case enabled = <-d.control:
			}
			continue
		}

		d.setState(StateConnecting, nil)
		started := time.Now()
		err := d.runOnce(ctx, sub)
		sub = nil
		switch {
		case ctx.Err() != nil:
			d.setState(StateIdle, nil)
			return nil
		case errors.Is(err, errStopped):
			enabled = false
			continue
		case err == nil:
			// The channel ended: the session is over for this destination.
			continue
		}
		if time.Since(started) > stableAfter {
			backoff = 0
		}
		var wait time.Duration
		backoff, wait = nextBackoff(backoff)
		d.mu.Lock()
		d.status.Reconnects++
		d.mu.Unlock()
		d.met.reconnects.Inc()
		d.setState(StateRetrying, err)
		d.log.Debug().Dur("wait", wait).Msg("waiting before reconnecting")
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			d.setState(StateIdle, nil)
			return nil
		case <-t.C:
		case on := <-d.control:
			t.Stop()
			enabled = on
		}
	}
}

// nextBackoff doubles the step prev within [MinBackoff, MaxBackoff] and
// returns it with the time to wait: the step ±20 % jitter. The jitter is
// not fed back into the next step, so it does not compound.
func nextBackoff(prev time.Duration) (step, wait time.Duration) {
	step = min(max(prev*2, MinBackoff), MaxBackoff)
	return step, step + time.Duration((rand.Float64()*0.4-0.2)*float64(step))
}

var errStopped = errors.New("stopped by an operator")

// redactedError wraps a connection error so that its text never holds the
// URL or key.
func (d *Destination) wrap(op string, err error) error {
	msg := err.Error()
	if k := d.cfg.URL.Fragment; k != "" {
		msg = replaceAll(msg, k, "[redacted]")
	}
	if d.cfg.URL.User != nil {
		if p, ok := d.cfg.URL.User.Password(); ok && p != "" {
			msg = replaceAll(msg, p, "[redacted]")
		}
	}
	return fmt.Errorf("%s: %s", op, msg)
}
