package main

import (
	"cmp"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/rs/zerolog"

	"github.com/seance-relay/seance/addrlimit"
	"github.com/seance-relay/seance/configs"
	"github.com/seance-relay/seance/ingest/meeting"
	"github.com/seance-relay/seance/ingest/pull"
	ingestrtmp "github.com/seance-relay/seance/ingest/rtmp"
	ingestwhip "github.com/seance-relay/seance/ingest/whip"
	pubhls "github.com/seance-relay/seance/publish/hls"
	"github.com/seance-relay/seance/publish/record"
	pubrtmp "github.com/seance-relay/seance/publish/rtmp"
	pubrtsp "github.com/seance-relay/seance/publish/rtsp"
	pubwebrtc "github.com/seance-relay/seance/publish/webrtc"
	"github.com/seance-relay/seance/relay"
	"github.com/seance-relay/seance/slate"
	"github.com/seance-relay/seance/transcode/rendition"
	"github.com/seance-relay/seance/web"
)

// shutdownTimeout bounds a clean stop after SIGINT/SIGTERM.
const shutdownTimeout = 5 * time.Second

func newLogger(c configs.Log, w io.Writer) (zerolog.Logger, error) {
	lvl, err := zerolog.ParseLevel(c.Level)
	if err != nil || c.Level == "" {
		lvl = zerolog.InfoLevel
	}
	switch c.Format {
	case "", "json":
	case "console":
		w = zerolog.ConsoleWriter{Out: w, TimeFormat: time.TimeOnly}
	default:
		return zerolog.Logger{}, fmt.Errorf("log format %q: use json or console", c.Format)
	}
	return zerolog.New(w).Level(lvl).With().Timestamp().Logger(), nil
}

// channelConfig is what the relay needs of channel c. It fails when the
// channel's slate image is unusable or ffmpeg, which renders it, is
// missing.
func channelConfig(c configs.Channel, slates *slate.Renderer, log zerolog.Logger) (relay.ChannelConfig, error) {
	cc := relay.ChannelConfig{Name: c.Name, Title: c.Title, Grace: time.Duration(c.Grace)}
	if c.Slate.Enabled {
		src, err := slate.NewSource(c.Slate.Image, slates, log.With().Str("channel", c.Name).Logger())
		if err != nil {
			return cc, fmt.Errorf("channel %s: slate.image: %w", c.Name, err)
		}
		cc.Slate = src
	}
	return cc, nil
}

// renditionMakers makes the ffmpeg supervisor of every channel's reduced
// renditions. It fails, naming the channel, when ffmpeg is missing.
func renditionMakers(hub *relay.Hub, log zerolog.Logger, reg prometheus.Registerer) (map[string][]*rendition.Maker, error) {
	out := map[string][]*rendition.Maker{}
	var met *rendition.Metrics
	for _, ch := range hub.Channels() {
		if len(ch.Renditions()) == 0 {
			continue
		}
		ff, err := rendition.LookFFmpeg()
		if err != nil {
			return nil, fmt.Errorf("channel %s: renditions: %w", ch.Name(), err)
		}
		if met == nil {
			met = rendition.NewMetrics(reg)
		}
		for _, r := range ch.Renditions() {
			mk, err := rendition.New(rendition.Config{FFmpeg: ff}, ch, r, log, met)
			if err != nil {
				return nil, fmt.Errorf("channel %s: renditions: %w", ch.Name(), err)
			}
			out[ch.Name()] = append(out[ch.Name()], mk)
		}
	}
	return out, nil
}

func adminRenditions(makers map[string][]*rendition.Maker) map[string][]web.Rendition {
	out := map[string][]web.Rendition{}
	for name, mks := range makers {
		for _, mk := range mks {
			out[name] = append(out[name], mk)
		}
	}
	return out
}

// runner is a component with the standard lifecycle.
type runner interface {
	Run(ctx context.Context) error
}

