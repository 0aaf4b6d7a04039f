package webrtc

import (
	"bytes"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/pion/rtcp"
	"github.com/pion/webrtc/v4"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"

	"github.com/seance-relay/seance/relay"
)

// The demo clip: 30 fps, an IDR every 60 frames (2 s).
const (
	demoFPS = 30
	demoGOP = 60
)

// nalType returns the NAL unit type an RTP H.264 payload carries (the
// fragmented one for FU-A).
func nalType(p []byte) byte {
	if len(p) == 0 {
		return 0
	}
	if t := p[0] & 0x1f; t != 28 || len(p) < 2 {
		return t
	}
	return p[1] & 0x1f
}

// requireIDRFirst checks that a viewer's video starts with SPS, PPS and an
// IDR picture (SEI allowed before the slices), and returns the index of the
// IDR's last packet.
func requireIDRFirst(t testing.TB, pkts []pkt) int {
	t.Helper()
	var types []byte
	for _, p := range pkts {
		types = append(types, nalType(p.payload))
	}
	require.GreaterOrEqual(t, len(pkts), 3)
	require.Equal(t, []byte{7, 8}, types[:2], "the first video packets are SPS, PPS")
	first := 2
	for first < len(types) && types[first] == 6 {
		first++
	}
	require.Less(t, first, len(types))
	require.Equal(t, byte(5), types[first], "then an IDR slice (NAL types %v)", types[:min(len(types), 8)])
	for i := first; i < len(pkts); i++ {
		require.Equal(t, byte(5), nalType(pkts[i].payload), "packet %d of the first access unit", i)
		if pkts[i].marker {
			return i
		}
	}
	t.Fatal("the first IDR is incomplete")
	return 0
}

// bySeq returns the packets in sequence number order, each once (the
// first copy: the viewers' default interceptors NACK what a burst lost).
// Sequence numbers start at 0 and do not wrap within a test.
func bySeq(pkts []pkt) []pkt {
	out := slices.Clone(pkts)
	if len(out) == 0 {
		return out
	}
	// Sequence numbers start at a random value and may wrap: order them
	// relative to a point well before the first packet received.
	base := out[0].seq - 1000
	slices.SortStableFunc(out, func(a, b pkt) int { return int(a.seq-base) - int(b.seq-base) })
	return slices.CompactFunc(out, func(a, b pkt) bool { return a.seq == b.seq })
}

// requireMonotonicTS checks that RTP timestamps never go backwards in
// sequence order.
func requireMonotonicTS(t testing.TB, pkts []pkt) {
	t.Helper()
	pkts = bySeq(pkts)
	for i := 1; i < len(pkts); i++ {
		require.GreaterOrEqual(t, int32(pkts[i].ts-pkts[i-1].ts), int32(0),
			"RTP timestamp goes back at seq %d", pkts[i].seq)
	}
}

// postE posts the client's offer from any goroutine.
func (c *client) postE(e *env, channel string) error {
	c.posted = time.Now()
	resp, err := e.http.Post(e.url+"/whep/"+channel, "application/sdp", strings.NewReader(c.offer))
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusCreated {
		return fmt.Errorf("POST: %d %s", resp.StatusCode, body)
	}
	c.location, c.etag, c.answer = resp.Header.Get("Location"), resp.Header.Get("ETag"), string(body)
	return c.pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: string(body)})
}

