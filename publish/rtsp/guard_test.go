package rtsp

import (
	"bufio"
	"context"
	"encoding/base64"
	"io"
	"net"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/bluenviron/gortsplib/v4"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"

	"github.com/seance-relay/seance/configs"
)

// dialFrom opens a TCP connection from a loopback source address (all of
// 127/8 is the loopback interface on Linux).
func dialFrom(t *testing.T, ip, target string) net.Conn {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}, Timeout: 3 * time.Second}
	c, err := d.DialContext(context.Background(), "tcp", target)
	require.NoError(t, err)
	t.Cleanup(func() { c.Close() })
	return c
}

// TestHeldConnections reproduces "RTSP connections held forever": one
// address opens 200 connections that never start a session. It holds
// its share (16), the rest are closed at accept, and the held ones are
// closed after the idle timeout (silent) or the session deadline (one
// OPTIONS every 100 ms, never PLAY); meanwhile a reader from 127.0.0.1
// plays, and goroutines stay bounded.
func TestHeldConnections(t *testing.T) {
	r := startRelay(t, Config{IdleTimeout: 400 * time.Millisecond, SessionTimeout: time.Second})
	host := strings.TrimPrefix(r.base, "rtsp://")
	refused := func() float64 { return testutil.ToFloat64(r.srv.met.refused.WithLabelValues("address_busy")) }
	g0 := runtime.NumGoroutine()

	var conns []net.Conn
	for range 200 {
		conns = append(conns, dialFrom(t, "127.0.0.9", host))
	}
	require.Eventually(t, func() bool { return refused() == 200-DefaultMaxConnsPerAddr }, 5*time.Second, 5*time.Millisecond)
	t.Logf("200 connections: %v refused at accept, %d goroutines (baseline %d)", refused(), runtime.NumGoroutine(), g0)
	require.Less(t, runtime.NumGoroutine()-g0, 100)

	c, n := play(t, r.base+"/demo", gortsplib.TransportTCP)
	defer c.Close()
	require.Eventually(t, func() bool { return n.Load() > 50 }, 5*time.Second, 10*time.Millisecond, "the reader plays")

	start := time.Now()
	for _, nc := range conns[:DefaultMaxConnsPerAddr] {
		_ = nc.SetReadDeadline(time.Now().Add(5 * time.Second))
		_, err := io.Copy(io.Discard, nc)
		require.NoError(t, err, "a silent connection was not closed within 5 s")
	}
	t.Logf("silent connections closed %v after the flood (idle timeout 400 ms)", time.Since(start))

	// A talker that never plays is closed at the session deadline.
	talker := dialFrom(t, "127.0.0.10", host)
	start = time.Now()
	closed := make(chan time.Duration, 1)
	go func() {
		_, _ = io.Copy(io.Discard, talker)
		closed <- time.Since(start)
	}()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for cseq := 1; ; cseq++ {
		select {
		case d := <-closed:
			t.Logf("a client sending OPTIONS and never PLAY was closed after %v (deadline 1 s)", d)
			require.Less(t, d, 3*time.Second)
			require.Greater(t, n.Load(), int64(100), "the reader kept playing")
			return
		case <-tick.C:
			_, _ = io.WriteString(talker, "OPTIONS "+r.base+"/demo RTSP/1.0\r\nCSeq: "+strconv.Itoa(cseq)+"\r\n\r\n")
		case <-time.After(5 * time.Second):
			t.Fatal("the talker was not closed within 5 s")
		}
	}
}

// TestBasicCredentials: Basic credentials, compared in constant time by
// seance, let the right user in and no one else.
func TestBasicCredentials(t *testing.T) {
	r := startRelay(t, Config{Username: "mairie", Password: configs.Secret(testPassword)})
	host := strings.TrimPrefix(r.base, "rtsp://")
	for _, tc := range []struct {
		name, user, pass string
		status           string
	}{
		{"right", "mairie", testPassword, "RTSP/1.0 200"},
		{"wrong password", "mairie", testPassword + "x", "RTSP/1.0 401"},
		{"password prefix", "mairie", testPassword[:len(testPassword)-1], "RTSP/1.0 401"},
		{"wrong user", "mairi", testPassword, "RTSP/1.0 401"},
		{"empty", "", "", "RTSP/1.0 401"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			nc := dialFrom(t, "127.0.0.1", host)
			auth := base64.StdEncoding.EncodeToString([]byte(tc.user + ":" + tc.pass))
			_, err := io.WriteString(nc, "DESCRIBE "+r.base+"/demo RTSP/1.0\r\nCSeq: 1\r\nAuthorization: Basic "+auth+"\r\n\r\n")
			require.NoError(t, err)
			_ = nc.SetReadDeadline(time.Now().Add(5 * time.Second))
			line, err := bufio.NewReader(nc).ReadString('\n')
			require.NoError(t, err)
			require.True(t, strings.HasPrefix(line, tc.status), line)
		})
	}
	require.False(t, r.logs.contains(testPassword), "the password is in the logs")
}
