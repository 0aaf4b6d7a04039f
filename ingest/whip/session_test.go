package whip

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"

	"github.com/seance-relay/seance/ingest/whip/whiptest"
	"github.com/seance-relay/seance/relay"
)

// TestWHIPNACKRecoversLoss: the publisher's network loses one video
// packet in 20; seance's NACKs get every one retransmitted, so no frame is
// dropped and no keyframe is needed.
func TestWHIPNACKRecoversLoss(t *testing.T) {
	e := newEnv(t)
	ch := e.channel(t, "conseil")
	conn := newDropConn(t)
	c := e.publishWith(t, "conseil", whiptest.Options{ToneHz: 440, Conn: conn})
	sub := ch.Subscribe("rtmp", 1024)
	defer sub.Close()
	plis := c.PLIs.Load()
	conn.every.Store(20)
	frames := collect(t, sub, 90, 10*time.Second) // 3 s
	conn.every.Store(0)
	require.Positive(t, conn.dropped.Load())
	video := 0
	for _, f := range frames {
		if f.Kind == relay.KindVideo {
			video++
		}
	}
	t.Logf("%d packets lost on the way, %d video frames delivered", conn.dropped.Load(), video)
	require.Zero(t, testutil.ToFloat64(e.srv.met.lost.WithLabelValues("conseil")), "every lost packet was retransmitted")
	require.Equal(t, plis, c.PLIs.Load(), "no keyframe was needed")
	require.Zero(t, sub.Dropped())
}

// TestWHIPVanishedPublisher: a publisher whose network goes away without
// DELETE is reaped by ICE within 10 s (8 s), and its channel enters the grace
// period.
func TestWHIPVanishedPublisher(t *testing.T) {
	e := newEnv(t)
	ch := e.channel(t, "conseil")
	conn := newDropConn(t)
	e.publishWith(t, "conseil", whiptest.Options{ToneHz: 440, Conn: conn})
	gone := time.Now()
	conn.gone.Store(true)
	require.Eventually(t, func() bool { return stateOf(ch) == relay.StateInterrupted }, 12*time.Second, 20*time.Millisecond)
	t.Logf("reaped %v after the publisher vanished", time.Since(gone).Round(time.Millisecond))
	require.LessOrEqual(t, time.Since(gone), 9*time.Second)
	require.Eventually(t, func() bool {
		return testutil.ToFloat64(e.srv.met.ended.WithLabelValues("conseil", "ice_failed")) == 1
	}, 2*time.Second, 10*time.Millisecond)
}

// TestWHIPConnectTimeout: a publisher that posts an offer and never
// connects does not hold the channel.
func TestWHIPConnectTimeout(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.ConnectTimeout = 300 * time.Millisecond })
	offer := newClient(t, whiptest.Options{ToneHz: 440}).Offer()
	resp, body := e.do(t, http.MethodPost, "/whip/conseil", auth(testKey), []byte(offer))
	require.Equal(t, http.StatusCreated, resp.StatusCode, body)
	require.Eventually(t, func() bool {
		return testutil.ToFloat64(e.srv.met.ended.WithLabelValues("conseil", "ice_timeout")) == 1
	}, 3*time.Second, 10*time.Millisecond)
	// The channel is free again.
	c := e.publish(t, "conseil")
	_, err := c.Close()
	require.NoError(t, err)
}