// TestWHEPFastStartMidGOP: viewers that join anywhere in the 2 s GOP get
// the cached IDR at once instead of waiting for the next one.
func TestWHEPFastStartMidGOP(t *testing.T) {
	const viewers = 10
	e := newEnv(t, envOpts{})
	ch, err := e.hub.Channel("demo")
	require.NoError(t, err)

	// Join points: distinct frames of two GOPs, counted from a keyframe
	// on a subscription of our own.
	at := rand.Perm(2 * demoGOP)[:viewers]
	slices.Sort(at)
	clients := make([]*client, viewers)
	for i := range clients {
		clients[i] = newClient(t, clientOpts{})
	}
	sub := ch.Subscribe("test", 512)
	defer sub.Close()
	errs := make(chan error, viewers)
	frame, next := -1, 0
	for next < viewers {
		select {
		case f := <-sub.Frames():
			if f.Kind != relay.KindVideo || time.Since(f.Arrived) > 100*time.Millisecond || (frame < 0 && !f.Key) {
				continue // audio, the cached GOP, before the first keyframe
			}
			frame++
			for next < viewers && at[next] == frame {
				go func(c *client) { errs <- c.postE(e, "demo") }(clients[next])
				next++
			}
		case <-time.After(5 * time.Second):
			t.Fatal("the demo source stalled")
		}
	}
	for range viewers {
		require.NoError(t, <-errs)
	}

	var firstPkt, fullIDR []time.Duration
	for i, c := range clients {
		// The first frame is complete: every packet from the first
		// sequence number to its marker bit (some may come again after a
		// NACK).
		require.Eventually(t, func() bool {
			pkts := bySeq(c.videoPackets())
			for i, p := range pkts {
				if p.seq != pkts[0].seq+uint16(i) {
					return false
				}
				if p.marker {
					return true
				}
			}
			return false
		}, 2*time.Second, 5*time.Millisecond, "viewer %d (frame %d of the GOP) got no complete frame", i, at[i]%demoGOP)
		pkts := bySeq(c.videoPackets())
		last := requireIDRFirst(t, pkts)
		done := pkts[0].at
		for _, p := range pkts[:last+1] {
			if p.at.After(done) {
				done = p.at
			}
		}
		firstPkt = append(firstPkt, pkts[0].at.Sub(c.posted))
		fullIDR = append(fullIDR, done.Sub(c.posted))
		require.Less(t, done.Sub(c.posted), time.Second, "viewer %d joined at frame %d of the GOP", i, at[i]%demoGOP)
		if at[i]%demoGOP >= 6 {
			// Joined more than lateAfter into the GOP: the cached frames
			// come as a burst, 1 ms apart in RTP time. Wait for the packet
			// after the IDR (it may still be on its way).
			require.Eventually(t, func() bool { return len(c.videoPackets()) > last+1 }, 2*time.Second, 5*time.Millisecond)
			pkts = bySeq(c.videoPackets())
			require.Equal(t, uint32(90), pkts[last+1].ts-pkts[last].ts, "viewer %d: the GOP is replayed from the cache", i)
		}
		requireMonotonicTS(t, pkts)
	}
	slices.Sort(fullIDR)
	slices.Sort(firstPkt)
	t.Logf("offer → first packet (SPS): min %v, median %v, max %v", firstPkt[0], firstPkt[viewers/2], firstPkt[viewers-1])
	t.Logf("offer → complete IDR: min %v, median %v, max %v (join frames %v)", fullIDR[0], fullIDR[viewers/2], fullIDR[viewers-1], at)
}

// TestWHEPNACKRetransmits: a NACKed packet comes again with the same
// sequence number, timestamp and payload.
func TestWHEPNACKRetransmits(t *testing.T) {
	e := newEnv(t, envOpts{})
	c := newClient(t, clientOpts{noReplayProtection: true})
	c.post(e, "demo")
	require.Eventually(t, func() bool { return len(c.videoPackets()) >= 60 }, 5*time.Second, 5*time.Millisecond)
	pkts := c.videoPackets()
	want := []pkt{pkts[len(pkts)-30], pkts[len(pkts)-10]}
	c.mu.Lock()
	ssrc := c.videoSSRC
	c.mu.Unlock()
	sent := time.Now()
	c.sendRTCP(&rtcp.TransportLayerNack{
		MediaSSRC: ssrc,
		Nacks:     rtcp.NackPairsFromSequenceNumbers([]uint16{want[0].seq, want[1].seq}),
	})
	again := func(w pkt) (pkt, bool) {
		for _, p := range c.videoPackets() {
			if p.seq == w.seq && p.at.After(sent) {
				return p, true
			}
		}
		return pkt{}, false
	}
	require.Eventually(t, func() bool {
		_, ok0 := again(want[0])
		_, ok1 := again(want[1])
		return ok0 && ok1
	}, 2*time.Second, 5*time.Millisecond, "the NACKed packets did not come again")
	for _, w := range want {
		got, _ := again(w)
		require.Equal(t, w.ts, got.ts)
		require.Equal(t, w.marker, got.marker)
		require.True(t, bytes.Equal(w.payload, got.payload), "same payload for seq %d", w.seq)
	}
	// The viewer's own NACK generator may have asked for more.
	require.GreaterOrEqual(t, testutil.ToFloat64(e.srv.met.nacks("demo")), 2.0)
}

