package relay

// MaxRTPPayload keeps RTP packets under a 1280-byte IPv6 minimum MTU once
// SRTP, UDP and IP headers are added.
const MaxRTPPayload = 1160

// packetizeH264 splits an access unit into RTP payloads (RFC 6184: single
// NAL unit packets, and FU-A fragments for NAL units larger than
// MaxRTPPayload). It runs once per frame per channel: every viewer shares the
// result through relay.Frame.RTPPayloads.
func packetizeH264(f *Frame) [][]byte {
	n := 0
	for _, nalu := range f.NALUs {
		if len(nalu) <= MaxRTPPayload {
			n++
		} else {
			n += (len(nalu) - 1 + MaxRTPPayload - 3) / (MaxRTPPayload - 2)
		}
	}
	out := make([][]byte, 0, n)
	// One backing array for every fragment of the frame.
	buf := make([]byte, 0, len(f.AVCC)+2*n)
	for _, nalu := range f.NALUs {
		if len(nalu) == 0 {
			continue
		}
		if len(nalu) <= MaxRTPPayload {
			out = append(out, nalu)
			continue
		}
		// RFC 6184 5.8: FU indicator (F, NRI, type 28), FU header (S, E,
		// original type), then the NAL unit without its header byte.
		indicator := nalu[0]&0xe0 | 28
		typ := nalu[0] & 0x1f
		rest := nalu[1:]
		first := true
		for len(rest) > 0 {
			size := min(len(rest), MaxRTPPayload-2)
			header := typ
			if first {
				header |= 0x80
			}
			if size == len(rest) {
				header |= 0x40
			}
			start := len(buf)
			buf = append(buf, indicator, header)
			buf = append(buf, rest[:size]...)
			out = append(out, buf[start:len(buf):len(buf)])
			rest = rest[size:]
			first = false
		}
	}
	return out
}