// TestWHIPSessionURL covers OPTIONS, PATCH (trickle) and DELETE on the
// session URL, with their authorisation.
func TestWHIPSessionURL(t *testing.T) {
	e := newEnv(t)
	c := e.publish(t, "conseil")
	loc := c.Location().Path
	require.True(t, strings.HasPrefix(loc, "/whip/conseil/"), loc)

	resp, _ := e.do(t, http.MethodOptions, "/whip/conseil", nil, nil)
	require.Equal(t, http.StatusNoContent, resp.StatusCode)
	require.Equal(t, "application/sdp", resp.Header.Get("Accept-Post"))
	require.Equal(t, "*", resp.Header.Get("Access-Control-Allow-Origin"))
	resp, _ = e.do(t, http.MethodOptions, loc, nil, nil)
	require.Equal(t, http.StatusNoContent, resp.StatusCode)

	frag := func(token, etag, body string) int {
		h := map[string]string{"Content-Type": "application/trickle-ice-sdpfrag"}
		if token != "" {
			h["Authorization"] = "Bearer " + token
		}
		if etag != "" {
			h["If-Match"] = etag
		}
		resp, b := e.do(t, http.MethodPatch, loc, h, []byte(body))
		t.Log(strings.TrimSpace(b))
		return resp.StatusCode
	}
	cand := "a=mid:0\r\na=candidate:1 1 udp 2130706431 127.0.0.1 9 typ host\r\n"
	require.Equal(t, http.StatusNoContent, frag(testKey, "", cand))
	require.Equal(t, http.StatusUnauthorized, frag("", "", cand))
	require.Equal(t, http.StatusUnauthorized, frag("wrong", "", cand))
	require.Equal(t, http.StatusPreconditionFailed, frag(testKey, `"other"`, cand))
	require.Equal(t, http.StatusUnprocessableEntity, frag(testKey, "", "a=ice-ufrag:restart\r\na=ice-pwd:restartrestartrestart12\r\n"))

	resp, _ = e.do(t, http.MethodDelete, loc, auth("wrong"), nil)
	require.Equal(t, http.StatusUnauthorized, resp.StatusCode)
	resp, _ = e.do(t, http.MethodDelete, "/whip/conseil/0123", auth(testKey), nil)
	require.Equal(t, http.StatusNotFound, resp.StatusCode)
	resp, _ = e.do(t, http.MethodDelete, strings.Replace(loc, "conseil", "mairie", 1), auth(testKey), nil)
	require.Equal(t, http.StatusNotFound, resp.StatusCode, "a session belongs to its channel")
	code, err := c.Close()
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, code)
	resp, _ = e.do(t, http.MethodDelete, loc, auth(testKey), nil)
	require.Equal(t, http.StatusNotFound, resp.StatusCode, "already ended")
}

// TestWHIPShutdown: stopping the server ends the sessions; the channel
// enters its grace period and POSTs are refused.
func TestWHIPShutdown(t *testing.T) {
	e := newEnv(t)
	ch := e.channel(t, "conseil")
	e.publish(t, "conseil")
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	done := make(chan error)
	go func() { done <- e.srv.Run(ctx) }()
	select {
	case err := <-done:
		require.NoError(t, err)
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not return")
	}
	require.Equal(t, relay.StateInterrupted, stateOf(ch))
	offer := newClient(t, whiptest.Options{ToneHz: 440}).Offer()
	resp, _ := e.do(t, http.MethodPost, "/whip/conseil", auth(testKey), []byte(offer))
	require.Equal(t, http.StatusServiceUnavailable, resp.StatusCode)
}

// TestWHIPReconnectTakesOver: a publisher whose network dropped comes back
// with a new session before ICE reaped the old one; it takes over at once
// and the broadcast continues.
func TestWHIPReconnectTakesOver(t *testing.T) {
	e := newEnv(t)
	ch := e.channel(t, "conseil")
	conn := newDropConn(t)
	e.publishWith(t, "conseil", whiptest.Options{ToneHz: 440, Conn: conn})
	conn.gone.Store(true)
	e.srv.mu.Lock()
	old := e.srv.byChannel["conseil"]
	e.srv.mu.Unlock()
	require.Eventually(t, old.stale, 6*time.Second, 20*time.Millisecond)

	c := e.publish(t, "conseil")
	require.Equal(t, relay.StateLive, stateOf(ch))
	require.Equal(t, 1.0, testutil.ToFloat64(e.srv.met.ended.WithLabelValues("conseil", "replaced")))
	_, err := c.Close()
	require.NoError(t, err)
}

// TestKeyframeDue: when a sink wants regular keyframes, seance asks once
// the last keyframe is 2 s old, at once if the last request was answered,
// else only when it has waited a second for the answer.
func TestKeyframeDue(t *testing.T) {
	for _, tc := range []struct {
		name     string
		age      time.Duration
		sincePLI time.Duration
		answered bool
		want     bool
	}{
		{name: "recent keyframe", age: 1999 * time.Millisecond, sincePLI: 5 * time.Second, answered: true, want: false},
		{name: "2 s old", age: 2 * time.Second, sincePLI: 2 * time.Second, answered: true, want: true},
		// The keyframe that answered the last request was captured long
		// before it arrived: it is 2 s old in the stream already.
		{name: "answered by a late keyframe", age: 2200 * time.Millisecond, sincePLI: 600 * time.Millisecond, answered: true, want: true},
		{name: "request in flight", age: 2500 * time.Millisecond, sincePLI: 600 * time.Millisecond, answered: false, want: false},
		{name: "request unanswered for a second", age: 3 * time.Second, sincePLI: time.Second, answered: false, want: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			require.Equal(t, tc.want, keyframeDue(tc.age, tc.sincePLI, tc.answered))
		})
	}
}
