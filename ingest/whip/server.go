// Package whip takes WebRTC pushes (WHIP, RFC 9725) from OBS and browsers:
// POST /whip/{channel} with the channel's ingest key as Bearer token. It
// accepts H.264 video and Opus audio, asks the publisher for keyframes when
// the channel's sinks need them (RTCP PLI), recovers lost packets with
// NACKs, and transcodes Opus to AAC once per channel for RTMP destinations
// while WebRTC viewers get the publisher's own Opus.
package whip

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/webrtc/v4"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/seance-relay/seance/addrlimit"
	"github.com/seance-relay/seance/configs"
	pubwebrtc "github.com/seance-relay/seance/publish/webrtc"
	"github.com/seance-relay/seance/relay"
)

// DefaultConnectTimeout bounds the time from the answer to a connected
// session when Config.ConnectTimeout is 0.
const DefaultConnectTimeout = 10 * time.Second

// Config configures the WHIP endpoint.
type Config struct {
	// Keys maps each channel that accepts pushes to its ingest key, the
	// Bearer token of its WHIP requests. Channels not in the map refuse
	// WHIP pushes. SetKeys replaces it.
	Keys map[string]configs.Secret
	// SettingEngine holds the ICE settings shared with the WHEP server:
	// one UDP port (ICE UDP mux) for every WebRTC session, NAT rules and
	// ICE timeouts, which also bound how fast a vanished publisher is
	// reaped.
	SettingEngine webrtc.SettingEngine
	// ConnectTimeout bounds the time from the answer to a connected
	// session; 0 means DefaultConnectTimeout.
	ConnectTimeout time.Duration
	// MaxCandidates bounds each session's remote ICE candidates (offer and
	// trickle); 0 means pubwebrtc.DefaultMaxCandidates.
	MaxCandidates int
	// Failures rate-limits wrong ingest keys per address; nil makes one
	// with addrlimit's defaults.
	Failures *addrlimit.Failures
}

// channels is the part of the hub the server needs.
type channels interface {
	Channel(name string) (*relay.Channel, error)
}

// Server is the WHIP endpoint. Serve its Handler on the public listener
// and Run it.
type Server struct {
	cfg Config
	hub channels
	log zerolog.Logger
	met *metrics

	keys atomic.Pointer[map[string]configs.Secret]
	// internalKey signs the InternalTokens.
	internalKey [32]byte

	mu        sync.Mutex
	closed    bool
	sessions  map[string]*session // by id, once answered
	byChannel map[string]*session // at most one WHIP session per channel
	wg        sync.WaitGroup      // session creation (Add under mu, before closed)
	// tearing counts session teardowns in flight (under mu); Run waits
	// on drained until none is left. Teardowns start at any time, also
	// while Run waits, which a WaitGroup does not allow.
	tearing int
	drained sync.Cond
}

// teardown runs f (a session's teardown) in its own goroutine, which Run
// waits for.
func (s *Server) teardown(f func()) {
	s.mu.Lock()
	s.tearing++
	s.mu.Unlock()
	go func() {
		f()
		s.mu.Lock()
		s.tearing--
		if s.tearing == 0 {
			s.drained.Broadcast()
		}
		s.mu.Unlock()
	}()
}

// New returns a WHIP endpoint. It binds nothing: sessions use the UDP port
// of cfg.SettingEngine.
func New(cfg Config, hub channels, log zerolog.Logger, reg prometheus.Registerer) (*Server, error) {
	if cfg.ConnectTimeout == 0 {
		cfg.ConnectTimeout = DefaultConnectTimeout
	}
	if cfg.Failures == nil {
		cfg.Failures = addrlimit.NewDefaultFailures()
	}
	if cfg.ConnectTimeout < 0 {
		return nil, fmt.Errorf("whip: negative connect timeout %s", cfg.ConnectTimeout)
	}
	s := &Server{
		cfg:       cfg,
		hub:       hub,
		log:       log.With().Str("component", "ingest.whip").Logger(),
		met:       newMetrics(reg),
		sessions:  make(map[string]*session),
		byChannel: make(map[string]*session),
	}
	s.drained.L = &s.mu
	s.keys.Store(&cfg.Keys)
	if _, err := rand.Read(s.internalKey[:]); err != nil {
		return nil, fmt.Errorf("whip: internal key: %w", err)
	}
	return s, nil
}

// SetKeys replaces the channels that accept pushes and their keys (config
// reload). It applies to the next publisher; one already live stays. The
// map must not be modified afterwards. Safe for concurrent use.
func (s *Server) SetKeys(keys map[string]configs.Secret) { s.keys.Store(&keys) }

