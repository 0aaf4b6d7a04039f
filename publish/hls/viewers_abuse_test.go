package hls

import (
	"net/http/httptest"
	"strconv"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"
)

// TestViewersPerAddress reproduces the User-Agent inflation: one address
// sending 1000 User-Agents counts as at most maxClientsPerAddr viewers,
// another address still counts, and the share frees as clients expire.
func TestViewersPerAddress(t *testing.T) {
	v := newViewerCounter(10*time.Second,
		prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "v", Help: "v"}, []string{"channel", "protocol"}),
		prometheus.NewCounterVec(prometheus.CounterOpts{Name: "s", Help: "s"}, []string{"channel", "protocol"}))
	t0 := time.Unix(1000, 0)
	from := func(addr, ua string, at time.Time) {
		r := httptest.NewRequest("GET", "/hls/demo/index.m3u8", nil)
		r.RemoteAddr, r.Header["User-Agent"] = addr, []string{ua}
		v.seenFrom("demo", v.clientKey(r), v.addrKey(r), at)
	}
	for i := range 1000 {
		from("192.0.2.1:4000", "bot/"+strconv.Itoa(i), t0)
	}
	require.Equal(t, maxClientsPerAddr, v.count("demo"))
	from("192.0.2.2:5000", "Safari", t0)
	require.Equal(t, maxClientsPerAddr+1, v.count("demo"), "another address counts")
	v.sweep(t0.Add(11 * time.Second))
	require.Zero(t, v.count("demo"))
	from("192.0.2.1:4000", "Firefox", t0.Add(12*time.Second))
	require.Equal(t, 1, v.count("demo"), "the share frees as clients expire")
}
