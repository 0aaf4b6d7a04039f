package webrtc

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// clientFrom is an HTTP client whose connections come from ip (all of
// 127/8 is the loopback interface on Linux): another address than the
// legitimate viewers' 127.0.0.1.
func clientFrom(ip string) *http.Client {
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}}
	return &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			return d.DialContext(ctx, network, addr)
		},
	}}
}

// candidates returns n host candidates to distinct ports of 127.0.0.1,
// as an attacker would name victims.
func candidates(from, n int) string {
	var b strings.Builder
	for i := range n {
		fmt.Fprintf(&b, "a=candidate:%d 1 udp 2130706431 127.0.0.1 %d typ host\r\n", from+i, 40000+from+i)
	}
	return b.String()
}

// TestWHEPAbuseOffers reproduces "one address fills a channel": 60
// offers from one address that never connect. It holds 8 pending
// sessions, the rest get 429; meanwhile a viewer from another address
// connects and plays, and the channel's one seat (max_viewers 1) is
// taken by it, not by the pending offers.
func TestWHEPAbuseOffers(t *testing.T) {
	e := newEnv(t, envOpts{cfg: Config{ChannelMaxViewers: map[string]int{"demo": 1}, MaxPendingPerAddr: DefaultMaxPendingPerAddr}})
	base := runtime.NumGoroutine()
	attacker := clientFrom("127.0.0.9")
	offer := makeOffer(t, playOffer)
	codes := map[int]int{}
	for range 60 {
		resp, err := attacker.Post(e.url+"/whep/demo", "application/sdp", strings.NewReader(offer))
		require.NoError(t, err)
		resp.Body.Close()
		codes[resp.StatusCode]++
	}
	t.Logf("attacker's offers: %v; %d goroutines (baseline %d)", codes, runtime.NumGoroutine(), base)
	require.Equal(t, map[int]int{http.StatusCreated: DefaultMaxPendingPerAddr, http.StatusTooManyRequests: 60 - DefaultMaxPendingPerAddr}, codes)

	start := time.Now()
	v := newClient(t, clientOpts{})
	v.post(e, "demo")
	v.waitFirstVideo(3 * time.Second)
	t.Logf("legitimate viewer's first video %v after its offer", time.Since(start))

	// The seat is the connected viewer's: another real viewer is refused.
	resp, body := e.post(t, "demo", newClient(t, clientOpts{}).offer)
	require.Equal(t, http.StatusServiceUnavailable, resp.StatusCode, body)
	require.Less(t, runtime.NumGoroutine()-base, 200, "goroutines stay bounded")
	attacker.CloseIdleConnections()
}

// TestWHEPAbuseCandidates reproduces the candidate flood: an offer with
// 40 candidates is refused with 422; a session trickled 10 fragments of
// 10 candidates takes 32 and refuses the rest with 422, while a viewer
// plays and goroutines stay bounded.
func TestWHEPAbuseCandidates(t *testing.T) {
	e := newEnv(t, envOpts{})
	v := newClient(t, clientOpts{})
	v.post(e, "demo")
	v.waitFirstVideo(5 * time.Second)
	base := runtime.NumGoroutine()

	offer := makeOffer(t, playOffer)
	m := strings.Index(offer, "a=mid:")
	resp, body := e.post(t, "demo", offer[:m]+candidates(0, 40)+offer[m:])
	require.Equal(t, http.StatusUnprocessableEntity, resp.StatusCode, body)
	require.Contains(t, body, "at most 32")

	loc, _, offer := e.session(t)
	frag := "a=ice-ufrag:" + sdpAttr(offer, "ice-ufrag") + "\r\na=ice-pwd:" + sdpAttr(offer, "ice-pwd") + "\r\nm=video 9 UDP/TLS/RTP/SAVPF 0\r\na=mid:0\r\n"
	codes := []int{}
	for i := range 10 {
		r, b := e.do(t, http.MethodPatch, loc, sdpFrag, []byte(frag+candidates(i*10, 10)))
		codes = append(codes, r.StatusCode)
		if r.StatusCode == http.StatusUnprocessableEntity {
			require.Contains(t, b, "too many ICE candidates")
		}
	}
	require.Equal(t, []int{204, 204, 204, 422, 422, 422, 422, 422, 422, 422}, codes)
	peak := runtime.NumGoroutine()
	t.Logf("after 100 trickled candidates: %d goroutines (a playing viewer's baseline %d)", peak, base)
	require.Less(t, peak-base, 400, "goroutines stay bounded")
	require.Eventually(t, func() bool { return len(v.videoPackets()) > 200 }, 5*time.Second, 10*time.Millisecond, "the viewer keeps playing")
}

// TestWHEPPendingBudget: offers from many addresses that never connect
// take at most max_pending slots (503 past it) and no viewer seat: once
// the budget frees (unconnected offers expire after the connect timeout),
// a real viewer takes the channel's only seat and plays.
func TestWHEPPendingBudget(t *testing.T) {
	e := newEnv(t, envOpts{cfg: Config{MaxPending: 3, MaxViewers: 1}})
	offer := makeOffer(t, playOffer)
	codes := map[int]int{}
	for i := range 5 {
		c := clientFrom(fmt.Sprintf("127.0.1.%d", i+1))
		resp, err := c.Post(e.url+"/whep/demo", "application/sdp", strings.NewReader(offer))
		require.NoError(t, err)
		resp.Body.Close()
		codes[resp.StatusCode]++
		c.CloseIdleConnections()
	}
	require.Equal(t, map[int]int{http.StatusCreated: 3, http.StatusServiceUnavailable: 2}, codes)
	v := newClient(t, clientOpts{})
	require.Eventually(t, func() bool { return v.postE(e, "demo") == nil }, 15*time.Second, 100*time.Millisecond,
		"the pending budget frees as unconnected offers expire")
	v.waitFirstVideo(5 * time.Second)
}