// app is seance wired up: every listener bound, nothing running yet.
type app struct {
	log     zerolog.Logger
	path    string // the config file, "" for the embedded config
	hub     *relay.Hub
	slates  *slate.Renderer
	rtmp    *ingestrtmp.Server // nil when rtmp.listen is empty
	whip    *ingestwhip.Server
	webrtc  *pubwebrtc.Server
	public  *web.Server
	admin   *web.Server
	runners []runner
	names   []string
	set     *channelSet
	// renditions are the makers of each channel's reduced renditions.
	renditions map[string][]*rendition.Maker
	// hup, when set, asks for a reload on each receive (SIGHUP).
	hup <-chan os.Signal
	// sd tells systemd when seance is ready, reloading and stopping; nil
	// outside systemd.
	sd *sdNotifier

	reloadMu sync.Mutex      // one reload at a time
	cfg      *configs.Config // the config in force, under reloadMu
}

// serve wires every component, runs them until ctx is cancelled, then
// stops them within shutdownTimeout.
func serve(ctx context.Context, cfg *configs.Config, path string, hup <-chan os.Signal, log zerolog.Logger) error {
	a, err := newApp(cfg, log)
	if err != nil {
		return err
	}
	a.path, a.hup = path, hup
	a.sd = sdNotifierFromEnv()
	announce(log, cfg, path, a.rtmp, a.public, a.admin)
	return a.run(ctx)
}

