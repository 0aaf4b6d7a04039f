// Package hls serves every live channel as HLS at
// /hls/{channel}/index.m3u8 on the public server, for Safari and iOS,
// smart TVs, VLC, the watch page's fallback when WebRTC cannot connect,
// and a CDN in front. Each live channel has one gohlslib Muxer (low-latency
// HLS by default), created when the channel goes live, fed by one relay
// subscription and closed when the session ends: segmenting happens once
// per channel, and viewers only read what it made.
package hls

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/bluenviron/gohlslib/v2"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/seance-relay/seance/relay"
)

// Variants, as in the config (hls.variant).
const (
	VariantLowLatency = "low_latency"
	VariantFMP4       = "fmp4"
	VariantMPEGTS     = "mpegts"
)

const (
	// queueFrames is the relay subscription's length: about 3 s of video
	// and audio. Muxing is a copy into memory, so the feed keeps up unless
	// the machine is overloaded; then it skips to the next keyframe.
	queueFrames = 256
	// maxWaiting bounds the requests gohlslib may hold at once on one
	// channel (players waiting for the next part); past it, 503.
	maxWaiting = 4096
	// minHold is the shortest time a held request may wait before it gets
	// a 503: long enough for the first segment of a stream with 4 s
	// between keyframes.
	minHold = 6 * time.Second
	// minWindow is the shortest time a client counts as a viewer after its
	// last fetch.
	minWindow = 10 * time.Second
	// errorLogEvery bounds muxer error logs to one line per channel per
	// period, with the count of errors since the last line.
	errorLogEvery = 10 * time.Second
)

// Config configures the HLS output. Zero values take the defaults.
type Config struct {
	// Variant is VariantMPEGTS (default: audio and video in one
	// rendition, which every engine plays), VariantLowLatency or
	// VariantFMP4.
	Variant string
	// SegmentCount is how many segments the live playlist lists. Default
	// 7; at least 7 for low latency, 3 otherwise.
	SegmentCount int
	// SegmentDuration is the minimum segment length; a segment ends at the
	// first keyframe after it. Default 1 s.
	SegmentDuration time.Duration
	// PartDuration is the low-latency part length. Default 200 ms.
	PartDuration time.Duration
	// MaxViewersPerAddress bounds the viewers one client address counts
	// as. Default 200.
	MaxViewersPerAddress int
}

func (c Config) variant() gohlslib.MuxerVariant {
	switch c.Variant {
	case VariantFMP4:
		return gohlslib.MuxerVariantFMP4
	case VariantMPEGTS:
		return gohlslib.MuxerVariantMPEGTS
	}
	return gohlslib.MuxerVariantLowLatency
}

// channels is the part of the hub the server needs.
type channels interface {
	Channel(name string) (*relay.Channel, error)
	// Watch returns the channels and a channel closed when that set
	// changes (config reload).
	Watch() ([]*relay.Channel, <-chan struct{})
}

// Server is the HLS output of every channel. Its handler may be served
// before Run and after it returns: it then answers 404.
type Server struct {
	cfg     Config
	hub     channels
	log     zerolog.Logger
	met     *metrics
	viewers *viewerCounter
	quality *viewerCounter // by rendition: keys "channel/quality"
	// hold bounds how long a request may be held (a playlist before the
	// first segment, a blocking reload, a preload-hinted part).
	hold time.Duration
	now  func() time.Time

	mu      sync.RWMutex
	muxers  map[string]*muxer // live channels
	changed chan struct{}     // closed and replaced when muxers changes
}

