package web

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/json"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/rs/zerolog"

	"github.com/seance-relay/seance/addrlimit"
	"github.com/seance-relay/seance/configs"
	"github.com/seance-relay/seance/ingest/meeting"
	"github.com/seance-relay/seance/ingest/pull"
	"github.com/seance-relay/seance/publish/rtmp"
	"github.com/seance-relay/seance/relay"
	"github.com/seance-relay/seance/transcode/rendition"
)

// Channels is the part of the hub the web servers read.
type Channels interface {
	Channels() []*relay.Channel
	Channel(name string) (*relay.Channel, error)
	// Watch returns the channels and a channel closed when that set
	// changes (config reload).
	Watch() ([]*relay.Channel, <-chan struct{})
}

// Destination is a destination the admin API shows and steers.
type Destination interface {
	Status() rtmp.Status
	Start()
	Stop()
}

// Pull is a channel's pull (ingest/pull) as the admin API shows it.
type Pull interface {
	Status() pull.Status
}

// Meeting is a channel's meeting capture (ingest/meeting) as the admin API
// shows and steers it.
type Meeting interface {
	Status() meeting.Status
	Start()
	Stop()
}

// Rendition is what the admin API needs of a reduced rendition's maker.
type Rendition interface {
	Status() rendition.Status
}

// AdminConfig configures the admin listener.
type AdminConfig struct {
	// Listen is the TCP address; the config loader refuses a non-loopback
	// address without a token.
	Listen string
	// Token, when set, is required as "Authorization: Bearer" on every
	// admin route, /metrics included, except the dashboard's page and its
	// static files (GET /dashboard, GET /dashboard/static/{file}), which
	// hold no data and ask for the token themselves.
	Token configs.Secret
	// Gatherer is scraped at /metrics.
	Gatherer prometheus.Gatherer
	// Destinations lists each channel's destinations, in config order.
	// Server.SetSinks replaces it after a config reload.
	Destinations map[string][]Destination
	// Viewers counts a channel's viewers, by protocol ("webrtc", "rtsp",
	// "hls"). Protocols not in the map are not shown.
	Viewers map[string]func(channel string) int
	// Pulls holds the pull of each channel fed by one. Server.SetSinks
	// replaces it after a config reload.
	Pulls map[string]Pull
	// Meetings holds the meeting capture of each channel fed by one.
	// Server.SetMeetings replaces it after a config reload.
	Meetings map[string]Meeting
	// Reload, when set, serves POST /api/v1/reload: it re-reads the config
	// file and applies it. Its result is the JSON answer; an error means
	// the new file was refused and nothing changed (422). Nil: 404.
	Reload func(ctx context.Context) (any, error)
	// Recorders holds the recorder of each channel that records.
	// Server.SetRecorders replaces it after a config reload.
	Recorders map[string]Recorder
	// Renditions holds the makers of each channel's reduced renditions,
	// in config order (fixed until a restart).
	Renditions map[string][]Rendition
	// PublicURL is the public listener's base URL (e.g.
	// "https://live.example.fr"), where the dashboard's previews play
	// over WHEP. A URL without a host ("http://:8080") means the host the
	// dashboard was loaded from, on that port. Empty: no previews.
	PublicURL string

	// Hosts are the names, besides IP addresses and localhost, the admin
	// listener answers to in the Host header (admin.hosts), e.g.
	// "admin.seance.lan". Others get 421: DNS rebinding.
	Hosts []string
	// Registerer takes the admin listener's own metrics; nil: none.
	Registerer prometheus.Registerer
	// Failures rate-limits wrong tokens per address; nil makes one with
	// addrlimit's defaults.
	Failures *addrlimit.Failures

	// Test knobs; zero means the default.
	heartbeat    time.Duration // SSE keep-alive comments: 15 s
	writeTimeout time.Duration // one SSE write: 10 s
	sampleEvery  time.Duration // health samples and history: 1 s
	sseBuffer    int           // events queued per SSE client: 64
}

