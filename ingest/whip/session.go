package whip

import (
	"context"
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/interceptor"
	"github.com/pion/interceptor/pkg/nack"
	"github.com/pion/interceptor/pkg/report"
	"github.com/pion/rtcp"
	"github.com/pion/webrtc/v4"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	pubwebrtc "github.com/seance-relay/seance/publish/webrtc"
	"github.com/seance-relay/seance/relay"
	"github.com/seance-relay/seance/transcode"
)

const (
	// periodicKeyframe is the longest keyframe interval seance lets an
	// on-demand publisher have while a sink wants regular keyframes
	// (YouTube rejects intervals over 4 s), measured in the stream's own
	// timestamps and, as a fallback, on the wall clock (keyframeDue).
	periodicKeyframe = 2 * time.Second
	// retryKeyframe is how long seance waits for a requested keyframe
	// before asking again.
	retryKeyframe = time.Second
	// minPLIInterval coalesces bursts of requests (several new viewers)
	// into one PLI.
	minPLIInterval = 250 * time.Millisecond
	// gatherTimeout bounds ICE gathering before the answer is sent.
	gatherTimeout = 3 * time.Second
)

// session is one WHIP publisher.
type session struct {
	id     string
	srv    *Server
	ch     *relay.Channel
	remote string // the HTTP client, until ICE knows better
	// internal is set for seance's own publishers (InternalHandler).
	internal bool
	// cands bounds the remote ICE candidates (offer and trickle).
	cands *pubwebrtc.Candidates
	log   zerolog.Logger
	pc    *webrtc.PeerConnection
	epoch time.Time            // PTS origin of both tracks
	tc    *transcode.OpusToAAC // nil when the offer has no Opus
	met   sessionMetrics

	ctx       context.Context
	cancel    context.CancelFunc
	connected chan struct{}
	connOnce  sync.Once
	endOnce   sync.Once
	wg        sync.WaitGroup // the session's goroutines

	tmu       sync.Mutex // guards ended and the track flags against OnTrack
	ended     bool
	haveVideo bool
	haveAudio bool

	wmu      sync.Mutex     // serialises writes to pub
	pub      *relay.Session // nil until the first keyframe
	firstPTS time.Duration  // of the first video frame published

	videoSSRC atomic.Uint32
	published atomic.Bool
	lastPLI   atomic.Int64 // unix ns
	lastKey   atomic.Int64 // unix ns, last IDR received
}

// keyframeDue says whether to ask a publisher for a keyframe because a
// sink wants one regularly: the last keyframe is age old, sincePLI has
// passed since the last request, and answered says a keyframe arrived
// after that request. An unanswered request is repeated only after
// retryKeyframe.
//
// readVideo measures age at each frame in the stream's own timestamps,
// the clock destinations judge intervals by; run measures it on the wall
// clock from the keyframe's arrival, a fallback for a publisher whose
// video stopped or whose timestamps went backwards. A keyframe that
// reaches seance later than its timestamp says (a publisher's encoder
// that fell behind capture, a retransmitted packet) is older in the
// stream than on arrival: counting from its arrival alone delayed the
// next one by as much, and YouTube saw the sum.
func keyframeDue(age, sincePLI time.Duration, answered bool) bool {
	return age >= periodicKeyframe && (answered || sincePLI >= retryKeyframe)
}

// askPeriodicKeyframe asks for a keyframe if the last one is age old in
// the stream's timestamps and a sink wants regular keyframes.
func (s *session) askPeriodicKeyframe(age time.Duration) {
	if age < periodicKeyframe || !s.ch.PeriodicKeyframesWanted() {
		return
	}
	now := time.Now().UnixNano()
	last := s.lastPLI.Load()
	if keyframeDue(age, time.Duration(now-last), s.lastKey.Load() >= last) {
		s.pli()
	}
}

// sessionMetrics are the series of the session's channel.
type sessionMetrics struct {
	keyframes prometheus.Counter
	lost      prometheus.Counter
	badVideo  prometheus.Counter
	badAudio  prometheus.Counter
}

