package webrtc

import (
	"context"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/rtcp"
	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/seance-relay/seance/relay"
)

const (
	// queueFrames is a viewer's queue: room for a 4 s GOP at 30 fps with
	// its audio, so fast start never overflows.
	queueFrames = 512
	// lateAfter: a frame older than this when its turn comes is replayed
	// from the cache (fast start, PLI); it is sent at once with compressed
	// timestamps so the browser shows the picture now, and its audio is
	// skipped.
	lateAfter = 150 * time.Millisecond
	// ringSize is how many sent video packets a viewer can retransmit on
	// NACK (about 3 s of 2.5 Mbit/s video, ~300 packets/s). It stores
	// references to the channel's shared payloads (16 bytes each), not
	// copies.
	ringSize = 1024
	// srInterval is how often sender reports go out (RFC 3550 6.2: the
	// browser needs them for lip sync and RTT).
	srInterval = 2 * time.Second
	// resyncEvery bounds how often a viewer's picture loss is answered by
	// replaying the cached GOP.
	resyncEvery = 2 * time.Second
	// paceRate and paceBurst pace the frames replayed from the cache (fast
	// start, PLI): a token bucket of paceBurst bytes refilled at paceRate
	// bit/s, about five times Jibri's 2.5 Mbit/s. Sent at once, a 2 s GOP
	// (~600 KiB) overflowed browsers' receive buffers: Firefox lost 300 to
	// 900 packets in the first seconds on loopback. The IDR (~40-120 KiB)
	// still arrives within ~60 ms.
	paceRate  = 12_000_000
	paceBurst = 64 << 10
)

// sent is one retransmittable packet (16 bytes): where its payload lives
// in the channel's shared frames and the header it went out with. The
// marker bit is the frame's last packet's; an empty entry has no frame.
type sent struct {
	f   *relay.Frame
	ts  uint32
	seq uint16
	idx uint16
}

// session is one WHEP viewer.
type session struct {
	id      string
	channel string
	srv     *Server
	ch      *relay.Channel
	pc      *webrtc.PeerConnection
	video   *track
	audio   *track
	vsender *webrtc.RTPSender // nil for an audio-only session
	// paceTokens and paceAt are the replay pacer's bucket (writer
	// goroutine); see paceRate.
	paceTokens float64
	paceAt     time.Time
	// audioOnly: the offer had no video section (« Son seul »); only
	// audio is sent, and it starts at once rather than with a keyframe.
	audioOnly bool
	asender   *webrtc.RTPSender
	sub       *relay.Subscription
	opus      func()
	created   time.Time
	// from is the client's address (addrlimit.Key), zero in process;
	// cands its candidate budget; pendingRelease gives its pending slot
	// back (idempotent). seated and seatRelease are under srv.mu: the
	// session connected and holds a viewer seat.
	from           netip.Addr
	cands          *Candidates
	pendingRelease func()
	seated         bool
	seatRelease    func()

	ctx       context.Context
	cancel    context.CancelCauseFunc
	connected chan struct{}
	connOnce  sync.Once
	pli       chan struct{}
	// layerReq carries layer selections to the writer (latest wins);
	// layerWant is the last one asked, layerPlaying what the viewer
	// receives ("full" or a rendition's name); sse is the open event
	// stream's stop channel, nil when none (see layer.go).
	layerReq     chan string
	layerWant    atomic.Value // string
	layerPlaying atomic.Value // string
	sse          atomic.Pointer[chan struct{}]
	qmu          sync.Mutex // counts the viewer by quality (moveQuality)
	qdone        bool
	wg           sync.WaitGroup
	endOnce      sync.Once
	reason       atomic.Value // string

	// Owned by the writer goroutine.
	hdr        rtp.Header
	vStarted   bool
	vTS        uint32
	vLastPTS   time.Duration
	vLastDTS   time.Duration
	aStarted   bool
	aBaseTS    uint32
	aFirstPTS  time.Duration
	aLastPTS   time.Duration
	vseq, aseq uint16
	lastResync time.Time
	firstFrame bool
	replay     bool // resync is sending the cached GOP again
	vPackets   uint32
	vOctets    uint32
	aPackets   uint32
	aOctets    uint32
	lastVSend  time.Time
	lastASend  time.Time
	lastATS    uint32
	dropped    uint64
	mPackets   prometheus.Counter // the channel's, looked up once
	lay        layerState

	// ringMu is taken once per frame by the writer, once per NACK by
	// the RTCP reader.
	ringMu sync.Mutex
	ring   [ringSize]sent
	mNacks prometheus.Counter // owned by the video RTCP reader
	srMu   sync.Mutex
	srSent [8]srRecord
	srNext int
	lost   [2]uint32 // last cumulative loss per track, from receiver reports
}

