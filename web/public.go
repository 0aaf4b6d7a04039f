package web

import (
	"cmp"
	"net/http"
	"net/netip"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/rs/zerolog"

	"github.com/seance-relay/seance/relay"
)

// PublicConfig configures the public listener.
type PublicConfig struct {
	// Listen is the TCP address, e.g. ":8080".
	Listen string
	// Handlers are extra routes (pattern → handler), e.g. "/whep/" for
	// WebRTC playback.
	Handlers map[string]http.Handler
	// Viewers counts a channel's viewers for the public API; nil is zero.
	Viewers func(channel string) int
	// Replays holds the recorders of the channels whose recordings are
	// public (replay: public). Server.SetRecorders replaces it after a
	// config reload.
	Replays map[string]Recorder
	// FrameAncestors are the CSP frame-ancestors sources of
	// /embed/{channel}: the sites that may show the player in an iframe,
	// e.g. "https://www.bourg.fr", "*" or "'self'". Empty: none may. The
	// other pages may be framed only by seance's own pages.
	FrameAncestors []string
	// TrustedProxies are the reverse proxies whose X-Forwarded-For or
	// Forwarded header names the client: behind them, every handler sees
	// the client's address in Request.RemoteAddr (see withClientAddr).
	// Empty: the headers are ignored.
	TrustedProxies []netip.Prefix
	// BodyTimeout bounds the time to read a request body (POST, PATCH,
	// PUT: WHEP and WHIP offers, trickle); 0 means DefaultBodyTimeout.
	// Requests without a body (SSE, held LL-HLS playlist reloads) are not
	// bounded by it.
	BodyTimeout time.Duration
	// MaxConnsPerAddr bounds the open connections of one client address;
	// 0 means DefaultMaxConnsPerAddr, negative no bound. Trusted proxies
	// are not bounded per address (every client behind them shares it):
	// the proxy should bound its clients.
	MaxConnsPerAddr int
	// MaxConns bounds the listener's open connections; 0 means
	// DefaultMaxConns, negative no bound.
	MaxConns int
	// Registerer takes the listener's metrics; nil: none.
	Registerer prometheus.Registerer
}

// Defaults of PublicConfig's limits.
const (
	// DefaultBodyTimeout: an SDP offer is a few KiB, sent at once.
	DefaultBodyTimeout = 10 * time.Second
	// DefaultMaxConnsPerAddr: a town hall's Wi-Fi or a carrier's NAT puts
	// hundreds of citizens behind one address, each browser holding one
	// or two keep-alive connections (HLS, the channel API); 512 keeps room
	// for ~250 of them.
	DefaultMaxConnsPerAddr = 512
	// DefaultMaxConns bounds the descriptors the public listener holds.
	DefaultMaxConns = 16384
)

// NewPublic binds the public listener. Its pages (/, /watch/{channel},
// /embed/{channel}) set no cookie and load nothing from another origin.
func NewPublic(cfg PublicConfig, hub Channels, log zerolog.Logger) (*Server, error) {
	log = log.With().Str("component", "web.public").Logger()
	p := &public{hub: hub, viewers: cfg.Viewers, log: log}
	if p.viewers == nil {
		p.viewers = func(string) int { return 0 }
	}
	p.replays.Store(&cfg.Replays)
	pg, err := newPages(p, cfg.FrameAncestors)
	if err != nil {
		return nil, err
	}
	mux := http.NewServeMux()
	for pattern, h := range cfg.Handlers {
		mux.Handle(pattern, h)
	}
	mux.HandleFunc("GET /healthz", healthz)
	mux.HandleFunc("GET /api/public/channels/{channel}", p.channel)
	mux.HandleFunc("GET /api/public/channels/{channel}/recordings", p.recordings)
	mux.HandleFunc("GET /replay/{channel}/{file}", p.replay)
	mux.HandleFunc("GET /{$}", pg.index)
	mux.HandleFunc("GET /watch/{channel}", pg.watch)
	mux.HandleFunc("GET /embed/{channel}", pg.embed)
	mux.Handle("GET /static/{file}", pg.assets)
	s, err := newServer("public", cfg.Listen, withClientAddr(cfg.TrustedProxies, bodyDeadline(cmp.Or(cfg.BodyTimeout, DefaultBodyTimeout), securityHeaders(mux))), log)
	if err != nil {
		return nil, err
	}
	s.ln = limitListener(s.ln, cfg, log)
	s.public = p
	return s, nil
}

type public struct {
	hub     Channels
	viewers func(channel string) int
	log     zerolog.Logger
	replays atomic.Pointer[map[string]Recorder]
}

// PublicChannel is what anyone may know about a channel.
type PublicChannel struct {
	Name    string `json:"name"`
	Title   string `json:"title"`
	Live    bool   `json:"live"`
	State   string `json:"state"`
	Viewers int    `json:"viewers"`
}

func (p *public) publicChannel(c *relay.Channel) PublicChannel {
	st, _ := c.State()
	return PublicChannel{Name: c.Name(), Title: c.Title(), Live: st != relay.StateIdle, State: st.String(), Viewers: p.viewers(c.Name())}
}

func (p *public) channel(w http.ResponseWriter, r *http.Request) {
	c, err := p.hub.Channel(r.PathValue("channel"))
	if err != nil {
		writeError(w, http.StatusNotFound, "channel_not_found", "no such channel")
		return
	}
	w.Header().Set("Access-Control-Allow-Origin", "*")
	writeJSON(w, http.StatusOK, p.publicChannel(c))
}

// securityHeaders keeps the public pages self-contained: nothing from
// another origin, no inline code, no referrer leaks, no framing by other
// sites (/embed/ overrides frame-ancestors).
func securityHeaders(next http.Handler) http.Handler {
	policy := csp("'self'")
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", policy)
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		next.ServeHTTP(w, r)
	})
}
