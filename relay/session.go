package relay

import (
	"bytes"
	"encoding/binary"
	"sync/atomic"
	"time"

	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h264"
)

// Session is one publisher's hold on a channel. Write methods must be
// called from one goroutine; after Close they do nothing.
type Session struct {
	c      *Channel
	info   PublisherInfo
	closed atomic.Bool
	done   chan struct{} // closed by Close
	kicked atomic.Bool
	// opusIn: the publisher supplies Opus itself (WriteAACWithOpus), so
	// the channel must not transcode AAC to Opus. Written and read on the
	// publisher's goroutine only.
	opusIn bool
	// awaitKey: the session took over an interrupted channel whose slate
	// is on air; its frames are dropped until its first keyframe. Under
	// Channel.mu.
	awaitKey bool
}

// Close ends the publisher's hold. Within the channel's grace period a new
// publisher continues the same broadcast. Close is idempotent.
func (s *Session) Close() {
	if s.closed.Swap(true) {
		return
	}
	s.c.unpublish(s)
	close(s.done)
}

// Done is closed once the session is closed: by its publisher, or by
// Channel.Kick. Ingests watch it to drop a kicked publisher's connection.
func (s *Session) Done() <-chan struct{} { return s.done }

// Kicked reports whether Channel.Kick closed the session.
func (s *Session) Kicked() bool { return s.kicked.Load() }

// WriteH264 publishes one H.264 access unit (NALUs without start codes),
// with the publisher's own timestamps. Parameter sets found in the access
// unit update the channel's track; an access unit holding only parameter
// sets (the first one from an RTMP publisher) is consumed without
// producing a frame. Access unit delimiters and filler data are dropped.
func (s *Session) WriteH264(pts, dts time.Duration, nalus [][]byte) {
	if s.closed.Load() {
		return
	}
	var sps, pps []byte
	size, vcl, idr := 0, false, false
	for _, n := range nalus {
		if len(n) == 0 {
			continue
		}
		switch h264.NALUType(n[0] & 0x1f) {
		case h264.NALUTypeSPS:
			sps = n
			continue
		case h264.NALUTypePPS:
			pps = n
			continue
		case h264.NALUTypeAccessUnitDelimiter, h264.NALUTypeFillerData:
			continue
		case h264.NALUTypeIDR:
			idr = true
			vcl = true
		case h264.NALUTypeNonIDR, h264.NALUTypeDataPartitionA:
			vcl = true
		}
		size += 4 + len(n)
	}

	c := s.c
	c.mu.Lock()
	if c.session != s {
		c.mu.Unlock()
		return
	}
	tr := c.tracks
	if (sps != nil && !bytes.Equal(sps, tr.Video.SPS)) || (pps != nil && !bytes.Equal(pps, tr.Video.PPS)) {
		v := *tr.Video
		if sps != nil {
			v.SPS = bytes.Clone(sps)
		}
		if pps != nil {
			v.PPS = bytes.Clone(pps)
		}
		c.tracks = &Tracks{Video: &v, Audio: tr.Audio}
		c.health.onTracks(c.tracks)
		c.prepareSlateLocked()
		tr = c.tracks
	}
	c.mu.Unlock()
	if !vcl {
		return
	}

	// One allocation per frame, shared by every sink: the AVCC form for
	// FLV/MP4 sinks, with the NALU slices pointing into it. SPS and PPS
	// are re-sent in front of every IDR so any sink can start there.
	// An IDR can only carry parameter sets the channel knows.
	withParams := idr && len(tr.Video.SPS) > 0 && len(tr.Video.PPS) > 0
	if withParams {
		size += 8 + len(tr.Video.SPS) + len(tr.Video.PPS)
	}
	buf := make([]byte, 0, size)
	n := 0
	if withParams {
		n = 2
	}
	for _, nalu := range nalus {
		if len(nalu) > 0 && isPayloadNALU(nalu[0]) {
			n++
		}
	}
	out := make([][]byte, 0, n)
	add := func(nalu []byte) {
		buf = binary.BigEndian.AppendUint32(buf, uint32(len(nalu)))
		start := len(buf)
		buf = append(buf, nalu...)
		out = append(out, buf[start:len(buf):len(buf)])
	}
	if withParams {
		add(tr.Video.SPS)
		add(tr.Video.PPS)
	}
	for _, nalu := range nalus {
		if len(nalu) > 0 && isPayloadNALU(nalu[0]) {
			add(nalu)
		}
	}
	s.publish(&Frame{Kind: KindVideo, PTS: pts, DTS: dts, Key: idr, NALUs: out, AVCC: buf, Tracks: tr}, len(buf))
}