// TestWHEPPLIServedFromCache: a picture loss is answered at once with the
// cached keyframe, not at the publisher's next one.
func TestWHEPPLIServedFromCache(t *testing.T) {
	e := newEnv(t, envOpts{})
	c := newClient(t, clientOpts{})
	c.post(e, "demo")
	// Wait for a natural keyframe after the fast start, then for 10
	// frames: the next natural keyframe is 1.6 s away.
	var lastIDR int
	require.Eventually(t, func() bool {
		pkts := c.videoPackets()
		idrs := idrStarts(pkts)
		if len(idrs) < 2 {
			return false
		}
		lastIDR = idrs[len(idrs)-1]
		frames := 0
		for _, p := range pkts[lastIDR:] {
			if p.marker {
				frames++
			}
		}
		return frames >= 10
	}, 5*time.Second, 5*time.Millisecond)
	before := c.videoPackets()
	natural := before[lastIDR]
	c.mu.Lock()
	ssrc := c.videoSSRC
	c.mu.Unlock()
	sent := time.Now()
	c.sendRTCP(&rtcp.PictureLossIndication{MediaSSRC: ssrc})

	var got pkt
	require.Eventually(t, func() bool {
		pkts := c.videoPackets()
		idrs := idrStarts(pkts[len(before):])
		if len(idrs) == 0 {
			return false
		}
		got = pkts[len(before)+idrs[0]]
		return true
	}, time.Second, 5*time.Millisecond, "no keyframe within 1 s of the PLI")
	took := got.at.Sub(sent)
	t.Logf("PLI → keyframe after %v", took)
	require.Less(t, got.at, natural.at.Add(2*time.Second-200*time.Millisecond), "the keyframe came with the GOP, not from the cache")
	// It is the cached keyframe: the same SPS and IDR bytes as the last one.
	pkts := bySeq(c.videoPackets())
	before = bySeq(before)
	lastIDR = idrStarts(before)[len(idrStarts(before))-1]
	i := slices.IndexFunc(pkts, func(p pkt) bool { return p.seq == got.seq })
	require.Equal(t, natural.payload, pkts[i].payload)
	require.Equal(t, before[lastIDR+2].payload, pkts[i+2].payload, "the replayed keyframe")
	require.Equal(t, before[lastIDR+3].payload, pkts[i+3].payload, "the replayed keyframe")
	requireMonotonicTS(t, pkts)
	require.Equal(t, 1.0, testutil.ToFloat64(e.srv.met.plis))
}

