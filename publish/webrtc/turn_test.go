package webrtc

import (
	"crypto/hmac"
	"crypto/sha1"
	"encoding/base64"
	"net"
	"net/http"
	"net/netip"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestTURNRESTLinks: a TURN server given by its shared secret is
// advertised with a credential valid TTL from now, username
// "expiry:tag", password base64(HMAC-SHA1(secret, username)), on POST and
// OPTIONS; the secret itself never appears.
func TestTURNRESTLinks(t *testing.T) {
	const secret = "coturn-static-auth-secret"
	for _, tc := range []struct {
		name string
		srv  ICEServer
		tag  string
		ttl  time.Duration
	}{
		{"default tag and ttl", ICEServer{URLs: []string{"turn:turn.example.fr:3478"}, Secret: secret}, "seance", DefaultTURNTTL},
		{"tag and ttl", ICEServer{URLs: []string{"turn:turn.example.fr:3478"}, Secret: secret, Username: "mairie", TTL: 5 * time.Minute}, "mairie", 5 * time.Minute},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, envOpts{ice: []ICEServer{tc.srv}})
			re := regexp.MustCompile(`^<turn:turn.example.fr:3478>; rel="ice-server"; username="(\d+):([^"]+)"; credential="([^"]+)"; credential-type="password"$`)
			post, _ := e.post(t, "demo", makeOffer(t, playOffer))
			opts, _ := e.do(t, http.MethodOptions, "/whep/demo", "", nil)
			for _, r := range []*http.Response{post, opts} {
				links := r.Header.Values("Link")
				require.Len(t, links, 1)
				require.NotContains(t, links[0], secret)
				m := re.FindStringSubmatch(links[0])
				require.NotNil(t, m, links[0])
				exp, err := strconv.ParseInt(m[1], 10, 64)
				require.NoError(t, err)
				require.InDelta(t, time.Now().Add(tc.ttl).Unix(), exp, 5)
				require.Equal(t, tc.tag, m[2])
				mac := hmac.New(sha1.New, []byte(secret))
				mac.Write([]byte(m[1] + ":" + m[2]))
				require.Equal(t, base64.StdEncoding.EncodeToString(mac.Sum(nil)), m[3])
				require.False(t, strings.Contains(strings.Join(r.Header.Values("Link"), ""), secret))
			}
		})
	}
}

// TestAnnounce: which local addresses become ICE candidates.
func TestAnnounce(t *testing.T) {
	bind := netip.MustParseAddr("203.0.113.7")
	for _, tc := range []struct {
		ip      string
		bind    netip.Addr
		private bool
		want    bool
	}{
		{"203.0.113.7", netip.Addr{}, false, true},
		{"2001:db8::1", netip.Addr{}, false, true},
		{"192.168.1.10", netip.Addr{}, false, false},
		{"10.0.0.5", netip.Addr{}, false, false},
		{"fd00::5", netip.Addr{}, false, false},
		{"169.254.3.4", netip.Addr{}, false, false},
		{"fe80::1", netip.Addr{}, false, false},
		{"192.168.1.10", netip.Addr{}, true, true},
		{"127.0.0.1", netip.Addr{}, false, true}, // pion's loopback flag decides
		{"203.0.113.8", bind, false, false},
		{"203.0.113.7", bind, false, true},
		{"203.0.113.7", netip.IPv4Unspecified(), false, true},
	} {
		t.Run(tc.ip, func(t *testing.T) {
			require.Equal(t, tc.want, announce(net.ParseIP(tc.ip), tc.bind, tc.private))
		})
	}
}
