package web

import (
	"bytes"
	"embed"
	"fmt"
	"html/template"
	"net/http"
	"strings"
)

//go:embed templates
var templateFS embed.FS

// pages renders the citizens' pages: the index, the watch page and the
// embeddable player. They load nothing from another origin, set no
// cookie, and speak French unless the browser prefers English.
type pages struct {
	public *public
	assets assets
	tmpl   *template.Template
	// embedCSP is the CSP of /embed/, whose frame-ancestors come from
	// the config.
	embedCSP string
}

// pageData is what the templates see.
type pageData struct {
	T        *texts
	Title    string
	Player   bool // load the player's script
	Channel  PublicChannel
	Channels []PublicChannel
	// Replay lists the channel's past sessions on its watch page; nil
	// when it offers none.
	Replay *replayView
}

// cspBase forbids everything not served by seance itself, inline code
// included. WHEP, the public API and the HLS fallback's first playlist
// check are same-origin (connect-src); the HLS playlist the video element
// plays is same-origin too (media-src 'self'); the player's MediaStream
// may show as a blob: URL in some browsers.
const cspBase = "default-src 'self'; media-src 'self' blob:; connect-src 'self'; img-src 'self' data:; " +
	"style-src 'self'; script-src 'self'; base-uri 'none'; form-action 'none'; object-src 'none'"

// csp returns the pages' Content-Security-Policy with the given
// frame-ancestors sources (CSP Level 3, 6.4.2).
func csp(frameAncestors ...string) string {
	if len(frameAncestors) == 0 {
		frameAncestors = []string{"'none'"}
	}
	return cspBase + "; frame-ancestors " + strings.Join(frameAncestors, " ")
}

func newPages(p *public, frameAncestors []string) (*pages, error) {
	a, err := loadAssets()
	if err != nil {
		return nil, err
	}
	tmpl, err := template.New("").Funcs(template.FuncMap{"asset": a.url}).ParseFS(templateFS, "templates/*.html")
	if err != nil {
		return nil, fmt.Errorf("parsing page templates: %w", err)
	}
	return &pages{public: p, assets: a, tmpl: tmpl, embedCSP: csp(frameAncestors...)}, nil
}

// render writes a page in full, or a 500 if its template fails (so that a
// half-written page is never sent).
func (pg *pages) render(w http.ResponseWriter, status int, name string, data pageData) {
	var buf bytes.Buffer
	if err := pg.tmpl.ExecuteTemplate(&buf, name, data); err != nil {
		pg.public.log.Error().Err(err).Str("template", name).Msg("rendering a page failed")
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-cache")
	h.Set("Vary", "Accept-Language")
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}

func (pg *pages) index(w http.ResponseWriter, r *http.Request) {
	t := negotiate(r.Header.Get("Accept-Language"))
	var list []PublicChannel
	for _, c := range pg.public.hub.Channels() {
		list = append(list, pg.public.publicChannel(c))
	}
	pg.render(w, http.StatusOK, "index.html", pageData{T: t, Title: t.Site, Channels: list})
}

func (pg *pages) watch(w http.ResponseWriter, r *http.Request) { pg.player(w, r, "watch.html") }

func (pg *pages) embed(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Security-Policy", pg.embedCSP)
	pg.player(w, r, "embed.html")
}

func (pg *pages) player(w http.ResponseWriter, r *http.Request, name string) {
	t := negotiate(r.Header.Get("Accept-Language"))
	c, err := pg.public.hub.Channel(r.PathValue("channel"))
	if err != nil {
		pg.notFound(w, r)
		return
	}
	ch := pg.public.publicChannel(c)
	data := pageData{T: t, Title: ch.Title + " — " + t.Site, Player: true, Channel: ch}
	if name == "watch.html" {
		data.Replay = pg.public.replayView(c.Name(), t)
	}
	pg.render(w, http.StatusOK, name, data)
}

func (pg *pages) notFound(w http.ResponseWriter, r *http.Request) {
	t := negotiate(r.Header.Get("Accept-Language"))
	pg.render(w, http.StatusNotFound, "notfound.html", pageData{T: t, Title: t.NotFound + " — " + t.Site})
}
