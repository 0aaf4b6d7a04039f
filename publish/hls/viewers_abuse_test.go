package hls

import (
	"net/http/httptest"
	"strconv"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"github.com/stretchr/testify/require"
)

// TestViewersPerAddress reproduces the User-Agent inflation: one address
// sending 1000 User-Agents counts as at most hls.max_viewers_per_address
// viewers (default 200), another address still counts, and the share frees
// as clients expire.
func TestViewersPerAddress(t *testing.T) {
	for _, tc := range []struct {
		name string
		max  int // Config.MaxViewersPerAddress
		want int
	}{
		{"default", 0, 200},
		{"configured", 3, 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := New(Config{Variant: VariantMPEGTS, MaxViewersPerAddress: tc.max}, nil, zerolog.Nop(), nil)
			require.NoError(t, err)
			v := s.viewers
			t0 := time.Unix(1000, 0)
			from := func(addr, ua string, at time.Time) {
				r := httptest.NewRequest("GET", "/hls/demo/index.m3u8", nil)
				r.RemoteAddr, r.Header["User-Agent"] = addr, []string{ua}
				v.seenFrom("demo", v.clientKey(r), v.addrKey(r), at)
			}
			for i := range 1000 {
				from("192.0.2.1:4000", "bot/"+strconv.Itoa(i), t0)
			}
			require.Equal(t, tc.want, v.count("demo"))
			from("192.0.2.2:5000", "Safari", t0)
			require.Equal(t, tc.want+1, v.count("demo"), "another address counts")
			v.sweep(t0.Add(time.Hour))
			require.Zero(t, v.count("demo"))
			from("192.0.2.1:4000", "Firefox", t0.Add(time.Hour+time.Second))
			require.Equal(t, 1, v.count("demo"), "the share frees as clients expire")
		})
	}
}
