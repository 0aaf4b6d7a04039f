package web

import (
	"net/http"
	"net/netip"
	"strings"
)

// maxForwardHops bounds how many addresses of a forwarding header are
// read, right to left: a chain of proxies is a handful long.
const maxForwardHops = 32

// trustedProxies are the reverse proxies whose forwarding headers name the
// client (public.trusted_proxies).
type trustedProxies []netip.Prefix

func (t trustedProxies) trusts(a netip.Addr) bool {
	a = a.Unmap()
	for _, p := range t {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// withClientAddr sets each request's RemoteAddr to the client's address
// when the TCP peer is a trusted proxy, so that whatever records a remote
// address (HLS viewer counting, the WHIP publisher shown on the
// dashboard) sees the viewer rather than the proxy. With no trusted proxy
// it returns next: the forwarding headers are then ignored.
func withClientAddr(trusted trustedProxies, next http.Handler) http.Handler {
	if len(trusted) == 0 {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if addr := trusted.clientAddr(r); addr != r.RemoteAddr {
			r = r.WithContext(r.Context()) // a shallow copy: handlers do not modify their request
			r.RemoteAddr = addr
		}
		next.ServeHTTP(w, r)
	})
}

// clientAddr returns the address of the client that sent r, as host:port
// when the port is known, else as the host alone.
//
// When the TCP peer is a trusted proxy, it walks the addresses the
// proxies appended to X-Forwarded-For, or if there is none to Forwarded
// (RFC 7239), from right to left, and stops at the first one that is not
// a trusted proxy: addresses further left were written by the client
// itself and prove nothing. If every address is trusted, the left-most is
// the client; a value that is not an address (RFC 7239's "unknown" or an
// obfuscated identifier, garbage) ends the walk at the last address read.
// Only one header is read, X-Forwarded-For first, so configure the proxy
// to set that one (nginx, Caddy, HAProxy and Traefik do); a proxy that
// sets only Forwarded must remove a client's X-Forwarded-For.
func (t trustedProxies) clientAddr(r *http.Request) string {
	peer, ok := parseNode(r.RemoteAddr)
	if !ok || !t.trusts(peer.Addr()) {
		return r.RemoteAddr
	}
	var hops []string
	if v := r.Header.Values("X-Forwarded-For"); len(v) > 0 {
		hops = forwardedFor(v)
	} else {
		hops = forwardedNodes(r.Header.Values("Forwarded"))
	}
	client, moved := peer, false
	for i := len(hops) - 1; i >= 0 && i >= len(hops)-maxForwardHops && t.trusts(client.Addr()); i-- {
		hop, ok := parseNode(hops[i])
		if !ok {
			break
		}
		client, moved = hop, true
	}
	if !moved {
		return r.RemoteAddr
	}
	if client.Port() == 0 {
		return client.Addr().String()
	}
	return client.String()
}

// forwardedFor splits X-Forwarded-For header lines into their
// comma-separated addresses, in order.
func forwardedFor(values []string) []string {
	var out []string
	for _, v := range values {
		for a := range strings.SplitSeq(v, ",") {
			out = append(out, strings.TrimSpace(a))
		}
	}
	return out
}

// forwardedNodes returns the "for" parameter of each element of Forwarded
// header lines (RFC 7239 section 4), in order, unquoted; "" for an element
// without one. A malformed element ends its line (where the next element
// starts is unknown) with a "", at which the walk stops; the next line
// (a proxy's own) is read again.
func forwardedNodes(values []string) []string {
	var out []string
	for _, s := range values {
		for {
			forValue, rest, ok := forwardedElement(s)
			if !ok {
				out = append(out, "")
				break
			}
			out = append(out, forValue)
			if rest == "" {
				break
			}
			s = rest
		}
	}
	return out
}

// forwardedElement reads one element of a Forwarded header
// (forwarded-pair *( ";" forwarded-pair ), pairs being token "=" (token /
// quoted-string)), up to the comma that ends it, and returns its "for"
// value and the rest after the comma ("" at the end).
func forwardedElement(s string) (forValue, rest string, ok bool) {
	s = strings.TrimLeft(s, " \t,") // empty elements (RFC 9110 section 5.6.1)
	for {
		s = strings.TrimLeft(s, " \t")
		eq := strings.IndexByte(s, '=')
		if eq <= 0 {
			if strings.TrimSpace(s) == "" {
				return forValue, "", true // an empty element (RFC 9110 list syntax)
			}
			return "", "", false
		}
		name := strings.TrimSpace(s[:eq])
		s = s[eq+1:]
		var value string
		if strings.HasPrefix(s, `"`) {
			var b strings.Builder
			i := 1
			for ; i < len(s) && s[i] != '"'; i++ {
				if s[i] == '\\' && i+1 < len(s) {
					i++
				}
				b.WriteByte(s[i])
			}
			if i >= len(s) {
				return "", "", false // unterminated quoted-string
			}
			value, s = b.String(), s[i+1:]
		} else {
			end := strings.IndexAny(s, ";,")
			if end < 0 {
				end = len(s)
			}
			value, s = strings.TrimSpace(s[:end]), s[end:]
		}
		if strings.EqualFold(name, "for") {
			forValue = value
		}
		s = strings.TrimLeft(s, " \t")
		switch {
		case s == "":
			return forValue, "", true
		case s[0] == ';':
			s = s[1:]
		case s[0] == ',':
			return forValue, strings.TrimLeft(s[1:], " \t,"), true
		default:
			return "", "", false
		}
	}
}

// parseNode parses an address as proxies write them: "192.0.2.7",
// "192.0.2.7:4711", "2001:db8::1", "[2001:db8::1]" or "[2001:db8::1]:4711"
// (RFC 7239 section 6). The port is 0 when absent. Zones are refused.
func parseNode(s string) (netip.AddrPort, bool) {
	if a, err := netip.ParseAddr(s); err == nil {
		return netip.AddrPortFrom(a.Unmap(), 0), a.Zone() == ""
	}
	if ap, err := netip.ParseAddrPort(s); err == nil {
		return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port()), ap.Addr().Zone() == ""
	}
	if host, ok := strings.CutPrefix(s, "["); ok {
		if host, ok := strings.CutSuffix(host, "]"); ok {
			if a, err := netip.ParseAddr(host); err == nil && a.Is6() {
				return netip.AddrPortFrom(a.Unmap(), 0), a.Zone() == ""
			}
		}
	}
	return netip.AddrPort{}, false
}
