package hls

import (
	"hash/maphash"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// maxClientsPerChannel bounds the memory viewer counting may take: past
// it, new clients are not counted until old ones expire (a flood of made-up
// User-Agents cannot grow the map without limit).
const maxClientsPerChannel = 100_000

// defaultMaxClientsPerAddr bounds the viewers one address counts as
// (Config.MaxViewersPerAddress, hls.max_viewers_per_address): a client is
// an address and a User-Agent, so varying the User-Agent would otherwise
// inflate the count at will. 200 is as many as a town hall's NAT puts
// behind one address (webrtc.max_viewers_per_address's default).
const defaultMaxClientsPerAddr = 200

// viewerCounter counts HLS viewers. HTTP has no session: a client is a
// remote address and User-Agent, hashed with a seed chosen at start and
// kept in memory only (never logged, never a label), and it is a viewer
// while it fetched something from the channel within the window. Behind a
// reverse proxy listed in public.trusted_proxies the public server has
// already put the client's address (from X-Forwarded-For or Forwarded) in
// RemoteAddr (without a port unless the header had one); behind any other proxy or a CDN every viewer
// has the proxy's address, so the count is a lower bound. All methods are
// safe for concurrent use; time is passed in, so tests drive it.
type viewerCounter struct {
	window     time.Duration
	maxPerAddr int // clients one address counts as
	seed       maphash.Seed
	viewers    *prometheus.GaugeVec
	sessions   *prometheus.CounterVec

	// labels maps a counting key to the gauge's and counter's label
	// values; nil: the key is the channel, counted under protocol hls.
	labels func(key string) []string

	mu        sync.Mutex
	byChannel map[string]map[uint64]client // by client key
	perAddr   map[string]map[uint64]int    // clients per address, by channel
}

// client is one counted client: its last fetch and its address's hash.
type client struct {
	last time.Time
	addr uint64
}

func (v *viewerCounter) labelsOf(key string) []string {
	if v.labels != nil {
		return v.labels(key)
	}
	return []string{key, "hls"}
}

// newQualityCounter counts HLS viewers by the rendition whose files they
// fetch, in seance_viewers_by_quality: its keys are "channel/quality".
func newQualityCounter(window time.Duration, gauge *prometheus.GaugeVec) *viewerCounter {
	v := newViewerCounter(window, gauge, nil)
	v.labels = func(key string) []string {
		channel, quality, _ := strings.Cut(key, "/")
		return []string{channel, "hls", quality}
	}
	return v
}

func newViewerCounter(window time.Duration, viewers *prometheus.GaugeVec, sessions *prometheus.CounterVec) *viewerCounter {
	return &viewerCounter{
		window:     window,
		maxPerAddr: defaultMaxClientsPerAddr,
		seed:       maphash.MakeSeed(),
		viewers:    viewers,
		sessions:   sessions,
		byChannel:  map[string]map[uint64]client{},
		perAddr:    map[string]map[uint64]int{},
	}
}

// clientKey identifies the client that sent r.
func (v *viewerCounter) clientKey(r *http.Request) uint64 {
	var h maphash.Hash
	h.SetSeed(v.seed)
	h.WriteString(remoteHost(r))
	h.WriteByte(0)
	h.WriteString(r.UserAgent())
	return h.Sum64()
}

// addrKey identifies the address that sent r.
func (v *viewerCounter) addrKey(r *http.Request) uint64 {
	return maphash.String(v.seed, remoteHost(r))
}

func remoteHost(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	return host
}

// seen records a fetch from client on channel at now. A client not seen
// within the window starts a new viewer session.
func (v *viewerCounter) seen(channel string, key uint64, now time.Time) {
	v.seenFrom(channel, key, key, now)
}

// seenFrom is seen for a client at the address whose key is addr: an
// address counts as at most maxPerAddr clients.
func (v *viewerCounter) seenFrom(channel string, key, addr uint64, now time.Time) {
	v.mu.Lock()
	defer v.mu.Unlock()
	clients := v.byChannel[channel]
	if clients == nil {
		clients = map[uint64]client{}
		v.byChannel[channel] = clients
		v.perAddr[channel] = map[uint64]int{}
	}
	c, ok := clients[key]
	switch {
	case ok && now.Sub(c.last) <= v.window:
		if now.After(c.last) {
			c.last = now
			clients[key] = c
		}
		return
	case !ok && len(clients) >= maxClientsPerChannel:
		return
	case !ok && v.perAddr[channel][addr] >= v.maxPerAddr:
		return
	}
	if !ok {
		v.perAddr[channel][addr]++
	}
	clients[key] = client{last: now, addr: addr}
	if v.sessions != nil {
		v.sessions.WithLabelValues(v.labelsOf(channel)...).Inc()
	}
	v.viewers.WithLabelValues(v.labelsOf(channel)...).Set(float64(len(clients)))
}

// sweep forgets the clients that fetched nothing within the window and
// updates the gauge; the server calls it once a second.
func (v *viewerCounter) sweep(now time.Time) {
	v.mu.Lock()
	defer v.mu.Unlock()
	for channel, clients := range v.byChannel {
		for k, c := range clients {
			if now.Sub(c.last) > v.window {
				delete(clients, k)
				if v.perAddr[channel][c.addr]--; v.perAddr[channel][c.addr] <= 0 {
					delete(v.perAddr[channel], c.addr)
				}
			}
		}
		v.viewers.WithLabelValues(v.labelsOf(channel)...).Set(float64(len(clients)))
		if len(clients) == 0 {
			delete(v.byChannel, channel)
			delete(v.perAddr, channel)
		}
	}
}

// count returns the channel's viewers as of the last sweep (and the
// clients seen since). It is cheap: the public API asks for every page's
// poll.
func (v *viewerCounter) count(channel string) int {
	v.mu.Lock()
	defer v.mu.Unlock()
	return len(v.byChannel[channel])
}
