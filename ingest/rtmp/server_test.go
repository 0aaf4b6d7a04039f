package rtmp

import (
	"context"
	"encoding/json"
	"math/rand/v2"
	"net"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h264"
	"github.com/rs/zerolog"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/seance-relay/seance/addrlimit"
	"github.com/seance-relay/seance/configs"
	"github.com/seance-relay/seance/relay"
)

// logMessages returns the message of every JSON log line.
func logMessages(t testing.TB, logs string) []string {
	t.Helper()
	var out []string
	for line := range strings.Lines(logs) {
		var rec map[string]any
		require.NoError(t, json.Unmarshal([]byte(line), &rec), line)
		msg, _ := rec["message"].(string)
		out = append(out, msg)
	}
	return out
}

func requireNoKeys(t testing.TB, logs string) {
	t.Helper()
	for _, k := range []string{testKey, otherKey} {
		require.NotContains(t, logs, k, "a log line holds an ingest key")
	}
}

func TestPublishGoesLive(t *testing.T) {
	m := loadMedia(t)
	ts := startServer(t)
	ch := ts.channel(t, testChannel)
	sub := ch.Subscribe("test", 1024)
	defer sub.Close()

	p := goLive(t, ts, m)

	require.Equal(t, 1.0, ts.connections(t, "accepted"))
	h := ch.Health()
	require.Equal(t, "rtmp", h.Protocol)
	require.NotEmpty(t, h.RemoteAddr)
	require.Equal(t, m.sps, ch.Tracks().Video.SPS)
	require.Equal(t, m.pps, ch.Tracks().Video.PPS)
	require.NotNil(t, ch.Tracks().Audio)

	// The first frame a new sink gets is the IDR with SPS and PPS in front.
	var first *relay.Frame
	select {
	case first = <-sub.Frames():
	case <-time.After(5 * time.Second):
		t.Fatal("no frame reached the subscription")
	}
	require.Equal(t, relay.KindVideo, first.Kind)
	require.True(t, first.Key)
	require.GreaterOrEqual(t, len(first.NALUs), 3)
	require.Equal(t, m.sps, first.NALUs[0])
	require.Equal(t, m.pps, first.NALUs[1])
	hasIDR := false
	for _, n := range first.NALUs[2:] {
		typ := h264.NALUType(n[0] & 0x1f)
		require.NotEqual(t, h264.NALUTypeSPS, typ, "parameter sets must not be repeated")
		hasIDR = hasIDR || typ == h264.NALUTypeIDR
	}
	require.True(t, hasIDR)

	// Then P frames and audio follow.
	kinds := map[relay.Kind]int{}
	require.Eventually(t, func() bool {
		for {
			select {
			case f := <-sub.Frames():
				kinds[f.Kind]++
			default:
				return kinds[relay.KindVideo] >= 10 && kinds[relay.KindAudio] >= 10
			}
		}
	}, 5*time.Second, 5*time.Millisecond)

	// The publisher leaves: with no grace period the session ends.
	p.client.Close()
	require.Eventually(t, func() bool { return ts.state(t, testChannel) == relay.StateIdle },
		5*time.Second, 5*time.Millisecond)
	require.Eventually(t, func() bool {
		return strings.Contains(ts.logs.String(), "RTMP publisher disconnected")
	}, 5*time.Second, 5*time.Millisecond)
	requireNoKeys(t, ts.logs.String())
}