// adminRoute is one route of the admin listener's mux.
type adminRoute struct {
	pattern string
	handler http.Handler
}

type admin struct {
	cfg    AdminConfig
	hub    Channels
	log    zerolog.Logger
	mux    *http.ServeMux
	routes []adminRoute
	events *broker
	dash   *dashboard
	sinks  atomic.Pointer[sinks]
	meets  atomic.Pointer[map[string]Meeting]
	recs   atomic.Pointer[map[string]Recorder]

	met      *adminMetrics
	failures *addrlimit.Failures

	histMu  sync.Mutex
	history map[string]*history
	scrub   *strings.Replacer
}

// NewAdmin binds the admin listener.
func NewAdmin(cfg AdminConfig, hub Channels, log zerolog.Logger) (*Server, error) {
	a, err := newAdmin(cfg, hub, log)
	if err != nil {
		return nil, err
	}
	s, err := newServer("admin", cfg.Listen, a.handler(), a.log)
	if err != nil {
		return nil, err
	}
	s.background = a.monitor
	s.admin = a
	return s, nil
}

// sinks are the destinations and pulls the admin API shows, replaced as a
// whole by a reload.
type sinks struct {
	dests map[string][]Destination
	pulls map[string]Pull
}

// SetSinks replaces the destinations and pulls the admin API shows and
// steers (config reload). The maps must not be modified afterwards. It
// does nothing on the public server. Safe for concurrent use.
func (s *Server) SetSinks(dests map[string][]Destination, pulls map[string]Pull) {
	if s.admin != nil {
		s.admin.sinks.Store(&sinks{dests: dests, pulls: pulls})
	}
}

// SetMeetings replaces the meeting captures the admin API shows and steers
// (config reload). The map must not be modified afterwards. It does
// nothing on the public server. Safe for concurrent use.
func (s *Server) SetMeetings(meetings map[string]Meeting) {
	if s.admin != nil {
		s.admin.meets.Store(&meetings)
	}
}

// meeting returns the meeting capture of a channel fed by one.
func (a *admin) meeting(channel string) (Meeting, bool) {
	m, ok := (*a.meets.Load())[channel]
	return m, ok
}

// pull returns the pull of a channel fed by one.
func (a *admin) pull(channel string) (Pull, bool) {
	p, ok := a.sinks.Load().pulls[channel]
	return p, ok
}

// historyOf returns a channel's history, created on first use (a channel
// added by a reload).
func (a *admin) historyOf(channel string) *history {
	a.histMu.Lock()
	defer a.histMu.Unlock()
	h := a.history[channel]
	if h == nil {
		h = &history{}
		a.history[channel] = h
	}
	return h
}

// forget drops the history of channels no longer in the hub.
func (a *admin) forget(list []*relay.Channel) {
	keep := make(map[string]bool, len(list))
	for _, c := range list {
		keep[c.Name()] = true
	}
	a.histMu.Lock()
	defer a.histMu.Unlock()
	for name := range a.history {
		if !keep[name] {
			delete(a.history, name)
		}
	}
}

