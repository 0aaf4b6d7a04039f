package whip

import (
	"testing"
	"time"

	"github.com/pion/rtp"
	"github.com/stretchr/testify/require"
)

func pkt(seq uint16) *rtp.Packet {
	return &rtp.Packet{Header: rtp.Header{SequenceNumber: seq}}
}

func seqs(ps []*rtp.Packet) []int {
	out := []int{}
	for _, p := range ps {
		if p == nil {
			out = append(out, -1)
			continue
		}
		out = append(out, int(p.SequenceNumber))
	}
	return out
}

func TestReorderer(t *testing.T) {
	t0 := time.Unix(1000, 0)
	type step struct {
		seq  uint16
		at   time.Duration
		out  []int // -1: a hole given up
		lost int
	}
	for _, tc := range []struct {
		name  string
		steps []step
	}{
		{name: "in order", steps: []step{{10, 0, []int{10}, 0}, {11, 0, []int{11}, 0}, {12, 0, []int{12}, 0}}},
		{name: "swap", steps: []step{{10, 0, []int{10}, 0}, {12, 0, []int{}, 0}, {11, 0, []int{11, 12}, 0}}},
		{name: "retransmitted in time", steps: []step{
			{10, 0, []int{10}, 0}, {12, 10, []int{}, 0}, {13, 20, []int{}, 0}, {11, 200, []int{11, 12, 13}, 0}}},
		{name: "given up", steps: []step{
			{10, 0, []int{10}, 0}, {12, 10, []int{}, 0}, {13, 100, []int{}, 0}, {14, 300, []int{-1, 12, 13, 14}, 1},
			{11, 310, []int{}, 0}}},
		{name: "duplicate", steps: []step{{10, 0, []int{10}, 0}, {10, 0, []int{}, 0}, {12, 0, []int{}, 0}, {12, 0, []int{}, 0}, {11, 0, []int{11, 12}, 0}}},
		{name: "wrap", steps: []step{{65534, 0, []int{65534}, 0}, {0, 0, []int{}, 0}, {65535, 0, []int{65535, 0}, 0}, {1, 0, []int{1}, 0}}},
		{name: "far jump", steps: []step{{10, 0, []int{10}, 0}, {12, 0, []int{}, 0}, {1000, 0, []int{-1, 12, -1, 1000}, 1 + 987}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var r reorderer
			for i, s := range tc.steps {
				out, lost := r.push(pkt(s.seq), t0.Add(s.at*time.Millisecond), nil)
				require.Equal(t, s.out, seqs(out), "step %d", i)
				require.Equal(t, s.lost, lost, "step %d", i)
			}
		})
	}
	t.Run("sequence restart", func(t *testing.T) {
		var r reorderer
		for i := range 100 {
			r.push(pkt(uint16(5000+i)), t0, nil)
		}
		var got []int
		for i := range resetAfter + 2 {
			out, _ := r.push(pkt(uint16(100+i)), t0, nil)
			got = append(got, seqs(out)...)
		}
		require.Equal(t, []int{100 + resetAfter - 1, 100 + resetAfter, 100 + resetAfter + 1}, got)
	})
}

func TestRTPClock(t *testing.T) {
	c := rtpClock{rate: 90000}
	c.start(0xffffff00, time.Second)
	require.Equal(t, time.Second, c.pts(0xffffff00))
	require.Equal(t, time.Second+time.Second*0x100/90000, c.pts(0))       // wrapped
	require.Equal(t, 2*time.Second+time.Second*0x100/90000, c.pts(90000)) // 1 s later
	// 2 s steps for 111 h: several 32-bit wraps of a 48 kHz clock.
	a := rtpClock{rate: 48000}
	ts := uint32(7)
	a.start(ts, 0)
	var last time.Duration
	for range 200_000 {
		ts += 96000
		last = a.pts(ts)
	}
	require.Equal(t, 200_000*2*time.Second, last)
}
