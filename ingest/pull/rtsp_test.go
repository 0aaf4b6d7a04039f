package pull

import (
	"net"
	"testing"
	"time"

	"github.com/bluenviron/gortsplib/v4"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h264"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/seance-relay/seance/configs"
	"github.com/seance-relay/seance/relay"
)

// requireFlowing waits until r got keyframes that start with SPS and PPS,
// and AAC audio.
func requireFlowing(t *testing.T, r *received, minKeys int) {
	t.Helper()
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		video, keys, audio := r.snapshot()
		require.GreaterOrEqual(c, keys, minKeys, "keyframes")
		require.Greater(c, video, 30*minKeys/2, "video frames")
		require.Greater(c, audio, 20, "audio frames")
	}, 20*time.Second, 20*time.Millisecond)
	r.mu.Lock()
	key := r.firstKey
	r.mu.Unlock()
	require.GreaterOrEqual(t, len(key.NALUs), 3)
	require.Equal(t, h264.NALUTypeSPS, h264.NALUType(key.NALUs[0][0]&0x1f))
	require.Equal(t, h264.NALUTypePPS, h264.NALUType(key.NALUs[1][0]&0x1f))
	require.Equal(t, h264.NALUTypeIDR, h264.NALUType(key.NALUs[2][0]&0x1f))
}

// TestPullRTSP: seance pulls H.264 + AAC from an RTSP server over each
// transport; the channel goes live and a subscription gets decodable
// video (SPS/PPS before each IDR) and audio.
func TestPullRTSP(t *testing.T) {
	file := mediaFile(t, "640x360")
	for _, tc := range []struct {
		name      string
		transport string
		want      gortsplib.Transport
		user      string // credentials the server requires, given in the Username/Password fields
	}{
		{"tcp", "tcp", gortsplib.TransportTCP, ""},
		{"udp", "udp", gortsplib.TransportUDP, ""},
		{"auto with credentials", "auto", gortsplib.TransportUDP, "admin"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ports := freeRTSPPorts(t)
			srv := startRTSPServer(t, ports, file, tc.user, testPassword)
			f := newFixture(t, 30*time.Second)
			r := consume(t, f.ch.Subscribe("test", 4096))
			cfg := Config{URL: "rtsp://" + ports.rtsp + "/cam", Transport: tc.transport}
			if tc.user != "" {
				cfg.Username, cfg.Password = tc.user, configs.Secret(testPassword)
			}
			p, err := New(cfg, f.ch, f.log, f.met)
			require.NoError(t, err)
			f.run(t, p)

			requireFlowing(t, r, 2)
			require.Equal(t, StateLive, p.Status().State)
			require.Zero(t, p.Status().Reconnects)
			require.Equal(t, []gortsplib.Transport{tc.want}, srv.transports())
			h := f.ch.Health()
			require.Equal(t, relay.StateLive, h.State)
			require.Equal(t, "rtsp", h.Protocol)
			require.Equal(t, ports.rtsp, h.RemoteAddr)
			require.NotNil(t, h.Video)
			require.Equal(t, [2]int{640, 360}, [2]int{h.Video.Width, h.Video.Height})
			require.NotNil(t, h.Audio)
			require.Equal(t, 48000, h.Audio.SampleRate)
			require.False(t, h.BFrames)
			require.NotContains(t, f.logs.String(), testPassword)
		})
	}
}

