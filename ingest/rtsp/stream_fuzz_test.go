package rtsp

import (
	"encoding/binary"
	"testing"

	"github.com/bluenviron/gortsplib/v4/pkg/description"
	"github.com/bluenviron/gortsplib/v4/pkg/sdp"
	"github.com/pion/rtp"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/seance-relay/seance/relay"
)

// FuzzPullStream feeds what a camera (or whoever answers at its address)
// sends a pull: the DESCRIBE answer's SDP, then RTP packets (2-byte
// length, then the packet; the even ones on the video track, the odd ones
// on the audio track). Tracks are picked, packets decoded and published;
// nothing may panic, and the session closes.
func FuzzPullStream(f *testing.F) {
	const camera = "v=0\r\no=- 0 0 IN IP4 127.0.0.1\r\ns=cam\r\nt=0 0\r\n" +
		"m=video 0 RTP/AVP 96\r\na=rtpmap:96 H264/90000\r\na=fmtp:96 packetization-mode=1;sprop-parameter-sets=Z0LAHtkDxWhAAAADAEAAAAwDxYuS,aMuMsg==\r\na=control:trackID=0\r\n" +
		"m=audio 0 RTP/AVP 97\r\na=rtpmap:97 mpeg4-generic/48000/2\r\na=fmtp:97 streamtype=5;profile-level-id=1;mode=AAC-hbr;sizelength=13;indexlength=3;indexdeltalength=3;config=1190\r\na=control:trackID=1\r\n"
	frame := func(seq uint16, marker bool, payload ...byte) []byte {
		p := rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: 96, SequenceNumber: seq, Timestamp: uint32(seq) * 3000, Marker: marker}, Payload: payload}
		b, _ := p.Marshal()
		return append(binary.BigEndian.AppendUint16(nil, uint16(len(b))), b...)
	}
	idr := append(frame(1, true, 0x65, 0x88, 0x84, 0x00, 0x33), frame(2, true, 0x41, 0x9a, 0x02)...)
	fua := append(frame(3, false, 0x7c, 0x85, 0x88, 0x84), frame(4, true, 0x7c, 0x45, 0x00, 0x33)...)
	aac := frame(5, true, 0x00, 0x10, 0x00, 0x30, 0x21, 0x10, 0x04, 0x60, 0x8c, 0x1c)
	f.Add([]byte(camera), append(append(idr, aac...), fua...))
	f.Add([]byte(camera), []byte{0, 3, 1, 2, 3})
	f.Add([]byte("v=0\r\nm=video 0 RTP/AVP 96\r\na=rtpmap:96 H265/90000\r\n"), []byte(nil))
	f.Add([]byte("garbage"), []byte(nil))
	hub := relay.NewHub([]relay.ChannelConfig{{Name: "c"}}, zerolog.Nop(), relay.NewMetrics(prometheus.NewRegistry()))
	ch, err := hub.Channel("c")
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, sdpText, packets []byte) {
		var sd sdp.SessionDescription
		if sd.Unmarshal(sdpText) != nil {
			return
		}
		var desc description.Session
		if desc.Unmarshal(&sd) != nil {
			return
		}
		s := &stream{
			publish: ch.Publish,
			info:    relay.PublisherInfo{Protocol: "rtsp"},
			log:     zerolog.Nop(),
			failed:  make(chan error, 1),
			live:    make(chan struct{}),
		}
		if s.pick(&desc) != nil {
			return
		}
		defer s.close()
		for i := 0; len(packets) >= 2 && i < 256; i++ {
			n := int(binary.BigEndian.Uint16(packets))
			packets = packets[2:]
			if n > len(packets) {
				return
			}
			var p rtp.Packet
			if p.Unmarshal(packets[:n]) == nil {
				if i%2 == 0 || s.adec == nil {
					if au, err := s.vdec.Decode(&p); err == nil {
						s.writeVideo(int64(p.Timestamp), au)
					}
				} else if s.sess != nil {
					if aus, err := s.adec.Decode(&p); err == nil {
						for j, au := range aus {
							s.sess.WriteAAC(toDuration(int64(p.Timestamp)+int64(j)*s.auSamples, s.audio.ClockRate()), au)
						}
					}
				}
			}
			packets = packets[n:]
		}
	})
}
