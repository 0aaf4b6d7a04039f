package web

import (
	"bufio"
	"context"
	"io"
	"net"
	"net/http"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"

	"github.com/seance-relay/seance/addrlimit"
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

// echoBody is a POST handler that reads its body, as the WHEP offer does.
var echoBody = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
	b, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, "could not read the body", http.StatusBadRequest)
		return
	}
	_, _ = w.Write(b)
})

// TestPublicSlowBody reproduces the slow POST: a body sent one byte every
// 100 ms loses its connection at the body deadline, while a request from
// another address is answered and a held request without a body (SSE,
// LL-HLS) outlives the deadline.
func TestPublicSlowBody(t *testing.T) {
	hub, _ := newHub(t)
	held := make(chan struct{})
	base, c := startPublicConfig(t, hub, PublicConfig{
		BodyTimeout: 500 * time.Millisecond,
		Handlers: map[string]http.Handler{
			"POST /echo": echoBody,
			"GET /held": http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.WriteHeader(http.StatusOK)
				http.NewResponseController(w).Flush()
				select {
				case <-held:
				case <-r.Context().Done():
					return
				}
				_, _ = io.WriteString(w, "still here")
			}),
		},
	})
	addr := strings.TrimPrefix(base, "http://")

	// A held GET, released after the slow POST is cut.
	hreq, err := http.NewRequestWithContext(t.Context(), http.MethodGet, base+"/held", nil)
	require.NoError(t, err)
	hres, err := c.Do(hreq)
	require.NoError(t, err)
	defer hres.Body.Close()

	slow := dialFrom(t, "127.0.0.7", addr)
	_, err = io.WriteString(slow, "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Type: application/sdp\r\nContent-Length: 1000\r\n\r\n")
	require.NoError(t, err)
	start := time.Now()
	cut := make(chan time.Duration, 1)
	go func() {
		for {
			if _, err := slow.Write([]byte("v")); err != nil {
				break
			}
			// The attack's pace, not synchronisation: one byte per tick.
			time.Sleep(100 * time.Millisecond)
			if time.Since(start) > 5*time.Second {
				break
			}
		}
		cut <- time.Since(start)
	}()
	// Meanwhile a citizen is served.
	res, err := c.Post(base+"/echo", "application/sdp", strings.NewReader("v=0"))
	require.NoError(t, err)
	b, _ := io.ReadAll(res.Body)
	res.Body.Close()
	require.Equal(t, "v=0", string(b))

	// The server answers 400 and closes: reading ends.
	_ = slow.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, err = io.Copy(io.Discard, slow)
	require.NoError(t, err, "the slow body was not cut within 5 s")
	took := time.Since(start)
	t.Logf("slow body cut after %v (deadline 500 ms)", took)
	require.Less(t, took, 3*time.Second)

	close(held)
	rest, err := io.ReadAll(hres.Body)
	require.NoError(t, err)
	require.Equal(t, "still here", string(rest), "the held GET outlived the body deadline")
	slow.Close()
	<-cut
}

// TestPublicConnectionCap reproduces the connection flood: one address
// opens 200 idle connections; it holds its share (16), the rest are
// closed at accept and counted, and a citizen from another address is
// served; once one of its connections closes, the flooder may open one
// more, not two.
func TestPublicConnectionCap(t *testing.T) {
	hub, _ := newHub(t)
	reg := prometheus.NewRegistry()
	base, c := startPublicConfig(t, hub, PublicConfig{MaxConnsPerAddr: 16, Registerer: reg})
	addr := strings.TrimPrefix(base, "http://")
	refused := func() float64 {
		return testutil.ToFloat64(mustCounter(t, reg, "seance_http_connections_refused_total", "address"))
	}
	g0 := runtime.NumGoroutine()
	var conns []net.Conn
	for range 200 {
		conns = append(conns, dialFrom(t, "127.0.0.8", addr))
	}
	require.Eventually(t, func() bool { return refused() == 200-16 }, 5*time.Second, 5*time.Millisecond)
	t.Logf("200 connections from one address: %v closed at accept; %d goroutines (baseline %d)", refused(), runtime.NumGoroutine(), g0)
	require.Less(t, runtime.NumGoroutine()-g0, 40)
	res, err := c.Get(base + "/healthz")
	require.NoError(t, err)
	res.Body.Close()
	require.Equal(t, http.StatusOK, res.StatusCode)

	// The first 16 were accepted: closing one frees its slot.
	conns[0].Close()
	require.Eventually(t, func() bool {
		nc := dialFrom(t, "127.0.0.8", addr)
		_, _ = io.WriteString(nc, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
		_ = nc.SetReadDeadline(time.Now().Add(time.Second))
		resp, err := http.ReadResponse(bufio.NewReader(nc), nil)
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	}, 5*time.Second, 50*time.Millisecond)
}

// mustCounter returns one child of a counter family in reg.
func mustCounter(t *testing.T, reg *prometheus.Registry, name, reason string) prometheus.Collector {
	t.Helper()
	mfs, err := reg.Gather()
	require.NoError(t, err)
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "reason" && l.GetValue() == reason {
					return prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "x", Help: "x"}, m.GetCounter().GetValue)
				}
			}
		}
	}
	t.Fatalf("no %s{reason=%q}", name, reason)
	return nil
}

