// Package rtsp serves every live channel read-only at
// rtsp://HOST:8554/{channel}, over TCP and UDP, for VLC, recorders and
// other relays. Each live channel is one gortsplib ServerStream fed by one
// relay subscription: packetisation happens once per channel, and readers
// share the marshalled packets.
package rtsp

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/bluenviron/gortsplib/v4"
	"github.com/bluenviron/gortsplib/v4/pkg/base"
	"github.com/bluenviron/gortsplib/v4/pkg/liberrors"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/seance-relay/seance/addrlimit"
	"github.com/seance-relay/seance/configs"
	"github.com/seance-relay/seance/relay"
)

// DefaultUDPPort is the UDP port RTP is sent from when Config.UDPPort is
// 0 (RTCP uses the next one), as in MediaMTX.
const DefaultUDPPort = 8000

const (
	// queueFrames is the relay subscription's length: about 3 s of video
	// and audio. The feeding goroutine only queues packets, so it keeps
	// up unless the machine is overloaded.
	queueFrames = 256
	// writeQueuePackets is each reader's queue, in RTP packets (a power
	// of two): a 720p keyframe is about 100 packets.
	writeQueuePackets = 1024
)

// Config configures the RTSP server.
type Config struct {
	// Listen is the TCP address, e.g. ":8554".
	Listen string
	// UDPPort is the (even) UDP port RTP is sent from; RTCP uses the next
	// one. 0 means DefaultUDPPort, or a free pair when Listen's port is 0
	// (tests).
	UDPPort int
	// TCPOnly disables the UDP transport.
	TCPOnly bool
	// Username and Password, when set, are required to read (Basic or
	// Digest authentication).
	Username string
	Password configs.Secret
	// SessionTimeout bounds the time from connect to PLAY; 0 means
	// DefaultSessionTimeout.
	SessionTimeout time.Duration
	// IdleTimeout closes a connection silent this long before it plays,
	// and a playing session that sends nothing (no RTCP, no keep-alive)
	// this long; 0 means DefaultIdleTimeout.
	IdleTimeout time.Duration
	// MaxConnsPerAddr bounds one client address's connections; 0 means
	// DefaultMaxConnsPerAddr.
	MaxConnsPerAddr int
	// MaxConns bounds every connection; 0 means DefaultMaxConns.
	MaxConns int
}

// channels is the part of the hub the server needs.
type channels interface {
	Channel(name string) (*relay.Channel, error)
	// Watch returns the channels and a channel closed when that set
	// changes (config reload).
	Watch() ([]*relay.Channel, <-chan struct{})
}

// Server is the RTSP server.
type Server struct {
	cfg       Config
	hub       channels
	log       zerolog.Logger
	met       *metrics
	srv       *gortsplib.Server
	addr      net.Addr
	udpAddr   net.Addr
	closeOnce sync.Once

	mu      sync.RWMutex
	streams map[string]*gortsplib.ServerStream // live channels
	readers map[*gortsplib.ServerSession]string
	counts  map[string]int
}

