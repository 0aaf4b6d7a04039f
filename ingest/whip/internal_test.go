package whip

import (
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"

	"github.com/seance-relay/seance/ingest/whip/whiptest"
	"github.com/seance-relay/seance/relay"
)

// TestWHIPInternal: seance's own publisher (the meeting capture) publishes
// on the internal handler with the channel's internal token, on a channel
// without ingest key; the public handler refuses that token, the internal
// one refuses the ingest key; the publisher shows as "meeting", and
// Disconnect ends its session at once so that a replacement is accepted.
func TestWHIPInternal(t *testing.T) {
	e := newEnv(t)
	internal := httptest.NewServer(e.srv.InternalHandler())
	t.Cleanup(internal.Close)
	token := e.srv.InternalToken("camera")
	require.Len(t, token.Value(), 64)
	require.Equal(t, token, e.srv.InternalToken("camera"), "stable")
	require.NotEqual(t, token, e.srv.InternalToken("conseil"), "one per channel")

	for _, tc := range []struct {
		name, url, token string
		want             int
	}{
		{"internal token on the public handler", e.url + "/whip/camera", token.Value(), http.StatusNotFound},
		{"another channel's internal token", internal.URL + "/whip/camera", e.srv.InternalToken("conseil").Value(), http.StatusUnauthorized},
		{"ingest key on the internal handler", internal.URL + "/whip/conseil", testKey, http.StatusUnauthorized},
		{"unknown channel", internal.URL + "/whip/nowhere", e.srv.InternalToken("nowhere").Value(), http.StatusNotFound},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req, err := http.NewRequest(http.MethodPost, tc.url, nil)
			require.NoError(t, err)
			req.Header.Set("Authorization", "Bearer "+tc.token)
			req.Header.Set("Content-Type", "application/sdp")
			req.Body = http.NoBody
			resp, err := http.DefaultClient.Do(req)
			require.NoError(t, err)
			resp.Body.Close()
			require.Equal(t, tc.want, resp.StatusCode)
		})
	}

	ch := e.channel(t, "camera")
	c := newClient(t, whiptest.Options{ToneHz: 440})
	require.NoError(t, c.Publish(t.Context(), internal.URL+"/whip/camera", token.Value()))
	require.NoError(t, c.WaitConnected(10*time.Second))
	require.Eventually(t, func() bool { return stateOf(ch) == relay.StateLive }, 10*time.Second, 10*time.Millisecond)
	h := ch.Health()
	require.Equal(t, "meeting", h.Protocol)
	require.Equal(t, "local browser", h.RemoteAddr)

	require.False(t, e.srv.Disconnect("conseil"), "no internal session there")
	require.True(t, e.srv.Disconnect("camera"))
	require.NotEqual(t, relay.StateLive, stateOf(ch), "the channel is released at once")
	require.Eventually(t, func() bool {
		return testutil.ToFloat64(e.srv.met.ended.WithLabelValues("camera", "disconnected")) == 1
	}, 5*time.Second, 10*time.Millisecond)
	c.Abandon()

	// The replacement is accepted within the time a browser takes to
	// restart, not after ICE notices the old session is gone.
	c2 := newClient(t, whiptest.Options{ToneHz: 440})
	require.Eventually(t, func() bool {
		return c2.Publish(t.Context(), internal.URL+"/whip/camera", token.Value()) == nil
	}, time.Second, 50*time.Millisecond)
	require.NoError(t, c2.WaitConnected(10*time.Second))
	require.Eventually(t, func() bool { return stateOf(ch) == relay.StateLive }, 10*time.Second, 10*time.Millisecond)
	require.NotContains(t, e.logs.String(), token.Value())
}

// TestWHIPInternalLoopback: the meeting capture's browser reaches seance
// over loopback even when viewers' sessions do not announce loopback
// addresses (webrtc.announce_loopback off, the default on a server).
func TestWHIPInternalLoopback(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.SettingEngine.SetIncludeLoopbackCandidate(false) })
	internal := httptest.NewServer(e.srv.InternalHandler())
	t.Cleanup(internal.Close)
	c := newClient(t, whiptest.Options{ToneHz: 440})
	require.NoError(t, c.Publish(t.Context(), internal.URL+"/whip/camera", e.srv.InternalToken("camera").Value()))
	require.NoError(t, c.WaitConnected(10*time.Second))
	ch := e.channel(t, "camera")
	require.Eventually(t, func() bool { return stateOf(ch) == relay.StateLive }, 10*time.Second, 10*time.Millisecond)
}
