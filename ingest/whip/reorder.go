package whip

import (
	"time"

	"github.com/pion/rtp"
)

const (
	// reorderSize is how many packets the reorder buffer holds while it
	// waits for a missing one: about half a second of 2.5 Mbit/s video.
	reorderSize = 256
	// reorderWait is how long a missing packet is waited for before it is
	// given up as lost. seance NACKs it at once and every 100 ms after
	// (RFC 4585 6.2.1), so this covers two retransmission attempts on a
	// path of under 50 ms RTT; it only delays video when a packet is
	// actually missing.
	reorderWait = 250 * time.Millisecond
	// resetAfter is how many packets in a row from far behind make the
	// buffer start over: the publisher restarted its sequence numbers.
	resetAfter = 16
)

// reorderer puts RTP packets back in sequence order (RFC 3550 A.1) so that
// retransmitted packets (NACK, RFC 4585) and packets reordered by the
// network reach the depacketiser in order, and reports the packets it gave
// up on. It is used by one goroutine.
type reorderer struct {
	started bool
	next    uint16 // the next sequence number to deliver
	buf     [reorderSize]*rtp.Packet
	count   int       // packets in buf
	gap     time.Time // when delivery first stalled on the missing next
	behind  int       // consecutive packets from before next
}

// push adds pkt, received at now, and appends to out the packets that are
// now in order, with a nil in place of each run of packets given up as
// never received; lost counts those packets.
func (r *reorderer) push(pkt *rtp.Packet, now time.Time, out []*rtp.Packet) (_ []*rtp.Packet, lost int) {
	seq := pkt.SequenceNumber
	if !r.started {
		r.started, r.next = true, seq
	}
	d := int(int16(seq - r.next))
	switch {
	case d < 0:
		// Delivered or given up already: a late retransmission or a
		// duplicate. Many in a row: the sequence restarted.
		r.behind++
		if r.behind < resetAfter {
			return out, 0
		}
		out, lost = r.flush(out)
		r.next, r.behind = seq, 0
		d = 0
	case d >= reorderSize:
		// Too far ahead to wait for what is missing.
		out, lost = r.flush(out)
		if seq != r.next {
			out = append(out, nil)
			lost += int(uint16(seq - r.next))
		}
		r.next = seq
		d = 0
	}
	r.behind = 0
	i := seq % reorderSize
	if r.buf[i] != nil {
		return out, lost // duplicate
	}
	r.buf[i] = pkt
	r.count++
	out = r.drain(out)
	if r.count == 0 {
		r.gap = time.Time{}
		return out, lost
	}
	if r.gap.IsZero() {
		r.gap = now
		return out, lost
	}
	if now.Sub(r.gap) < reorderWait {
		return out, lost
	}
	// Give up on the missing packets up to the next one held.
	out = append(out, nil)
	for r.buf[r.next%reorderSize] == nil {
		r.next++
		lost++
	}
	out = r.drain(out)
	r.gap = time.Time{}
	if r.count > 0 {
		r.gap = now
	}
	return out, lost
}

// drain delivers the packets in order from next.
func (r *reorderer) drain(out []*rtp.Packet) []*rtp.Packet {
	for {
		i := r.next % reorderSize
		p := r.buf[i]
		if p == nil {
			return out
		}
		out = append(out, p)
		r.buf[i] = nil
		r.count--
		r.next++
	}
}

// flush delivers every held packet in order, a nil for each hole.
func (r *reorderer) flush(out []*rtp.Packet) (_ []*rtp.Packet, lost int) {
	hole := false
	for r.count > 0 {
		i := r.next % reorderSize
		if p := r.buf[i]; p != nil {
			out = append(out, p)
			r.buf[i] = nil
			r.count--
			hole = false
		} else {
			if !hole {
				out = append(out, nil)
			}
			hole = true
			lost++
		}
		r.next++
	}
	r.gap = time.Time{}
	return out, lost
}