type srRecord struct {
	mid uint32 // middle 32 bits of the NTP timestamp
	at  time.Time
}

// run starts the session's goroutines; they stop when ctx ends.
func (s *session) run() {
	s.wg.Go(s.writeLoop)
	if s.vsender != nil {
		s.wg.Go(func() { s.readRTCP(s.vsender, 0) })
	}
	if s.asender != nil {
		s.wg.Go(func() { s.readRTCP(s.asender, 1) })
	}
}

// end closes the session once, for the given reason (a metric label).
func (s *session) end(reason string) {
	s.endOnce.Do(func() {
		s.reason.Store(reason)
		s.cancel(nil)
		// The session leaves the registry at once: a second DELETE is a
		// 404 and the viewer count drops; the teardown follows.
		s.srv.remove(s, reason)
		s.srv.teardown(func() {
			// Closing the PeerConnection unblocks ReadRTCP.
			_ = s.pc.Close()
			s.wg.Wait()
			s.sub.Close()
			if s.lay.sub != nil {
				s.lay.sub.Close()
			}
			if s.opus != nil {
				s.opus()
			}
		})
	})
}

func (s *session) onConnectionState(st webrtc.PeerConnectionState) {
	switch st {
	case webrtc.PeerConnectionStateConnected:
		if err := s.srv.promote(s); err != nil {
			s.end(refusalReason(err))
			return
		}
		s.connOnce.Do(func() { close(s.connected) })
	case webrtc.PeerConnectionStateFailed:
		s.end("ice_failed")
	case webrtc.PeerConnectionStateClosed:
		s.end("closed")
	}
}

// writeLoop sends the channel's frames to the viewer. It never blocks the
// channel: it reads from a bounded subscription.
func (s *session) writeLoop() {
	select {
	case <-s.ctx.Done():
		return
	case <-s.connected:
	case <-time.After(s.srv.connectTimeout):
		s.end("ice_timeout")
		return
	}
	st, changed := s.ch.State()
	if st == relay.StateIdle {
		// The stream ended while the viewer was connecting.
		s.end("stream_ended")
		return
	}
	sr := time.NewTicker(srInterval)
	defer sr.Stop()
	for {
		select {
		case <-s.ctx.Done():
			return
		case <-changed:
			var st relay.State
			if st, changed = s.ch.State(); st == relay.StateIdle {
				s.end("stream_ended")
				return
			}
		case <-s.pli:
			s.srv.met.plis.Inc()
			// While the publisher is away there is nothing new to repair
			// with: replaying the cache would loop the last seconds.
			// Repeated PLIs within 2 s are served once.
			if st, _ := s.ch.State(); st == relay.StateLive && time.Since(s.lastResync) >= resyncEvery {
				s.lastResync = time.Now()
				s.resync()
			}
		case <-sr.C:
			s.sendReports()
			if d := s.sub.Dropped(); d != s.dropped {
				s.srv.met.dropped(s.channel).Add(float64(d - s.dropped))
				s.dropped = d
			}
		case f := <-s.sub.Frames():
			s.send(f)
		case name := <-s.layerReq:
			s.lay.want = name
			s.retarget()
		case <-s.lay.changed:
			s.retarget()
		case f := <-s.lay.frames():
			s.sendRendition(f)
		}
	}
}

// resync answers a picture loss from the keyframe cache at once, instead of
// making the viewer wait for the publisher's next keyframe.
func (s *session) resync() {
	src := s.sub
	if s.lay.sub != nil && s.lay.playing != "" {
		src = s.lay.sub
	}
	gop := src.Snapshot()
	if len(gop) == 0 {
		return
	}
	// The viewer has had these frames: send them again, as late frames
	// so that RTP timestamps keep increasing.
	s.vLastDTS = gop[0].DTS - 1
	s.replay = true
	for _, f := range gop {
		if src == s.sub {
			s.send(f)
		} else if f.Kind == relay.KindVideo {
			s.sendVideo(f)
		}
	}
	s.replay = false
}

func (s *session) send(f *relay.Frame) {
	if f.Kind == relay.KindVideo {
		if s.lay.playing != "" || s.lay.target != "" {
			s.fullVideo(f)
			return
		}
		s.sendVideo(f)
		return
	}
	s.sendAudio(f)
}

