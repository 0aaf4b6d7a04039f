// Package webrtc serves WebRTC viewers over WHEP: citizens' browsers get
// the channel with sub-second latency. Video (H.264) passes through
// untouched; audio is the channel's Opus (transcoded once per channel).
// Every session shares one UDP port (ICE UDP mux), and optionally one TCP
// port (ICE-TCP) for viewers whose network blocks UDP.
package webrtc

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/pion/ice/v4"
	"github.com/pion/interceptor"
	"github.com/pion/webrtc/v4"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/seance-relay/seance/addrlimit"
	"github.com/seance-relay/seance/relay"
)

// Errors of CreateSession, mapped to WHEP status codes by the handler.
var (
	// ErrNotLive: the channel has no publisher (409, retry later).
	ErrNotLive = errors.New("the channel is not live")
	// ErrChannelFull: the channel's viewer limit is reached (503).
	ErrChannelFull = errors.New("the channel has reached its viewer limit")
	// ErrServerFull: the server's viewer limit is reached (503).
	ErrServerFull = errors.New("the server has reached its viewer limit")
	// ErrBadOffer: the SDP offer is malformed or offers nothing playable (400).
	ErrBadOffer = errors.New("bad SDP offer")
	// ErrSessionNotFound: no session has that id (404).
	ErrSessionNotFound = errors.New("session not found")
)

// DefaultMaxViewers bounds viewers per server when Config.MaxViewers is 0.
const DefaultMaxViewers = 1000

// Config configures the WebRTC server.
type Config struct {
	// Host is the address the UDP and TCP ports bind to; "" is every
	// interface.
	Host string
	// UDPPort is the one UDP port every session shares (0 picks a free
	// one, for tests).
	UDPPort int
	// TCPPort, when set, accepts ICE-TCP on that port; 0 disables it. -1
	// picks a free port (tests).
	TCPPort int
	// NATIPs are public addresses announced instead of the host's own
	// (1:1 NAT, containers).
	NATIPs []string
	// MaxViewers bounds viewers on the server; 0 means DefaultMaxViewers.
	MaxViewers int
	// ChannelMaxViewers bounds viewers per channel; absent or 0 is no
	// limit but the server's.
	ChannelMaxViewers map[string]int
	// IncludeLoopback announces 127.0.0.1 candidates (tests and
	// same-machine viewers).
	IncludeLoopback bool
	// IncludePrivate announces private and link-local addresses (LAN
	// viewers). Without it they are not gathered, unless NATIPs rewrite
	// them to public ones.
	IncludePrivate bool
	// Interfaces, when set, are the only network interfaces whose
	// addresses are gathered.
	Interfaces []string
	// MaxCandidates bounds each session's remote ICE candidates (offer and
	// trickle); 0 means DefaultMaxCandidates.
	MaxCandidates int
	// MaxPending bounds sessions that have not connected yet, apart from
	// MaxViewers (which counts connected viewers); 0 means
	// DefaultMaxPending.
	MaxPending int
	// MaxPendingPerAddr bounds one client address's sessions that have not
	// connected yet; 0 means DefaultMaxPendingPerAddr, negative no bound.
	MaxPendingPerAddr int
	// MaxViewersPerAddr bounds one client address's connected viewers; 0
	// means DefaultMaxViewersPerAddr, negative no bound.
	MaxViewersPerAddr int
}

// withDefaults fills the limits left at 0.
func (c Config) withDefaults() Config {
	if c.MaxViewers == 0 {
		c.MaxViewers = DefaultMaxViewers
	}
	c.MaxCandidates = cmp.Or(c.MaxCandidates, DefaultMaxCandidates)
	c.MaxPending = cmp.Or(c.MaxPending, DefaultMaxPending)
	c.MaxPendingPerAddr = max(cmp.Or(c.MaxPendingPerAddr, DefaultMaxPendingPerAddr), 0)
	c.MaxViewersPerAddr = max(cmp.Or(c.MaxViewersPerAddr, DefaultMaxViewersPerAddr), 0)
	return c
}

// channels is the part of the hub the server needs.
type channels interface {
	Channel(name string) (*relay.Channel, error)
}