// newApp validates the wiring and binds every listener, so that a taken
// port or a bad destination fails before anything starts.
func newApp(cfg *configs.Config, log zerolog.Logger) (_ *app, err error) {
	// Listeners bound before a later failure are released.
	var bound []io.Closer
	defer func() {
		if err != nil {
			for _, c := range bound {
				c.Close()
			}
		}
	}()
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))

	slates := slate.NewRenderer(log, reg)
	var chCfgs []relay.ChannelConfig
	for _, c := range cfg.Channels {
		cc, err := channelConfig(c, slates, log)
		if err != nil {
			return nil, err
		}
		// Renditions are set at startup only (a reload says they need a
		// restart).
		for _, r := range c.Renditions {
			cc.Renditions = append(cc.Renditions, relay.RenditionConfig{Name: r.Name, Height: r.Height, VideoBitrate: int64(r.VideoBitrate)})
		}
		chCfgs = append(chCfgs, cc)
	}
	hub := relay.NewHub(chCfgs, log, relay.NewMetrics(reg))
	makers, err := renditionMakers(hub, log, reg)
	if err != nil {
		return nil, err
	}

	var runners []runner
	var names []string
	add := func(name string, r runner) {
		runners = append(runners, r)
		names = append(names, name)
	}
	add("relay", hub)
	add("slate renderer", slates)
	for name, mks := range makers {
		for _, mk := range mks {
			add("rendition of "+name, mk)
		}
	}

	var rtmpSrv *ingestrtmp.Server
	keys := ingestKeys(cfg)
	// One record of wrong keys and tokens per address, whichever
	// listener they were tried on.
	af := cfg.AuthFailures
	failures := addrlimit.NewFailures(af.Free, time.Duration(af.Window), time.Duration(af.MaxWait))
	if cfg.RTMP.Listen != "" {
		s, err := ingestrtmp.New(ingestrtmp.Config{
			Listen:            cfg.RTMP.Listen,
			Keys:              keys,
			MaxPending:        cfg.RTMP.MaxUnauthenticated,
			MaxPendingPerAddr: cfg.RTMP.MaxUnauthenticatedPerAddress,
			FirstByteTimeout:  time.Duration(cfg.RTMP.FirstByteTimeout),
			AuthTimeout:       time.Duration(cfg.RTMP.AuthTimeout),
			Failures:          failures,
		}, hub, log, reg)
		if err != nil {
			return nil, err
		}
		rtmpSrv = s
		bound = append(bound, s)
		add("rtmp ingest", s)
	}

	chMax := map[string]int{}
	for _, c := range cfg.Channels {
		chMax[c.Name] = c.MaxViewers
	}
	rtc, err := pubwebrtc.New(pubwebrtc.Config{
		UDPPort:           cfg.WebRTC.UDPPort,
		TCPPort:           cfg.WebRTC.TCPPort,
		NATIPs:            cfg.WebRTC.NATIPs,
		MaxViewers:        cfg.WebRTC.MaxViewers,
		ChannelMaxViewers: chMax,
		Host:              cfg.WebRTC.Bind,
		IncludeLoopback:   cfg.WebRTC.AnnounceLoopback,
		IncludePrivate:    cfg.WebRTC.AnnouncePrivate,
		Interfaces:        cfg.WebRTC.Interfaces,
		MaxCandidates:     cfg.WebRTC.MaxCandidates,
		MaxPending:        cfg.WebRTC.MaxPending,
		MaxPendingPerAddr: cfg.WebRTC.MaxPendingPerAddress,
		MaxViewersPerAddr: cfg.WebRTC.MaxViewersPerAddress,
	}, hub, log, reg)
	if err != nil {
		return nil, err
	}
	bound = append(bound, rtc)
	add("webrtc", rtc)
	// WHIP publishers share the viewers' UDP port and ICE settings.
	whipSrv, err := ingestwhip.New(ingestwhip.Config{Keys: keys, SettingEngine: rtc.SettingEngine(),
		MaxCandidates: cfg.WebRTC.MaxCandidates, Failures: failures}, hub, log, reg)
	if err != nil {
		return nil, err
	}
	add("whip ingest", whipSrv)
	// Meeting captures publish over WHIP from a browser on this machine,
	// to a loopback listener that takes only their internal tokens.
	// The same listener serves the pages seance's own browser opens (the
	// LiveKit layout page).
	internalMux := http.NewServeMux()
	internalMux.Handle("/whip/", whipSrv.InternalHandler())
	internalMux.Handle("/meeting/", meeting.PageHandler())
	internal, err := web.NewInternal(internalMux, log)
	if err != nil {
		return nil, err
	}
	bound = append(bound, internal)
	add("internal http", internal)

	// Demo sources, pulls, meeting captures and destinations run per
	// channel, so that a reload can start and stop them one by one.
	set := newChannelSet(hub, log, pubrtmp.NewMetrics(reg), pull.NewMetrics(reg), meeting.NewMetrics(reg), record.NewMetrics(reg))
	set.whip, set.whipBase = whipSrv, "http://"+internal.Addr().String()
	for _, c := range cfg.Channels {
		ct, err := set.prepare(c)
		if err != nil {
			return nil, err
		}
		set.chans[c.Name] = ct
	}
	dests, pulls := set.sinks()
	recs, replays := set.recorders()
	add("channels", set)
	// The RTSP output comes after webrtc: it reuses the seance_viewers and
	// seance_viewer_sessions_total families webrtc registers.
	viewers := rtc.Viewers
	viewersBy := map[string]func(string) int{"webrtc": rtc.Viewers}
	if cfg.RTSP.Listen != "" {
		rs, err := pubrtsp.New(pubrtsp.Config{
			Listen:          cfg.RTSP.Listen,
			Username:        cfg.RTSP.Username,
			Password:        cfg.RTSP.Password,
			UDPPort:         rtspUDPPort(cfg.RTSP),
			SessionTimeout:  time.Duration(cfg.RTSP.SessionTimeout),
			IdleTimeout:     time.Duration(cfg.RTSP.IdleTimeout),
			MaxConnsPerAddr: cfg.RTSP.MaxConnectionsPerAddress,
			MaxConns:        cfg.RTSP.MaxConnections,
		}, hub, log, reg)
		if err != nil {
			return nil, err
		}
		bound = append(bound, rs)
		add("rtsp output", rs)
		viewers = func(ch string) int { return rtc.Viewers(ch) + rs.Viewers(ch) }
		viewersBy["rtsp"] = rs.Viewers
	}
	var ice []pubwebrtc.ICEServer
	for _, s := range cfg.WebRTC.ICEServers {
		ice = append(ice, pubwebrtc.ICEServer{URLs: s.URLs, Username: s.Username, Credential: s.Credential.Value(),
			Secret: s.Secret.Value(), TTL: time.Duration(s.TTL)})
	}
	// The HLS output reuses the viewer metric families too.
	handlers := map[string]http.Handler{"/whep/": rtc.Handler(ice), "/whip/": whipSrv.Handler()}
	if cfg.HLS.Enabled {
		hs, err := pubhls.New(pubhls.Config{
			Variant:              cfg.HLS.Variant,
			SegmentCount:         cfg.HLS.SegmentCount,
			SegmentDuration:      time.Duration(cfg.HLS.SegmentDuration),
			PartDuration:         time.Duration(cfg.HLS.PartDuration),
			MaxViewersPerAddress: cfg.HLS.MaxViewersPerAddress,
		}, hub, log, reg)
		if err != nil {
			return nil, err
		}
		add("hls output", hs)
		handlers[pubhls.PathPrefix] = hs.Handler()
		others := viewers
		viewers = func(ch string) int { return others(ch) + hs.Viewers(ch) }
		viewersBy["hls"] = hs.Viewers
	}

	pub, err := web.NewPublic(web.PublicConfig{
		Listen:          cfg.Public.Listen,
		Handlers:        handlers,
		Viewers:         viewers,
		Replays:         replays,
		FrameAncestors:  cfg.Public.FrameAncestors,
		TrustedProxies:  cfg.Public.TrustedProxyPrefixes(),
		BodyTimeout:     time.Duration(cfg.Public.BodyTimeout),
		MaxConnsPerAddr: cfg.Public.MaxConnectionsPerAddress,
		MaxConns:        cfg.Public.MaxConnections,
		Registerer:      reg,
	}, hub, log)
	if err != nil {
		return nil, err
	}
	bound = append(bound, pub)
	add("public http", pub)
	var reload func(ctx context.Context) (*reloadResult, error) // set once the app exists
	adm, err := web.NewAdmin(web.AdminConfig{
		Reload: func(ctx context.Context) (any, error) {
			res, err := reload(ctx)
			if err != nil {
				return nil, err
			}
			return res, nil
		},
		Listen:       cfg.Admin.Listen,
		Token:        cfg.Admin.Token,
		Hosts:        cfg.Admin.Hosts,
		Registerer:   reg,
		Failures:     failures,
		Gatherer:     reg,
		Destinations: dests,
		Viewers:      viewersBy,
		Pulls:        pulls,
		Meetings:     set.meetings(),
		Recorders:    recs,
		Renditions:   adminRenditions(makers),
		// Without base_url, a public listener on every interface is
		// reached on the dashboard's own host ("http://:8080").
		PublicURL: cmp.Or(cfg.Public.BaseURL, "http://"+hostPort("", pub.Addr())),
	}, hub, log)
	if err != nil {
		return nil, err
	}
	bound = append(bound, adm)
	add("admin http", adm)
	a := &app{log: log, cfg: cfg, hub: hub, slates: slates, rtmp: rtmpSrv, whip: whipSrv, webrtc: rtc, public: pub, admin: adm, set: set, renditions: makers, runners: runners, names: names}
	reload = a.reload
	return a, nil
}