func newAdmin(cfg AdminConfig, hub Channels, log zerolog.Logger) (*admin, error) {
	if cfg.heartbeat == 0 {
		cfg.heartbeat = 15 * time.Second
	}
	if cfg.writeTimeout == 0 {
		cfg.writeTimeout = 10 * time.Second
	}
	if cfg.sampleEvery == 0 {
		cfg.sampleEvery = time.Second
	}
	if cfg.sseBuffer == 0 {
		cfg.sseBuffer = 64
	}
	log = log.With().Str("component", "web.admin").Logger()
	var pairs []string
	if cfg.Token.IsSet() {
		pairs = []string{cfg.Token.Value(), "[redacted]"}
	}
	if cfg.Failures == nil {
		cfg.Failures = addrlimit.NewDefaultFailures()
	}
	a := &admin{
		cfg:      cfg,
		met:      newAdminMetrics(cfg.Registerer),
		failures: cfg.Failures,
		hub:      hub,
		log:      log,
		mux:      http.NewServeMux(),
		history:  map[string]*history{},
		scrub:    strings.NewReplacer(pairs...),
	}
	a.events = newBroker(cfg.sseBuffer, log)
	a.sinks.Store(&sinks{dests: cfg.Destinations, pulls: cfg.Pulls})
	meets := cfg.Meetings
	a.meets.Store(&meets)
	a.recs.Store(&cfg.Recorders)
	for _, c := range hub.Channels() {
		a.history[c.Name()] = &history{}
	}
	dash, err := newDashboard(cfg.PublicURL, cfg.Token.IsSet(), log)
	if err != nil {
		return nil, err
	}
	a.dash = dash
	a.routes = []adminRoute{
		{"GET /metrics", promhttp.HandlerFor(cfg.Gatherer, promhttp.HandlerOpts{ErrorLog: nil})},
		{"GET /healthz", http.HandlerFunc(healthz)},
		{"GET /api/v1/openapi.json", http.HandlerFunc(serveOpenAPI)},
		{"GET /api/v1/channels", http.HandlerFunc(a.listChannels)},
		{"GET /api/v1/channels/{channel}", http.HandlerFunc(a.getChannel)},
		{"GET /api/v1/channels/{channel}/history", http.HandlerFunc(a.getHistory)},
		{"POST /api/v1/channels/{channel}/kick", http.HandlerFunc(a.kick)},
		{"POST /api/v1/channels/{channel}/destinations/{destination}/{action}", http.HandlerFunc(a.steerDestination)},
		{"POST /api/v1/channels/{channel}/meeting/{action}", http.HandlerFunc(a.steerMeeting)},
		{"GET /api/v1/recordings", http.HandlerFunc(a.listAllRecordings)},
		{"GET /api/v1/channels/{channel}/recordings", http.HandlerFunc(a.listRecordings)},
		{"GET /api/v1/channels/{channel}/recordings/{file}", http.HandlerFunc(a.downloadRecording)},
		{"DELETE /api/v1/channels/{channel}/recordings/{file}", http.HandlerFunc(a.deleteRecording)},
		{"GET /api/v1/events", http.HandlerFunc(a.serveEvents)},
		{"POST /api/v1/reload", http.HandlerFunc(a.reload)},
		{"GET /dashboard", http.HandlerFunc(a.dash.page)},
		{"GET /dashboard/static/{file}", http.HandlerFunc(a.dashboardAsset)},
	}
	for _, r := range a.routes {
		a.mux.Handle(r.pattern, r.handler)
	}
	return a, nil
}

func (a *admin) dashboardAsset(w http.ResponseWriter, r *http.Request) {
	if _, ok := a.dash.assets[r.PathValue("file")]; !ok {
		a.fail(w, r, http.StatusNotFound, "not_found", "no such file", nil)
		return
	}
	a.dash.assets.ServeHTTP(w, r)
}

// handler is the admin listener's handler: headers, auth, then the routes.
func (a *admin) handler() http.Handler {
	return adminHeaders(a.guard(a.auth(http.HandlerFunc(a.route))))
}

// adminHeaders: admin answers are not cached by intermediaries, framed, or
// sniffed; the dashboard sets its own CSP.
func adminHeaders(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", "default-src 'none'; frame-ancestors 'none'")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		next.ServeHTTP(w, r)
	})
}