// TestWHEPSlowViewerDoesNotSlowOthers: a viewer that stops reading does
// not hold back another one.
func TestWHEPSlowViewerDoesNotSlowOthers(t *testing.T) {
	e := newEnv(t, envOpts{})
	block := make(chan struct{})
	slow := newClient(t, clientOpts{block: block})
	t.Cleanup(func() { close(block) }) // before the client's own cleanup
	slow.post(e, "demo")
	fast := newClient(t, clientOpts{})
	fast.post(e, "demo")
	fast.waitFirstVideo(5 * time.Second)
	require.Equal(t, 2, e.srv.Viewers("demo"))
	start := time.Now()
	const window = 2 * time.Second
	require.Eventually(t, func() bool {
		pkts := fast.videoPackets()
		return pkts[len(pkts)-1].at.Sub(start) >= window
	}, 2*window, 10*time.Millisecond)
	frames := 0
	for _, p := range bySeq(fast.videoPackets()) {
		if p.marker && !p.at.Before(start) && p.at.Before(start.Add(window)) {
			frames++
		}
	}
	fps := float64(frames) / window.Seconds()
	t.Logf("the other viewer gets %.1f fps", fps)
	require.GreaterOrEqual(t, fps, 25.0)
	require.Equal(t, 2, e.srv.Viewers("demo"), "the slow viewer is still connected")
}

// TestWHEPReaping: viewers that vanish and channels that end free their
// sessions.
func TestWHEPReaping(t *testing.T) {
	for _, tc := range []struct {
		name    string
		grace   time.Duration
		leave   func(e *env, c *client)
		within  time.Duration
		reasons []string
	}{
		{
			name:    "viewer's network gone",
			leave:   func(_ *env, c *client) { c.conn.vanish() },
			within:  10 * time.Second,
			reasons: []string{"ice_failed"},
		},
		{
			name:   "viewer closed without DELETE",
			leave:  func(_ *env, c *client) { _ = c.pc.Close() },
			within: 10 * time.Second,
			// ice_failed if the DTLS close_notify is lost.
			reasons: []string{"closed", "ice_failed"},
		},
		{
			name:    "publisher gone past the grace period",
			grace:   500 * time.Millisecond,
			leave:   func(e *env, _ *client) { e.stopSource() },
			within:  3 * time.Second,
			reasons: []string{"stream_ended"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, envOpts{grace: tc.grace})
			c := newClient(t, clientOpts{vanishable: true})
			c.post(e, "demo")
			c.waitFirstVideo(5 * time.Second)
			require.Equal(t, 1, e.srv.Viewers("demo"))
			left := time.Now()
			tc.leave(e, c)
			require.Eventually(t, func() bool { return e.srv.Viewers("demo") == 0 }, tc.within, 10*time.Millisecond)
			t.Logf("reaped after %v", time.Since(left))
			ended := 0.0
			for _, r := range tc.reasons {
				ended += e.ended(r)
			}
			require.Equal(t, 1.0, ended, "sessions ended with reason %v", tc.reasons)
			e.srv.mu.Lock()
			defer e.srv.mu.Unlock()
			require.Empty(t, e.srv.sessions)
		})
	}
}

// TestWHEPStreamEndsBeforeViewerConnects: a viewer whose offer was
// answered while the channel was live, and which connects after it ended,
// is ended too instead of waiting for a publisher.
func TestWHEPStreamEndsBeforeViewerConnects(t *testing.T) {
	e := newEnv(t, envOpts{grace: time.Millisecond})
	c := newClient(t, clientOpts{})
	resp, body := e.post(t, "demo", c.offer)
	require.Equal(t, http.StatusCreated, resp.StatusCode, body)
	e.stopSource()
	ch, _ := e.hub.Channel("demo")
	require.Eventually(t, func() bool { st, _ := ch.State(); return st == relay.StateIdle }, 5*time.Second, time.Millisecond)
	connected := make(chan struct{})
	c.pc.OnConnectionStateChange(func(s webrtc.PeerConnectionState) {
		if s == webrtc.PeerConnectionStateConnected {
			close(connected)
		}
	})
	require.NoError(t, c.pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: body}))
	select {
	case <-connected:
	case <-time.After(9 * time.Second): // under the server's 10 s set-up bound; ICE and DTLS are slow on a loaded 2-core machine
		t.Fatal("the viewer did not connect")
	}
	require.Eventually(t, func() bool { return e.srv.Viewers("demo") == 0 }, 5*time.Second, 10*time.Millisecond)
	require.Equal(t, 1.0, e.ended("stream_ended"))
}
