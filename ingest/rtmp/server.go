// Package rtmp takes RTMP pushes from Jibri, BigBlueButton streamers and
// OBS: rtmp://HOST:1935/live/{channel}?key={ingest key}.
package rtmp

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/bluenviron/gortmplib"
	"github.com/bluenviron/gortmplib/pkg/codecs"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
	"github.com/rs/zerolog"

	"github.com/seance-relay/seance/addrlimit"
	"github.com/seance-relay/seance/configs"
	"github.com/seance-relay/seance/relay"
)

const (
	// handshakeTimeout bounds the RTMP handshake, connect, publish and the
	// wait for the first media headers.
	handshakeTimeout = 10 * time.Second
	// readTimeout is how long a publisher may stay silent before it is
	// considered gone.
	readTimeout = 10 * time.Second
	// DefaultMaxPending bounds connections that have not authenticated
	// (Config.MaxPending at 0): a flood of idle sockets cannot exhaust the
	// server; live publishers do not count.
	DefaultMaxPending = 64
	// DefaultMaxPendingPerAddr bounds one address's connections that have
	// not authenticated (Config.MaxPendingPerAddr at 0): a publisher makes
	// one at a time, and retries after a drop.
	DefaultMaxPendingPerAddr = 4
	// DefaultFirstByteTimeout is how long a new connection may stay
	// silent (Config.FirstByteTimeout at 0): an encoder speaks at once.
	DefaultFirstByteTimeout = 3 * time.Second
	// DefaultAuthTimeout bounds the handshake, connect and publish up to
	// the key check (Config.AuthTimeout at 0).
	DefaultAuthTimeout = 5 * time.Second
)

// Config configures the RTMP listener.
type Config struct {
	// Listen is the TCP address, e.g. ":1935".
	Listen string
	// Keys maps each channel that accepts pushes to its ingest key.
	// Channels not in the map refuse RTMP pushes. SetKeys replaces it.
	Keys map[string]configs.Secret
	// MaxPending bounds connections that have not authenticated; when it
	// is reached, the address holding the most loses its oldest one to a
	// newcomer from an address holding fewer. 0 means DefaultMaxPending.
	MaxPending int
	// MaxPendingPerAddr bounds one address's connections that have not
	// authenticated; 0 means DefaultMaxPendingPerAddr.
	MaxPendingPerAddr int
	// FirstByteTimeout closes a connection that sends nothing; 0 means
	// DefaultFirstByteTimeout.
	FirstByteTimeout time.Duration
	// AuthTimeout bounds the time from accept to the key check; 0 means
	// DefaultAuthTimeout.
	AuthTimeout time.Duration
	// Failures rate-limits wrong keys per address; nil makes one with
	// addrlimit's defaults.
	Failures *addrlimit.Failures
}

// keySet is the keys in force and the replacer that hides them in logs.
type keySet struct {
	keys  map[string]configs.Secret
	scrub *strings.Replacer
}

func newKeySet(keys map[string]configs.Secret) *keySet {
	var pairs []string
	for _, k := range keys {
		if k.IsSet() {
			pairs = append(pairs, k.Value(), "[redacted]")
		}
	}
	return &keySet{keys: keys, scrub: strings.NewReplacer(pairs...)}
}

// channels is the part of the hub the server needs.
type channels interface {
	Channel(name string) (*relay.Channel, error)
}

// Server accepts RTMP publishers.
type Server struct {
	cfg   Config
	hub   channels
	log   zerolog.Logger
	ln    net.Listener
	conns prometheus.CounterVec

	mu   sync.Mutex
	open map[net.Conn]struct{}
	// pending are the connections that have not authenticated, by
	// address (addrlimit.Key), oldest first; npending counts them.
	pending  map[netip.Addr][]net.Conn
	npending int
	wg       sync.WaitGroup
	keys     atomic.Pointer[keySet]
}

// New binds the listener; it fails at once if the port is taken.
func New(cfg Config, hub channels, log zerolog.Logger, reg prometheus.Registerer) (*Server, error) {
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return nil, fmt.Errorf("rtmp listener on %s: %w", cfg.Listen, err)
	}
	cfg.MaxPending = cmp.Or(cfg.MaxPending, DefaultMaxPending)
	cfg.MaxPendingPerAddr = cmp.Or(cfg.MaxPendingPerAddr, DefaultMaxPendingPerAddr)
	cfg.FirstByteTimeout = cmp.Or(cfg.FirstByteTimeout, DefaultFirstByteTimeout)
	cfg.AuthTimeout = cmp.Or(cfg.AuthTimeout, DefaultAuthTimeout)
	if cfg.Failures == nil {
		cfg.Failures = addrlimit.NewDefaultFailures()
	}
	s := &Server{
		cfg:     cfg,
		hub:     hub,
		log:     log.With().Str("component", "ingest.rtmp").Logger(),
		ln:      ln,
		pending: make(map[netip.Addr][]net.Conn),
		open:    make(map[net.Conn]struct{}),
		conns: *promauto.With(reg).NewCounterVec(prometheus.CounterOpts{
			Name: "seance_rtmp_connections_total",
			Help: "RTMP connections by result (accepted, bad_key, throttled, unknown_channel, busy, play_refused, unsupported, bad_request, overloaded, address_busy, evicted).",
		}, []string{"result"}),
	}
	s.keys.Store(newKeySet(cfg.Keys))
	return s, nil
}

