package pull

import (
	"context"
	"encoding/json"
	"errors"
	"testing"
	"testing/synctest"
	"time"

	"github.com/rs/zerolog"
	"github.com/stretchr/testify/require"

	"github.com/seance-relay/seance/configs"
	"github.com/seance-relay/seance/relay"
)

const testPassword = "Pa55-S3CRET-b0urg-4e1d"

// fakeSource runs pull for each connection attempt.
type fakeSource struct {
	pull func(ctx context.Context, publish func(relay.PublisherInfo, relay.Tracks) (*relay.Session, error)) error
}

func (f *fakeSource) Pull(ctx context.Context, publish func(relay.PublisherInfo, relay.Tracks) (*relay.Session, error)) error {
	return f.pull(ctx, publish)
}

var testTracks = relay.Tracks{Video: &relay.VideoTrack{
	SPS: []byte{0x67, 0x42, 0xc0, 0x1f, 0xd9, 0x00, 0xa0, 0x2d, 0xa1, 0x00, 0x00, 0x03, 0x00, 0x01, 0x00, 0x00, 0x03, 0x00, 0x3c, 0x8f, 0x14, 0x2a, 0x48},
	PPS: []byte{0x68, 0xcb, 0x8c, 0xb2},
}}

func TestNextBackoff(t *testing.T) {
	for _, tc := range []struct {
		name       string
		prev, step time.Duration
	}{
		{"first", 0, time.Second},
		{"doubles", time.Second, 2 * time.Second},
		{"doubles again", 8 * time.Second, 16 * time.Second},
		{"capped", 16 * time.Second, 30 * time.Second},
		{"stays capped", 30 * time.Second, 30 * time.Second},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for range 100 {
				step, wait := nextBackoff(tc.prev)
				require.Equal(t, tc.step, step)
				require.GreaterOrEqual(t, wait, tc.step*8/10)
				require.LessOrEqual(t, wait, tc.step*12/10)
			}
		})
	}
}

// TestPullerBackoff: a source that is not up yet is retried after 1, 2
// and 4 s; once it went live and dropped, after 1 s again, and it is the
// same channel session downstream.
func TestPullerBackoff(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFixture(t, 30*time.Second)
		var attempts []time.Time
		src := &fakeSource{pull: func(ctx context.Context, publish func(relay.PublisherInfo, relay.Tracks) (*relay.Session, error)) error {
			attempts = append(attempts, time.Now())
			switch len(attempts) {
			case 1, 2, 3:
				return errors.New("dial rtsp://admin:" + testPassword + "@cam.lan/stream: connection refused")
			case 4:
				sess, err := publish(relay.PublisherInfo{Protocol: "rtsp", RemoteAddr: "cam.lan"}, testTracks)
				require.NoError(t, err)
				time.Sleep(5 * time.Second)
				sess.Close()
				return errors.New("read: EOF")
			}
			sess, err := publish(relay.PublisherInfo{Protocol: "rtsp", RemoteAddr: "cam.lan"}, testTracks)
			require.NoError(t, err)
			defer sess.Close()
			<-ctx.Done()
			return nil
		}}
		p := newPuller(f.ch, src, "rtsp://[redacted]@cam.lan/stream", []string{testPassword}, f.log, f.met)
		require.Equal(t, StateIdle, p.Status().State)
		f.run(t, p)

		time.Sleep(time.Minute)
		synctest.Wait()
		require.Len(t, attempts, 5)
		for i, want := range []time.Duration{time.Second, 2 * time.Second, 4 * time.Second, 5*time.Second + time.Second} {
			got := attempts[i+1].Sub(attempts[i])
			require.InDelta(t, want.Seconds(), got.Seconds(), 0.2*min(want, 4*time.Second).Seconds()+0.01, "wait before attempt %d", i+2)
		}

		st := p.Status()
		require.Equal(t, StateLive, st.State)
		require.EqualValues(t, 4, st.Reconnects)
		require.Equal(t, "read: EOF", st.LastError)
		require.Equal(t, "rtsp://[redacted]@cam.lan/stream", st.URL)
		require.Equal(t, 4.0, f.reconnectsMetric(t))
		h := f.ch.Health()
		require.Equal(t, relay.StateLive, h.State)
		require.EqualValues(t, 1, h.Reconnects, "the source came back within the grace period: same session")
		require.NotContains(t, f.logs.String(), testPassword)
		require.Contains(t, f.logs.String(), "rtsp://admin:[redacted]@cam.lan")

		js, err := json.Marshal(st)
		require.NoError(t, err)
		require.Contains(t, string(js), `"state":"live"`)
	})
}