// New validates cfg. Call Run to serve.
func New(cfg Config, hub channels, log zerolog.Logger, reg prometheus.Registerer) (*Server, error) {
	if cfg.Variant == "" {
		cfg.Variant = VariantMPEGTS
	}
	if cfg.SegmentCount == 0 {
		cfg.SegmentCount = 7
	}
	if cfg.SegmentDuration == 0 {
		cfg.SegmentDuration = time.Second
	}
	if cfg.PartDuration == 0 {
		cfg.PartDuration = 200 * time.Millisecond
	}
	minSegments := 3
	switch cfg.Variant {
	case VariantLowLatency:
		minSegments = 7
	case VariantFMP4, VariantMPEGTS:
	default:
		return nil, fmt.Errorf("hls.variant %q: use low_latency, fmp4 or mpegts", cfg.Variant)
	}
	if cfg.SegmentCount < minSegments {
		return nil, fmt.Errorf("hls.segment_count %d: at least %d for variant %s", cfg.SegmentCount, minSegments, cfg.Variant)
	}
	if cfg.SegmentDuration < 100*time.Millisecond || cfg.SegmentDuration > 30*time.Second {
		return nil, fmt.Errorf("hls.segment_duration %s: use 100ms to 30s", cfg.SegmentDuration)
	}
	if cfg.PartDuration < 50*time.Millisecond || cfg.PartDuration > cfg.SegmentDuration {
		return nil, fmt.Errorf("hls.part_duration %s: use 50ms to segment_duration", cfg.PartDuration)
	}
	if cfg.MaxViewersPerAddress == 0 {
		cfg.MaxViewersPerAddress = defaultMaxClientsPerAddr
	}
	if reg == nil {
		reg = prometheus.NewRegistry()
	}
	met, err := newMetrics(reg)
	if err != nil {
		return nil, err
	}
	s := &Server{
		cfg:     cfg,
		hub:     hub,
		log:     log.With().Str("component", "publish.hls").Logger(),
		met:     met,
		viewers: newViewerCounter(max(3*cfg.SegmentDuration, minWindow), met.viewers, met.sessions),
		quality: newQualityCounter(max(3*cfg.SegmentDuration, minWindow), met.byQuality),
		hold:    max(3*cfg.SegmentDuration, minHold),
		now:     time.Now,
		muxers:  map[string]*muxer{},
		changed: make(chan struct{}),
	}
	s.viewers.maxPerAddr = cfg.MaxViewersPerAddress
	s.quality.maxPerAddr = cfg.MaxViewersPerAddress
	return s, nil
}

// Viewers returns the number of clients that fetched something from a
// channel within the counting window (see viewerCounter).
func (s *Server) Viewers(channel string) int { return s.viewers.count(channel) }

// Run serves every channel while it is live, until ctx is cancelled, and
// returns once every goroutine it started has exited (every muxer closed).
func (s *Server) Run(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	s.log.Info().Str("path", "/hls/{channel}/index.m3u8").Str("variant", s.cfg.Variant).Msg("HLS output ready")
	var wg sync.WaitGroup
	// One feed per channel and per rendition, each with its own cancel so
	// that a channel removed by a reload stops its feeds and leaves the
	// others alone.
	feeds := map[string]context.CancelFunc{}
	reconcile := func() <-chan struct{} {
		list, changed := s.hub.Watch()
		keep := map[string]bool{}
		for _, ch := range list {
			for _, f := range feedsOf(ch) {
				keep[f.key] = true
				if feeds[f.key] == nil {
					s.met.byQuality.WithLabelValues(f.channel, "hls", f.quality()).Set(0)
					fctx, fcancel := context.WithCancel(ctx)
					feeds[f.key] = fcancel
					wg.Go(func() { s.feed(fctx, f) })
				}
			}
		}
		for key, fcancel := range feeds {
			if !keep[key] {
				fcancel()
				delete(feeds, key)
			}
		}
		return changed
	}
	changed := reconcile()
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		select {
		case <-changed:
			changed = reconcile()
		case <-tick.C:
			s.viewers.sweep(s.now())
			s.quality.sweep(s.now())
		case <-ctx.Done():
			cancel()
			wg.Wait()
			return nil
		}
	}
}

// feed serves f each time its channel goes live, until ctx is cancelled.
func (s *Server) feed(ctx context.Context, f feedSpec) {
	ch := f.ch
	for {
		state, changed := ch.State()
		if state != relay.StateIdle {
			s.serveSession(ctx, f, changed)
		} else {
			select {
			case <-changed:
			case <-ctx.Done():
			}
		}
		if ctx.Err() != nil {
			return
		}
	}
}