// SetKeys replaces the channels that accept pushes and their keys (config
// reload). It applies to the next publisher; one already live stays. The
// map must not be modified afterwards. Safe for concurrent use.
func (s *Server) SetKeys(keys map[string]configs.Secret) { s.keys.Store(newKeySet(keys)) }

// scrub hides the ingest keys in s.
func (s *Server) scrub(str string) string { return s.keys.Load().scrub.Replace(str) }

// Addr returns the bound address.
func (s *Server) Addr() net.Addr { return s.ln.Addr() }

// Run accepts connections until ctx is cancelled, then closes every
// connection and returns once their goroutines have exited.
func (s *Server) Run(ctx context.Context) error {
	s.wg.Go(func() {
		<-ctx.Done()
		s.ln.Close()
		s.mu.Lock()
		for c := range s.open {
			c.Close()
		}
		s.mu.Unlock()
	})
	defer s.wg.Wait()
	for {
		nc, err := s.ln.Accept()
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			s.ln.Close()
			<-ctx.Done()
			return fmt.Errorf("rtmp accept: %w", err)
		}
		addr := addrlimit.Key(addrlimit.Of(nc.RemoteAddr()))
		s.mu.Lock()
		if ctx.Err() != nil {
			s.mu.Unlock()
			nc.Close()
			continue
		}
		if result := s.admit(nc, addr); result != "" {
			s.mu.Unlock()
			s.conns.WithLabelValues(result).Inc()
			nc.Close()
			continue
		}
		s.open[nc] = struct{}{}
		s.mu.Unlock()
		s.wg.Go(func() {
			defer func() {
				s.mu.Lock()
				delete(s.open, nc)
				s.mu.Unlock()
				nc.Close()
			}()
			s.handle(nc, addr)
		})
	}
}

// refusal is a publisher refused for a reason worth a metric and a log line.
type refusal struct {
	result string
	msg    string
}

func (r *refusal) Error() string { return r.msg }

func (s *Server) handle(nc net.Conn, addr netip.Addr) {
	release := sync.OnceFunc(func() { s.settle(nc, addr) })
	defer release()
	log := s.log.With().Str("remote", nc.RemoteAddr().String()).Logger()

	if ok, _ := s.cfg.Failures.Allow(addr); !ok {
		// Backing off after wrong keys: the connection is closed before
		// its handshake, so a guesser gets no answer to time.
		s.conns.WithLabelValues("throttled").Inc()
		return
	}
	authBy := time.Now().Add(s.cfg.AuthTimeout)
	_ = nc.SetDeadline(authBy)
	_ = nc.SetReadDeadline(time.Now().Add(min(s.cfg.FirstByteTimeout, s.cfg.AuthTimeout)))
	guard := &chunkGuard{Conn: nc}
	sc := &gortmplib.ServerConn{RW: &firstByteConn{Conn: guard, then: authBy}}
	ch, err := s.accept(sc)
	if err != nil {
		var ref *refusal
		if errors.As(err, &ref) {
			s.conns.WithLabelValues(ref.result).Inc()
			if ref.result == "bad_key" {
				if s.cfg.Failures.Fail(addr) {
					log.Warn().Msg("RTMP: repeated wrong ingest keys from this address: backing off (logged once per window)")
				} else {
					log.Debug().Msg("RTMP publisher refused: " + ref.msg)
				}
			} else {
				log.Warn().Msg("RTMP publisher refused: " + ref.msg)
			}
			_ = sc.RejectAction()
			return
		}
		s.conns.WithLabelValues("bad_request").Inc()
		log.Debug().Str("error", s.scrub(err.Error())).Msg("RTMP connection closed during handshake")
		return
	}
	log = log.With().Str("channel", ch.Name()).Logger()
	// Authenticated: the connection leaves the unauthenticated bounds, and
	// has the rest of the handshake timeout for its media headers.
	s.cfg.Failures.Succeed(addr)
	guard.authed.Store(true)
	release()
	_ = nc.SetDeadline(time.Now().Add(handshakeTimeout))

	r := &gortmplib.Reader{Conn: sc}
	if err := r.Initialize(); err != nil {
		s.conns.WithLabelValues("bad_request").Inc()
		log.Warn().Str("error", s.scrub(err.Error())).Msg("RTMP publisher sent no usable media headers")
		return
	}
	tracks, setup, err := pickTracks(r)
	if err != nil {
		s.conns.WithLabelValues("unsupported").Inc()
		log.Warn().Err(err).Msg("RTMP publisher refused")
		return
	}
	sess, err := ch.Publish(relay.PublisherInfo{Protocol: "rtmp", RemoteAddr: nc.RemoteAddr().String()}, tracks)
	if err != nil {
		s.conns.WithLabelValues("busy").Inc()
		log.Warn().Err(err).Msg("RTMP publisher refused")
		return
	}
	defer sess.Close()
	// A publisher kicked from the admin API loses its connection, which
	// ends the read loop below.
	s.wg.Go(func() {
		<-sess.Done()
		nc.Close()
	})
	s.conns.WithLabelValues("accepted").Inc()
	setup(r, sess)

	for {
		// Both deadlines: reading may write (acknowledgements, ping
		// responses), and the handshake's write deadline has passed.
		_ = nc.SetDeadline(time.Now().Add(readTimeout))
		if err := r.Read(); err != nil {
			log.Info().Str("reason", s.scrub(describeEnd(err))).Msg("RTMP publisher disconnected")
			return
		}
	}
}