// Server hands out WHEP sessions.
type Server struct {
	cfg            Config
	hub            channels
	log            zerolog.Logger
	met            *metrics
	udp            net.PacketConn
	tcp            net.Listener
	se             webrtc.SettingEngine
	connectTimeout time.Duration

	ctx    context.Context
	cancel context.CancelFunc
	// tearing counts session teardowns in flight (under mu); Run waits on
	// drained until none is left. A WaitGroup would not do: teardowns
	// start at any time, also while Run waits.
	tearing int
	drained *sync.Cond

	// pending counts sessions not connected yet, per address and in all;
	// viewersBy counts connected viewers per address.
	pending   *addrlimit.Counter
	viewersBy *addrlimit.Counter

	mu         sync.Mutex
	sessions   map[string]*session
	perChannel map[string]int
	// connected counts the viewers whose ICE connected, per channel: the
	// viewer limits count these.
	connected map[string]int
}

// New binds the UDP port (and the TCP port when set).
func New(cfg Config, hub channels, log zerolog.Logger, reg prometheus.Registerer) (*Server, error) {
	cfg = cfg.withDefaults()
	log = log.With().Str("component", "publish.webrtc").Logger()
	udp, err := net.ListenPacket("udp", net.JoinHostPort(cfg.Host, strconv.Itoa(cfg.UDPPort)))
	if err != nil {
		return nil, fmt.Errorf("webrtc UDP port %d: %w", cfg.UDPPort, err)
	}
	met := newMetrics(reg)
	if reg == nil {
		reg = prometheus.NewRegistry()
	}
	if met.byQuality, err = relay.ViewersByQuality(reg); err != nil {
		udp.Close()
		return nil, err
	}
	// Every channel's viewers by quality start at 0.
	for name := range cfg.ChannelMaxViewers {
		if ch, err := hub.Channel(name); err == nil {
			met.quality(name, relay.QualityFull).Set(0)
			for _, r := range ch.Renditions() {
				met.quality(name, r.Name).Set(0)
			}
		}
	}
	s := &Server{
		cfg:            cfg,
		hub:            hub,
		log:            log,
		met:            met,
		udp:            udp,
		connectTimeout: 10 * time.Second,
		sessions:       make(map[string]*session),
		perChannel:     make(map[string]int),
		connected:      make(map[string]int),
		pending:        addrlimit.NewCounter(cfg.MaxPendingPerAddr, cfg.MaxPending),
		viewersBy:      addrlimit.NewCounter(cfg.MaxViewersPerAddr, 0),
	}
	lf := quietLoggers{}
	s.se.LoggerFactory = lf
	s.se.SetICEUDPMux(webrtc.NewICEUDPMux(lf.NewLogger("udpmux"), udp))
	types := []webrtc.NetworkType{webrtc.NetworkTypeUDP4, webrtc.NetworkTypeUDP6}
	if cfg.TCPPort != 0 {
		port := max(cfg.TCPPort, 0)
		tcp, err := net.Listen("tcp", net.JoinHostPort(cfg.Host, strconv.Itoa(port)))
		if err != nil {
			udp.Close()
			return nil, fmt.Errorf("webrtc ICE-TCP port %d: %w", cfg.TCPPort, err)
		}
		s.tcp = tcp
		s.se.SetICETCPMux(webrtc.NewICETCPMux(lf.NewLogger("tcpmux"), tcp, 8))
		types = append(types, webrtc.NetworkTypeTCP4, webrtc.NetworkTypeTCP6)
	}
	s.se.SetNetworkTypes(types)
	s.se.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
	s.se.SetIncludeLoopbackCandidate(cfg.IncludeLoopback)
	setCandidateFilters(&s.se, cfg)
	// A vanished viewer is reaped within 10 s: 3 s without traffic marks
	// it disconnected, 8 s failed, checked every second (pion checks at
	// the keepalive interval: 4 s + 6 s with 2 s keepalives took 10-12 s).
	// A live viewer answers the 1 s keepalives.
	s.se.SetICETimeouts(3*time.Second, 5*time.Second, time.Second)
	if len(cfg.NATIPs) > 0 {
		if err := s.se.SetICEAddressRewriteRules(natRules(cfg.NATIPs)...); err != nil {
			s.Close()
			return nil, fmt.Errorf("webrtc nat_ips: %w", err)
		}
	}
	if addrs := announced(cfg); len(addrs) == 0 && len(cfg.NATIPs) == 0 {
		log.Warn().Msg("no local address to announce to WebRTC viewers: set webrtc.announce_private for a LAN, webrtc.nat_ips behind NAT, or webrtc.announce_loopback for this machine")
	} else {
		log.Info().Strs("addresses", addrs).Strs("nat_ips", cfg.NATIPs).Msg("WebRTC candidates")
	}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	s.drained = sync.NewCond(&s.mu)
	return s, nil
}

