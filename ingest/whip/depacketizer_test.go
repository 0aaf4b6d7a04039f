package whip

import (
	"bytes"
	"testing"

	"github.com/pion/rtp"
	"github.com/stretchr/testify/require"
)

var (
	tSPS = []byte{0x67, 0x42, 0xe0, 0x1f, 0xaa}
	tPPS = []byte{0x68, 0xce, 0x3c, 0x80}
	tIDR = append([]byte{0x65}, bytes.Repeat([]byte{0x88}, 3000)...)
	tP   = []byte{0x41, 0x9a, 0x02, 0x03}
)

func rtpPkt(seq uint16, ts uint32, marker bool, payload []byte) *rtp.Packet {
	return &rtp.Packet{Header: rtp.Header{SequenceNumber: seq, Timestamp: ts, Marker: marker}, Payload: payload}
}

func stapA(nalus ...[]byte) []byte {
	b := []byte{24}
	for _, n := range nalus {
		b = append(b, byte(len(n)>>8), byte(len(n)))
		b = append(b, n...)
	}
	return b
}

// fuA cuts a NAL unit into FU-A payloads of at most size bytes of data.
func fuA(nalu []byte, size int) [][]byte {
	var out [][]byte
	hdr, data := nalu[0], nalu[1:]
	for i := 0; i < len(data); i += size {
		end := min(i+size, len(data))
		fu := hdr & 0x1f
		if i == 0 {
			fu |= 0x80
		}
		if end == len(data) {
			fu |= 0x40
		}
		out = append(out, append([]byte{hdr&0xe0 | 28, fu}, data[i:end]...))
	}
	return out
}

type gotAU struct {
	nalus [][]byte
	ts    uint32
	ok    bool
}

func runDepack(t *testing.T, pkts []*rtp.Packet, lostBefore map[int]bool) ([]gotAU, int) {
	t.Helper()
	var d depacketizer
	var got []gotAU
	errs := 0
	for i, p := range pkts {
		if lostBefore[i] {
			d.lost()
		}
		if err := d.push(p, func(n [][]byte, ts uint32, ok bool) {
			var cp [][]byte
			for _, nalu := range n {
				cp = append(cp, bytes.Clone(nalu))
			}
			got = append(got, gotAU{cp, ts, ok})
		}); err != nil {
			errs++
		}
	}
	return got, errs
}

func TestDepacketizer(t *testing.T) {
	frags := fuA(tIDR, 1000)
	require.Len(t, frags, 3)
	idrPkts := func(seq uint16, ts uint32) []*rtp.Packet {
		return []*rtp.Packet{
			rtpPkt(seq, ts, false, stapA(tSPS, tPPS)),
			rtpPkt(seq+1, ts, false, frags[0]),
			rtpPkt(seq+2, ts, false, frags[1]),
			rtpPkt(seq+3, ts, true, frags[2]),
		}
	}
	for _, tc := range []struct {
		name   string
		pkts   []*rtp.Packet
		lost   map[int]bool
		want   []gotAU
		errors int
	}{
		{
			name: "IDR in STAP-A and FU-A, then a P-frame",
			pkts: append(idrPkts(1, 3000), rtpPkt(5, 6000, true, tP)),
			want: []gotAU{{[][]byte{tSPS, tPPS, tIDR}, 3000, true}, {[][]byte{tP}, 6000, true}},
		},
		{
			name: "marker lost: the timestamp ends the unit",
			pkts: []*rtp.Packet{rtpPkt(1, 3000, false, tP), rtpPkt(2, 6000, true, tP)},
			want: []gotAU{{[][]byte{tP}, 3000, true}, {[][]byte{tP}, 6000, true}},
		},
		{
			name: "middle fragment lost",
			pkts: append(idrPkts(1, 3000)[:2], idrPkts(1, 3000)[3], rtpPkt(5, 6000, true, tP)),
			lost: map[int]bool{2: true},
			want: []gotAU{{nil, 3000, false}, {[][]byte{tP}, 6000, true}},
		},
		{
			name: "start of the next unit lost",
			pkts: append(idrPkts(1, 3000)[:1], idrPkts(1, 3000)[2:]...),
			lost: map[int]bool{1: true},
			want: []gotAU{{nil, 3000, false}},
		},
		{
			name: "loss between units drops the next one",
			pkts: []*rtp.Packet{rtpPkt(1, 3000, true, tP), rtpPkt(3, 9000, true, tP)},
			lost: map[int]bool{1: true},
			want: []gotAU{{[][]byte{tP}, 3000, true}, {nil, 9000, false}},
		},
		{
			name:   "FU-A continuation without start",
			pkts:   []*rtp.Packet{rtpPkt(1, 3000, true, frags[1])},
			want:   []gotAU{{nil, 3000, false}},
			errors: 1,
		},
		{
			name:   "STAP-A too short",
			pkts:   []*rtp.Packet{rtpPkt(1, 3000, true, []byte{24, 0, 9, 1})},
			want:   []gotAU{{nil, 3000, false}},
			errors: 1,
		},
		{
			name:   "FU-B not allowed",
			pkts:   []*rtp.Packet{rtpPkt(1, 3000, true, []byte{29, 0x85, 1, 2})},
			want:   []gotAU{{nil, 3000, false}},
			errors: 1,
		},
		{
			name:   "empty payload",
			pkts:   []*rtp.Packet{rtpPkt(1, 3000, true, nil), rtpPkt(2, 6000, true, tP)},
			want:   []gotAU{{nil, 3000, false}, {[][]byte{tP}, 6000, true}},
			errors: 1,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, errs := runDepack(t, tc.pkts, tc.lost)
			require.Equal(t, tc.want, got)
			require.Equal(t, tc.errors, errs)
		})
	}
}

func FuzzDepacketizer(f *testing.F) {
	for _, p := range append(fuA(tIDR, 1000), stapA(tSPS, tPPS), tP, []byte{24}, []byte{28, 0x40}, []byte{29}) {
		f.Add(p, true)
	}
	f.Fuzz(func(t *testing.T, payload []byte, marker bool) {
		var d depacketizer
		emit := func(n [][]byte, _ uint32, ok bool) {
			if !ok {
				require.Nil(t, n)
				return
			}
			require.NotEmpty(t, n)
			for _, nalu := range n {
				require.NotEmpty(t, nalu)
				require.Zero(t, nalu[0]&0x80, "forbidden bit")
			}
		}
		_ = d.push(rtpPkt(1, 3000, false, stapA(tSPS, tPPS)), emit)
		_ = d.push(rtpPkt(2, 3000, marker, payload), emit)
		_ = d.push(rtpPkt(3, 6000, true, tP), emit)
		_ = d.push(rtpPkt(4, 9000, true, payload), emit)
	})
}
