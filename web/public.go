package web

import (
	"html/template"
	"net/http"

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
}

// NewPublic binds the public listener. Its pages set no cookie and load
// nothing from another origin.
func NewPublic(cfg PublicConfig, hub Channels, log zerolog.Logger) (*Server, error) {
	log = log.With().Str("component", "web.public").Logger()
	p := &public{hub: hub, viewers: cfg.Viewers}
	if p.viewers == nil {
		p.viewers = func(string) int { return 0 }
	}
	mux := http.NewServeMux()
	for pattern, h := range cfg.Handlers {
		mux.Handle(pattern, h)
	}
	mux.HandleFunc("GET /healthz", healthz)
	mux.HandleFunc("GET /api/public/channels/{channel}", p.channel)
	mux.HandleFunc("GET /{$}", p.index)
	return newServer("public", cfg.Listen, securityHeaders(mux), log)
}

type public struct {
	hub     Channels
	viewers func(channel string) int
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

var indexPage = template.Must(template.New("index").Parse(`<!doctype html>
<html lang="fr">
<head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>Séances en direct</title>
<style>body{font-family:system-ui,sans-serif;max-width:40rem;margin:2rem auto;padding:0 1rem;color:#1a1a1a;background:#fff}li{margin:.5rem 0}.live{color:#b00020;font-weight:bold}</style>
</head>
<body>
<main>
<h1>Séances en direct</h1>
{{if .}}<ul>{{range .}}<li>{{.Title}} — {{if .Live}}<span class="live">en direct</span>{{else}}hors ligne{{end}}</li>{{end}}</ul>
{{else}}<p>Aucune séance n'est configurée.</p>{{end}}
</main>
</body>
</html>
`))

func (p *public) index(w http.ResponseWriter, _ *http.Request) {
	var list []PublicChannel
	for _, c := range p.hub.Channels() {
		list = append(list, p.publicChannel(c))
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-cache")
	_ = indexPage.Execute(w, list)
}

// securityHeaders keeps the public pages self-contained: nothing from
// another origin, no referrer leaks.
func securityHeaders(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", "default-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; media-src 'self' blob:; connect-src 'self'")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		next.ServeHTTP(w, r)
	})
}