// SettingEngine returns the settings every session of the server uses: the
// shared ICE UDP (and TCP) port, NAT rules and ICE timeouts. WHIP
// publishers use it so that they share the viewers' one UDP port.
func (s *Server) SettingEngine() webrtc.SettingEngine { return s.se }

// UDPAddr returns the bound UDP address.
func (s *Server) UDPAddr() net.Addr { return s.udp.LocalAddr() }

// TCPAddr returns the bound ICE-TCP address, nil when disabled.
func (s *Server) TCPAddr() net.Addr {
	if s.tcp == nil {
		return nil
	}
	return s.tcp.Addr()
}

// Close releases the ports of a server that will not Run.
func (s *Server) Close() error {
	s.cancel()
	if s.tcp != nil {
		s.tcp.Close()
	}
	return s.udp.Close()
}

// Run serves until ctx is cancelled, then ends every session and waits
// for their goroutines.
func (s *Server) Run(ctx context.Context) error {
	<-ctx.Done()
	s.cancel()
	s.mu.Lock()
	all := make([]*session, 0, len(s.sessions))
	for _, sess := range s.sessions {
		all = append(all, sess)
	}
	s.mu.Unlock()
	for _, sess := range all {
		sess.end("shutdown")
	}
	s.mu.Lock()
	for s.tearing > 0 {
		s.drained.Wait()
	}
	s.mu.Unlock()
	if s.tcp != nil {
		s.tcp.Close()
	}
	return s.udp.Close()
}

// Viewers returns the number of WebRTC viewers of a channel.
func (s *Server) Viewers(channel string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.perChannel[channel]
}

// reserve takes a pending slot for a session from addr (the zero Addr:
// no per-address bound), or says which limit is reached. Connected
// viewers are counted against the viewer limits: a channel that is full
// refuses at once, a pending session takes a seat when it connects
// (promote).
func (s *Server) reserve(channel string, addr netip.Addr) (release func(), err error) {
	s.mu.Lock()
	if err := s.full(channel); err != nil {
		s.mu.Unlock()
		return nil, err
	}
	s.perChannel[channel]++
	s.mu.Unlock()
	if addr.IsValid() {
		if s.viewersBy.Held(addr) >= s.cfg.MaxViewersPerAddr && s.cfg.MaxViewersPerAddr > 0 {
			s.unreserve(channel)
			return nil, ErrAddrBusy
		}
	}
	acquire := s.pending.Acquire
	if !addr.IsValid() {
		acquire = s.pending.AcquireShared
	}
	rel, r := acquire(addrOrAny(addr))
	switch r {
	case addrlimit.AddrFull:
		s.unreserve(channel)
		return nil, ErrAddrBusy
	case addrlimit.TotalFull:
		s.unreserve(channel)
		return nil, ErrServerFull
	}
	return rel, nil
}

// full says which viewer limit is reached (under s.mu).
func (s *Server) full(channel string) error {
	if s.ctx.Err() != nil {
		return ErrServerFull
	}
	total := 0
	for _, n := range s.connected {
		total += n
	}
	if total >= s.cfg.MaxViewers {
		return ErrServerFull
	}
	if limit := s.cfg.ChannelMaxViewers[channel]; limit > 0 && s.connected[channel] >= limit {
		return ErrChannelFull
	}
	return nil
}

// addrOrAny keys sessions with no known address (in-process callers)
// apart from every client; they are counted in the total only.
func addrOrAny(a netip.Addr) netip.Addr {
	if !a.IsValid() {
		return netip.IPv6Unspecified()
	}
	return a
}

// promote moves a session whose ICE connected from the pending budget to
// the viewer seats; false when the viewer limits are reached meanwhile.
func (s *Server) promote(sess *session) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.sessions[sess.id]; !ok || sess.seated {
		return nil
	}
	if err := s.full(sess.channel); err != nil {
		return err
	}
	if sess.from.IsValid() {
		rel, r := s.viewersBy.Acquire(sess.from)
		if r != addrlimit.OK {
			return ErrAddrBusy
		}
		sess.seatRelease = rel
	}
	s.connected[sess.channel]++
	sess.seated = true
	sess.pendingRelease()
	return nil
}

