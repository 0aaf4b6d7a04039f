package web

import (
	"bytes"
	"embed"
	"fmt"
	"html/template"
	"net"
	"net/http"
	"net/url"
	"strings"

	"github.com/rs/zerolog"

	"github.com/seance-relay/seance/relay"
)

// dashboardFS holds the IT staff's dashboard: one page and its static
// files. The page holds no data: its script asks for the admin token and
// reads the admin API with it.
//
//go:embed dashboard
var dashboardFS embed.FS

// dashboardStatic is where the dashboard's static files are served.
const dashboardStatic = "/dashboard/static/"

// warningTexts says each health warning (relay.Warnings) in plain French,
// with the fix. The dashboard fills in {keyint}, {codec} and {rate}.
var warningTexts = map[string]string{
	relay.WarnKeyframeInterval: "L'intervalle entre images clés est de {keyint} s : YouTube exige 4 s au plus — réglez -g 60 dans l'encodeur (une image clé toutes les 2 s à 30 images/s).",
	relay.WarnBFrames:          "La vidéo contient des images B, que les navigateurs lisent mal en direct — désactivez-les dans l'encodeur (-bf 0, ou profil « baseline »).",
	relay.WarnAudioCodec:       "Le son est en {codec} : YouTube attend de l'AAC-LC — choisissez le profil AAC-LC dans l'encodeur (-c:a aac -profile:a aac_low).",
	relay.WarnAudioSampleRate:  "Le son est échantillonné à {rate} Hz : YouTube exige 44,1 ou 48 kHz — réglez -ar 48000 dans l'encodeur.",
	relay.WarnNoAudio:          "Aucun son n'arrive : YouTube attend une piste audio — activez l'audio (micro ou mixage) dans l'encodeur.",
	relay.WarnTimestampJumps:   "Les horodatages de l'encodeur ont sauté dans la dernière minute et le relais a recollé le flux — vérifiez la charge et l'horloge de la machine qui diffuse.",
	relay.WarnStalled:          "L'encodeur est connecté mais n'envoie plus d'images depuis plus de 5 s — vérifiez la machine qui diffuse (Jibri, OBS) et son réseau.",
}

// dashboard serves /dashboard and its static files.
type dashboard struct {
	tmpl   *template.Template
	assets assets
	// public is the public listener's base URL; its host is empty when it
	// is the dashboard's own host. Nil: no previews.
	public       *url.URL
	authRequired bool
	log          zerolog.Logger
}

func newDashboard(publicURL string, authRequired bool, log zerolog.Logger) (*dashboard, error) {
	a, err := loadAssetsFrom(dashboardFS, "dashboard/static")
	if err != nil {
		return nil, err
	}
	tmpl, err := template.New("").Funcs(template.FuncMap{
		"asset": func(name string) (string, error) { return a.urlAt(dashboardStatic, name) },
	}).ParseFS(dashboardFS, "dashboard/index.html")
	if err != nil {
		return nil, fmt.Errorf("parsing the dashboard template: %w", err)
	}
	d := &dashboard{tmpl: tmpl, assets: a, authRequired: authRequired, log: log}
	if publicURL != "" {
		u, err := url.Parse(strings.TrimSuffix(publicURL, "/"))
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") {
			return nil, fmt.Errorf("admin: public URL %q: want http(s)://host[:port]", publicURL)
		}
		d.public = u
	}
	return d, nil
}

// open reports whether r is for the dashboard's page or one of its static
// files: exactly those are served without the admin token.
func (d *dashboard) open(r *http.Request) bool {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		return false
	}
	if r.URL.Path == "/dashboard" {
		return true
	}
	name, ok := strings.CutPrefix(r.URL.Path, dashboardStatic)
	_, known := d.assets[name]
	return ok && known
}

// publicBase resolves the public listener's base URL for a page loaded
// with r: a URL without a host takes the request's host name.
func (d *dashboard) publicBase(r *http.Request) *url.URL {
	if d.public == nil {
		return nil
	}
	u := *d.public
	if u.Hostname() != "" {
		return &u
	}
	host := r.Host
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	if !hostnameOK(host) {
		host = "localhost"
	}
	u.Host = net.JoinHostPort(host, u.Port())
	return &u
}

// hostnameOK accepts DNS names and IP literals only, so that a request's
// Host header cannot inject anything into the page's CSP.
func hostnameOK(h string) bool {
	if h == "" || len(h) > 253 {
		return false
	}
	for _, c := range h {
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '.', c == '-', c == ':':
		default:
			return false
		}
	}
	return true
}

// dashboardData is what the page's template sees.
type dashboardData struct {
	PublicURL    string
	AuthRequired bool
	Warnings     map[string]string
}

func (d *dashboard) page(w http.ResponseWriter, r *http.Request) {
	data := dashboardData{AuthRequired: d.authRequired, Warnings: warningTexts}
	connect := "'self'"
	if u := d.publicBase(r); u != nil {
		data.PublicURL = u.String()
		connect += " " + u.Scheme + "://" + u.Host
	}
	var buf bytes.Buffer
	if err := d.tmpl.ExecuteTemplate(&buf, "index.html", data); err != nil {
		d.log.Error().Err(err).Msg("rendering the dashboard failed")
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	h := w.Header()
	// As strict as the public pages'; the previews play from the public
	// listener (WHEP, which sends CORS headers).
	h.Set("Content-Security-Policy", "default-src 'self'; connect-src "+connect+"; media-src 'self' blob:; img-src 'self' data:; "+
		"style-src 'self'; script-src 'self'; base-uri 'none'; form-action 'none'; object-src 'none'; frame-ancestors 'none'")
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-cache")
	_, _ = w.Write(buf.Bytes())
}