func isPayloadNALU(b byte) bool {
	switch h264.NALUType(b & 0x1f) {
	case h264.NALUTypeSPS, h264.NALUTypePPS, h264.NALUTypeAccessUnitDelimiter, h264.NALUTypeFillerData:
		return false
	}
	return true
}

// WriteAAC publishes one raw AAC access unit with the publisher's
// timestamp.
func (s *Session) WriteAAC(pts time.Duration, au []byte) {
	if s.closed.Load() || len(au) == 0 {
		return
	}
	s.publish(&Frame{Kind: KindAudio, PTS: pts, DTS: pts, AU: bytes.Clone(au)}, len(au))
}

// WriteAACWithOpus publishes one raw AAC access unit together with the
// Opus packets the publisher sent for about the same stretch of audio
// (WHIP: the AAC is transcoded from them, once per channel, for RTMP sinks).
// WebRTC sinks then get the publisher's own Opus instead of a second
// transcode. Packet PTS are on the publisher's clock, like pts; the relay
// moves them onto the channel timeline with the frame. Once a session has
// used it, the channel no longer transcodes that session's AAC to Opus. The
// session keeps opus: the caller must not modify it afterwards.
func (s *Session) WriteAACWithOpus(pts time.Duration, au []byte, opus []OpusPacket) {
	if s.closed.Load() || len(au) == 0 {
		return
	}
	s.opusIn = true
	s.publish(&Frame{Kind: KindAudio, PTS: pts, DTS: pts, AU: bytes.Clone(au), Opus: opus}, len(au))
}

// publish places the frame on the channel timeline, caches it and fans it
// out. The lock is held only for bookkeeping; delivery happens outside it
// and never blocks. c.pub keeps the order of frames between this
// publisher and the slate it takes over from.
func (s *Session) publish(f *Frame, size int) {
	c := s.c
	c.pub.Lock()
	defer c.pub.Unlock()
	c.mu.Lock()
	if c.session != s {
		c.mu.Unlock()
		return
	}
	if f.Kind == KindAudio && c.tracks.Audio == nil {
		c.mu.Unlock()
		return
	}
	if s.awaitKey {
		// A publisher back within the grace period takes over from the
		// slate at its first keyframe; what it sends before that could
		// not be decoded, and the slate goes on meanwhile.
		if f.Kind != KindVideo || !f.Key {
			c.mu.Unlock()
			c.met.bytes[f.Kind].Add(float64(size))
			c.met.frames[f.Kind].Inc()
			return
		}
		s.awaitKey = false
		c.stopSlateLocked("publisher back: the live picture resumes at its first keyframe")
		c.tl.newSession()
	}
	if f.Tracks == nil {
		f.Tracks = c.tracks
	}
	f.Arrived = time.Now()
	ctsOffset := f.PTS - f.DTS
	origPTS := f.PTS
	dts, jump, keep := c.tl.place(f.Kind, f.DTS)
	if !keep {
		// Audio overlapping the end of the slate's (see timeline.place).
		c.mu.Unlock()
		c.met.bytes[f.Kind].Add(float64(size))
		c.met.frames[f.Kind].Inc()
		return
	}
	f.DTS, f.PTS = dts, dts+ctsOffset
	for i := range f.Opus {
		f.Opus[i].PTS += f.PTS - origPTS
	}
	if jump {
		c.met.jumps.Inc()
	}
	c.health.onFrame(f, size, jump)
	c.mu.Unlock()

	c.met.bytes[f.Kind].Add(float64(size))
	c.met.frames[f.Kind].Inc()
	c.deliver(f, !s.opusIn, func() bool { return c.session == s })
}

// deliver transcodes f if a sink wants Opus, caches it and pushes it to
// every subscriber, unless still reports (under c.mu) that its writer lost
// the channel meanwhile. The caller holds c.pub, not c.mu.
func (c *Channel) deliver(f *Frame, transcode bool, still func() bool) bool {
	// Transcoding happens before the frame is visible to any sink, so
	// the frame is immutable once shared.
	if f.Kind == KindAudio && transcode && c.opusUsers.Load() > 0 {
		c.toOpus(f)
	}

	c.mu.Lock()
	if !still() {
		c.mu.Unlock()
		return false
	}
	switch {
	case f.Kind == KindVideo && f.Key:
		clear(c.gop)
		c.gop = append(c.gop[:0], f)
	case len(c.gop) > 0 && len(c.gop) < maxGOPFrames:
		c.gop = append(c.gop, f)
	case len(c.gop) >= maxGOPFrames:
		clear(c.gop)
		c.gop = c.gop[:0]
	}
	subs := c.subs
	c.mu.Unlock()

	for _, sub := range subs {
		sub.push(f)
	}
	return true
}
