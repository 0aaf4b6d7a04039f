package main

import (
	"encoding/binary"
	"testing"
	"time"
)

func rtpBytes(seq uint16, ts uint32, marker bool, payload []byte) []byte {
	b := make([]byte, 12, 12+len(payload))
	b[0] = 0x80
	b[1] = 96
	if marker {
		b[1] |= 0x80
	}
	binary.BigEndian.PutUint16(b[2:], seq)
	binary.BigEndian.PutUint32(b[4:], ts)
	return append(b, payload...)
}

func TestParseRTP(t *testing.T) {
	// CSRC count 1, extension of one word, 2 bytes of padding.
	b := []byte{0xb1, 0xe0, 0x12, 0x34, 0, 0, 0, 9, 1, 2, 3, 4, 5, 6, 7, 8,
		0xbe, 0xde, 0, 1, 0xaa, 0xbb, 0xcc, 0xdd, 0x65, 0x01, 0, 2}
	p, ok := parseRTP(b)
	if !ok || p.seq != 0x1234 || p.ts != 9 || !p.marker || len(p.payload) != 2 || p.payload[0] != 0x65 {
		t.Fatalf("got %+v %v", p, ok)
	}
	if _, ok := parseRTP(b[:10]); ok {
		t.Fatal("short packet parsed")
	}
}

var (
	sps = []byte{0x67, 0x42, 0xc0, 0x1f}
	pps = []byte{0x68, 0xce, 0x3c, 0x80}
)

func stap(nalus ...[]byte) []byte {
	out := []byte{0x18}
	for _, n := range nalus {
		out = binary.BigEndian.AppendUint16(out, uint16(len(n)))
		out = append(out, n...)
	}
	return out
}

func fua(typ byte, start, end bool) []byte {
	h := typ
	if start {
		h |= 0x80
	}
	if end {
		h |= 0x40
	}
	return []byte{0x7c, h, 1, 2, 3}
}

type pkt struct {
	seq    uint16
	ts     uint32
	marker bool
	pl     []byte
}

func feed(d *keyframeDetector, ps []pkt) int {
	for i, p := range ps {
		rp, ok := parseRTP(rtpBytes(p.seq, p.ts, p.marker, p.pl))
		if !ok {
			panic("bad packet")
		}
		if d.push(rp) {
			return i
		}
	}
	return -1
}

func TestKeyframeDetector(t *testing.T) {
	for _, tc := range []struct {
		name string
		ps   []pkt
		want int // index of the completing packet, -1 none
	}{
		{"stap-a then fu-a idr", []pkt{
			{1, 100, false, stap(sps, pps)},
			{2, 100, false, fua(5, true, false)},
			{3, 100, false, fua(5, false, false)},
			{4, 100, true, fua(5, false, true)},
		}, 3},
		{"single nal units", []pkt{
			{10, 5, false, sps}, {11, 5, false, pps}, {12, 5, true, []byte{0x65, 0x88}},
		}, 2},
		{"multi-slice idr", []pkt{
			{10, 5, false, stap(sps, pps)}, {11, 5, false, []byte{0x65, 0x88}}, {12, 5, true, []byte{0x65, 0x99}},
		}, 2},
		{"joined mid idr, then next idr", []pkt{
			{2, 100, false, fua(5, false, false)},
			{3, 100, true, fua(5, false, true)},
			{4, 200, true, []byte{0x41, 0}}, // P frame
			{5, 300, false, stap(sps, pps)},
			{6, 300, true, []byte{0x65, 0}},
		}, 4},
		{"gap inside idr", []pkt{
			{1, 100, false, stap(sps, pps)},
			{2, 100, false, fua(5, true, false)},
			{4, 100, true, fua(5, false, true)},
			{5, 200, true, []byte{0x41, 0}},
			{6, 300, true, []byte{0x65, 0}}, // SPS/PPS known from before
		}, 4},
		{"no parameter sets", []pkt{
			{1, 100, true, []byte{0x65, 0}},
			{2, 200, true, []byte{0x65, 0}},
		}, -1},
		{"no marker yet", []pkt{
			{1, 100, false, stap(sps, pps)},
			{2, 100, false, fua(5, true, false)},
		}, -1},
		{"sequence wraps", []pkt{
			{65534, 7, false, stap(sps, pps)},
			{65535, 7, false, fua(5, true, false)},
			{0, 7, true, fua(5, false, true)},
		}, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var d keyframeDetector
			if got := feed(&d, tc.ps); got != tc.want {
				t.Fatalf("completed at %d, want %d", got, tc.want)
			}
		})
	}
}

func TestProcParsing(t *testing.T) {
	stat := []byte("1234 (a (weird) name) S 1 2 3 0 -1 4194304 100 0 0 0 250 130 0 0 20 0 1 0 230317 3133440 390")
	d, err := parseStatCPU(stat)
	if err != nil || d != 3800*time.Millisecond {
		t.Fatalf("got %v %v", d, err)
	}
	rss, err := parseStatusRSS([]byte("Name:\tx\nVmPeak:\t 100 kB\nVmRSS:\t   4242 kB\n"))
	if err != nil || rss != 4242 {
		t.Fatalf("got %v %v", rss, err)
	}
	if _, err := procCPU("self"); err != nil {
		t.Fatal(err)
	}
}

func TestLoopbackOnly(t *testing.T) {
	for _, u := range []string{"http://127.0.0.1:8080/whep/x", "http://localhost:8889/a/whep", "http://[::1]:80/whep/x"} {
		if _, err := checkLoopbackURL(u); err != nil {
			t.Errorf("%s refused: %v", u, err)
		}
	}
	for _, u := range []string{"http://10.0.0.1/whep/x", "http://example.org/whep/x", "ftp://127.0.0.1/x", "http://127.0.0.1.example.org/x"} {
		if _, err := checkLoopbackURL(u); err == nil {
			t.Errorf("%s accepted", u)
		}
	}
}

func TestPercentile(t *testing.T) {
	ds := []time.Duration{300 * time.Millisecond, 100 * time.Millisecond, 200 * time.Millisecond}
	if got := pct(ds, 0, 50); got != 200 {
		t.Errorf("p50 %v", got)
	}
	if got := pct(ds, 1, 95); got != -1 {
		t.Errorf("p95 with a missing one %v", got)
	}
	if got := pct(ds, 1, 50); got != 200 {
		t.Errorf("p50 with a missing one %v", got)
	}
}

func TestMachineBusy(t *testing.T) {
	d, err := parseMachineBusy([]byte("cpu  100 5 50 1000 20 3 2 1 0 0\ncpu0 1 2 3 4\n"))
	if err != nil || d != 1610*time.Millisecond {
		t.Fatalf("got %v %v", d, err)
	}
}