func newSession(srv *Server, ch *relay.Channel, id, remote string) *session {
	name := ch.Name()
	s := &session{
		id:        id,
		srv:       srv,
		ch:        ch,
		remote:    remote,
		log:       srv.log.With().Str("channel", name).Logger(),
		epoch:     time.Now(),
		connected: make(chan struct{}),
		met: sessionMetrics{
			keyframes: srv.met.keyframes.WithLabelValues(name),
			lost:      srv.met.lost.WithLabelValues(name),
			badVideo:  srv.met.badPackets.WithLabelValues(name, "video"),
			badAudio:  srv.met.badPackets.WithLabelValues(name, "audio"),
		},
	}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	return s
}

// api builds the session's pion API: H.264 (packetization mode 1) and
// Opus only, receive-side interceptors only.
func (s *session) api() (*webrtc.API, error) {
	me := &webrtc.MediaEngine{}
	fb := []webrtc.RTCPFeedback{{Type: "nack"}, {Type: "nack", Parameter: "pli"}, {Type: "ccm", Parameter: "fir"}}
	pt := webrtc.PayloadType(102)
	for _, p := range h264Profiles {
		c := webrtc.RTPCodecParameters{
			RTPCodecCapability: webrtc.RTPCodecCapability{
				MimeType:     webrtc.MimeTypeH264,
				ClockRate:    90000,
				SDPFmtpLine:  "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=" + p + "1f",
				RTCPFeedback: fb,
			},
			PayloadType: pt,
		}
		if err := me.RegisterCodec(c, webrtc.RTPCodecTypeVideo); err != nil {
			return nil, err
		}
		pt++
	}
	opus := webrtc.RTPCodecParameters{
		RTPCodecCapability: webrtc.RTPCodecCapability{
			MimeType:    webrtc.MimeTypeOpus,
			ClockRate:   48000,
			Channels:    2,
			SDPFmtpLine: "minptime=10;useinbandfec=1;stereo=1;sprop-stereo=1",
		},
		PayloadType: 111,
	}
	if err := me.RegisterCodec(opus, webrtc.RTPCodecTypeAudio); err != nil {
		return nil, err
	}

	// NACK generator: seance asks the publisher to resend what the network
	// lost (RFC 4585 6.2.1). Receiver reports tell the publisher's
	// congestion control about loss (RFC 3550 6.4.2), and transport-wide
	// feedback lets browsers estimate the bandwidth precisely.
	lf := s.srv.cfg.SettingEngine.LoggerFactory
	reg := &interceptor.Registry{}
	genOpts := []nack.GeneratorOption{nack.GeneratorMaxNacksPerPacket(4)}
	rrOpts := []report.ReceiverOption{}
	if lf != nil {
		genOpts = append(genOpts, nack.WithGeneratorLoggerFactory(lf))
		rrOpts = append(rrOpts, report.WithReceiverLoggerFactory(lf))
	}
	gen, err := nack.NewGeneratorInterceptor(genOpts...)
	if err != nil {
		return nil, err
	}
	rr, err := report.NewReceiverInterceptor(rrOpts...)
	if err != nil {
		return nil, err
	}
	reg.Add(gen)
	reg.Add(rr)
	if err := webrtc.ConfigureTWCCSender(me, reg); err != nil {
		return nil, err
	}
	// A publisher sends media every 20 ms, so 3 s of silence means it is
	// gone: it is reaped within 8 s (3 s disconnected + 5 s failed) and
	// the channel's grace period starts.
	se := s.srv.cfg.SettingEngine
	se.SetICETimeouts(3*time.Second, 5*time.Second, time.Second)
	if s.internal {
		// seance's own publishers (the meeting capture's browser) run on
		// this machine: they reach it over loopback, which viewers'
		// sessions may not announce (webrtc.announce_loopback).
		se.SetIncludeLoopbackCandidate(true)
	}
	return webrtc.NewAPI(webrtc.WithMediaEngine(me), webrtc.WithSettingEngine(se), webrtc.WithInterceptorRegistry(reg)), nil
}