// New validates cfg and binds the TCP port and, unless TCPOnly, the two
// UDP ports. Call Run, or Close if Run is never called.
func New(cfg Config, hub channels, log zerolog.Logger, reg prometheus.Registerer) (_ *Server, err error) {
	if cfg.Listen == "" {
		return nil, errors.New("rtsp.listen: empty address")
	}
	if (cfg.Username == "") != !cfg.Password.IsSet() {
		return nil, errors.New("rtsp: set both username and password, or neither")
	}
	if cfg.UDPPort%2 != 0 || cfg.UDPPort < 0 || cfg.UDPPort > 65534 {
		return nil, fmt.Errorf("rtsp UDP port %d: use an even port below 65535", cfg.UDPPort)
	}
	cfg.SessionTimeout = cmp.Or(cfg.SessionTimeout, DefaultSessionTimeout)
	cfg.IdleTimeout = cmp.Or(cfg.IdleTimeout, DefaultIdleTimeout)
	cfg.MaxConnsPerAddr = cmp.Or(cfg.MaxConnsPerAddr, DefaultMaxConnsPerAddr)
	cfg.MaxConns = cmp.Or(cfg.MaxConns, DefaultMaxConns)
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
		log:     log.With().Str("component", "publish.rtsp").Logger(),
		met:     met,
		streams: map[string]*gortsplib.ServerStream{},
		readers: map[*gortsplib.ServerSession]string{},
		counts:  map[string]int{},
	}

	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return nil, fmt.Errorf("rtsp.listen %s: %w", cfg.Listen, err)
	}
	s.addr = ln.Addr()
	var udpRTP, udpRTCP net.PacketConn
	defer func() {
		if err != nil {
			ln.Close()
			if udpRTP != nil {
				udpRTP.Close()
				udpRTCP.Close()
			}
		}
	}()
	guarded := &guardListener{
		Listener: addrlimit.NewListener(ln, cfg.MaxConnsPerAddr, cfg.MaxConns, func(r addrlimit.Result) {
			if r == addrlimit.AddrFull {
				met.refused.WithLabelValues("address_busy").Inc()
			} else {
				met.refused.WithLabelValues("overloaded").Inc()
			}
		}),
		session: cfg.SessionTimeout,
		idle:    cfg.IdleTimeout,
	}
	s.srv = &gortsplib.Server{
		Handler:        s,
		RTSPAddress:    ln.Addr().String(),
		WriteQueueSize: writeQueuePackets,
		ReadTimeout:    cfg.IdleTimeout,
		// The listeners are bound here, so a taken port fails New; gortsplib
		// gets them through these hooks.
		Listen: func(string, string) (net.Listener, error) { return guarded, nil },
	}
	if !cfg.TCPOnly {
		host, port, _ := net.SplitHostPort(cfg.Listen)
		udpRTP, udpRTCP, err = bindUDPPair(host, cfg.UDPPort, port == "0" && cfg.UDPPort == 0)
		if err != nil {
			return nil, err
		}
		s.udpAddr = udpRTP.LocalAddr()
		conns := map[string]net.PacketConn{
			udpRTP.LocalAddr().String():  udpRTP,
			udpRTCP.LocalAddr().String(): udpRTCP,
		}
		s.srv.UDPRTPAddress = udpRTP.LocalAddr().String()
		s.srv.UDPRTCPAddress = udpRTCP.LocalAddr().String()
		s.srv.ListenPacket = func(_, address string) (net.PacketConn, error) {
			if c, ok := conns[address]; ok {
				return c, nil
			}
			return nil, fmt.Errorf("rtsp: unexpected UDP listener %s", address)
		}
	}
	if err := s.srv.Start(); err != nil {
		return nil, fmt.Errorf("rtsp server: %w", err)
	}
	return s, nil
}

// bindUDPPair binds two consecutive UDP ports, the first even. With free,
// it picks a free pair instead of port.
func bindUDPPair(host string, port int, free bool) (rtp, rtcp net.PacketConn, err error) {
	if !free {
		if port == 0 {
			port = DefaultUDPPort
		}
		rtp, err = net.ListenPacket("udp", net.JoinHostPort(host, strconv.Itoa(port)))
		if err != nil {
			return nil, nil, fmt.Errorf("rtsp UDP port %d: %w", port, err)
		}
		rtcp, err = net.ListenPacket("udp", net.JoinHostPort(host, strconv.Itoa(port+1)))
		if err != nil {
			rtp.Close()
			return nil, nil, fmt.Errorf("rtsp UDP port %d: %w", port+1, err)
		}
		return rtp, rtcp, nil
	}
	for range 100 {
		rtp, err = net.ListenPacket("udp", net.JoinHostPort(host, "0"))
		if err != nil {
			return nil, nil, fmt.Errorf("rtsp UDP ports: %w", err)
		}
		p := rtp.LocalAddr().(*net.UDPAddr).Port
		if p%2 == 0 && p < 65535 {
			rtcp, err = net.ListenPacket("udp", net.JoinHostPort(host, strconv.Itoa(p+1)))
			if err == nil {
				return rtp, rtcp, nil
			}
		}
		rtp.Close()
	}
	return nil, nil, errors.New("rtsp UDP ports: no free pair of consecutive ports")
}

// Addr is the TCP address the server listens on.
func (s *Server) Addr() net.Addr { return s.addr }

// UDPAddr is the UDP address RTP is sent from, nil with TCPOnly.
func (s *Server) UDPAddr() net.Addr { return s.udpAddr }

// Viewers returns the number of RTSP readers playing a channel.
func (s *Server) Viewers(channel string) int {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.counts[channel]
}