func TestRefusals(t *testing.T) {
	m := loadMedia(t)
	for _, tc := range []struct {
		name       string
		streamName string // the RTMP stream key: channel and query
		play       bool
		whileLive  bool // a good publisher is live on testChannel first
		result     string
		why        string // in the log line
	}{
		{
			name:       "wrong key",
			streamName: testChannel + "?key=not-the-key",
			result:     "bad_key",
			why:        `wrong or missing ingest key for channel "` + testChannel + `"`,
		},
		{
			name:       "another channel's key",
			streamName: testChannel + "?key=" + otherKey,
			result:     "bad_key",
			why:        "wrong or missing ingest key",
		},
		{
			name:       "missing key",
			streamName: testChannel,
			result:     "bad_key",
			why:        "wrong or missing ingest key",
		},
		{
			name:       "empty key",
			streamName: testChannel + "?key=",
			result:     "bad_key",
			why:        "wrong or missing ingest key",
		},
		{
			name:       "channel with an unset key",
			streamName: "emptykey?key=",
			result:     "bad_key",
			why:        `wrong or missing ingest key for channel "emptykey"`,
		},
		{
			name:       "unknown channel",
			streamName: "nope?key=" + testKey,
			result:     "unknown_channel",
			why:        `no channel "nope" accepts RTMP pushes`,
		},
		{
			name:       "channel without a key in Keys",
			streamName: "nokey?key=" + testKey,
			result:     "unknown_channel",
			why:        `no channel "nokey" accepts RTMP pushes`,
		},
		{
			// A streamer configured with the key as the stream name.
			name:       "key as the channel name",
			streamName: testKey,
			result:     "unknown_channel",
			why:        "accepts RTMP pushes",
		},
		{
			name:       "second publisher while live",
			streamName: testChannel + "?key=" + testKey,
			whileLive:  true,
			result:     "busy",
			why:        `channel "` + testChannel + `" already has a live publisher`,
		},
		{
			name:       "play request",
			streamName: testChannel + "?key=" + testKey,
			play:       true,
			result:     "play_refused",
			why:        "playing over RTMP is not offered",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ts := startServer(t)
			if tc.whileLive {
				goLive(t, ts, m)
			}

			c, err := dial(t, publishURL(ts.srv.Addr(), tc.streamName), !tc.play, nil)
			if err == nil {
				// Refused after publish was answered: the first writes
				// must fail once the server has closed.
				defer c.Close()
				waitClosed(t, c.NetConn())
			}

			require.Eventually(t, func() bool { return ts.connections(t, tc.result) == 1 },
				5*time.Second, 5*time.Millisecond, "seance_rtmp_connections_total{result=%q}", tc.result)
			if tc.whileLive {
				require.Equal(t, 1.0, ts.connections(t, "accepted"))
				require.Equal(t, relay.StateLive, ts.state(t, testChannel), "the live publisher must keep the channel")
			} else {
				require.Zero(t, ts.connections(t, "accepted"))
				require.Equal(t, relay.StateIdle, ts.state(t, testChannel))
			}

			require.Eventually(t, func() bool {
				for _, msg := range logMessages(t, ts.logs.String()) {
					if strings.HasPrefix(msg, "RTMP publisher refused: ") && strings.Contains(msg, tc.why) {
						return true
					}
				}
				return false
			}, 5*time.Second, 5*time.Millisecond, "no log line says %q", tc.why)
			requireNoKeys(t, ts.logs.String())
		})
	}
}

// TestGarbage sends 1 MB of random bytes: the server drops the connection
// and still takes a good publisher afterwards.
func TestGarbage(t *testing.T) {
	m := loadMedia(t)
	for _, tc := range []struct {
		name  string
		first byte // the RTMP version byte (C0)
	}{
		{"plain handshake version", 0x03},
		{"encrypted handshake version", 0x06},
		{"unknown version", 0xa7},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ts := startServer(t)
			garbage := make([]byte, 1<<20)
			rnd := rand.New(rand.NewPCG(1, uint64(tc.first)))
			for i := range garbage {
				garbage[i] = byte(rnd.Uint32())
			}
			garbage[0] = tc.first

			c, err := net.Dial("tcp", ts.srv.Addr().String())
			require.NoError(t, err)
			defer c.Close()
			written := make(chan struct{})
			go func() {
				defer close(written)
				_ = c.SetWriteDeadline(time.Now().Add(5 * time.Second))
				_, _ = c.Write(garbage) // fails once the server has closed
			}()
			waitClosed(t, c)
			<-written
			require.Eventually(t, func() bool { return ts.connections(t, "bad_request") == 1 },
				5*time.Second, 5*time.Millisecond)

			goLive(t, ts, m)
			require.Equal(t, 1.0, ts.connections(t, "accepted"))
			requireNoKeys(t, ts.logs.String())
		})
	}
}

// fromAddr dials from a loopback source address (all of 127/8 is the
// loopback interface on Linux): another client than 127.0.0.1.
func fromAddr(ip string) func(ctx context.Context, network, addr string) (net.Conn, error) {
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}}
	return d.DialContext
}

// flood opens n idle TCP connections from ip; they close when the test
// ends.
func flood(t *testing.T, target net.Addr, ip string, n int) {
	t.Helper()
	for range n {
		c, err := fromAddr(ip)(context.Background(), "tcp", target.String())
		require.NoError(t, err)
		t.Cleanup(func() { c.Close() })
	}
}

