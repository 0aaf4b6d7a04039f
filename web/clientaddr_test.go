package web

import (
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

var testProxies = trustedProxies{
	netip.MustParsePrefix("127.0.0.1/32"),
	netip.MustParsePrefix("::1/128"),
	netip.MustParsePrefix("10.0.0.0/8"),
}

// clientAddrCases feed TestClientAddr and FuzzClientAddr's seeds. Header
// lines are separated by "\n".
var clientAddrCases = []struct {
	name, remote, xff, fwd, want string
}{
	{"no header", "127.0.0.1:5000", "", "", "127.0.0.1:5000"},
	{"untrusted peer, spoofed X-Forwarded-For", "203.0.113.9:5000", "198.51.100.1", "", "203.0.113.9:5000"},
	{"untrusted peer, spoofed Forwarded", "203.0.113.9:5000", "", "for=198.51.100.1", "203.0.113.9:5000"},
	{"untrusted peer in a trusted proxy's header", "203.0.113.9:5000", "10.0.0.5", "", "203.0.113.9:5000"},
	{"trusted proxy", "127.0.0.1:5000", "203.0.113.7", "", "203.0.113.7"},
	{"client's own header before the proxy's address", "127.0.0.1:5000", "198.51.100.1, 203.0.113.7", "", "203.0.113.7"},
	{"chain of trusted proxies", "10.0.0.2:5000", "198.51.100.1, 203.0.113.7, 10.0.0.9", "", "203.0.113.7"},
	{"every address trusted: the left-most", "127.0.0.1:5000", "10.0.0.5, 10.0.0.9", "", "10.0.0.5"},
	{"garbage appended: the peer", "127.0.0.1:5000", "203.0.113.7, garbage", "", "127.0.0.1:5000"},
	{"garbage further left: the last address read", "127.0.0.1:5000", "garbage, 10.0.0.9", "", "10.0.0.9"},
	{"empty header", "127.0.0.1:5000", " ", "", "127.0.0.1:5000"},
	{"two header lines", "127.0.0.1:5000", "198.51.100.1\n203.0.113.7", "", "203.0.113.7"},
	{"address with port", "127.0.0.1:5000", "203.0.113.7:4711", "", "203.0.113.7:4711"},
	{"IPv6", "[::1]:5000", "2001:db8::7", "", "2001:db8::7"},
	{"IPv6 in brackets", "[::1]:5000", "[2001:db8::7]", "", "2001:db8::7"},
	{"IPv6 with port", "[::1]:5000", "[2001:db8::7]:4711", "", "[2001:db8::7]:4711"},
	{"IPv4-mapped peer", "[::ffff:127.0.0.1]:5000", "203.0.113.7", "", "203.0.113.7"},
	{"IPv4-mapped client", "127.0.0.1:5000", "::ffff:203.0.113.7", "", "203.0.113.7"},
	{"zone", "127.0.0.1:5000", "fe80::1%eth0", "", "127.0.0.1:5000"},
	{"host name", "127.0.0.1:5000", "client.example", "", "127.0.0.1:5000"},
	{"Forwarded", "127.0.0.1:5000", "", "for=203.0.113.7;proto=https", "203.0.113.7"},
	{"Forwarded, case and spaces", "127.0.0.1:5000", "", "Proto=https; For=203.0.113.7 ;by=10.0.0.1", "203.0.113.7"},
	{"Forwarded IPv6 with port", "127.0.0.1:5000", "", `for="[2001:db8:cafe::17]:4711"`, "[2001:db8:cafe::17]:4711"},
	{"Forwarded, client's element first", "127.0.0.1:5000", "", "for=198.51.100.1, for=203.0.113.7", "203.0.113.7"},
	{"Forwarded chain", "10.0.0.2:5000", "", "for=203.0.113.7;by=10.0.0.9, for=10.0.0.9", "203.0.113.7"},
	{"Forwarded quoted with escapes", "127.0.0.1:5000", "", `for="203.0.113\.7"`, "203.0.113.7"},
	{"Forwarded quoted comma", "127.0.0.1:5000", "", `for=198.51.100.1;x="a, for=6.6.6.6", for=203.0.113.7`, "203.0.113.7"},
	{"Forwarded obfuscated", "127.0.0.1:5000", "", `for="_gazonk"`, "127.0.0.1:5000"},
	{"Forwarded unknown", "127.0.0.1:5000", "", "for=unknown", "127.0.0.1:5000"},
	{"Forwarded without for", "127.0.0.1:5000", "", "proto=https", "127.0.0.1:5000"},
	{"Forwarded unterminated, proxy's own line", "127.0.0.1:5000", "", "for=\"198.51.100.1\nfor=203.0.113.7", "203.0.113.7"},
	{"Forwarded unterminated", "127.0.0.1:5000", "", `for="203.0.113.7`, "127.0.0.1:5000"},
	{"Forwarded empty elements", "127.0.0.1:5000", "", ", ,for=203.0.113.7,", "203.0.113.7"},
	{"Forwarded garbage", "127.0.0.1:5000", "", "for", "127.0.0.1:5000"},
	{"X-Forwarded-For wins over Forwarded", "127.0.0.1:5000", "203.0.113.7", "for=198.51.100.1", "203.0.113.7"},
	{"unparsable peer", "@", "203.0.113.7", "", "@"},
}

func clientAddrRequest(remote, xff, fwd string) *http.Request {
	r := httptest.NewRequest(http.MethodGet, "/hls/demo/index.m3u8", nil)
	r.RemoteAddr = remote
	for _, v := range strings.Split(xff, "\n") {
		if xff != "" {
			r.Header.Add("X-Forwarded-For", v)
		}
	}
	for _, v := range strings.Split(fwd, "\n") {
		if fwd != "" {
			r.Header.Add("Forwarded", v)
		}
	}
	return r
}

// TestClientAddr: behind a trusted proxy the client is the right-most
// untrusted address of X-Forwarded-For (or Forwarded); headers from
// untrusted peers are ignored, whatever they claim.
func TestClientAddr(t *testing.T) {
	for _, tc := range clientAddrCases {
		t.Run(tc.name, func(t *testing.T) {
			require.Equal(t, tc.want, testProxies.clientAddr(clientAddrRequest(tc.remote, tc.xff, tc.fwd)))
		})
	}
	t.Run("a long chain is read 32 addresses deep", func(t *testing.T) {
		hops := strings.TrimSuffix(strings.Repeat("10.0.0.1, ", 40), ", ")
		hops = "203.0.113.7, 10.0.0.2, " + hops
		require.Equal(t, "10.0.0.1", testProxies.clientAddr(clientAddrRequest("127.0.0.1:1", hops, "")))
	})
}

// TestWithClientAddr: the public server's handlers see the client's
// address in RemoteAddr behind a trusted proxy (here the test's loopback
// client), and the peer's otherwise.
func TestWithClientAddr(t *testing.T) {
	for _, tc := range []struct {
		name    string
		trusted trustedProxies
		want    string // "": the loopback peer
	}{
		{"trusted", testProxies, "203.0.113.7"},
		{"not trusted", trustedProxies{netip.MustParsePrefix("10.0.0.0/8")}, ""},
		{"no trusted proxy", nil, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			seen := make(chan string, 1)
			srv := httptest.NewServer(withClientAddr(tc.trusted, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				seen <- r.RemoteAddr
			})))
			defer srv.Close()
			req, err := http.NewRequest(http.MethodGet, srv.URL, nil)
			require.NoError(t, err)
			req.Header.Set("X-Forwarded-For", "203.0.113.7")
			res, err := srv.Client().Do(req)
			require.NoError(t, err)
			_, _ = io.Copy(io.Discard, res.Body)
			res.Body.Close()
			got := <-seen
			if tc.want == "" {
				require.True(t, strings.HasPrefix(got, "127.0.0.1:"), got)
			} else {
				require.Equal(t, tc.want, got)
			}
		})
	}
}

// FuzzClientAddr: whatever the headers, the client is the peer, or an
// address written in them when the peer is trusted.
func FuzzClientAddr(f *testing.F) {
	for _, tc := range clientAddrCases {
		f.Add(tc.remote, tc.xff, tc.fwd)
	}
	f.Fuzz(func(t *testing.T, remote, xff, fwd string) {
		r := clientAddrRequest(remote, xff, fwd)
		got := testProxies.clientAddr(r)
		if got == remote {
			return
		}
		peer, ok := parseNode(remote)
		require.True(t, ok, "a changed address needs a parsable peer")
		require.True(t, testProxies.trusts(peer.Addr()), "only a trusted peer's headers count")
		a, ok := parseNode(got)
		require.True(t, ok, got)
		require.NotEqual(t, "", a.Addr().String())
	})
}