// negotiate answers the offer. On error nothing is left running.
func (s *session) negotiate(offer string, info offerInfo) (_ string, err error) {
	if info.audio {
		if s.tc, err = transcode.NewOpusToAAC(0); err != nil {
			return "", fmt.Errorf("opus to aac: %w", err)
		}
	}
	api, err := s.api()
	if err != nil {
		return "", err
	}
	pc, err := api.NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		return "", err
	}
	defer func() {
		if err != nil {
			// Never started: closing must not run end's teardown.
			s.endOnce.Do(func() {})
			s.cancel()
			_ = pc.Close()
		}
	}()
	s.pc = pc
	pc.OnTrack(s.onTrack)
	pc.OnConnectionStateChange(s.onConnectionState)
	if err := pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeOffer, SDP: offer}); err != nil {
		return "", fmt.Errorf("%w: %s", ErrBadOffer, err)
	}
	ans, err := pc.CreateAnswer(nil)
	if err != nil {
		return "", fmt.Errorf("%w: %s", ErrBadOffer, err)
	}
	gathered := webrtc.GatheringCompletePromise(pc)
	if err := pc.SetLocalDescription(ans); err != nil {
		return "", fmt.Errorf("%w: %s", ErrBadOffer, err)
	}
	select {
	case <-gathered:
	case <-time.After(gatherTimeout):
	}
	local := pc.LocalDescription()
	if !answerReceivesH264(local.SDP) {
		return "", fmt.Errorf("%w: no H.264 format of the offer could be accepted", ErrNoH264)
	}
	return local.SDP, nil
}

// answerReceivesH264 checks that the answer accepts a video section with
// H.264.
func answerReceivesH264(answer string) bool {
	desc := webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: answer}
	sd, err := desc.Unmarshal()
	if err != nil {
		return false
	}
	for _, md := range sd.MediaDescriptions {
		if md.MediaName.Media != "video" || md.MediaName.Port.Value == 0 {
			continue
		}
		for _, a := range md.Attributes {
			if a.Key == "rtpmap" && strings.Contains(strings.ToUpper(a.Value), " H264/") {
				return true
			}
		}
	}
	return false
}

// stale says the publisher's media stopped: ICE lost it (disconnected or
// failed) and the session is only waiting to be reaped.
func (s *session) stale() bool {
	switch s.pc.ConnectionState() {
	case webrtc.PeerConnectionStateDisconnected, webrtc.PeerConnectionStateFailed, webrtc.PeerConnectionStateClosed:
		return true
	}
	return false
}

// start runs the control loop.
func (s *session) start() {
	s.tmu.Lock()
	defer s.tmu.Unlock()
	if !s.ended {
		s.wg.Go(s.run)
	}
}

func (s *session) onConnectionState(st webrtc.PeerConnectionState) {
	switch st {
	case webrtc.PeerConnectionStateConnected:
		s.connOnce.Do(func() { close(s.connected) })
	case webrtc.PeerConnectionStateFailed:
		s.end("ice_failed")
	case webrtc.PeerConnectionStateClosed:
		s.end("closed")
	}
}

// onTrack starts a reader for the first H.264 track and the first Opus
// track; others (a second video, simulcast layers) are left unread.
func (s *session) onTrack(t *webrtc.TrackRemote, r *webrtc.RTPReceiver) {
	s.tmu.Lock()
	defer s.tmu.Unlock()
	if s.ended {
		return
	}
	mime := t.Codec().MimeType
	switch {
	case t.Kind() == webrtc.RTPCodecTypeVideo && !s.haveVideo && strings.EqualFold(mime, webrtc.MimeTypeH264):
		s.haveVideo = true
		s.videoSSRC.Store(uint32(t.SSRC()))
		s.wg.Go(func() { s.readVideo(t) })
	case t.Kind() == webrtc.RTPCodecTypeAudio && !s.haveAudio && s.tc != nil && strings.EqualFold(mime, webrtc.MimeTypeOpus):
		s.haveAudio = true
		s.wg.Go(func() { s.readAudio(t) })
	default:
		return
	}
	// Reading RTCP lets the interceptors see the publisher's sender
	// reports (for the LSR/DLSR of receiver reports, RFC 3550 6.4.1).
	s.wg.Go(func() {
		for {
			if _, _, err := r.ReadRTCP(); err != nil {
				return
			}
		}
	})
}