// TestFlood reproduces the idle-socket attack: one address opens 100
// idle connections and repeats; only its share (4) is held, the rest is
// closed at once, idle ones are closed after the first-byte deadline,
// and a publisher with the right key from another address gets in within
// 3 s throughout. When many addresses fill the global bound, the one
// holding the most loses its oldest connection to the newcomer.
func TestFlood(t *testing.T) {
	m := loadMedia(t)
	for _, tc := range []struct {
		name     string
		edit     func(*Config)
		flooders []string // each opens 100 idle connections
		admitted float64  // address_busy refusals expected: 100*len - admitted
		evicted  bool
	}{
		{name: "one address", flooders: []string{"127.0.0.1"}, admitted: DefaultMaxPendingPerAddr},
		{
			name:     "global bound reached by two addresses: the top one is evicted",
			edit:     func(c *Config) { c.MaxPending = 8 },
			flooders: []string{"127.0.0.3", "127.0.0.4"},
			admitted: 8,
			evicted:  true,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			base := runtime.NumGoroutine()
			ts := startServerWith(t, func(c *Config) {
				c.FirstByteTimeout = 500 * time.Millisecond
				if tc.edit != nil {
					tc.edit(c)
				}
			})
			for _, ip := range tc.flooders {
				flood(t, ts.srv.Addr(), ip, 100)
			}
			busy := float64(100*len(tc.flooders)) - tc.admitted
			require.Eventually(t, func() bool { return ts.connections(t, "address_busy") == busy },
				5*time.Second, 5*time.Millisecond)
			peak := runtime.NumGoroutine()
			t.Logf("flood of %d connections: %d goroutines (baseline %d)", 100*len(tc.flooders), peak, base)
			require.Less(t, peak-base, 40, "the flood holds goroutines")

			start := time.Now()
			p, err := startPublisher(t, m, publishURL(ts.srv.Addr(), testChannel+"?key="+testKey), fromAddr("127.0.0.2"))
			require.NoError(t, err, "a publisher from another address is locked out")
			require.NoError(t, p.write(2500*time.Millisecond))
			require.Eventually(t, func() bool { return ts.state(t, testChannel) == relay.StateLive },
				3*time.Second, 5*time.Millisecond)
			t.Logf("publisher live %v after connecting during the flood", time.Since(start))
			require.Less(t, time.Since(start), 3*time.Second)
			if tc.evicted {
				require.Equal(t, 1.0, ts.connections(t, "evicted"))
			}
			// The idle ones are closed after the first-byte deadline; the
			// flooder's next round gets its share again, no more.
			require.Eventually(t, func() bool { return ts.connections(t, "bad_request") >= tc.admitted-1 },
				3*time.Second, 5*time.Millisecond)
			flood(t, ts.srv.Addr(), tc.flooders[0], 100)
			require.Eventually(t, func() bool { return ts.connections(t, "address_busy") == busy+100-DefaultMaxPendingPerAddr },
				5*time.Second, 5*time.Millisecond)
			require.NoError(t, p.write(time.Second))
			require.Equal(t, relay.StateLive, ts.state(t, testChannel), "the channel stayed live")
		})
	}
}

// TestWrongKeysBackOff: after the free failures, an address guessing keys
// is closed before its handshake, logged once, counted; another address
// with the right key is not affected.
func TestWrongKeysBackOff(t *testing.T) {
	m := loadMedia(t)
	ts := startServer(t)
	for range addrlimit.DefaultFreeFailures + 3 {
		_, err := dial(t, publishURL(ts.srv.Addr(), testChannel+"?key=guess"), true, fromAddr("127.0.0.5"))
		require.Error(t, err)
	}
	require.Equal(t, float64(addrlimit.DefaultFreeFailures+1), ts.connections(t, "bad_key"))
	require.Equal(t, 2.0, ts.connections(t, "throttled"))
	require.Equal(t, 1, strings.Count(ts.logs.String(), "backing off"), "logged once per window")
	requireNoKeys(t, ts.logs.String())
	_ = goLive(t, ts, m)
}

// TestShutdown cancels Run with a live publisher: Run returns, the
// publisher is disconnected, the channel ends and no goroutine is left.
func TestShutdown(t *testing.T) {
	m := loadMedia(t)
	ts := startServer(t)
	p := goLive(t, ts, m)

	require.NoError(t, ts.stop())
	waitClosed(t, p.client.NetConn())
	require.Equal(t, relay.StateIdle, ts.state(t, testChannel))
	_, err := net.DialTimeout("tcp", ts.srv.Addr().String(), time.Second)
	require.Error(t, err, "the listener must be closed")
	p.client.Close()
	goleak.VerifyNone(t)
}