// TestPullRTSPReconnect: the RTSP server goes away for 5 s; the puller
// retries with backoff, and when the source is back the channel carries
// on as the same session: a subscription opened before the outage keeps
// receiving, and the channel never went idle.
func TestPullRTSPReconnect(t *testing.T) {
	file := mediaFile(t, "640x360")
	ports := freeRTSPPorts(t)
	srv := startRTSPServer(t, ports, file, "", "")
	f := newFixture(t, 30*time.Second)
	r := consume(t, f.ch.Subscribe("test", 4096))

	// Record every state the channel goes through.
	states := make(chan relay.State, 64)
	stopWatch := make(chan struct{})
	watchDone := make(chan struct{})
	go func() {
		defer close(watchDone)
		for {
			st, changed := f.ch.State()
			states <- st
			select {
			case <-changed:
			case <-stopWatch:
				return
			}
		}
	}()

	p, err := New(Config{URL: "rtsp://" + ports.rtsp + "/cam", Transport: "tcp"}, f.ch, f.log, f.met)
	require.NoError(t, err)
	f.run(t, p)
	requireFlowing(t, r, 2)

	srv.stop()
	require.Eventually(t, func() bool {
		st, _ := f.ch.State()
		return st == relay.StateInterrupted && p.Status().State == StateRetrying
	}, 15*time.Second, 10*time.Millisecond)
	_, keysBefore, audioBefore := r.snapshot()
	// The outage: the camera is unreachable for 5 s.
	time.Sleep(5 * time.Second)
	require.GreaterOrEqual(t, p.Status().Reconnects, uint64(2), "retried while the source was down")
	startRTSPServer(t, ports, file, "", "")

	require.EventuallyWithT(t, func(c *assert.CollectT) {
		_, keys, audio := r.snapshot()
		require.Greater(c, keys, keysBefore+1, "keyframes after the outage")
		require.Greater(c, audio, audioBefore+20, "audio after the outage")
	}, 30*time.Second, 20*time.Millisecond)
	require.Equal(t, StateLive, p.Status().State)
	require.NotEmpty(t, p.Status().LastError)
	h := f.ch.Health()
	require.Equal(t, relay.StateLive, h.State)
	require.GreaterOrEqual(t, h.Reconnects, uint64(1))
	require.GreaterOrEqual(t, f.reconnectsMetric(t), 2.0)

	close(stopWatch)
	<-watchDone
	close(states)
	var seen []relay.State
	for st := range states {
		seen = append(seen, st)
	}
	require.NotContains(t, seen[1:], relay.StateIdle, "the channel went idle during the outage: %v", seen)
	require.Contains(t, seen, relay.StateInterrupted)
}

// TestPullUnreachable: a source that is down or refuses the credentials
// is retried; its password shows nowhere, neither in the logs nor in the
// status the dashboard shows.
func TestPullUnreachable(t *testing.T) {
	closed := func(t *testing.T) string {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		require.NoError(t, err)
		addr := ln.Addr().String()
		require.NoError(t, ln.Close())
		return addr
	}
	for _, tc := range []struct {
		name  string
		cfg   func(t *testing.T) Config
		error string
	}{
		{"rtsp down", func(t *testing.T) Config {
			return Config{URL: "rtsp://admin:" + testPassword + "@" + closed(t) + "/cam"}
		}, "connection refused"},
		{"rtsp wrong password", func(t *testing.T) Config {
			ports := freeRTSPPorts(t)
			startRTSPServer(t, ports, "", "admin", "the-right-one")
			return Config{URL: "rtsp://" + ports.rtsp + "/cam", Transport: "tcp", Username: "admin", Password: configs.Secret(testPassword)}
		}, "401"},
		{"rtmp down", func(t *testing.T) Config {
			return Config{URL: "rtmp://admin:" + testPassword + "@" + closed(t) + "/live/council"}
		}, "connection refused"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, 30*time.Second)
			p, err := New(tc.cfg(t), f.ch, f.log, f.met)
			require.NoError(t, err)
			f.run(t, p)
			require.Eventually(t, func() bool {
				return p.Status().State == StateRetrying && p.Status().Reconnects >= 1
			}, 10*time.Second, 10*time.Millisecond)
			st := p.Status()
			require.Contains(t, st.LastError, tc.error)
			require.NotContains(t, st.LastError, testPassword)
			require.NotContains(t, st.URL, testPassword)
			require.GreaterOrEqual(t, f.reconnectsMetric(t), 1.0)
			require.Contains(t, f.logs.String(), "source unavailable: retrying")
			require.NotContains(t, f.logs.String(), testPassword)
			state, _ := f.ch.State()
			require.Equal(t, relay.StateIdle, state)
		})
	}
}