// rtspUDPPort is the RTSP output's UDP port: rtsp.udp_port, or a free pair
// when the TCP port is 0 and the UDP port the default (tests).
func rtspUDPPort(c configs.RTSP) int {
	if _, port, _ := net.SplitHostPort(c.Listen); port == "0" && c.UDPPort == pubrtsp.DefaultUDPPort {
		return 0
	}
	return c.UDPPort
}

// run runs every component until ctx is cancelled or one fails, then
// stops them all within shutdownTimeout.
func (a *app) run(ctx context.Context) error {
	log, runners, names := a.log, a.runners, a.names
	rctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var wg sync.WaitGroup
	errs := make(chan error, len(runners))
	for i, r := range runners {
		wg.Go(func() {
			if err := r.Run(rctx); err != nil {
				errs <- fmt.Errorf("%s: %w", names[i], err)
			}
		})
	}
	// Every listener was bound by newApp: systemd may start what comes
	// after seance (Type=notify).
	a.sdNotify(sdReady)
	if a.hup != nil {
		wg.Go(func() {
			for {
				select {
				case <-a.hup:
					log.Info().Msg("SIGHUP: reloading the config")
					a.sdNotify(sdReloading)
					_, _ = a.reload(rctx) // reload logs its outcome
					a.sdNotify(sdReady)
				case <-rctx.Done():
					return
				}
			}
		})
	}
	var runErr error
	select {
	case <-ctx.Done():
		log.Info().Msg("stopping: ending live sessions and telling destinations the stream ended")
	case runErr = <-errs:
	}
	a.sdNotify(sdStopping)
	cancel()
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
		log.Info().Msg("stopped")
	case <-time.After(shutdownTimeout):
		return errShutdownTimeout
	}
	return runErr
}

// sdNotify tells systemd state, logging a failure.
func (a *app) sdNotify(state string) {
	if err := a.sd.notify(state); err != nil {
		a.log.Warn().Err(err).Msg("could not tell systemd")
	}
}

