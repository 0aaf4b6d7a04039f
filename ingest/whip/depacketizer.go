package whip

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h264"
	"github.com/pion/rtp"
)

// errUnsupportedPacket: an RTP payload type of RFC 6184 that
// packetization mode 1 does not allow (STAP-B, MTAP, FU-B) or a reserved
// NALU type.
var errUnsupportedPacket = errors.New("H.264 RTP packet type not allowed in packetization mode 1")

// depacketizer turns the ordered RTP packets of one H.264 stream (RFC 6184,
// packetization mode 1: single NAL units, STAP-A and FU-A) into access
// units. An access unit ends with the marker bit (RFC 6184 5.1) or, if the
// packet carrying it was lost, when the timestamp changes. It is used by one
// goroutine.
type depacketizer struct {
	nalus  [][]byte // the access unit being assembled
	size   int
	ts     uint32
	have   bool   // nalus or fua hold data of timestamp ts
	fua    []byte // the fragmented NAL unit being reassembled, nil when none
	broken bool   // the access unit being assembled lost data
	gap    bool   // packets were lost just before the next one pushed
	skipFU bool   // after a loss: FU-A fragments without their start are expected
}

// auFunc receives an access unit and its RTP timestamp; ok is false for an
// access unit that lost data and was dropped. nalus point into the packets'
// payloads and into buffers the depacketizer does not reuse.
type auFunc func(nalus [][]byte, ts uint32, ok bool)

// lost says packets are missing before the next one pushed: they may be
// the end of the access unit being assembled or the start of the next,
// so both are dropped.
func (d *depacketizer) lost() {
	d.broken, d.gap, d.fua, d.skipFU = true, true, nil, true
}

// push consumes one packet. It returns an error for a malformed payload,
// after which the access unit it belongs to is dropped.
func (d *depacketizer) push(pkt *rtp.Packet, emit auFunc) error {
	if d.have && pkt.Timestamp != d.ts {
		// The packet with the marker bit never came.
		d.broken = d.broken || d.fua != nil
		d.end(emit)
		d.broken = d.gap
	}
	d.gap = false
	d.ts, d.have = pkt.Timestamp, true
	err := d.parse(pkt.Payload)
	if err != nil {
		d.broken = true
		d.fua = nil
	}
	if pkt.Marker {
		if d.fua != nil {
			d.broken = true
		}
		d.end(emit)
	}
	return err
}

func (d *depacketizer) parse(p []byte) error {
	if len(p) == 0 {
		return errors.New("empty H.264 RTP payload")
	}
	typ := h264.NALUType(p[0] & 0x1f)
	if typ != h264.NALUTypeFUA || len(p) > 1 && p[1]&0x80 != 0 {
		d.skipFU = false
	}
	switch {
	case typ >= 1 && typ <= 23:
		if d.fua != nil {
			return errors.New("NAL unit inside an unfinished FU-A")
		}
		return d.add(p)
	case typ == h264.NALUTypeSTAPA:
		// RFC 6184 5.7.1: 16-bit size, NAL unit, repeated.
		if d.fua != nil {
			return errors.New("STAP-A inside an unfinished FU-A")
		}
		p = p[1:]
		if len(p) == 0 {
			return errors.New("empty STAP-A")
		}
		for len(p) > 0 {
			if len(p) < 2 {
				return errors.New("truncated STAP-A")
			}
			n := int(binary.BigEndian.Uint16(p))
			p = p[2:]
			if n == 0 || n > len(p) {
				return fmt.Errorf("STAP-A unit of %d bytes in %d", n, len(p))
			}
			if err := d.add(p[:n]); err != nil {
				return err
			}
			p = p[n:]
		}
		return nil
	case typ == h264.NALUTypeFUA:
		// RFC 6184 5.8: FU indicator, FU header (S, E, R, type), payload.
		if len(p) < 3 {
			return errors.New("truncated FU-A")
		}
		start, end := p[1]&0x80 != 0, p[1]&0x40 != 0
		switch {
		case start && d.fua != nil:
			return errors.New("FU-A start inside an unfinished FU-A")
		case start:
			d.fua = append(make([]byte, 0, 2*len(p)), p[0]&0xe0|p[1]&0x1f)
		case d.fua == nil && d.skipFU:
			return nil // the rest of a unit whose start was lost
		case d.fua == nil:
			return errors.New("FU-A continuation without a start")
		}
		if d.size+len(d.fua)+len(p)-2 > h264.MaxAccessUnitSize {
			return fmt.Errorf("access unit larger than %d bytes", h264.MaxAccessUnitSize)
		}
		d.fua = append(d.fua, p[2:]...)
		if !end {
			return nil
		}
		nalu := d.fua
		d.fua = nil
		return d.add(nalu)
	}
	return fmt.Errorf("%w: type %d", errUnsupportedPacket, p[0]&0x1f)
}

func (d *depacketizer) add(nalu []byte) error {
	if len(nalu) == 0 || nalu[0]&0x80 != 0 {
		return errors.New("NAL unit with the forbidden bit set")
	}
	if len(d.nalus) >= h264.MaxNALUsPerAccessUnit || d.size+len(nalu) > h264.MaxAccessUnitSize {
		return fmt.Errorf("access unit larger than %d NAL units or %d bytes", h264.MaxNALUsPerAccessUnit, h264.MaxAccessUnitSize)
	}
	d.nalus = append(d.nalus, nalu)
	d.size += len(nalu)
	return nil
}

// end hands over the access unit being assembled and starts a new one.
func (d *depacketizer) end(emit auFunc) {
	switch {
	case d.broken:
		emit(nil, d.ts, false)
	case len(d.nalus) > 0:
		emit(d.nalus, d.ts, true)
	}
	d.nalus, d.size, d.have, d.broken, d.fua = nil, 0, false, false, nil
}