// TestPullerStops: cancelling Run during the wait or a connection
// returns at once and leaves the pull idle.
func TestPullerStops(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFixture(t, 0)
		src := &fakeSource{pull: func(context.Context, func(relay.PublisherInfo, relay.Tracks) (*relay.Session, error)) error {
			return errors.New("refused")
		}}
		p := newPuller(f.ch, src, "rtsp://cam.lan/stream", nil, f.log, f.met)
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error)
		go func() { done <- p.Run(ctx) }()
		synctest.Wait()
		require.Equal(t, StateRetrying, p.Status().State)
		cancel()
		require.NoError(t, <-done)
		require.Equal(t, StateIdle, p.Status().State)
	})
}

func TestNew(t *testing.T) {
	f := newFixture(t, 0)
	for _, tc := range []struct {
		name string
		cfg  Config
		err  string
	}{
		{"rtsp", Config{URL: "rtsp://admin:" + testPassword + "@cam.lan/stream"}, ""},
		{"rtsp with fields", Config{URL: "rtsps://cam.lan:322/stream", Transport: "udp", Username: "admin", Password: configs.Secret(testPassword)}, ""},
		{"rtmp", Config{URL: "rtmp://admin:" + testPassword + "@media.lan/live/council"}, ""},
		{"rtmp key in fragment", Config{URL: "rtmps://media.lan/live#council"}, ""},
		{"bad transport", Config{URL: "rtsp://cam.lan/stream", Transport: "quic"}, `RTSP transport "quic" is not valid: use tcp, udp or auto`},
		{"bad scheme", Config{URL: "http://admin:" + testPassword + "@cam.lan/stream"}, `pull URL scheme "http" is not supported`},
		{"no host", Config{URL: "rtsp:///stream"}, "pull URL rtsp:///stream is not valid"},
		{"not a URL", Config{URL: "rtsp://admin:" + testPassword + "@cam lan/%zz"}, "pull URL [invalid URL] is not valid"},
		{"rtmp without stream", Config{URL: "rtmp://admin:" + testPassword + "@media.lan/live"}, "has no stream name: use rtmp://host/app/stream"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := New(tc.cfg, f.ch, f.log, f.met)
			if tc.err == "" {
				require.NoError(t, err)
				require.NotContains(t, p.Status().URL, testPassword)
				return
			}
			require.ErrorContains(t, err, tc.err)
			require.NotContains(t, err.Error(), testPassword)
		})
	}
}

func TestNewSourceSecrets(t *testing.T) {
	_, secrets, err := newSource(Config{URL: "rtsp://cam.lan/stream", Username: "admin", Password: configs.Secret("p@ss word")}, zerolog.Nop())
	require.NoError(t, err)
	require.Contains(t, secrets, "p@ss word")
	require.Contains(t, secrets, "p%40ss+word")
	require.Contains(t, secrets, "admin:p%40ss%20word", "the URL's userinfo as it prints")
	for i := 1; i < len(secrets); i++ {
		require.GreaterOrEqual(t, len(secrets[i-1]), len(secrets[i]), "longest first")
	}

	_, secrets, err = newSource(Config{URL: "rtmp://media.lan/live/council-key-7f3e"}, zerolog.Nop())
	require.NoError(t, err)
	require.Contains(t, secrets, "council-key-7f3e")
}