// serveSession runs the channel's muxer, fed from one relay subscription,
// until the session ends (the channel goes idle; an interruption within
// the grace period is the same session) or ctx is cancelled.
func (s *Server) serveSession(ctx context.Context, fs feedSpec, changed <-chan struct{}) {
	ch := fs.ch
	sub := ch.Subscribe("hls", queueFrames)
	defer sub.Close()
	name := fs.key
	log := s.log.With().Str("channel", fs.channel).Logger()
	if fs.sub != "" {
		log = log.With().Str("rendition", fs.sub).Logger()
	}
	errs := &errorLog{log: log, counter: s.met.errors.WithLabelValues(fs.channel)}

	var mx *muxer
	var refused *relay.Tracks // tracks the muxer could not start with
	stop := func() {
		if mx == nil {
			return
		}
		s.setMuxer(name, nil)
		mx.close()
		mx = nil
	}
	defer stop()
	start := func(tr *relay.Tracks) {
		if tr == refused {
			return
		}
		var err error
		if mx, err = newMuxer(s.cfg, tr, fs.audioOnly, errs.add); err != nil {
			// Players get 404 until the publisher sends other tracks.
			refused = tr
			mx = nil
			s.met.errors.WithLabelValues(fs.channel).Inc()
			log.Error().Err(err).Msg("cannot serve the channel over HLS")
			return
		}
		s.setMuxer(name, mx)
		log.Info().Msg("channel served over HLS")
	}
	for {
		select {
		case f := <-sub.Frames():
			if mx == nil && f.Tracks != nil {
				start(f.Tracks)
			}
			if mx == nil {
				continue
			}
			err := mx.write(f)
			if errors.Is(err, errAudioChanged) {
				log.Info().Msg("the publisher changed its audio: HLS restarts, players reload")
				stop()
				start(f.Tracks)
				if mx != nil {
					err = mx.write(f)
				}
			}
			if err != nil {
				errs.add(err)
			}
		case <-changed:
			var state relay.State
			if state, changed = ch.State(); state == relay.StateIdle {
				return
			}
		case <-ctx.Done():
			return
		}
	}
}

func (s *Server) setMuxer(channel string, mx *muxer) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if mx == nil {
		delete(s.muxers, channel)
	} else {
		s.muxers[channel] = mx
	}
	s.met.muxers.Set(float64(len(s.muxers)))
	close(s.changed)
	s.changed = make(chan struct{})
}

func (s *Server) muxer(channel string) *muxer {
	mx, _ := s.watchMuxer(channel)
	return mx
}

// watchMuxer returns the channel's muxer, nil if none, and a channel
// closed when the set of muxers changes.
func (s *Server) watchMuxer(channel string) (*muxer, <-chan struct{}) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.muxers[channel], s.changed
}

// errorLog counts a channel's muxer errors and logs them at most once per
// errorLogEvery, so that a stream gohlslib dislikes frame after frame does
// not flood the log. Only the channel's feeding goroutine uses it.
type errorLog struct {
	log     zerolog.Logger
	counter prometheus.Counter
	last    time.Time
	n       int
}

func (e *errorLog) add(err error) {
	e.counter.Inc()
	e.n++
	if now := time.Now(); now.Sub(e.last) >= errorLogEvery {
		e.log.Warn().Err(err).Int("errors", e.n).Msg("HLS muxer error (counted in seance_hls_muxer_errors_total)")
		e.last, e.n = now, 0
	}
}

// audioSub is the path segment of a channel's audio-only rendition.
const audioSub = "audio"

// feedSpec is one muxer's source: a channel, a reduced rendition (its
// derived channel), or the audio-only rendition (the audio of the first
// reduced rendition: AAC at 40 kbit/s).
type feedSpec struct {
	ch        *relay.Channel
	key       string // the muxers map key: "bourg", "bourg/basse", "bourg/audio"
	channel   string // the channel's name, for logs and metrics
	sub       string // "", a rendition's name or audioSub
	audioOnly bool
}

// quality is the feed's quality label: full, a rendition's name, audio.
func (f feedSpec) quality() string {
	if f.sub == "" {
		return relay.QualityFull
	}
	return f.sub
}

// feedsOf returns the muxers a channel has: its own, then one per reduced
// rendition and the audio-only one.
func feedsOf(ch *relay.Channel) []feedSpec {
	out := []feedSpec{{ch: ch, key: ch.Name(), channel: ch.Name()}}
	for _, r := range ch.Renditions() {
		out = append(out, feedSpec{ch: r.Channel, key: ch.Name() + "/" + r.Name, channel: ch.Name(), sub: r.Name})
	}
	if rs := ch.Renditions(); len(rs) > 0 {
		out = append(out, feedSpec{ch: rs[0].Channel, key: ch.Name() + "/" + audioSub, channel: ch.Name(), sub: audioSub, audioOnly: true})
	}
	return out
}

// feedOf returns the feed a path's sub names ("" the channel's own).
func feedOf(ch *relay.Channel, sub string) (feedSpec, bool) {
	for _, f := range feedsOf(ch) {
		if f.sub == sub {
			return f, true
		}
	}
	return feedSpec{}, false
}