func (s *session) sendVideo(f *relay.Frame) {
	w, ssrc, pt, ok := s.video.binding()
	if !ok {
		return
	}
	if s.vStarted && f.DTS <= s.vLastDTS {
		return // already sent from the cache (resync)
	}
	now := time.Now()
	late := s.replay || now.Sub(f.Arrived) > lateAfter
	switch {
	case !s.vStarted:
		if !f.Key {
			return
		}
		s.vStarted = true
		s.vTS = randUint32()
	case late:
		// Replay from the cache: 1 ms apart, so the picture is current
		// as soon as the burst is decoded.
		s.vTS += 90
	default:
		s.vTS += uint32(int64(f.PTS-s.vLastPTS) * 90000 / int64(time.Second))
	}
	s.vLastPTS, s.vLastDTS = f.PTS, f.DTS
	payloads := f.RTPPayloads()
	// The frame's packets are retransmittable before they go out.
	s.ringMu.Lock()
	for i := range payloads {
		seq := s.vseq + uint16(i)
		s.ring[seq%ringSize] = sent{f: f, ts: s.vTS, seq: seq, idx: uint16(i)}
	}
	s.ringMu.Unlock()
	s.hdr = rtp.Header{Version: 2, PayloadType: pt, Timestamp: s.vTS, SSRC: ssrc}
	for i, p := range payloads {
		if late && !s.pace(len(p)) {
			return // the session ended while paced
		}
		s.hdr.SequenceNumber = s.vseq
		s.hdr.Marker = i == len(payloads)-1
		s.vseq++
		if _, err := w.WriteRTP(&s.hdr, p); err != nil {
			s.end("write_error")
			return
		}
		s.vPackets++
		s.vOctets += uint32(len(p))
	}
	s.countPackets(len(payloads))
	s.lastVSend = now
	if !s.firstFrame {
		s.firstFrame = true
		s.srv.met.ttff.Observe(now.Sub(s.created).Seconds())
	}
}

func (s *session) sendAudio(f *relay.Frame) {
	if len(f.Opus) == 0 || (!s.vStarted && !s.audioOnly) {
		return
	}
	now := time.Now()
	if now.Sub(f.Arrived) > lateAfter {
		return
	}
	w, ssrc, pt, ok := s.audio.binding()
	if !ok {
		return
	}
	s.hdr = rtp.Header{Version: 2, PayloadType: pt, SSRC: ssrc}
	for _, p := range f.Opus {
		if s.aStarted && p.PTS <= s.aLastPTS {
			continue
		}
		s.aLastPTS = p.PTS
		if !s.aStarted {
			s.aStarted = true
			s.aBaseTS = randUint32()
			s.aFirstPTS = p.PTS
		}
		ts := s.aBaseTS + uint32(int64(p.PTS-s.aFirstPTS)*48000/int64(time.Second))
		s.hdr.SequenceNumber, s.hdr.Timestamp = s.aseq, ts
		s.aseq++
		if _, err := w.WriteRTP(&s.hdr, p.Data); err != nil {
			s.end("write_error")
			return
		}
		s.aPackets++
		s.aOctets += uint32(len(p.Data))
		s.lastATS = ts
	}
	s.lastASend = now
	s.countPackets(len(f.Opus))
}

