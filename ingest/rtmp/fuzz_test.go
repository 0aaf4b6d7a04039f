package rtmp

import (
	"context"
	"math/rand/v2"
	"net"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// recordPublisher returns the bytes a gortmplib client sends to publish
// 2.5 s of H.264 and AAC with the right key. The plain RTMP handshake is
// not checked on the server side, so the bytes replay as they are.
func recordPublisher(f *testing.F) []byte {
	m := loadMedia(f)
	ts := startServer(f)
	var rec *recordingConn
	dialer := func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := (&net.Dialer{}).DialContext(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		rec = &recordingConn{Conn: c}
		return rec, nil
	}
	p, err := startPublisher(f, m, publishURL(ts.srv.Addr(), testChannel+"?key="+testKey), dialer)
	require.NoError(f, err)
	require.NoError(f, p.write(2500*time.Millisecond))
	p.client.Close()
	// Stopped here, so that no goroutine logs to f once fuzzing starts.
	require.NoError(f, ts.stop())
	return rec.bytes()
}

// FuzzHandshake feeds bytes to the server through a real TCP connection.
// The server must close the connection without panicking and keep
// accepting others.
func FuzzHandshake(f *testing.F) {
	f.Add([]byte{})
	c0c1 := make([]byte, 1+1536)
	c0c1[0] = 0x03
	f.Add(c0c1)
	rnd := rand.New(rand.NewPCG(7, 7))
	random := make([]byte, 4096)
	for i := range random {
		random[i] = byte(rnd.Uint32())
	}
	f.Add(random)
	f.Add(recordPublisher(f))

	f.Fuzz(func(t *testing.T, data []byte) {
		ts := startServer(t)
		send := func(data []byte) {
			c, err := net.Dial("tcp", ts.srv.Addr().String())
			require.NoError(t, err)
			defer c.Close()
			written := make(chan struct{})
			go func() {
				defer close(written)
				_ = c.SetWriteDeadline(time.Now().Add(5 * time.Second))
				_, _ = c.Write(data)
				_ = c.(*net.TCPConn).CloseWrite()
			}()
			waitClosed(t, c)
			<-written
		}
		send(data)
		// The listener still serves: an empty connection is read and
		// closed too.
		send(nil)
		select {
		case err := <-ts.done:
			t.Fatalf("Run returned: %v", err)
		default:
		}
		requireNoKeys(t, ts.logs.String())
	})
}
