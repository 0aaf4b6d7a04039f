package relay

import (
	"math"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"
)

// State is a channel's state.
type State int

// Channel states: Idle → Live → (Interrupted → Live)* → Idle.
const (
	// StateIdle: no publisher, nothing downstream.
	StateIdle State = iota
	// StateLive: a publisher is sending.
	StateLive
	// StateInterrupted: the publisher left less than the grace period ago;
	// downstream stays connected, waiting for it to come back.
	StateInterrupted
)

// String returns idle, live or interrupted.
func (s State) String() string {
	switch s {
	case StateLive:
		return "live"
	case StateInterrupted:
		return "interrupted"
	}
	return "idle"
}

// MarshalText makes a State print as its name in JSON.
func (s State) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// ChannelConfig is what the relay needs to know about a channel.
type ChannelConfig struct {
	// Name is the channel's URL-safe name.
	Name string
	// Title is shown to viewers.
	Title string
	// Grace is how long a publisher may be gone before the session ends.
	// Zero ends the session as soon as the publisher leaves.
	Grace time.Duration
	// Slate supplies the picture and silence sent while the publisher is
	// gone within the grace period; nil sends nothing (sinks wait).
	Slate SlateSource
	// Renditions are the channel's reduced renditions (see Rendition);
	// fixed for the channel's lifetime.
	Renditions []RenditionConfig

	// derived: the channel is a rendition of another one; its timeline
	// keeps the timestamps it is given (see timeline.keep).
	derived bool
}

// maxGOPFrames bounds the keyframe cache: a publisher with a pathological
// keyframe interval must not grow memory without limit. Past it, the cache
// is dropped and new sinks wait for the next keyframe.
const maxGOPFrames = 1024

// Channel is one broadcast: at most one publisher, any number of
// subscribers. All methods are safe for concurrent use.
type Channel struct {
	cfg ChannelConfig
	log zerolog.Logger
	met *channelMetrics

	// pub serialises the writers of frames (the publisher's session and
	// the slate), so that frames reach sinks in timeline order when one
	// takes over from the other. Taken before mu, never while holding it.
	pub sync.Mutex

	mu       sync.Mutex
	state    State
	since    time.Time
	session  *Session
	pubInfo  PublisherInfo
	tracks   *Tracks
	gop      []*Frame
	subs     []*Subscription // copy-on-write: replaced, never modified in place
	changed  chan struct{}   // closed and replaced on every state change
	grace    *time.Timer
	graceGen uint64
	tl       timeline
	health   health
	closed   bool

	slate       *slateRun      // the slate on air, nil when none
	slateWG     sync.WaitGroup // the goroutines sending slates
	measuredFPS float64        // live frame rate measured at the last tick
	prepared    *SlateParams   // last parameters given to cfg.Slate.Prepare

	opusUsers atomic.Int32
	opus      opusState
	kf        keyframeState

	renditions []*Rendition // fixed at creation
}

func newChannel(cfg ChannelConfig, log zerolog.Logger, m *Metrics) *Channel {
	c := &Channel{
		cfg:     cfg,
		log:     log.With().Str("channel", cfg.Name).Logger(),
		met:     m.forChannel(cfg.Name),
		changed: make(chan struct{}),
		since:   time.Now(),
		kf:      keyframeState{requests: make(chan struct{}, 1)},
	}
	c.tl.keep = cfg.derived
	c.met.live.Set(0)
	c.met.slateActive.Set(0)
	for _, r := range cfg.Renditions {
		dc := newChannel(ChannelConfig{Name: DerivedName(cfg.Name, r.Name), Title: cfg.Title, derived: true}, log, m.derivedMetrics())
		c.renditions = append(c.renditions, &Rendition{RenditionConfig: r, Channel: dc})
	}
	return c
}

// Name returns the channel's name.
func (c *Channel) Name() string { return c.cfg.Name }

// Title returns the channel's title.
func (c *Channel) Title() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.cfg.Title
}

// SetTitle changes the title shown to viewers from now on (config reload).
func (c *Channel) SetTitle(title string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.cfg.Title = title
}

// State returns the current state and the channel to wait on for the next
// change (it is closed when the state changes).
func (c *Channel) State() (State, <-chan struct{}) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.state, c.changed
}

// Tracks returns the current track description, nil when idle.
func (c *Channel) Tracks() *Tracks {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.tracks
}

// setStateLocked changes state and wakes everyone waiting on State.
func (c *Channel) setStateLocked(s State) {
	if c.state == s {
		return
	}
	c.state = s
	c.since = time.Now()
	close(c.changed)
	c.changed = make(chan struct{})
	if s == StateIdle {
		c.met.live.Set(0)
	} else {
		c.met.live.Set(1)
	}
}

