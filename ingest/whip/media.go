package whip

import (
	"bytes"
	"time"

	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h264"
	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"

	"github.com/seance-relay/seance/relay"
)

// maxPendingOpus bounds the Opus packets waiting for the next AAC unit.
const maxPendingOpus = 16

// rtpClock turns 32-bit RTP timestamps into PTS: it unwraps them (RFC 3550
// 5.1: they wrap, and start at a random value) and anchors the first one
// at the packet's arrival on the session's clock, so both tracks share one
// timeline.
type rtpClock struct {
	rate    int64
	started bool
	last    uint32
	ext     int64 // ticks since the first timestamp
	base    time.Duration
}

func (c *rtpClock) start(ts uint32, at time.Duration) {
	c.started, c.last, c.ext, c.base = true, ts, 0, at
}

func (c *rtpClock) pts(ts uint32) time.Duration {
	c.ext += int64(int32(ts - c.last))
	c.last = ts
	sec, rem := c.ext/c.rate, c.ext%c.rate
	return c.base + time.Duration(sec)*time.Second + time.Duration(rem)*time.Second/time.Duration(c.rate)
}

// readVideo turns the H.264 RTP stream into access units until the
// PeerConnection closes. Nothing is published before an IDR with its
// parameter sets; after an unrecovered loss, frames are dropped until the
// next IDR, which is asked for at once. While a sink wants regular
// keyframes, it asks for one as soon as a published frame comes 2 s after
// the last published IDR in the stream's timestamps.
func (s *session) readVideo(t *webrtc.TrackRemote) {
	var (
		ro      reorderer
		dp      depacketizer
		clk     = rtpClock{rate: 90000}
		ordered []*rtp.Packet
		needIDR = true
		sps     []byte
		pps     []byte
		keyPTS  time.Duration // of the last IDR published
	)
	emit := func(nalus [][]byte, ts uint32, ok bool) {
		if !ok {
			needIDR = true
			s.pli()
			return
		}
		idr := false
		for _, n := range nalus {
			switch h264.NALUType(n[0] & 0x1f) {
			case h264.NALUTypeSPS:
				sps = n
			case h264.NALUTypePPS:
				pps = n
			case h264.NALUTypeIDR:
				idr = true
			}
		}
		if idr {
			s.lastKey.Store(time.Now().UnixNano())
		}
		if needIDR {
			if !idr || sps == nil || pps == nil {
				if time.Since(time.Unix(0, s.lastPLI.Load())) >= retryKeyframe {
					s.pli()
				}
				return
			}
			needIDR = false
		}
		pts := clk.pts(ts)
		s.writeVideo(pts, nalus, idr, sps, pps)
		if idr {
			keyPTS = pts
		}
		s.askPeriodicKeyframe(pts - keyPTS)
	}
	for {
		pkt, _, err := t.ReadRTP()
		if err != nil {
			return
		}
		now := time.Now()
		if !clk.started {
			clk.start(pkt.Timestamp, now.Sub(s.epoch))
			s.pli() // the first keyframe, at once
		}
		var lost int
		ordered, lost = ro.push(pkt, now, ordered[:0])
		if lost > 0 {
			s.met.lost.Add(float64(lost))
		}
		for _, p := range ordered {
			if p == nil {
				dp.lost()
				continue
			}
			if err := dp.push(p, emit); err != nil {
				s.met.badVideo.Inc()
			}
		}
		clear(ordered)
	}
}

// writeVideo publishes an access unit; the first IDR claims the channel.
func (s *session) writeVideo(pts time.Duration, nalus [][]byte, idr bool, sps, pps []byte) {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	if s.pub == nil {
		if !idr || s.ctx.Err() != nil {
			return
		}
		tracks := relay.Tracks{Video: &relay.VideoTrack{SPS: bytes.Clone(sps), PPS: bytes.Clone(pps)}}
		if s.tc != nil {
			tracks.Audio = &relay.AudioTrack{Config: s.tc.Config()}
		}
		info := relay.PublisherInfo{Protocol: "whip", RemoteAddr: s.remoteAddr()}
		if s.internal {
			// seance's own meeting capture: the browser's address says
			// nothing to IT staff.
			info = relay.PublisherInfo{Protocol: "meeting", RemoteAddr: "local browser"}
		}
		pub, err := s.ch.Publish(info, tracks)
		if err != nil {
			s.log.Warn().Err(err).Msg("WHIP publisher refused")
			s.end("busy")
			return
		}
		s.pub, s.firstPTS = pub, pts
		s.published.Store(true)
		// A publisher kicked from the admin API loses its session.
		s.wg.Go(func() {
			select {
			case <-pub.Done():
				s.end("kicked")
			case <-s.ctx.Done():
			}
		})
	}
	s.pub.WriteH264(pts, pts, nalus)
}

// readAudio transcodes the Opus stream to AAC until the PeerConnection
// closes, and hands each AAC unit to the relay with the Opus packets that
// came since the previous one, for WebRTC viewers.
func (s *session) readAudio(t *webrtc.TrackRemote) {
	var (
		clk     = rtpClock{rate: 48000}
		lastSeq uint16
		pending []relay.OpusPacket
	)
	emit := func(pts time.Duration, au []byte) {
		s.writeAudio(pts, au, pending)
		pending = nil
	}
	for {
		pkt, _, err := t.ReadRTP()
		if err != nil {
			return
		}
		if !clk.started {
			clk.start(pkt.Timestamp, time.Since(s.epoch))
		} else {
			d := int16(pkt.SequenceNumber - lastSeq)
			if d <= 0 {
				continue // late or duplicate: its time was concealed
			}
			if d > 1 {
				s.met.lost.Add(float64(d - 1))
			}
		}
		lastSeq = pkt.SequenceNumber
		if len(pkt.Payload) == 0 {
			continue
		}
		pts := clk.pts(pkt.Timestamp)
		if len(pending) == maxPendingOpus {
			pending = pending[1:]
		}
		pending = append(pending, relay.OpusPacket{PTS: pts, Data: pkt.Payload})
		if err := s.tc.Transcode(pts, pkt.Payload, emit); err != nil {
			s.met.badAudio.Inc()
		}
	}
}

// writeAudio publishes an AAC unit with its Opus packets once the channel
// is claimed; audio from before the first video frame is dropped so the
// channel timeline starts on the keyframe.
func (s *session) writeAudio(pts time.Duration, au []byte, opus []relay.OpusPacket) {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	if s.pub == nil || pts < s.firstPTS {
		return
	}
	s.pub.WriteAACWithOpus(pts, au, opus)
}