// route serves the mux's routes, and answers unknown paths and methods
// with a JSON error like every other API error.
func (a *admin) route(w http.ResponseWriter, r *http.Request) {
	h, pattern := a.mux.Handler(r)
	if pattern != "" {
		a.mux.ServeHTTP(w, r) // sets the path values
		return
	}
	// The mux's own answer: 404, 405 with Allow, or a redirect to the
	// clean path.
	rec := &statusRecorder{header: http.Header{}}
	h.ServeHTTP(rec, r)
	switch rec.status {
	case http.StatusMethodNotAllowed:
		w.Header().Set("Allow", rec.header.Get("Allow"))
		a.fail(w, r, http.StatusMethodNotAllowed, "method_not_allowed", "this path does not take "+r.Method+": see /api/v1/openapi.json", nil)
	case http.StatusNotFound:
		a.fail(w, r, http.StatusNotFound, "not_found", "no such path: see /api/v1/openapi.json", nil)
	default:
		h.ServeHTTP(w, r)
	}
}

// statusRecorder keeps the status and headers of the mux's fallback
// handler and drops its plain-text body.
type statusRecorder struct {
	header http.Header
	status int
}

func (s *statusRecorder) Header() http.Header { return s.header }
func (s *statusRecorder) Write(p []byte) (int, error) {
	if s.status == 0 {
		s.status = http.StatusOK
	}
	return len(p), nil
}
func (s *statusRecorder) WriteHeader(status int) {
	if s.status == 0 {
		s.status = status
	}
}

// auth requires the admin token when one is set, except for the
// dashboard's page and static files. The comparison is in constant time;
// the token is never echoed.
func (a *admin) auth(next http.Handler) http.Handler {
	if !a.cfg.Token.IsSet() {
		return next
	}
	want := []byte("Bearer " + a.cfg.Token.Value())
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if a.dash.open(r) {
			next.ServeHTTP(w, r)
			return
		}
		if a.throttled(w, r) {
			return
		}
		got := []byte(r.Header.Get("Authorization"))
		if subtle.ConstantTimeCompare(got, want) != 1 {
			if len(got) > 0 {
				// A guess; a missing token is the dashboard asking.
				a.failed(r)
			}
			w.Header().Set("WWW-Authenticate", `Bearer realm="seance admin"`)
			a.fail(w, r, http.StatusUnauthorized, "unauthorized", "missing or wrong admin token: send Authorization: Bearer <token>", nil)
			return
		}
		next.ServeHTTP(w, r)
	})
}

func (a *admin) channel(w http.ResponseWriter, r *http.Request) *relay.Channel {
	c, err := a.hub.Channel(r.PathValue("channel"))
	if err != nil {
		a.fail(w, r, http.StatusNotFound, "channel_not_found", "no such channel", err)
		return nil
	}
	return c
}

func (a *admin) listChannels(w http.ResponseWriter, _ *http.Request) {
	out := []ChannelStatus{}
	for _, c := range a.hub.Channels() {
		out = append(out, a.status(c))
	}
	writeJSON(w, http.StatusOK, map[string]any{"channels": out})
}

func (a *admin) getChannel(w http.ResponseWriter, r *http.Request) {
	if c := a.channel(w, r); c != nil {
		writeJSON(w, http.StatusOK, a.status(c))
	}
}

func (a *admin) getHistory(w http.ResponseWriter, r *http.Request) {
	if c := a.channel(w, r); c != nil {
		writeJSON(w, http.StatusOK, a.historyOf(c.Name()).snapshot(c.Name(), a.cfg.sampleEvery))
	}
}

// kick ends the current publisher's connection. The channel is then
// interrupted: a publisher back within its grace period continues the
// broadcast.
func (a *admin) kick(w http.ResponseWriter, r *http.Request) {
	c := a.channel(w, r)
	if c == nil {
		return
	}
	if !c.Kick() {
		a.fail(w, r, http.StatusConflict, "no_publisher", "no publisher is connected to this channel", nil)
		return
	}
	writeJSON(w, http.StatusAccepted, a.status(c))
}