// Publish claims the channel for a publisher. It fails with ErrChannelBusy
// while another publisher is live. A publisher that arrives while the
// channel is interrupted continues the same session downstream.
func (c *Channel) Publish(info PublisherInfo, tracks Tracks) (*Session, error) {
	if tracks.Video == nil {
		return nil, ErrNoVideo
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return nil, ErrChannelNotFound
	}
	if c.session != nil {
		return nil, ErrChannelBusy
	}
	resumed := c.state == StateInterrupted
	if c.grace != nil {
		c.grace.Stop()
		c.grace = nil
	}
	s := &Session{c: c, info: info, done: make(chan struct{})}
	c.session = s
	c.pubInfo = info
	c.tracks = &tracks
	switch {
	case resumed && c.slate != nil:
		// The slate stays on air until the new publisher's first
		// keyframe (Session.publish): sinks see no gap and no P-frame
		// that references a picture they never got.
		s.awaitKey = true
		c.health.Reconnects++
		c.met.reconnects.Inc()
	case resumed:
		c.tl.newSession()
		// The new publisher's first frames may not be a keyframe; sinks
		// must not get P-frames that reference the old publisher's
		// pictures, so the cache is cleared and the next frame starts
		// from a keyframe.
		c.gop = c.gop[:0]
		c.health.Reconnects++
		c.met.reconnects.Inc()
	default:
		c.health = health{startedAt: time.Now()}
		c.tl = timeline{keep: c.cfg.derived}
		c.measuredFPS = 0
	}
	if !s.awaitKey {
		// Subscriptions still open from before (waiting through the
		// grace period, or not yet closed after the last session ended)
		// must start again from a keyframe.
		for _, sub := range c.subs {
			sub.wait.Store(waitStart)
		}
	}
	c.health.onPublish(info, &tracks)
	c.prepareSlateLocked()
	c.met.m.publishers.WithLabelValues(c.cfg.Name, protocolLabel(info.Protocol)).Inc()
	c.setStateLocked(StateLive)
	if resumed {
		c.log.Info().Str("protocol", info.Protocol).Str("remote", info.RemoteAddr).
			Msg("publisher came back within the grace period: the broadcast continues")
	} else {
		c.log.Info().Str("protocol", info.Protocol).Str("remote", info.RemoteAddr).
			Msg("publisher connected: channel is live")
	}
	return s, nil
}

func protocolLabel(p string) string {
	switch p {
	case "rtmp", "rtsp", "whip", "demo", "meeting":
		return p
	}
	return "_other"
}

// Kick ends the current publisher's session as if it had left (the
// ingest sees Session.Done and closes its connection): within the grace
// period a publisher that comes back continues the broadcast. It reports
// false when no publisher is connected.
func (c *Channel) Kick() bool {
	c.mu.Lock()
	s := c.session
	c.mu.Unlock()
	if s == nil {
		return false
	}
	c.log.Warn().Str("protocol", s.info.Protocol).Str("remote", s.info.RemoteAddr).
		Msg("publisher kicked by an administrator")
	s.kicked.Store(true)
	s.Close()
	return true
}

// unpublish is called by Session.Close.
func (c *Channel) unpublish(s *Session) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.session != s {
		return
	}
	c.session = nil
	if c.closed || c.cfg.Grace <= 0 {
		c.log.Info().Msg("publisher left: session ended")
		c.endLocked()
		return
	}
	c.setStateLocked(StateInterrupted)
	c.graceGen++
	gen := c.graceGen
	c.grace = time.AfterFunc(c.cfg.Grace, func() { c.graceExpired(gen) })
	c.log.Warn().Str("grace", c.cfg.Grace.String()).
		Msg("publisher left: waiting for it to come back before ending the session")
	c.startSlateLocked()
}

func (c *Channel) graceExpired(gen uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if gen != c.graceGen || c.state != StateInterrupted {
		return
	}
	c.log.Warn().Str("grace", c.cfg.Grace.String()).Msg("publisher did not come back within the grace period: session ended")
	c.endLocked()
}

func (c *Channel) endLocked() {
	if c.grace != nil {
		c.grace.Stop()
		c.grace = nil
	}
	c.graceGen++
	c.stopSlateLocked("slate off air: the session ended")
	c.gop = nil
	c.tracks = nil
	c.tl = timeline{keep: c.cfg.derived}
	c.health.ended()
	for _, w := range Warnings {
		c.met.warning[w].Set(0)
	}
	c.met.bitrate.Set(0)
	c.met.fps.Set(0)
	c.met.keyint.Set(0)
	c.setStateLocked(StateIdle)
}

// close ends the channel for good (shutdown): a live session ends at once,
// waiting sinks see StateIdle and close their connections cleanly.
func (c *Channel) close() {
	c.mu.Lock()
	c.closed = true
	c.session = nil
	if c.state != StateIdle {
		c.endLocked()
	}
	c.mu.Unlock()
	c.slateWG.Wait()
	for _, r := range c.renditions {
		r.Channel.close()
	}
}

// SetGrace changes the grace period of the publishers that leave from now
// on (config reload).
func (c *Channel) SetGrace(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.cfg.Grace = d
}

// remove ends the channel for good because it left the config: the
// publisher is disconnected and the session ends at once, without grace.
func (c *Channel) remove() {
	c.mu.Lock()
	s := c.session
	c.mu.Unlock()
	if s != nil {
		c.log.Info().Msg("channel removed from the config: publisher disconnected")
		c.close() // first, so that the publisher leaving does not start a grace period
		s.Close()
		return
	}
	c.close()
}

// tick updates rate gauges and warnings; the hub calls it once a second.
func (c *Channel) tick(now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.state == StateIdle {
		return
	}
	c.met.liveSeconds.Add(1)
	c.health.tick(now, c.session != nil)
	if fps := c.health.FPS; c.session != nil && c.slate == nil && fps > 0 &&
		math.Abs(fps-c.measuredFPS) > c.measuredFPS/10 {
		// Only a real change of rate counts, not the jitter of a
		// one-second window.
		c.measuredFPS = fps
		c.prepareSlateLocked()
	}
	c.met.bitrate.Set(c.health.Bitrate)
	c.met.fps.Set(c.health.FPS)
	c.met.keyint.Set(c.health.KeyframeInterval)
	for _, w := range Warnings {
		v := 0.0
		if c.health.warn[w] {
			v = 1
		}
		c.met.warning[w].Set(v)
	}
}
