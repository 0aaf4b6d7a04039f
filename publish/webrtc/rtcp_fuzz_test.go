package webrtc

import (
	"bytes"
	"testing"
	"time"

	"github.com/pion/rtcp"
	"github.com/pion/rtp"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/seance-relay/seance/relay"
)

// countingWriter counts the packets a session resends.
type countingWriter struct{ n int }

func (w *countingWriter) WriteRTP(*rtp.Header, []byte) (int, error) { w.n++; return 0, nil }
func (w *countingWriter) Write([]byte) (int, error)                 { w.n++; return 0, nil }

// rtcpSession is a session with a full retransmission ring and a bound
// video track, for handleRTCP alone.
func rtcpSession() (*session, *countingWriter) {
	w := &countingWriter{}
	s := &session{
		channel: "demo",
		srv:     &Server{met: newMetrics(prometheus.NewRegistry())},
		pli:     make(chan struct{}, 1),
		video:   &track{id: "video"},
	}
	s.video.bound.Store(&binding{ssrc: 1, pt: 102, writer: w})
	f := &relay.Frame{Kind: relay.KindVideo, Key: true, NALUs: [][]byte{bytes.Repeat([]byte{0x65, 0x88}, 3000)}}
	n := len(f.RTPPayloads())
	for i := range ringSize {
		s.ring[i] = sent{f: f, seq: uint16(i), idx: uint16(i % n), ts: 90000}
	}
	s.srSent[0] = srRecord{mid: 0x1234, at: time.Now()}
	return s, w
}

// FuzzWHEPRTCP feeds a viewer's RTCP to the session: NACKs, PLIs and
// reports in any combination, compound or not. Nothing panics, and one
// message makes at most maxRetransmits packets go out again, however
// often it names them.
func FuzzWHEPRTCP(f *testing.F) {
	seeds := [][]rtcp.Packet{
		{&rtcp.TransportLayerNack{MediaSSRC: 1, Nacks: []rtcp.NackPair{{PacketID: 10, LostPackets: 0xffff}}}},
		{&rtcp.PictureLossIndication{MediaSSRC: 1}, &rtcp.FullIntraRequest{MediaSSRC: 1, FIR: []rtcp.FIREntry{{SSRC: 1}}}},
		{&rtcp.ReceiverReport{SSRC: 2, Reports: []rtcp.ReceptionReport{{SSRC: 1, TotalLost: 5, LastSenderReport: 0x1234, Delay: 100}}}},
		{&rtcp.SenderReport{SSRC: 2, Reports: []rtcp.ReceptionReport{{SSRC: 1, TotalLost: 1 << 23}}}},
	}
	// The amplification: one NACK naming the same packets 250 times.
	flood := &rtcp.TransportLayerNack{MediaSSRC: 1}
	for range 250 {
		flood.Nacks = append(flood.Nacks, rtcp.NackPair{PacketID: 1, LostPackets: 0xffff})
	}
	seeds = append(seeds, []rtcp.Packet{flood})
	for _, pkts := range seeds {
		b, err := rtcp.Marshal(pkts)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte{0x81, 205, 0, 2, 0, 0, 0, 1, 0, 0, 0, 1})
	f.Fuzz(func(t *testing.T, data []byte) {
		pkts, err := rtcp.Unmarshal(data)
		if err != nil {
			return
		}
		for kind := range 2 {
			s, w := rtcpSession()
			s.handleRTCP(pkts, kind)
			nacks := 0
			for _, p := range pkts {
				if _, ok := p.(*rtcp.TransportLayerNack); ok {
					nacks++
				}
			}
			if w.n > nacks*maxRetransmits || kind == 1 && w.n > 0 {
				t.Fatalf("%d packets resent for %d NACK messages (kind %d)", w.n, nacks, kind)
			}
		}
	})
}