// announce tells IT staff, in plain words, where to push and where to look.
func announce(log zerolog.Logger, cfg *configs.Config, path string, rtmpSrv *ingestrtmp.Server, pub, adm *web.Server) {
	src := path
	if src == "" {
		src = "embedded demo config (run with -config seance.yaml for your own channels)"
	}
	log.Info().Str("version", buildVersion()).Str("config", src).Msg("seance started")
	host := "localhost"
	base := cfg.Public.BaseURL
	if base == "" {
		base = "http://" + hostPort(host, pub.Addr())
	}
	for _, c := range cfg.Channels {
		ev := log.Info().Str("channel", c.Name).Str("watch_url", base+"/watch/"+c.Name)
		if cfg.HLS.Enabled {
			ev = ev.Str("hls_url", base+"/hls/"+c.Name+"/index.m3u8")
		}
		switch {
		case c.Ingest.Demo:
			ev.Msg("channel is fed by the built-in demo source (test pattern and tone)")
		case c.Ingest.Key.IsSet() && rtmpSrv != nil:
			ev.Str("push_url", fmt.Sprintf("rtmp://%s/live/%s?key=<ingest key of %s>", hostPort(host, rtmpSrv.Addr()), c.Name, c.Name)).
				Msg("waiting for a publisher: paste this URL in Jitsi's live stream key field, the BBB streamer or OBS")
		case c.Ingest.Pull != "":
			ev.Str("source", configs.RedactURL(c.Ingest.Pull)).
				Msg("channel pulls its stream from this source, reconnecting on its own when it drops")
		case c.Ingest.Meeting.IsSet() && c.Ingest.Meeting.Start == configs.StartManual:
			ev.Str("meeting", c.Ingest.Meeting.String()).
				Msg("channel broadcasts a meeting seance joins in headless Chromium, once started (POST /api/v1/channels/" + c.Name + "/meeting/start or the dashboard)")
		case c.Ingest.Meeting.IsSet():
			ev.Str("meeting", c.Ingest.Meeting.String()).
				Msg("channel broadcasts a meeting seance joins in headless Chromium as a silent viewer")
		default:
			ev.Msg("channel has no ingest")
		}
		switch {
		case !c.Slate.Enabled:
			log.Info().Str("channel", c.Name).Msg("no slate: during an interruption destinations and viewers get nothing until the publisher returns")
		case c.Slate.Image != "":
			log.Info().Str("channel", c.Name).Str("image", c.Slate.Image).
				Msg("slate: this image is rendered at the stream's size and rate when the channel goes live")
		}
		if c.Record.Enabled {
			ev := log.Info().Str("channel", c.Name).Str("dir", filepath.Join(c.Record.Dir, c.Name)).
				Str("segment", c.Record.Segment.String())
			if c.Replay == configs.ReplayPublic {
				ev = ev.Str("replays", base+"/watch/"+c.Name)
			}
			ev.Msg("live sessions are recorded to fragmented MP4 files in this directory")
		}
		for _, d := range c.Destinations {
			start := "when the channel goes live"
			if d.Start == "manual" {
				start = "on request (POST /api/v1/channels/" + c.Name + "/destinations/" + d.Name + "/start)"
			}
			log.Info().Str("channel", c.Name).Str("destination", d.Name).Str("url", configs.RedactURL(d.URL)).
				Msg("will push to destination " + start)
		}
	}
	log.Info().Str("url", base+"/").Msg("public pages: citizens watch here")
	log.Info().Str("metrics", "http://"+hostPort(host, adm.Addr())+"/metrics").
		Str("api", "http://"+hostPort(host, adm.Addr())+"/api/v1/channels").
		Str("dashboard", "http://"+hostPort(host, adm.Addr())+"/dashboard").
		Bool("token_required", cfg.Admin.Token.IsSet()).Msg("admin: dashboard, metrics and API")
}

func hostPort(host string, a net.Addr) string {
	if ta, ok := a.(*net.TCPAddr); ok {
		if !ta.IP.IsUnspecified() {
			host = ta.IP.String()
		}
		return net.JoinHostPort(host, strconv.Itoa(ta.Port))
	}
	return a.String()
}
