// Package pull feeds a channel from a source seance connects to itself (an
// IP camera or a media server, over RTSP or RTMP) instead of waiting for a
// push, and keeps reconnecting to it.
package pull

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"

	"github.com/seance-relay/seance/configs"
	"github.com/seance-relay/seance/relay"
)

// State is a pull's state as shown to IT staff.
type State int

// Pull states.
const (
	// StateIdle: not running (before Run, after shutdown).
	StateIdle State = iota
	// StateConnecting: dialling the source and waiting for its first keyframe.
	StateConnecting
	// StateLive: the source's stream feeds the channel.
	StateLive
	// StateRetrying: the last attempt failed or the source dropped; waiting
	// before the next attempt. See LastError.
	StateRetrying
)

// String returns the state's name.
func (s State) String() string {
	return [...]string{"idle", "connecting", "live", "retrying"}[s]
}

// MarshalText makes a State print as its name in JSON.
func (s State) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// Backoff bounds: the wait doubles from MinBackoff to MaxBackoff, with ±20 %
// jitter so that the pulls of several channels do not retry in lockstep. A
// connection that went live resets it.
const (
	MinBackoff = time.Second
	MaxBackoff = 30 * time.Second
)

// Config says where a channel pulls its stream from.
type Config struct {
	// URL is the rtsp, rtsps, rtmp or rtmps URL. It may hold credentials
	// and, for RTMP, a stream key: it is only ever shown through
	// configs.RedactURL.
	URL string
	// Transport is how RTSP media is received: tcp, udp or auto (""
	// means auto: UDP first, TCP when UDP gets nothing). Ignored for RTMP.
	Transport string
	// Username and Password authenticate when the URL holds no user.
	Username string
	Password configs.Secret
}

// Status is what the dashboard shows about a pull.
type Status struct {
	URL        string    `json:"url"`
	State      State     `json:"state"`
	Since      time.Time `json:"since"`
	Reconnects uint64    `json:"reconnects"`
	LastError  string    `json:"last_error,omitempty"`
}

// Source is one connection to a pulled stream.
type Source interface {
	// Pull connects, calls publish once the stream's tracks are known,
	// and feeds the returned session until the connection ends (an error)
	// or ctx is cancelled (nil). It closes the session before returning,
	// so that the channel's grace period starts.
	Pull(ctx context.Context, publish func(relay.PublisherInfo, relay.Tracks) (*relay.Session, error)) error
}

// Puller keeps a channel fed from a source: it connects when it starts,
// and reconnects with backoff when the source drops or is not up yet. A
// source back within the channel's grace period continues the same
// session downstream. Status is safe for concurrent use.
type Puller struct {
	ch      *relay.Channel
	src     Source
	display string
	scrub   *strings.Replacer
	log     zerolog.Logger
	met     *pullMetrics

	mu     sync.Mutex
	status Status
}

// New checks the URL and prepares the pull of ch; nothing connects before
// Run. Its errors never contain the URL's secrets.
func New(cfg Config, ch *relay.Channel, log zerolog.Logger, m *Metrics) (*Puller, error) {
	log = log.With().Str("component", "ingest.pull").Str("channel", ch.Name()).Logger()
	src, secrets, err := newSource(cfg, log)
	if err != nil {
		return nil, err
	}
	return newPuller(ch, src, configs.RedactURL(cfg.URL), secrets, log, m), nil
}

func newPuller(ch *relay.Channel, src Source, display string, secrets []string, log zerolog.Logger, m *Metrics) *Puller {
	var pairs []string
	for _, s := range secrets {
		if s != "" {
			pairs = append(pairs, s, "[redacted]")
		}
	}
	p := &Puller{
		ch:      ch,
		src:     src,
		display: display,
		scrub:   strings.NewReplacer(pairs...),
		log:     log,
		met:     m.forChannel(ch.Name()),
		status:  Status{URL: display, State: StateIdle, Since: time.Now()},
	}
	p.met.state[StateIdle].Set(1)
	return p
}

// Status returns a snapshot of the pull's state.
func (p *Puller) Status() Status {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.status
}

// Run pulls until ctx is cancelled; it returns nil once the connection is
// closed and the channel's session released.
func (p *Puller) Run(ctx context.Context) error {
	backoff := time.Duration(0)
	for {
		p.setState(StateConnecting, "")
		var wentLive, kicked atomic.Bool
		// A session kicked from the admin API cancels this attempt, which
		// closes the connection; the source is then pulled again.
		actx, cancel := context.WithCancel(ctx)
		var watch sync.WaitGroup
		err := p.src.Pull(actx, func(info relay.PublisherInfo, tracks relay.Tracks) (*relay.Session, error) {
			s, err := p.ch.Publish(info, tracks)
			if err != nil {
				return nil, fmt.Errorf("publish to the channel: %w", err)
			}
			wentLive.Store(true)
			p.setState(StateLive, "")
			watch.Go(func() {
				select {
				case <-s.Done():
					kicked.Store(s.Kicked())
					cancel()
				case <-actx.Done():
				}
			})
			return s, nil
		})
		cancel()
		watch.Wait()
		if ctx.Err() != nil {
			p.setState(StateIdle, "")
			return nil
		}
		switch {
		case kicked.Load():
			err = errors.New("publisher kicked by an administrator")
		case err == nil:
			err = errors.New("the source ended the stream")
		}
		if wentLive.Load() {
			// A source that dropped after going live is retried after
			// MinBackoff first, so that it is back within the channel's
			// grace period; one that keeps failing before it goes live
			// backs off.
			backoff = 0
		}
		var wait time.Duration
		backoff, wait = nextBackoff(backoff)
		p.mu.Lock()
		p.status.Reconnects++
		p.mu.Unlock()
		p.met.reconnects.Inc()
		p.setState(StateRetrying, p.scrub.Replace(err.Error()), wait)
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			p.setState(StateIdle, "")
			return nil
		case <-t.C:
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

var stateMessage = [...]string{
	StateIdle:       "pull stopped",
	StateConnecting: "connecting to the source",
	StateLive:       "source connected: its stream feeds the channel",
	StateRetrying:   "source unavailable: retrying",
}

// setState records and logs a state change; reason is already scrubbed.
// The optional wait is the time before the next attempt.
func (p *Puller) setState(s State, reason string, wait ...time.Duration) {
	p.mu.Lock()
	prev := p.status.State
	if prev != s {
		p.status.State, p.status.Since = s, time.Now()
		p.met.state[prev].Set(0)
		p.met.state[s].Set(1)
	}
	if reason != "" {
		p.status.LastError = reason
	}
	p.mu.Unlock()
	if prev == s && s != StateRetrying {
		return
	}
	ev := p.log.Info()
	switch {
	case s == StateRetrying:
		ev = p.log.Warn().Str("reason", reason)
		if len(wait) > 0 {
			ev = ev.Str("retry_in", wait[0].Round(100*time.Millisecond).String())
		}
	case s == StateConnecting && prev == StateRetrying:
		// One line per attempt is enough: the retrying line says why.
		ev = p.log.Debug()
	}
	ev.Str("source", p.display).Str("state", s.String()).Msg(stateMessage[s])
}