func (s *Server) unreserve(channel string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.perChannel[channel]--
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

func (s *Server) remove(sess *session, reason string) {
	s.mu.Lock()
	_, ok := s.sessions[sess.id]
	if ok {
		delete(s.sessions, sess.id)
		s.perChannel[sess.channel]--
		if sess.seated {
			s.connected[sess.channel]--
			if sess.seatRelease != nil {
				sess.seatRelease()
			}
		}
		sess.pendingRelease()
	}
	s.mu.Unlock()
	if !ok {
		return
	}
	s.met.viewers.WithLabelValues(sess.channel, "webrtc").Dec()
	s.met.ended.WithLabelValues(sess.channel, "webrtc", reason).Inc()
	sess.endQuality()
}

// natRules announces public addresses in place of local ones (1:1 NAT):
// "203.0.113.7" replaces every host address, "203.0.113.7/10.0.0.5" only
// 10.0.0.5.
func natRules(ips []string) []webrtc.ICEAddressRewriteRule {
	rules := make([]webrtc.ICEAddressRewriteRule, 0, len(ips))
	for _, ip := range ips {
		public, local, _ := strings.Cut(ip, "/")
		rules = append(rules, webrtc.ICEAddressRewriteRule{
			External:        []string{public},
			Local:           local,
			AsCandidateType: webrtc.ICECandidateTypeHost,
			Mode:            webrtc.ICEAddressRewriteReplace,
		})
	}
	return rules
}

// session returns a live session of a channel.
func (s *Server) session(channel, id string) (*session, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	sess, ok := s.sessions[id]
	if !ok || sess.channel != channel {
		return nil, ErrSessionNotFound
	}
	return sess, nil
}

// CreateSession answers an in-process viewer's SDP offer (no client
// address: only the server's bounds apply). It returns the answer and the
// session id.
func (s *Server) CreateSession(channel, offer string) (answer, id string, err error) {
	return s.CreateSessionFrom(channel, offer, netip.Addr{})
}

// CreateSessionFrom answers the SDP offer of a viewer at addr, counted
// against that address's bounds.
func (s *Server) CreateSessionFrom(channel, offer string, addr netip.Addr) (answer, id string, err error) {
	ch, err := s.hub.Channel(channel)
	if err != nil {
		return "", "", err
	}
	tracks := ch.Tracks()
	if st, _ := ch.State(); st == relay.StateIdle || tracks == nil || tracks.Video == nil {
		return "", "", ErrNotLive
	}
	cands := NewCandidates(s.cfg.MaxCandidates)
	if err := cands.TakeOffer(offer); err != nil {
		return "", "", err
	}
	release, err := s.reserve(channel, addr)
	if err != nil {
		return "", "", err
	}
	sess, answer, err := s.newSession(ch, tracks, offer)
	if err != nil {
		release()
		s.unreserve(channel)
		return "", "", err
	}
	sess.from, sess.cands, sess.pendingRelease = addrlimit.Key(addr), cands, release
	if !addr.IsValid() {
		sess.from = netip.Addr{}
	}
	s.mu.Lock()
	s.sessions[sess.id] = sess
	s.mu.Unlock()
	s.met.viewers.WithLabelValues(channel, "webrtc").Inc()
	s.met.sessions.WithLabelValues(channel, "webrtc").Inc()
	s.met.quality(channel, relay.QualityFull).Inc()
	sess.run()
	return answer, sess.id, nil
}

func (s *Server) newSession(ch *relay.Channel, tracks *relay.Tracks, offer string) (_ *session, _ string, err error) {
	created := time.Now()
	me := &webrtc.MediaEngine{}
	video := webrtc.RTPCodecCapability{
		MimeType:    webrtc.MimeTypeH264,
		ClockRate:   90000,
		SDPFmtpLine: h264Fmtp(tracks.Video.SPS),
		RTCPFeedback: []webrtc.RTCPFeedback{
			{Type: "nack"}, {Type: "nack", Parameter: "pli"}, {Type: "ccm", Parameter: "fir"},
		},
	}
	audio := webrtc.RTPCodecCapability{
		MimeType:    webrtc.MimeTypeOpus,
		ClockRate:   48000,
		Channels:    2,
		SDPFmtpLine: "minptime=10;useinbandfec=1;stereo=1;sprop-stereo=1",
	}
	if err := me.RegisterCodec(webrtc.RTPCodecParameters{RTPCodecCapability: video, PayloadType: 102}, webrtc.RTPCodecTypeVideo); err != nil {
		return nil, "", err
	}
	if err := me.RegisterCodec(webrtc.RTPCodecParameters{RTPCodecCapability: audio, PayloadType: 111}, webrtc.RTPCodecTypeAudio); err != nil {
		return nil, "", err
	}
	// No interceptors: NACKs are answered from the channel's shared
	// payloads, sender reports and RTT are handled by the session. This
	// keeps per-packet work per viewer to a header and the encryption.
	api := webrtc.NewAPI(webrtc.WithMediaEngine(me), webrtc.WithSettingEngine(s.se), webrtc.WithInterceptorRegistry(&interceptor.Registry{}))
	pc, err := api.NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		return nil, "", err
	}
	defer func() {
		if err != nil {
			_ = pc.Close()
		}
	}()
	if err := pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeOffer, SDP: offer}); err != nil {
		return nil, "", fmt.Errorf("%w: %s", ErrBadOffer, err)
	}
	id := newID()
	sess := &session{
		id:        id,
		channel:   ch.Name(),
		srv:       s,
		ch:        ch,
		pc:        pc,
		created:   created,
		connected: make(chan struct{}),
		pli:       make(chan struct{}, 1),
		layerReq:  make(chan string, 1),
		video:     &track{id: "video", stream: "seance", kind: webrtc.RTPCodecTypeVideo, codec: video},
	}
	sess.ctx, sess.cancel = context.WithCancelCause(s.ctx)
	sess.layerWant.Store(relay.QualityFull)
	sess.layerPlaying.Store(relay.QualityFull)
	// RFC 3550 5.1: the initial sequence numbers are random.
	sess.vseq, sess.aseq = uint16(randUint32()), uint16(randUint32())
	// An offer without a video section asks for the sound alone (the
	// player's « Son seul »): no video track, and no video is sent. An
	// offer with one must receive H.264.
	sess.audioOnly = !offersKind(pc, webrtc.RTPCodecTypeVideo)
	if sess.audioOnly {
		if !offersKind(pc, webrtc.RTPCodecTypeAudio) {
			return nil, "", fmt.Errorf("%w: the offer receives neither video nor audio", ErrBadOffer)
		}
		if tracks.Audio == nil {
			return nil, "", fmt.Errorf("%w: the offer receives audio only, and the channel has no audio", ErrBadOffer)
		}
	} else {
		if sess.vsender, err = pc.AddTrack(sess.video); err != nil {
			return nil, "", fmt.Errorf("%w: %s", ErrBadOffer, err)
		}
		if sess.video.want, err = answerH264(pc, sess.vsender, offer, video, tracks.Video.SPS); err != nil {
			return nil, "", fmt.Errorf("%w: %s", ErrBadOffer, err)
		}
	}
	if tracks.Audio != nil && offersKind(pc, webrtc.RTPCodecTypeAudio) {
		sess.audio = &track{id: "audio", stream: "seance", kind: webrtc.RTPCodecTypeAudio, codec: audio}
		if sess.asender, err = pc.AddTrack(sess.audio); err != nil {
			return nil, "", fmt.Errorf("%w: %s", ErrBadOffer, err)
		}
	}
	ans, err := pc.CreateAnswer(nil)
	if err != nil {
		return nil, "", fmt.Errorf("%w: %s", ErrBadOffer, err)
	}
	gathered := webrtc.GatheringCompletePromise(pc)
	if err := pc.SetLocalDescription(ans); err != nil {
		return nil, "", fmt.Errorf("%w: %s", ErrBadOffer, err)
	}
	select {
	case <-gathered:
	case <-time.After(3 * time.Second):
	}
	if _, _, _, ok := sess.video.binding(); !ok && !sess.audioOnly {
		return nil, "", fmt.Errorf("%w: the offer does not receive H.264 video", ErrBadOffer)
	}
	if sess.audioOnly {
		if _, _, _, ok := sess.audio.binding(); !ok {
			return nil, "", fmt.Errorf("%w: the offer does not receive Opus audio", ErrBadOffer)
		}
	}
	sess.sub = ch.Subscribe("webrtc", queueFrames)
	if sess.audio != nil {
		sess.opus = ch.WantOpus()
	}
	// Only a complete session may end: closing the PeerConnection of a
	// refused offer (the deferred Close) must not reach end.
	pc.OnConnectionStateChange(sess.onConnectionState)
	return sess, pc.LocalDescription().SDP, nil
}

