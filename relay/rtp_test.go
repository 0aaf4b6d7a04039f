package relay

import (
	"bytes"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestPacketizeH264(t *testing.T) {
	small := bytes.Repeat([]byte{0x41}, 100)
	big := append([]byte{0x65}, bytes.Repeat([]byte{7}, 3000)...)
	payloads := packetizeH264(&Frame{NALUs: [][]byte{small, big}, AVCC: make([]byte, 3108)})
	require.Equal(t, small, payloads[0])
	var body []byte
	for i, p := range payloads[1:] {
		require.LessOrEqual(t, len(p), MaxRTPPayload)
		require.Equal(t, byte(0x60|28), p[0])
		require.Equal(t, byte(5), p[1]&0x1f)
		require.Equal(t, i == 0, p[1]&0x80 != 0)
		require.Equal(t, i == len(payloads)-2, p[1]&0x40 != 0)
		body = append(body, p[2:]...)
	}
	require.Equal(t, big[1:], body)
}