// accept runs the RTMP handshake and checks the channel and key before
// the publish command is answered.
func (s *Server) accept(sc *gortmplib.ServerConn) (*relay.Channel, error) {
	if err := sc.Initialize(); err != nil {
		return nil, err
	}
	if err := sc.AcceptConn(); err != nil {
		return nil, err
	}
	if !sc.Publish {
		return nil, &refusal{"play_refused", "playing over RTMP is not offered: watch at /watch/{channel} or read rtsp://HOST:8554/{channel}"}
	}
	name := channelFromPath(sc.URL.Path)
	ch, err := s.hub.Channel(name)
	key, pushable := s.keys.Load().keys[name]
	if err != nil || !pushable {
		return nil, &refusal{"unknown_channel", fmt.Sprintf("no channel %q accepts RTMP pushes: push to rtmp://HOST:1935/live/{channel}?key={ingest key}", printable(s.scrub(name)))}
	}
	if !key.Equal(sc.URL.Query().Get("key")) {
		return nil, &refusal{"bad_key", fmt.Sprintf("wrong or missing ingest key for channel %q", name)}
	}
	if st, _ := ch.State(); st == relay.StateLive {
		return nil, &refusal{"busy", fmt.Sprintf("channel %q already has a live publisher", name)}
	}
	return ch, nil
}

// channelFromPath takes the channel from /live/{channel} (or /{channel}).
func channelFromPath(p string) string {
	p = strings.Trim(p, "/")
	if rest, ok := strings.CutPrefix(p, "live/"); ok {
		p = rest
	}
	return p
}

// printable keeps a client-supplied name safe and short for a log line.
func printable(s string) string {
	if len(s) > 64 {
		s = s[:64] + "…"
	}
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return '?'
		}
		return r
	}, s)
}

func describeEnd(err error) string {
	var ne net.Error
	switch {
	case errors.As(err, &ne) && ne.Timeout():
		return fmt.Sprintf("no data for %s", readTimeout)
	case errors.Is(err, net.ErrClosed):
		return "connection closed by the relay"
	}
	return err.Error()
}

// pickTracks chooses the H.264 track and the AAC track, and returns a
// function that wires the reader's callbacks to the session.
func pickTracks(r *gortmplib.Reader) (relay.Tracks, func(*gortmplib.Reader, *relay.Session), error) {
	var (
		tracks relay.Tracks
		vt, at *gortmplib.Track
		others []string
	)
	for _, t := range r.Tracks() {
		switch c := t.Codec.(type) {
		case *codecs.H264:
			if vt == nil {
				vt = t
				tracks.Video = &relay.VideoTrack{SPS: c.SPS, PPS: c.PPS}
			}
		case *codecs.MPEG4Audio:
			if at == nil {
				at = t
				tracks.Audio = &relay.AudioTrack{Config: c.Config}
			}
		default:
			others = append(others, fmt.Sprintf("%T", c))
		}
	}
	if vt == nil {
		return tracks, nil, fmt.Errorf("no H.264 video track (got %s): set the encoder to H.264 (x264)", strings.Join(others, ", "))
	}
	return tracks, func(r *gortmplib.Reader, sess *relay.Session) {
		r.OnDataH264(vt, func(pts, dts time.Duration, au [][]byte) {
			sess.WriteH264(pts, dts, au)
		})
		if at != nil {
			r.OnDataMPEG4Audio(at, func(pts time.Duration, au []byte) {
				sess.WriteAAC(pts, au)
			})
		}
	}, nil
}

// Close releases the listener of a server that will not Run.
func (s *Server) Close() error { return s.ln.Close() }