// Run serves every channel while it is live, until ctx is cancelled or
// the server fails, and returns once every goroutine has exited.
func (s *Server) Run(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	s.log.Info().Str("url", "rtsp://"+s.addr.String()+"/{channel}").Bool("udp", !s.cfg.TCPOnly).
		Bool("credentials_required", s.cfg.Username != "").Msg("RTSP output ready")
	var wg sync.WaitGroup
	// One feed per channel, each with its own cancel so that a channel
	// removed by a reload stops its feed and leaves the others alone.
	feeds := map[*relay.Channel]context.CancelFunc{}
	reconcile := func() <-chan struct{} {
		list, changed := s.hub.Watch()
		keep := make(map[*relay.Channel]bool, len(list))
		for _, ch := range list {
			keep[ch] = true
			if feeds[ch] == nil {
				fctx, fcancel := context.WithCancel(ctx)
				feeds[ch] = fcancel
				wg.Go(func() { s.feed(fctx, ch) })
			}
		}
		for ch, fcancel := range feeds {
			if !keep[ch] {
				fcancel()
				delete(feeds, ch)
			}
		}
		return changed
	}
	changed := reconcile()
	failed := make(chan error, 1)
	go func() { failed <- s.srv.Wait() }()

	var err error
loop:
	for {
		select {
		case <-changed:
			changed = reconcile()
		case <-ctx.Done():
			break loop
		case err = <-failed:
			err = fmt.Errorf("rtsp server: %w", err)
			break loop
		}
	}
	cancel()
	wg.Wait()
	s.Close()
	if err == nil {
		<-failed
	}
	return err
}

// Close stops the server and disconnects every reader. It is idempotent.
func (s *Server) Close() error {
	s.closeOnce.Do(s.srv.Close)
	return nil
}