// TestAdminCrossSite reproduces the cross-site and DNS-rebinding holes:
// with no token, a page on another site cannot stop a destination, a
// rebound name cannot read the API, and the dashboard's own requests and
// scripts (no browser headers) still work.
func TestAdminCrossSite(t *testing.T) {
	hub, _ := newHub(t)
	base, c, calls, _, _ := startAdminWith(t, hub, AdminConfig{Hosts: []string{"admin.seance.lan"}})
	host := strings.TrimPrefix(base, "http://")
	stop := base + "/api/v1/channels/bourg/destinations/youtube/stop"
	for _, tc := range []struct {
		name   string
		method string
		url    string
		header http.Header
		host   string
		status int
		code   string
	}{
		{"cross-site POST (Sec-Fetch-Site)", http.MethodPost, stop, http.Header{"Sec-Fetch-Site": {"cross-site"}}, "", http.StatusForbidden, "cross_site"},
		{"same-site but other origin POST", http.MethodPost, stop, http.Header{"Sec-Fetch-Site": {"same-site"}}, "", http.StatusForbidden, "cross_site"},
		{"cross-site POST (Origin only)", http.MethodPost, stop, http.Header{"Origin": {"https://evil.example"}}, "", http.StatusForbidden, "cross_site"},
		{"rebound name reads the API", http.MethodGet, base + "/api/v1/channels", nil, "evil.example", http.StatusMisdirectedRequest, "host_not_allowed"},
		{"rebound name POSTs", http.MethodPost, stop, http.Header{"Sec-Fetch-Site": {"same-origin"}}, "evil.example:9090", http.StatusMisdirectedRequest, "host_not_allowed"},
		{"the dashboard's own POST", http.MethodPost, stop, http.Header{"Sec-Fetch-Site": {"same-origin"}, "Origin": {base}}, "", http.StatusAccepted, ""},
		{"Origin matching the Host", http.MethodPost, stop, http.Header{"Origin": {base}}, "", http.StatusAccepted, ""},
		{"a script (no browser header)", http.MethodPost, stop, nil, "", http.StatusAccepted, ""},
		{"a configured name", http.MethodGet, base + "/api/v1/channels", nil, "admin.seance.lan:9090", http.StatusOK, ""},
		{"localhost", http.MethodGet, base + "/api/v1/channels", nil, "localhost", http.StatusOK, ""},
		{"the listener's address", http.MethodGet, base + "/api/v1/channels", nil, host, http.StatusOK, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			n := len(calls.get())
			req, err := http.NewRequest(tc.method, tc.url, nil)
			require.NoError(t, err)
			for k, v := range tc.header {
				req.Header[k] = v
			}
			if tc.host != "" {
				req.Host = tc.host
			}
			res, err := c.Do(req)
			require.NoError(t, err)
			b, _ := io.ReadAll(res.Body)
			res.Body.Close()
			if tc.code != "" {
				requireAdminError(t, response{status: res.StatusCode, header: res.Header, body: string(b)}, tc.status, tc.code)
				require.Len(t, calls.get(), n, "a refused request changed nothing")
				return
			}
			require.Equal(t, tc.status, res.StatusCode, string(b))
		})
	}
}

// TestAdminTokenBackoff: wrong tokens from one address are answered 429
// after the free ones, logged once, counted; the right token from another
// address still works.
func TestAdminTokenBackoff(t *testing.T) {
	hub, _ := newHub(t)
	base, _, _, logs, a := startAdminWith(t, hub, AdminConfig{Token: adminToken, Failures: addrlimit.NewDefaultFailures()})
	guesser := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
		d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP("127.0.0.6")}}
		return d.DialContext(ctx, network, addr)
	}}}
	codes := map[int]int{}
	for i := range 10 {
		req, _ := http.NewRequest(http.MethodGet, base+"/api/v1/channels", nil)
		req.Header.Set("Authorization", "Bearer guess-"+string(rune('a'+i)))
		res, err := guesser.Do(req)
		require.NoError(t, err)
		res.Body.Close()
		codes[res.StatusCode]++
	}
	require.Equal(t, map[int]int{http.StatusUnauthorized: addrlimit.DefaultFreeFailures + 1, http.StatusTooManyRequests: 10 - addrlimit.DefaultFreeFailures - 1}, codes)
	require.Equal(t, 1, strings.Count(logs.String(), "backing off"))
	require.NotContains(t, logs.String(), adminToken)
	r := do(t, http.DefaultClient, http.MethodGet, base+"/api/v1/channels", bearer("Bearer "+adminToken))
	require.Equal(t, http.StatusOK, r.status)
	require.Equal(t, float64(addrlimit.DefaultFreeFailures+1), testutilValue(a, "bad_token"))
}

func testutilValue(a *admin, reason string) float64 {
	return testutil.ToFloat64(a.met.refused.WithLabelValues(reason))
}