// run waits for the connection, then asks for keyframes: at once, when a
// sink needs one, and when no keyframe arrived for 2 s while a sink wants
// them regularly (readVideo also asks when the last one is 2 s old in the
// stream's timestamps).
func (s *session) run() {
	timeout := time.NewTimer(s.srv.cfg.ConnectTimeout)
	defer timeout.Stop()
	select {
	case <-s.ctx.Done():
		return
	case <-timeout.C:
		s.log.Warn().Str("remote", s.remote).Dur("timeout", s.srv.cfg.ConnectTimeout).Msg("WHIP publisher did not connect")
		s.end("ice_timeout")
		return
	case <-s.connected:
	}
	s.log.Info().Str("remote", s.remoteAddr()).Msg("WHIP publisher connected; waiting for its first keyframe")
	tick := time.NewTicker(minPLIInterval)
	defer tick.Stop()
	stats := time.NewTicker(time.Second)
	defer stats.Stop()
	for {
		select {
		case <-s.ctx.Done():
			return
		case <-s.ch.KeyframeRequests():
			s.pli()
		case now := <-tick.C:
			lastPLI, lastKey := s.lastPLI.Load(), s.lastKey.Load()
			sincePLI := now.Sub(time.Unix(0, lastPLI))
			sinceKey := now.Sub(time.Unix(0, lastKey))
			switch {
			case !s.published.Load() && sincePLI >= retryKeyframe:
				s.pli()
			case s.ch.PeriodicKeyframesWanted() && keyframeDue(sinceKey, sincePLI, lastKey >= lastPLI):
				s.pli()
			}
		case <-stats.C:
			s.reportRTT()
		}
	}
}

// pli asks the publisher for a keyframe (RFC 4585 6.3.1), at most once per
// minPLIInterval.
func (s *session) pli() {
	ssrc := s.videoSSRC.Load()
	if ssrc == 0 {
		return
	}
	now := time.Now().UnixNano()
	last := s.lastPLI.Load()
	if now-last < int64(minPLIInterval) || !s.lastPLI.CompareAndSwap(last, now) {
		return
	}
	if err := s.pc.WriteRTCP([]rtcp.Packet{&rtcp.PictureLossIndication{MediaSSRC: ssrc}}); err != nil {
		return
	}
	s.met.keyframes.Inc()
}

// iceTransport returns the session's ICE transport, nil before it has one.
func (s *session) iceTransport() *webrtc.ICETransport {
	for _, r := range s.pc.GetReceivers() {
		if t := r.Transport(); t != nil {
			return t.ICETransport()
		}
	}
	return nil
}

// reportRTT publishes the round-trip time ICE consent checks measure on
// the selected candidate pair (RFC 7675; the publisher sends no RTCP that
// would let a receiver measure it).
func (s *session) reportRTT() {
	it := s.iceTransport()
	if it == nil {
		return
	}
	if st, ok := it.GetSelectedCandidatePairStats(); ok && st.CurrentRoundTripTime > 0 {
		s.srv.met.rtt.WithLabelValues(s.ch.Name()).Set(st.CurrentRoundTripTime)
	}
}

// remoteAddr is the publisher's media address once ICE has chosen one.
func (s *session) remoteAddr() string {
	if it := s.iceTransport(); it != nil {
		if p, err := it.GetSelectedCandidatePair(); err == nil && p != nil && p.Remote != nil {
			return net.JoinHostPort(p.Remote.Address, strconv.Itoa(int(p.Remote.Port)))
		}
	}
	return s.remote
}

// closePublisher releases the channel (its grace period starts).
func (s *session) closePublisher() {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	if s.pub != nil {
		s.pub.Close()
	}
}

// end closes the session once: its URL is gone at once; then the channel
// enters its grace period, the PeerConnection closes, and the goroutines
// exit. reason is a metric label. Do not call it with the server's lock
// held.
func (s *session) end(reason string) {
	s.endOnce.Do(func() {
		s.tmu.Lock()
		s.ended = true
		s.tmu.Unlock()
		s.cancel()
		s.srv.forget(s)
		s.srv.teardown(func() {
			s.closePublisher()
			// Closing the PeerConnection unblocks the readers.
			_ = s.pc.Close()
			s.wg.Wait()
			s.srv.met.rtt.DeleteLabelValues(s.ch.Name())
			s.srv.met.ended.WithLabelValues(s.ch.Name(), reason).Inc()
			s.srv.release(s)
			s.log.Info().Str("reason", reason).Dur("duration", time.Since(s.epoch)).Msg("WHIP session ended")
		})
	})
}