func (a *admin) steerDestination(w http.ResponseWriter, r *http.Request) {
	c := a.channel(w, r)
	if c == nil {
		return
	}
	var dest Destination
	for _, d := range a.sinks.Load().dests[c.Name()] {
		if d.Status().Name == r.PathValue("destination") {
			dest = d
		}
	}
	if dest == nil {
		a.fail(w, r, http.StatusNotFound, "destination_not_found", "no such destination on this channel", nil)
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
		a.fail(w, r, http.StatusNotFound, "unknown_action", "action must be start, stop or restart", nil)
		return
	}
	a.log.Info().Str("channel", c.Name()).Str("destination", dest.Status().Name).
		Str("action", r.PathValue("action")).Msg("destination steered from the admin API")
	writeJSON(w, http.StatusAccepted, dest.Status())
}

// steerMeeting starts, stops or restarts a channel's meeting capture.
func (a *admin) steerMeeting(w http.ResponseWriter, r *http.Request) {
	c := a.channel(w, r)
	if c == nil {
		return
	}
	m, ok := a.meeting(c.Name())
	if !ok {
		a.fail(w, r, http.StatusNotFound, "no_meeting", "this channel is not fed by a meeting (ingest.meeting)", nil)
		return
	}
	switch r.PathValue("action") {
	case "start":
		m.Start()
	case "stop":
		m.Stop()
	case "restart":
		m.Stop()
		m.Start()
	default:
		a.fail(w, r, http.StatusNotFound, "unknown_action", "action must be start, stop or restart", nil)
		return
	}
	a.log.Info().Str("channel", c.Name()).Str("action", r.PathValue("action")).Msg("meeting capture steered from the admin API")
	writeJSON(w, http.StatusAccepted, m.Status())
}

func healthz(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	_, _ = w.Write([]byte("ok\n"))
}

// apiError is the JSON body of every API error: a stable code, a short
// message for people and, on the admin API, an id that is logged with the
// details.
type apiError struct {
	Code    string `json:"code"`
	Message string `json:"message"`
	ID      string `json:"id,omitempty"`
}

// fail answers an admin API error with a fresh id and logs it, with the
// details, under that id (as caddy does), so that a user's report of the
// id finds the log line. err is logged, never sent.
func (a *admin) fail(w http.ResponseWriter, r *http.Request, status int, code, msg string, err error) {
	id := errorID()
	ev := a.log.Info()
	switch {
	case status >= 500:
		ev = a.log.Error()
	case status == http.StatusUnauthorized:
		ev = a.log.Warn()
	}
	ev = ev.Str("error_id", id).Str("code", code).Int("status", status).
		Str("method", r.Method).Str("path", a.scrub.Replace(r.URL.Path)).Str("remote", r.RemoteAddr)
	if err != nil {
		ev = ev.Str("error", a.scrub.Replace(err.Error()))
	}
	ev.Msg("admin API error: " + msg)
	writeJSON(w, status, map[string]apiError{"error": {Code: code, Message: msg, ID: id}})
}

// errorID returns 9 random lowercase letters and digits.
func errorID() string {
	const alphabet = "abcdefghijklmnopqrstuvwxyz0123456789"
	b := make([]byte, 9)
	_, _ = rand.Read(b)
	for i := range b {
		b[i] = alphabet[int(b[i])%len(alphabet)]
	}
	return string(b)
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

// reload re-reads and applies the config file. A refused file leaves the
// running config as it was.
func (a *admin) reload(w http.ResponseWriter, r *http.Request) {
	if a.cfg.Reload == nil {
		a.fail(w, r, http.StatusNotFound, "not_found", "reload is not available on this server", nil)
		return
	}
	res, err := a.cfg.Reload(r.Context())
	if err != nil {
		a.fail(w, r, http.StatusUnprocessableEntity, "invalid_config", "config not reloaded, the running config stays: "+a.scrub.Replace(err.Error()), err)
		return
	}
	writeJSON(w, http.StatusOK, res)
}