// pace takes n bytes from the replay pacer's bucket, waiting for them if it
// is empty (writer goroutine: the viewer's own; the channel never waits).
// It reports false if the session ended meanwhile.
func (s *session) pace(n int) bool {
	now := time.Now()
	if s.paceAt.IsZero() {
		s.paceTokens = paceBurst
	} else {
		s.paceTokens = min(paceBurst, s.paceTokens+now.Sub(s.paceAt).Seconds()*paceRate/8)
	}
	s.paceAt = now
	s.paceTokens -= float64(n)
	if s.paceTokens >= 0 {
		return true
	}
	wait := time.Duration(-s.paceTokens / (paceRate / 8) * float64(time.Second))
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case <-s.ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// countPackets adds to the channel's sent packets (writer goroutine).
func (s *session) countPackets(n int) {
	if s.mPackets == nil {
		s.mPackets = s.srv.met.packets(s.channel)
	}
	s.mPackets.Add(float64(n))
}

// sendReports sends RTCP sender reports (RFC 3550 6.4.1), which browsers
// use for lip sync and to compute the round-trip time we read back.
func (s *session) sendReports() {
	now := time.Now()
	ntp := toNTP(now)
	var pkts []rtcp.Packet
	if _, ssrc, _, ok := s.video.binding(); ok && s.vStarted {
		pkts = append(pkts, &rtcp.SenderReport{
			SSRC:        ssrc,
			NTPTime:     ntp,
			RTPTime:     s.vTS + uint32(now.Sub(s.lastVSend)*90000/time.Second),
			PacketCount: s.vPackets,
			OctetCount:  s.vOctets,
		})
	}
	if s.audio != nil {
		if _, ssrc, _, ok := s.audio.binding(); ok && s.aStarted {
			pkts = append(pkts, &rtcp.SenderReport{
				SSRC:        ssrc,
				NTPTime:     ntp,
				RTPTime:     s.lastATS + uint32(now.Sub(s.lastASend)*48000/time.Second),
				PacketCount: s.aPackets,
				OctetCount:  s.aOctets,
			})
		}
	}
	if len(pkts) == 0 {
		return
	}
	s.srMu.Lock()
	s.srSent[s.srNext%len(s.srSent)] = srRecord{mid: uint32(ntp >> 16), at: now}
	s.srNext++
	s.srMu.Unlock()
	_ = s.pc.WriteRTCP(pkts)
}

// readRTCP drains a sender's RTCP: without it pion never delivers NACK and
// PLI. kind is 0 for video, 1 for audio.
func (s *session) readRTCP(sender *webrtc.RTPSender, kind int) {
	for {
		pkts, _, err := sender.ReadRTCP()
		if err != nil {
			return
		}
		s.handleRTCP(pkts, kind)
	}
}

// handleRTCP acts on the viewer's RTCP (kind 0: video, 1: audio): NACKs
// are answered from the ring, PLI/FIR wake the writer, reports feed the
// metrics. Whatever the viewer sends, it costs at most one retransmission
// per ring entry named.
func (s *session) handleRTCP(pkts []rtcp.Packet, kind int) {
	for _, p := range pkts {
		switch p := p.(type) {
		case *rtcp.TransportLayerNack:
			if kind == 0 {
				s.retransmit(p)
			}
		case *rtcp.PictureLossIndication, *rtcp.FullIntraRequest:
			select {
			case s.pli <- struct{}{}:
			default:
			}
		case *rtcp.ReceiverReport:
			s.onReports(p.Reports, kind)
		case *rtcp.SenderReport:
			s.onReports(p.Reports, kind)
		}
	}
}

// maxRetransmits bounds the packets one NACK message makes seance resend:
// a browser names a few lost packets at a time, while a 1.5 KB NACK can
// name the same packet thousands of times.
const maxRetransmits = 128

// retransmit answers a NACK (RFC 4585 6.2.1) from the shared payloads.
func (s *session) retransmit(n *rtcp.TransportLayerNack) {
	w, ssrc, pt, ok := s.video.binding()
	if !ok {
		return
	}
	var hdr rtp.Header
	var sent [ringSize / 64]uint64 // ring slots resent for this message
	budget := maxRetransmits
	for _, pair := range n.Nacks {
		for _, seq := range pair.PacketList() {
			slot := seq % ringSize
			if sent[slot/64]&(1<<(slot%64)) != 0 {
				continue
			}
			if budget == 0 {
				return
			}
			sent[slot/64] |= 1 << (slot % 64)
			budget--
			s.ringMu.Lock()
			e := s.ring[seq%ringSize]
			s.ringMu.Unlock()
			if e.f == nil || e.seq != seq {
				continue
			}
			payloads := e.f.RTPPayloads()
			if int(e.idx) >= len(payloads) {
				continue
			}
			hdr = rtp.Header{Version: 2, PayloadType: pt, SequenceNumber: seq, Timestamp: e.ts, SSRC: ssrc, Marker: int(e.idx) == len(payloads)-1}
			if _, err := w.WriteRTP(&hdr, payloads[e.idx]); err != nil {
				return
			}
			if s.mNacks == nil {
				s.mNacks = s.srv.met.nacks(s.channel)
			}
			s.mNacks.Inc()
		}
	}
}

// onReports turns the viewer's reception reports into RTT and loss
// metrics, aggregated per channel.
func (s *session) onReports(reports []rtcp.ReceptionReport, kind int) {
	now := time.Now()
	for _, r := range reports {
		if r.LastSenderReport != 0 {
			s.srMu.Lock()
			for _, rec := range s.srSent {
				if rec.mid == r.LastSenderReport && !rec.at.IsZero() {
					// RFC 3550 6.4.1: RTT = arrival - LSR - DLSR.
					rtt := now.Sub(rec.at) - time.Duration(r.Delay)*time.Second/65536
					if rtt >= 0 {
						s.srv.met.rtt(s.channel).Observe(rtt.Seconds())
					}
				}
			}
			s.srMu.Unlock()
		}
		if r.TotalLost > s.lost[kind] && r.TotalLost < 1<<23 {
			s.srv.met.lost(s.channel).Add(float64(r.TotalLost - s.lost[kind]))
			s.lost[kind] = r.TotalLost
		}
	}
}

// toNTP converts a time to the 64-bit NTP format (RFC 5905 6).
func toNTP(t time.Time) uint64 {
	const ntpEpochOffset = 2208988800
	secs := uint64(t.Unix()) + ntpEpochOffset
	frac := uint64(t.Nanosecond()) << 32 / 1e9
	return secs<<32 | frac
}
