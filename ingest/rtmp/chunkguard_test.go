package rtmp

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// chunk0 is a type-0 chunk (RTMP 1.0 section 5.3.1.2.1) of one message.
func chunk0(csid, typ byte, body []byte) []byte {
	b := []byte{csid, 0, 0, 0, byte(len(body) >> 16), byte(len(body) >> 8), byte(len(body)), typ, 0, 0, 0, 0}
	return append(b, body...)
}

func setChunkSize(v uint32) []byte { return chunk0(2, 1, binary.BigEndian.AppendUint32(nil, v)) }

// TestChunkGuard: before the key is checked, a Set Chunk Size above
// 64 KiB fails the read that would complete it, however it is split into
// chunks; what encoders send passes.
func TestChunkGuard(t *testing.T) {
	hs := make([]byte, handshakeLen)
	big := setChunkSize(10 << 20)
	// The same message split in 1-byte chunks (chunk size 1), interleaved
	// with another stream's 4-byte message.
	split := setChunkSize(1)
	split = append(split, 0x02, 0, 0, 0, 0, 0, 4, 1, 0, 0, 0, 0, 0x00)
	split = append(split, chunk0(3, 20, []byte{9})...)
	split = append(split, 0xc2, 0xa0, 0xc2, 0x00, 0xc2, 0x00)
	for _, tc := range []struct {
		name string
		data []byte
		err  error
	}{
		{"encoder chunk size", append(hs, setChunkSize(4096)...), nil},
		{"gortmplib chunk size", append(hs, setChunkSize(65536)...), nil},
		{"10 MB chunk size", append(hs, big...), errChunkSize},
		{"10 MB chunk size, split and interleaved", append(hs, split...), errChunkSize},
		{"extended chunk stream id", append(hs, 0x00, 1, 2), errChunkState},
		{"type 3 first", append(hs, 0xc5), errChunkState},
		{"message over 10 MB", append(hs, 0x03, 0, 0, 0, 0xff, 0xff, 0xff, 20, 0, 0, 0, 0), errChunkState},
		{"flood", append(hs, bytes.Repeat(chunk0(3, 20, make([]byte, 100)), 3000)...), errTooMuch},
		{"connect", append(hs, chunk0(3, 20, []byte("\x02\x00\x07connect"))...), nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var p chunkParser
			var err error
			// Fed in reads of 7 bytes: parsing does not depend on them.
			for d := tc.data; len(d) > 0 && err == nil; {
				n := min(7, len(d))
				err = p.feed(d[:n])
				d = d[n:]
			}
			if tc.err == nil {
				require.NoError(t, err)
				return
			}
			require.ErrorIs(t, err, tc.err)
		})
	}
}

// TestChunkSizeBeforeAuth: a client that sets a 10 MB chunk size before
// publishing is closed before its key is checked, counted as a bad
// request, and a publisher from another address goes live meanwhile.
func TestChunkSizeBeforeAuth(t *testing.T) {
	m := loadMedia(t)
	ts := startServer(t)
	c, err := fromAddr("127.0.0.11")(context.Background(), "tcp", ts.srv.Addr().String())
	require.NoError(t, err)
	defer c.Close()
	// C0 C1, then C2 once S0 S1 S2 arrived.
	_, err = c.Write(append([]byte{3}, make([]byte, 1536)...))
	require.NoError(t, err)
	_, err = io.ReadFull(c, make([]byte, handshakeLen))
	require.NoError(t, err)
	_, err = c.Write(append(make([]byte, 1536), setChunkSize(10<<20)...))
	require.NoError(t, err)
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, err = io.Copy(io.Discard, c)
	var ne net.Error
	require.False(t, errors.As(err, &ne) && ne.Timeout(), "the connection was not closed")
	require.Eventually(t, func() bool { return ts.connections(t, "bad_request") == 1 }, 5*time.Second, 5*time.Millisecond)
	_ = goLive(t, ts, m)
}

// FuzzChunkGuard: any chunk stream is parsed or refused, never panics,
// and never lets a chunk size above the bound through.
func FuzzChunkGuard(f *testing.F) {
	hs := make([]byte, handshakeLen)
	f.Add(append(hs, setChunkSize(4096)...))
	f.Add(append(hs, setChunkSize(10<<20)...))
	f.Add(append(hs, chunk0(3, 20, []byte("\x02\x00\x07connect"))...))
	f.Add(append(hs, 0x02, 0, 0, 0, 0, 0, 4, 1, 0, 0, 0, 0, 0, 0xc2, 1, 0xc2, 0, 0xc2, 0))
	f.Fuzz(func(t *testing.T, data []byte) {
		var p chunkParser
		_ = p.feed(data)
		if p.chunkSize > maxChunkBeforeAuth {
			t.Fatalf("chunk size %d let through", p.chunkSize)
		}
	})
}