// Run waits until ctx is cancelled, then ends every session (their
// channels enter the grace period) and returns once their goroutines have
// exited.
func (s *Server) Run(ctx context.Context) error {
	<-ctx.Done()
	s.mu.Lock()
	s.closed = true
	all := make([]*session, 0, len(s.sessions))
	for _, sess := range s.sessions {
		all = append(all, sess)
	}
	s.mu.Unlock()
	for _, sess := range all {
		sess.end("shutdown")
	}
	s.wg.Wait()
	s.mu.Lock()
	for s.tearing > 0 {
		s.drained.Wait()
	}
	s.mu.Unlock()
	return nil
}

// channel returns a channel that takes WHIP pushes and its key: its
// ingest key, or for internal requests its InternalToken.
func (s *Server) channel(name string, internal bool) (*relay.Channel, configs.Secret, error) {
	key, ok := (*s.keys.Load())[name]
	if internal {
		key, ok = s.InternalToken(name), true
	}
	if !ok || !key.IsSet() {
		return nil, "", relay.ErrChannelNotFound
	}
	ch, err := s.hub.Channel(name)
	if err != nil {
		return nil, "", err
	}
	return ch, key, nil
}

// createSession answers an authorised publisher's offer: it reserves the
// channel, negotiates, and returns the answer and the session id. The
// channel is published on once the first keyframe arrives.
func (s *Server) createSession(ch *relay.Channel, offer, remote string, internal bool, cands *pubwebrtc.Candidates) (answer, id string, err error) {
	info, err := checkOffer(offer)
	if err != nil {
		return "", "", err
	}
	s.mu.Lock()
	old := s.byChannel[ch.Name()]
	var replaced *session
	switch {
	case s.closed:
		s.mu.Unlock()
		return "", "", ErrShuttingDown
	case old != nil && s.sessions[old.id] == old && old.stale():
		// The same publisher (it has the key) reconnecting after a network
		// failure ICE has not declared yet: the new session takes over at
		// once rather than waiting up to 8 s.
		s.log.Info().Str("remote", remote).Msg("WHIP publisher reconnected: replacing its lost session")
		replaced = old
	case old != nil:
		s.mu.Unlock()
		return "", "", ErrBusy
	default:
		if st, _ := ch.State(); st == relay.StateLive {
			s.mu.Unlock()
			return "", "", ErrBusy
		}
	}
	sess := newSession(s, ch, newID(), remote)
	sess.cands = cands
	sess.internal = internal
	s.byChannel[ch.Name()] = sess
	s.wg.Add(1) // Run waits for the session to be built
	s.mu.Unlock()
	defer s.wg.Done()
	if replaced != nil {
		replaced.end("replaced")
		replaced.closePublisher() // before the new session can publish
	}

	answer, err = sess.negotiate(offer, info)
	if err != nil {
		s.mu.Lock()
		delete(s.byChannel, ch.Name())
		s.mu.Unlock()
		return "", "", err
	}
	s.mu.Lock()
	s.sessions[sess.id] = sess
	closed := s.closed
	s.mu.Unlock()
	sess.start()
	if closed {
		sess.end("shutdown")
		return "", "", ErrShuttingDown
	}
	return answer, sess.id, nil
}

// InternalToken returns the Bearer token of channel on InternalHandler:
// an HMAC of the channel's name under a key drawn at random when the
// server was created, so it is stable for the process's life, differs
// for each channel, and is known to nobody outside the process (pass it
// to the publisher without logging it).
func (s *Server) InternalToken(channel string) configs.Secret {
	m := hmac.New(sha256.New, s.internalKey[:])
	m.Write([]byte(channel))
	return configs.Secret(hex.EncodeToString(m.Sum(nil)))
}

// Disconnect ends the channel's session from InternalHandler at once, as
// DELETE would (the channel enters its grace period), so that the
// publisher's replacement is not refused while ICE would still take
// seconds to notice the old one is gone. It reports whether there was
// one.
func (s *Server) Disconnect(channel string) bool {
	s.mu.Lock()
	sess := s.byChannel[channel]
	s.mu.Unlock()
	if sess == nil || !sess.internal {
		return false
	}
	sess.end("disconnected")
	sess.closePublisher()
	return true
}

// session returns a session of a channel by id.
func (s *Server) session(channel, id string) (*session, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	sess, ok := s.sessions[id]
	if !ok || sess.ch.Name() != channel {
		return nil, errSessionNotFound
	}
	return sess, nil
}

var errSessionNotFound = errors.New("session not found")

// forget removes an ending session's URL: later requests on it get 404.
func (s *Server) forget(sess *session) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.sessions[sess.id] == sess {
		delete(s.sessions, sess.id)
	}
}

// release frees the channel of an ended session.
func (s *Server) release(sess *session) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.byChannel[sess.ch.Name()] == sess {
		delete(s.byChannel, sess.ch.Name())
	}
}

func newID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
