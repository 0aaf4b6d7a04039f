package whip

import (
	"encoding/binary"
	"testing"
	"time"

	"github.com/pion/rtp"
)

// FuzzReorder feeds the reorder buffer a publisher's (or an attacker's)
// sequence numbers and arrival gaps, 3 bytes a packet: every packet
// pushed comes out at most once, between two holes the sequence numbers
// increase by one, the buffer never holds more than its size, and what is
// held comes out on flush.
func FuzzReorder(f *testing.F) {
	seeds := [][]uint16{
		{1, 2, 3, 4},
		{1, 3, 2, 4},
		{65534, 65535, 0, 1},
		{10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0, 65535, 65534, 65533, 65532, 65531, 65530, 65529},
		{1, 1, 1, 2},
		{1, 300, 2, 600},
		{100, 102, 104, 106},
	}
	for _, seqs := range seeds {
		var b []byte
		for i, s := range seqs {
			b = binary.BigEndian.AppendUint16(b, s)
			b = append(b, byte(i*40))
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var r reorderer
		now := time.Unix(0, 0)
		pushed := map[*rtp.Packet]bool{}
		seen := map[*rtp.Packet]bool{}
		check := func(out []*rtp.Packet) {
			var prev *rtp.Packet
			for _, p := range out {
				if p == nil {
					prev = nil
					continue
				}
				if !pushed[p] || seen[p] {
					t.Fatalf("packet %d delivered twice or never pushed", p.SequenceNumber)
				}
				seen[p] = true
				if prev != nil && p.SequenceNumber != prev.SequenceNumber+1 {
					t.Fatalf("%d after %d without a hole", p.SequenceNumber, prev.SequenceNumber)
				}
				prev = p
			}
			if r.count < 0 || r.count > reorderSize {
				t.Fatalf("the buffer holds %d", r.count)
			}
		}
		for i := 0; i+3 <= len(data) && i < 3*4096; i += 3 {
			p := &rtp.Packet{Header: rtp.Header{SequenceNumber: binary.BigEndian.Uint16(data[i:])}}
			pushed[p] = true
			now = now.Add(time.Duration(data[i+2]) * 5 * time.Millisecond)
			out, lost := r.push(p, now, nil)
			if lost < 0 {
				t.Fatalf("lost %d", lost)
			}
			check(out)
		}
		out, _ := r.flush(nil)
		check(out)
		if r.count != 0 {
			t.Fatalf("%d held after flush", r.count)
		}
	})
}