// TestLongPublish keeps a publisher past handshakeTimeout and past the
// 2.5 MB acknowledgement window it announced: the server's
// acknowledgement must not fail on the handshake's write deadline.
func TestLongPublish(t *testing.T) {
	if testing.Short() {
		t.Skip("runs for handshakeTimeout")
	}
	m := loadMedia(t)
	ts := startServer(t)
	start := time.Now()
	p := goLive(t, ts, m)
	ch := ts.channel(t, testChannel)

	// Publish in real time until the handshake deadline has passed.
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for time.Since(start) < handshakeTimeout+time.Second {
		<-tick.C
		require.NoError(t, p.write(100*time.Millisecond))
	}
	require.Equal(t, relay.StateLive, ts.state(t, testChannel))

	sub := ch.Subscribe("test", 1024)
	defer sub.Close()
	// 3 MB of P frames make the server send an acknowledgement.
	big := make([]byte, 100<<10)
	big[0] = 0x41 // non-IDR slice
	for i := 1; i < len(big); i++ {
		big[i] = byte(i) | 1
	}
	require.NoError(t, p.writeWith(time.Second, [][]byte{big}))
	require.NoError(t, p.write(1100*time.Millisecond))

	received := 0
	require.Eventually(t, func() bool {
		for {
			select {
			case f := <-sub.Frames():
				if f.Kind == relay.KindVideo {
					received++
				}
			default:
				return received >= 55
			}
		}
	}, 5*time.Second, 5*time.Millisecond, "the server stopped reading the publisher")
	require.Equal(t, relay.StateLive, ts.state(t, testChannel))
	require.NotContains(t, ts.logs.String(), "RTMP publisher disconnected")
}

func TestChannelFromPath(t *testing.T) {
	for _, tc := range []struct {
		path, want string
	}{
		{"/live/bourg", "bourg"},
		{"/live/bourg/", "bourg"},
		{"/bourg", "bourg"},
		{"/live/", "live"},
		{"/live", "live"},
		{"", ""},
		{"/live/a/b", "a/b"},
	} {
		t.Run(tc.path, func(t *testing.T) {
			require.Equal(t, tc.want, channelFromPath(tc.path))
		})
	}
}

func TestPrintable(t *testing.T) {
	for _, tc := range []struct {
		name, in, want string
	}{
		{"plain", "bourg", "bourg"},
		{"control characters", "a\nb\x00c\x7f", "a?b?c?"},
		{"long", strings.Repeat("x", 100), strings.Repeat("x", 64) + "…"},
		{"exactly 64", strings.Repeat("y", 64), strings.Repeat("y", 64)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			require.Equal(t, tc.want, printable(tc.in))
		})
	}
}

func TestNewPortTaken(t *testing.T) {
	ts := startServer(t)
	_, err := New(Config{Listen: ts.srv.Addr().String()}, ts.hub, zerolog.New(zerolog.NewTestWriter(t)), nil)
	require.ErrorContains(t, err, "rtmp listener on "+ts.srv.Addr().String())
}

// TestSetKeys: a reload's new keys apply to the next publisher; the live
// one stays.
func TestSetKeys(t *testing.T) {
	m := loadMedia(t)
	ts := startServer(t)
	p := goLive(t, ts, m)
	ts.srv.SetKeys(map[string]configs.Secret{testChannel: otherKey})
	require.NoError(t, p.write(500*time.Millisecond), "the live publisher stays")
	require.Equal(t, relay.StateLive, ts.state(t, testChannel))
	p.client.Close()
	require.Eventually(t, func() bool { return ts.state(t, testChannel) != relay.StateLive },
		5*time.Second, 5*time.Millisecond)

	c, err := dial(t, publishURL(ts.srv.Addr(), testChannel+"?key="+testKey), true, nil)
	if err == nil {
		defer c.Close()
		waitClosed(t, c.NetConn())
	}
	require.Eventually(t, func() bool { return ts.connections(t, "bad_key") == 1 },
		5*time.Second, 5*time.Millisecond, "the old key is refused")

	p2, err := startPublisher(t, m, publishURL(ts.srv.Addr(), testChannel+"?key="+otherKey), nil)
	require.NoError(t, err)
	require.NoError(t, p2.write(2500*time.Millisecond))
	require.Eventually(t, func() bool { return ts.state(t, testChannel) == relay.StateLive },
		5*time.Second, 5*time.Millisecond, "the new key is taken")
	requireNoKeys(t, ts.logs.String())
}
