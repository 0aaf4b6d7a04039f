package web

import (
	"crypto/subtle"
	"encoding/json"
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/rs/zerolog"

	"github.com/seance-relay/seance/configs"
	"github.com/seance-relay/seance/publish/rtmp"
	"github.com/seance-relay/seance/relay"
)

// Channels is the part of the hub the web servers read.
type Channels interface {
	Channels() []*relay.Channel
	Channel(name string) (*relay.Channel, error)
}

// Destination is a destination the admin API shows and steers.
type Destination interface {
	Status() rtmp.Status
	Start()
	Stop()
}

// AdminConfig configures the admin listener.
type AdminConfig struct {
	// Listen is the TCP address; the config loader refuses a non-loopback
	// address without a token.
	Listen string
	// Token, when set, is required as "Authorization: Bearer" on every
	// admin route, /metrics included.
	Token configs.Secret
	// Gatherer is scraped at /metrics.
	Gatherer prometheus.Gatherer
	// Destinations lists each channel's destinations, in config order.
	Destinations map[string][]Destination
}

// NewAdmin binds the admin listener.
func NewAdmin(cfg AdminConfig, hub Channels, log zerolog.Logger) (*Server, error) {
	log = log.With().Str("component", "web.admin").Logger()
	a := &admin{cfg: cfg, hub: hub}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(cfg.Gatherer, promhttp.HandlerOpts{ErrorLog: nil}))
	mux.HandleFunc("GET /healthz", healthz)
	mux.HandleFunc("GET /api/v1/channels", a.listChannels)
	mux.HandleFunc("GET /api/v1/channels/{channel}", a.getChannel)
	mux.HandleFunc("POST /api/v1/channels/{channel}/destinations/{destination}/{action}", a.steerDestination)
	return newServer("admin", cfg.Listen, a.auth(mux), log)
}

type admin struct {
	cfg AdminConfig
	hub Channels
}

// auth requires the admin token when one is set. The comparison is in
// constant time; the token is never echoed.
func (a *admin) auth(next http.Handler) http.Handler {
	if !a.cfg.Token.IsSet() {
		return next
	}
	want := []byte("Bearer " + a.cfg.Token.Value())
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got := []byte(r.Header.Get("Authorization"))
		if subtle.ConstantTimeCompare(got, want) != 1 {
			w.Header().Set("WWW-Authenticate", `Bearer realm="seance admin"`)
			writeError(w, http.StatusUnauthorized, "unauthorized", "missing or wrong admin token: send Authorization: Bearer <token>")
			return
		}
		next.ServeHTTP(w, r)
	})
}

// ChannelStatus is one channel as the admin API shows it.
type ChannelStatus struct {
	Name         string        `json:"name"`
	Title        string        `json:"title"`
	Health       relay.Health  `json:"health"`
	Destinations []rtmp.Status `json:"destinations"`
}

func (a *admin) status(c *relay.Channel) ChannelStatus {
	st := ChannelStatus{Name: c.Name(), Title: c.Title(), Health: c.Health(), Destinations: []rtmp.Status{}}
	for _, d := range a.cfg.Destinations[c.Name()] {
		st.Destinations = append(st.Destinations, d.Status())
	}
	return st
}

func (a *admin) listChannels(w http.ResponseWriter, _ *http.Request) {
	out := []ChannelStatus{}
	for _, c := range a.hub.Channels() {
		out = append(out, a.status(c))
	}
	writeJSON(w, http.StatusOK, map[string]any{"channels": out})
}

func (a *admin) getChannel(w http.ResponseWriter, r *http.Request) {
	c, err := a.hub.Channel(r.PathValue("channel"))
	if err != nil {
		writeError(w, http.StatusNotFound, "channel_not_found", "no such channel")
		return
	}
	writeJSON(w, http.StatusOK, a.status(c))
}

func (a *admin) steerDestination(w http.ResponseWriter, r *http.Request) {
	c, err := a.hub.Channel(r.PathValue("channel"))
	if err != nil {
		writeError(w, http.StatusNotFound, "channel_not_found", "no such channel")
		return
	}
	var dest Destination
	for _, d := range a.cfg.Destinations[c.Name()] {
		if d.Status().Name == r.PathValue("destination") {
			dest = d
		}
	}
	if dest == nil {
		writeError(w, http.StatusNotFound, "destination_not_found", "no such destination on this channel")
		return
	}
	switch r.PathValue("action") {
	case "start":
		dest.Start()
	case "stop":
		dest.Stop()
	case "restart":
		dest.Stop()
		dest.Start()
	default:
		writeError(w, http.StatusNotFound, "unknown_action", "action must be start, stop or restart")
		return
	}
	writeJSON(w, http.StatusAccepted, dest.Status())
}

func healthz(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	_, _ = w.Write([]byte("ok\n"))
}

// apiError is the JSON body of every API error: a stable code and a short
// message for people.
type apiError struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

func writeError(w http.ResponseWriter, status int, code, msg string) {
	writeJSON(w, status, map[string]apiError{"error": {Code: code, Message: msg}})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}
