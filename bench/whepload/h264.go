package main

import "encoding/binary"

// rtpPacket is the part of an RTP packet the load generator looks at.
type rtpPacket struct {
	seq     uint16
	ts      uint32
	marker  bool
	payload []byte
}

// parseRTP reads an RTP header without allocating (RFC 3550 5.1: CSRCs,
// header extension and padding are skipped).
func parseRTP(b []byte) (p rtpPacket, ok bool) {
	if len(b) < 12 || b[0]>>6 != 2 {
		return p, false
	}
	off := 12 + 4*int(b[0]&0x0f)
	if b[0]&0x10 != 0 {
		if len(b) < off+4 {
			return p, false
		}
		off += 4 + 4*int(binary.BigEndian.Uint16(b[off+2:]))
	}
	end := len(b)
	if b[0]&0x20 != 0 {
		end -= int(b[end-1])
	}
	if off > end {
		return p, false
	}
	p.marker = b[1]&0x80 != 0
	p.seq = binary.BigEndian.Uint16(b[2:])
	p.ts = binary.BigEndian.Uint32(b[4:])
	p.payload = b[off:end]
	return p, true
}

// H.264 NAL unit types (RFC 6184 5.2, ITU-T H.264 table 7-1).
const (
	nalIDR  = 5
	nalSPS  = 7
	nalPPS  = 8
	nalSTAP = 24
	nalFUA  = 28
)

// keyframeDetector finds the first decodable keyframe of an H.264 RTP
// stream: an access unit holding an IDR slice, received from its first
// packet to its last (marker bit) without a sequence gap, with SPS and PPS
// received before or within it. It handles single NAL unit packets, STAP-A
// and FU-A (packetization-mode 1).
type keyframeDetector struct {
	started    bool
	lastSeq    uint16
	auTS       uint32
	prevMarker bool
	auClean    bool
	auIDR      bool
	haveSPS    bool
	havePPS    bool
	done       bool
}

// push feeds one packet; it returns true for the packet that completes the
// first decodable keyframe, and false for every other packet.
func (d *keyframeDetector) push(p rtpPacket) bool {
	if d.done {
		return false
	}
	gap := false
	if d.started {
		diff := p.seq - d.lastSeq
		if diff == 0 || diff >= 0x8000 {
			return false // duplicate or late: already accounted for
		}
		gap = diff != 1
	}
	if !d.started || p.ts != d.auTS || d.prevMarker {
		// A new access unit. It is complete only if nothing was lost
		// before its first packet and that packet starts a NAL unit.
		d.auTS = p.ts
		d.auClean = !gap && startsNAL(p.payload)
		d.auIDR = false
	} else if gap {
		d.auClean = false
	}
	d.started, d.lastSeq, d.prevMarker = true, p.seq, p.marker
	d.scan(p.payload)
	if p.marker && d.auClean && d.auIDR && d.haveSPS && d.havePPS {
		d.done = true
		return true
	}
	return false
}

// startsNAL tells whether a payload begins a NAL unit (not a middle or end
// FU-A fragment).
func startsNAL(pl []byte) bool {
	if len(pl) == 0 {
		return false
	}
	switch t := pl[0] & 0x1f; {
	case t >= 1 && t <= nalSTAP:
		return true
	case t == nalFUA:
		return len(pl) > 1 && pl[1]&0x80 != 0
	}
	return false
}

func (d *keyframeDetector) nal(t byte) {
	switch t {
	case nalIDR:
		d.auIDR = true
	case nalSPS:
		d.haveSPS = true
	case nalPPS:
		d.havePPS = true
	}
}

func (d *keyframeDetector) scan(pl []byte) {
	if len(pl) == 0 {
		return
	}
	switch t := pl[0] & 0x1f; t {
	case nalSTAP:
		// RFC 6184 5.7.1: 16-bit size, then the NAL unit, repeated.
		for rest := pl[1:]; len(rest) >= 3; {
			size := int(binary.BigEndian.Uint16(rest))
			if size == 0 || len(rest) < 2+size {
				return
			}
			d.nal(rest[2] & 0x1f)
			rest = rest[2+size:]
		}
	case nalFUA:
		if len(pl) > 1 {
			d.nal(pl[1] & 0x1f)
		}
	default:
		d.nal(t)
	}
}
