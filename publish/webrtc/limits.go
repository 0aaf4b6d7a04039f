package webrtc

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"slices"
	"strings"
	"sync/atomic"

	"github.com/pion/webrtc/v4"
)

// Defaults of the per-address limits (Config fields at 0).
const (
	// DefaultMaxCandidates bounds the remote ICE candidates of one session
	// (offer and trickle together). A browser sends 2-10 (host, srflx,
	// relay per interface and family); each candidate makes the ICE agent
	// send connectivity checks to the address it names, so an unbounded
	// number is a reflection amplifier.
	DefaultMaxCandidates = 32
	// DefaultMaxPending bounds sessions that have not connected yet on the
	// server: the budget pending offers take, apart from max_viewers.
	DefaultMaxPending = 200
	// DefaultMaxPendingPerAddr bounds one address's sessions that have not
	// connected yet: a browser makes one at a time, a family behind one
	// box a few.
	DefaultMaxPendingPerAddr = 8
	// DefaultMaxViewersPerAddr bounds one address's connected viewers. A
	// town hall's public Wi-Fi, a school or a mobile carrier's NAT (CGNAT,
	// hundreds of subscribers behind one IPv4) put many citizens behind
	// one address: 200 is a full council chamber plus its overflow room,
	// a fifth of the default server limit, so one address can never hold
	// every seat.
	DefaultMaxViewersPerAddr = 200
)

// ErrTooManyCandidates: the session was given more remote candidates than
// allowed (422).
var ErrTooManyCandidates = errors.New("too many ICE candidates")

// ErrAddrBusy: the client's address holds its share of pending sessions
// or viewers (429).
var ErrAddrBusy = errors.New("too many sessions from this address")

// Candidates counts the remote ICE candidates a session was given against
// its bound. Safe for concurrent use.
type Candidates struct {
	max  int32
	used atomic.Int32
}

// NewCandidates returns a budget of max candidates (0: DefaultMaxCandidates).
func NewCandidates(max int) *Candidates {
	if max <= 0 {
		max = DefaultMaxCandidates
	}
	return &Candidates{max: int32(max)}
}

// take reserves n candidates, or none if that would pass the bound.
func (c *Candidates) take(n int) bool {
	if c == nil {
		return true
	}
	for {
		u := c.used.Load()
		if int(u)+n > int(c.max) {
			return false
		}
		if c.used.CompareAndSwap(u, u+int32(n)) {
			return true
		}
	}
}

// Max returns the bound.
func (c *Candidates) Max() int { return int(c.max) }

// TakeOffer counts the candidates of an SDP offer; an error (wrapping
// ErrTooManyCandidates) past the bound.
func (c *Candidates) TakeOffer(sdp string) error {
	if n := countCandidates(sdp); !c.take(n) {
		return fmt.Errorf("%w: the offer has %d ICE candidates, at most %d are accepted", ErrTooManyCandidates, n, c.max)
	}
	return nil
}

// countCandidates counts the a=candidate lines of an SDP or fragment.
func countCandidates(sdp string) int {
	n := 0
	for line := range strings.Lines(sdp) {
		if strings.HasPrefix(line, "a=candidate:") {
			n++
		}
	}
	return n
}

// tooManyCandidates answers a trickle past the bound.
func tooManyCandidates(w http.ResponseWriter, max int) {
	HTTPError(w, http.StatusUnprocessableEntity, fmt.Sprintf("too many ICE candidates: at most %d per session", max))
}

// refusalReason is the ended-session reason of a viewer refused a seat
// when its ICE connected.
func refusalReason(err error) string {
	switch {
	case errors.Is(err, ErrChannelFull):
		return "channel_full"
	case errors.Is(err, ErrAddrBusy):
		return "address_busy"
	}
	return "server_full"
}

// setCandidateFilters keeps the ICE candidates to the addresses the
// operator wants announced: only the bind address when set, only the
// listed interfaces, and no private or link-local address unless allowed
// (they describe the network behind the relay and cannot be reached from
// outside). With NAT rules the private addresses are gathered: the rules
// replace them with the public ones.
func setCandidateFilters(se *webrtc.SettingEngine, cfg Config) {
	if len(cfg.Interfaces) > 0 {
		names := slices.Clone(cfg.Interfaces)
		se.SetInterfaceFilter(func(name string) bool { return slices.Contains(names, name) })
	}
	bind, _ := netip.ParseAddr(cfg.Host)
	se.SetIPFilter(func(ip net.IP) bool {
		return announce(ip, bind, cfg.IncludePrivate || len(cfg.NATIPs) > 0)
	})
}

// announce says whether a local address may be an ICE candidate.
func announce(ip net.IP, bind netip.Addr, private bool) bool {
	a, ok := netip.AddrFromSlice(ip)
	if !ok {
		return false
	}
	a = a.Unmap()
	if bind.IsValid() && !bind.IsUnspecified() && a != bind.Unmap() {
		return false
	}
	if a.IsLoopback() {
		return true // SetIncludeLoopbackCandidate decides
	}
	if a.IsPrivate() || a.IsLinkLocalUnicast() {
		return private
	}
	return true
}

// announced lists the local addresses the filters let through, for the
// startup log: a server whose addresses are all private announces none
// unless told (webrtc.announce_private or nat_ips).
func announced(cfg Config) []string {
	ifaces, err := net.Interfaces()
	if err != nil {
		return nil
	}
	bind, _ := netip.ParseAddr(cfg.Host)
	var out []string
	for _, ifc := range ifaces {
		if ifc.Flags&net.FlagUp == 0 || len(cfg.Interfaces) > 0 && !slices.Contains(cfg.Interfaces, ifc.Name) {
			continue
		}
		addrs, _ := ifc.Addrs()
		for _, a := range addrs {
			ipn, ok := a.(*net.IPNet)
			if !ok || ipn.IP.IsLoopback() && !cfg.IncludeLoopback {
				continue
			}
			if announce(ipn.IP, bind, cfg.IncludePrivate || len(cfg.NATIPs) > 0) {
				out = append(out, ipn.IP.String())
			}
		}
	}
	return out
}