// feed serves ch each time it goes live, until ctx is cancelled.
func (s *Server) feed(ctx context.Context, ch *relay.Channel) {
	for {
		state, changed := ch.State()
		if state != relay.StateIdle {
			s.serveSession(ctx, ch, changed)
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

// serveSession creates the channel's stream and feeds it from one relay
// subscription until the channel goes idle or ctx is cancelled.
func (s *Server) serveSession(ctx context.Context, ch *relay.Channel, changed <-chan struct{}) {
	sub := ch.Subscribe("rtsp", queueFrames)
	defer sub.Close()
	log := s.log.With().Str("channel", ch.Name()).Logger()

	var st *stream
	stop := func() {
		if st == nil {
			return
		}
		s.setStream(ch.Name(), nil)
		st.close()
		st = nil
	}
	defer stop()
	start := func(tr *relay.Tracks) {
		var err error
		if st, err = newStream(s.srv, tr); err != nil {
			// Readers get 404 until the next session.
			log.Error().Err(err).Msg("cannot serve the channel over RTSP")
			return
		}
		s.setStream(ch.Name(), st.st)
		log.Info().Msg("channel readable over RTSP")
	}
	if tr := ch.Tracks(); tr != nil {
		start(tr)
	}
	for {
		select {
		case f := <-sub.Frames():
			if st == nil && f.Tracks != nil {
				start(f.Tracks)
			}
			if st == nil {
				continue
			}
			err := st.write(f)
			if errors.Is(err, errTracksChanged) {
				log.Info().Msg("the publisher changed its audio: RTSP readers must reconnect")
				stop()
				start(f.Tracks)
				if st != nil {
					err = st.write(f)
				}
			}
			if err != nil {
				log.Error().Err(err).Msg("RTSP stream failed: readers disconnected")
				stop()
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

func (s *Server) setStream(channel string, st *gortsplib.ServerStream) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if st == nil {
		delete(s.streams, channel)
	} else {
		s.streams[channel] = st
	}
}

// channelOf maps a request path ("/demo", "/demo/") to a channel name.
func channelOf(path string) string {
	return strings.TrimSuffix(strings.TrimPrefix(path, "/"), "/")
}

// authorize checks the read credentials, if any.
func (s *Server) authorize(conn *gortsplib.ServerConn, req *base.Request) (*base.Response, error) {
	if s.cfg.Username == "" || s.verify(conn, req) {
		return nil, nil
	}
	// gortsplib answers 401 with a challenge when no credentials were
	// sent, and closes the connection after wrong ones.
	if _, sent := req.Header["Authorization"]; sent {
		s.met.refused.WithLabelValues("unauthorized").Inc()
		s.log.Warn().Str("remote", conn.NetConn().RemoteAddr().String()).Msg("RTSP reader refused: wrong credentials")
	}
	return &base.Response{StatusCode: base.StatusUnauthorized}, liberrors.ErrServerAuth{}
}

// lookup returns the live stream of the channel at path, or a 404.
func (s *Server) lookup(path string) (*gortsplib.ServerStream, *base.Response) {
	s.mu.RLock()
	st := s.streams[channelOf(path)]
	s.mu.RUnlock()
	if st == nil {
		s.met.refused.WithLabelValues("not_live").Inc()
		return nil, &base.Response{StatusCode: base.StatusNotFound}
	}
	return st, &base.Response{StatusCode: base.StatusOK}
}

// OnDescribe implements gortsplib.ServerHandlerOnDescribe.
func (s *Server) OnDescribe(ctx *gortsplib.ServerHandlerOnDescribeCtx) (*base.Response, *gortsplib.ServerStream, error) {
	if res, err := s.authorize(ctx.Conn, ctx.Request); res != nil {
		return res, nil, err
	}
	st, res := s.lookup(ctx.Path)
	return res, st, nil
}

// OnSetup implements gortsplib.ServerHandlerOnSetup.
func (s *Server) OnSetup(ctx *gortsplib.ServerHandlerOnSetupCtx) (*base.Response, *gortsplib.ServerStream, error) {
	if res, err := s.authorize(ctx.Conn, ctx.Request); res != nil {
		return res, nil, err
	}
	st, res := s.lookup(ctx.Path)
	// A second SETUP must name the stream of the first: the channel may
	// have restarted in between.
	if prev := ctx.Session.SetuppedStream(); st != nil && prev != nil && prev != st {
		return &base.Response{StatusCode: base.StatusNotFound}, nil, nil
	}
	return res, st, nil
}

// OnPlay implements gortsplib.ServerHandlerOnPlay: the reader counts as
// a viewer until its session closes.
func (s *Server) OnPlay(ctx *gortsplib.ServerHandlerOnPlayCtx) (*base.Response, error) {
	name := channelOf(ctx.Session.SetuppedPath())
	s.mu.Lock()
	if _, ok := s.readers[ctx.Session]; !ok {
		s.readers[ctx.Session] = name
		s.counts[name]++
		s.met.viewers.WithLabelValues(name, "rtsp").Inc()
		s.met.sessions.WithLabelValues(name, "rtsp").Inc()
	}
	s.mu.Unlock()
	played(ctx.Conn)
	ev := s.log.Info().Str("channel", name).Str("remote", ctx.Conn.NetConn().RemoteAddr().String())
	if tr := ctx.Session.SetuppedTransport(); tr != nil {
		ev = ev.Str("transport", tr.String())
	}
	ev.Msg("RTSP reader started")
	return &base.Response{StatusCode: base.StatusOK}, nil
}

// OnSessionClose implements gortsplib.ServerHandlerOnSessionClose.
func (s *Server) OnSessionClose(ctx *gortsplib.ServerHandlerOnSessionCloseCtx) {
	s.mu.Lock()
	name, ok := s.readers[ctx.Session]
	if ok {
		delete(s.readers, ctx.Session)
		s.counts[name]--
		if s.counts[name] == 0 {
			delete(s.counts, name)
		}
		s.met.viewers.WithLabelValues(name, "rtsp").Dec()
	}
	s.mu.Unlock()
	if ok {
		s.log.Info().Str("channel", name).AnErr("reason", ctx.Error).Msg("RTSP reader left")
	}
}

// OnStreamWriteError implements gortsplib.ServerHandlerOnStreamWriteError:
// a slow reader's queue is full and the packet is dropped for it.
func (s *Server) OnStreamWriteError(ctx *gortsplib.ServerHandlerOnStreamWriteErrorCtx) {
	s.met.dropped.WithLabelValues(channelOf(ctx.Session.SetuppedPath())).Inc()
}

// OnDecodeError implements gortsplib.ServerHandlerOnDecodeError: a
// reader sent undecodable RTCP. It is ignored (gortsplib would log it).
func (s *Server) OnDecodeError(*gortsplib.ServerHandlerOnDecodeErrorCtx) {}

// OnPacketsLost implements gortsplib.ServerHandlerOnPacketsLost. Readers
// send no RTP, so nothing is lost; it keeps gortsplib from logging.
func (s *Server) OnPacketsLost(*gortsplib.ServerHandlerOnPacketsLostCtx) {}