// offersKind says whether the remote offer has a section of that kind.
func offersKind(pc *webrtc.PeerConnection, kind webrtc.RTPCodecType) bool {
	for _, t := range pc.GetTransceivers() {
		if t.Kind() == kind {
			return true
		}
	}
	return false
}

// answerH264 makes the answer hold one H.264 payload type: the viewer's
// first packetization-mode 1 payload type of the stream's profile, with
// the stream's own profile-level-id. Left alone, pion answers every H.264
// payload type of the offer, each with the offer's fmtp (Baseline and
// packetization-mode 0 included), and sends on the first. A viewer that
// offers none of the stream's profile gets its first packetization-mode 1
// payload type as offered (software decoders play any profile). It returns
// the payload type the track must bind to.
func answerH264(pc *webrtc.PeerConnection, sender *webrtc.RTPSender, offer string, ours webrtc.RTPCodecCapability, sps []byte) (webrtc.PayloadType, error) {
	var tr *webrtc.RTPTransceiver
	for _, t := range pc.GetTransceivers() {
		if t.Sender() == sender {
			tr = t
		}
	}
	remote, err := (&webrtc.SessionDescription{Type: webrtc.SDPTypeOffer, SDP: offer}).Unmarshal()
	if tr == nil || err != nil || len(sps) < 4 {
		return 0, nil
	}
	want := h264Profile(sps[1], sps[2])
	var pick *webrtc.RTPCodecParameters
	for _, md := range remote.MediaDescriptions {
		if md.MediaName.Media != "video" {
			continue
		}
		for _, f := range md.MediaName.Formats {
			pt, err := strconv.ParseUint(f, 10, 7)
			if err != nil {
				continue
			}
			c, err := remote.GetCodecForPayloadType(uint8(pt))
			if err != nil || !strings.EqualFold(c.Name, "H264") || fmtpParam(c.Fmtp, "packetization-mode") != "1" {
				continue
			}
			plid, _ := hex.DecodeString(fmtpParam(c.Fmtp, "profile-level-id"))
			if len(plid) == 3 && h264Profile(plid[0], plid[1]) == want {
				pick = &webrtc.RTPCodecParameters{RTPCodecCapability: ours, PayloadType: webrtc.PayloadType(pt)}
				break
			}
			if pick == nil {
				offered := ours
				offered.SDPFmtpLine = c.Fmtp
				pick = &webrtc.RTPCodecParameters{RTPCodecCapability: offered, PayloadType: webrtc.PayloadType(pt)}
			}
		}
		break
	}
	if pick == nil {
		return 0, errors.New("the offer does not receive H.264 video with packetization-mode=1")
	}
	return pick.PayloadType, tr.SetCodecPreferences([]webrtc.RTPCodecParameters{*pick})
}

