package web

import (
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"

	"github.com/seance-relay/seance/addrlimit"
)

// guard refuses what a browser may be tricked into sending the admin
// listener, token or not:
//
//   - a Host that is neither an IP address, "localhost" nor one of the
//     configured names (admin.hosts): DNS rebinding points an attacker's
//     name at 127.0.0.1, so the browser sends that name as Host and the
//     attacker's page could read the API;
//   - a state-changing request (not GET, HEAD or OPTIONS) from another
//     site: Sec-Fetch-Site (W3C Fetch Metadata) must be same-origin or
//     none, or without it the Origin must name the Host. A request with
//     neither header is not a browser's cross-site one (curl, scripts).
func (a *admin) guard(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !a.hostAllowed(r.Host) {
			a.met.refused.WithLabelValues("host").Inc()
			a.fail(w, r, http.StatusMisdirectedRequest, "host_not_allowed", "this Host is not the admin listener's: add the name to admin.hosts", nil)
			return
		}
		switch r.Method {
		case http.MethodGet, http.MethodHead, http.MethodOptions:
		default:
			if !sameOrigin(r) {
				a.met.refused.WithLabelValues("cross_site").Inc()
				a.fail(w, r, http.StatusForbidden, "cross_site", "cross-site requests cannot change the admin state", nil)
				return
			}
		}
		next.ServeHTTP(w, r)
	})
}

// hostAllowed says whether a Host header names the admin listener.
func (a *admin) hostAllowed(hostport string) bool {
	host := hostport
	if h, _, err := net.SplitHostPort(hostport); err == nil {
		host = h
	}
	host = strings.TrimSuffix(strings.Trim(host, "[]"), ".")
	if host == "" {
		return true // no name to rebind (HTTP/1.0, in-process requests)
	}
	if _, err := netip.ParseAddr(host); err == nil {
		return true // an address literal is no DNS name to rebind
	}
	return strings.EqualFold(host, "localhost") || slices.ContainsFunc(a.cfg.Hosts, func(h string) bool { return strings.EqualFold(h, host) })
}

// sameOrigin says whether a state-changing request comes from the admin
// pages themselves (or from no browser page at all).
func sameOrigin(r *http.Request) bool {
	if site := r.Header.Get("Sec-Fetch-Site"); site != "" {
		return site == "same-origin" || site == "none"
	}
	origin := r.Header.Get("Origin")
	if origin == "" {
		return true
	}
	u, err := url.Parse(origin)
	return err == nil && u.Host != "" && strings.EqualFold(u.Host, r.Host)
}

// adminMetrics count what the guard and the token check refuse.
type adminMetrics struct {
	refused *prometheus.CounterVec
}

func newAdminMetrics(reg prometheus.Registerer) *adminMetrics {
	if reg == nil {
		reg = prometheus.NewRegistry()
	}
	return &adminMetrics{refused: promauto.With(reg).NewCounterVec(prometheus.CounterOpts{
		Name: "seance_admin_refused_total",
		Help: "Admin requests refused, by reason (host, cross_site, bad_token, throttled).",
	}, []string{"reason"})}
}

// throttled answers 429 while the client's address backs off after wrong
// tokens.
func (a *admin) throttled(w http.ResponseWriter, r *http.Request) bool {
	ok, wait := a.failures.Allow(addrlimit.Parse(r.RemoteAddr))
	if ok {
		return false
	}
	a.met.refused.WithLabelValues("throttled").Inc()
	w.Header().Set("Retry-After", strconv.Itoa(int(wait.Seconds())+1))
	a.fail(w, r, http.StatusTooManyRequests, "throttled", "too many wrong tokens from your address: wait before trying again", nil)
	return true
}

// failed records a wrong token, logged once per window per address.
func (a *admin) failed(r *http.Request) {
	a.met.refused.WithLabelValues("bad_token").Inc()
	if a.failures.Fail(addrlimit.Parse(r.RemoteAddr)) {
		a.log.Warn().Str("remote", r.RemoteAddr).Msg("admin: repeated wrong tokens from one address: backing off (logged once per window)")
	}
}