// h264Profile names the profile of profile_idc and the constraint flags
// as browsers compare them (libwebrtc's h264_profile_level_id.cc): x264
// writes Main as 4d40 where Chrome offers 4d00, both Main.
func h264Profile(idc, iop byte) string {
	switch {
	case idc == 0x42 && iop&0x4f == 0x40, idc == 0x4d && iop&0x8f == 0x80, idc == 0x58 && iop&0xcf == 0xc0:
		return "constrained baseline"
	case idc == 0x42 && iop&0x4f == 0, idc == 0x58 && iop&0xcf == 0x80:
		return "baseline"
	case idc == 0x4d && iop&0xaf == 0:
		return "main"
	case idc == 0x64 && iop == 0:
		return "high"
	case idc == 0x64 && iop == 0x0c:
		return "constrained high"
	}
	return hex.EncodeToString([]byte{idc, iop})
}

// fmtpParam returns one parameter of an fmtp line.
func fmtpParam(line, key string) string {
	for kv := range strings.SplitSeq(line, ";") {
		if k, v, ok := strings.Cut(strings.TrimSpace(kv), "="); ok && strings.EqualFold(k, key) {
			return v
		}
	}
	return ""
}

// h264Fmtp advertises the profile and level the stream actually has
// (RFC 6184 8.1: profile-level-id is SPS bytes 1 to 3).
func h264Fmtp(sps []byte) string {
	pli := "42e01f"
	if len(sps) >= 4 {
		pli = hex.EncodeToString(sps[1:4])
	}
	return "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=" + pli
}

func newID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

func randUint32() uint32 {
	var b [4]byte
	_, _ = rand.Read(b[:])
	return binary.BigEndian.Uint32(b[:])
}
