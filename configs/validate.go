package configs

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// Validate checks the configuration and returns every problem it finds, joined
// with errors.Join, each naming the YAML key path and, unless it is a secret,
// the offending value. It does not fill defaults: Parse and Load do that before
// they call it.
func (c *Config) Validate() error {
	return errors.Join(c.validate(nil)...)
}

// validator collects problems. tainted maps the key paths whose value came from
// the environment to its references; their values are never quoted.
type validator struct {
	tainted map[string][]string
	errs    []error
}

func (v *validator) add(path, format string, args ...any) {
	v.errs = append(v.errs, &problem{path: path, msg: fmt.Sprintf(format, args...)})
}

// show returns the value read at path, quoted, ready for a message; or, when
// it came from the environment, the references it came from.
func (v *validator) show(path, value string) string {
	return showValue(v.tainted, path, strconv.Quote(value))
}

func (v *validator) isTainted(path string) bool {
	_, ok := v.tainted[path]
	return ok
}

func (c *Config) validate(tainted map[string][]string) []error {
	v := &validator{tainted: tainted}
	switch c.Log.Level {
	case "debug", "info", "warn", "error":
	default:
		v.add("log.level", "%s is not valid: use debug, info, warn or error", v.show("log.level", c.Log.Level))
	}
	switch c.Log.Format {
	case "json", "console":
	default:
		v.add("log.format", "%s is not valid: use json or console", v.show("log.format", c.Log.Format))
	}

	listeners := []struct {
		path, addr string
		required   bool
	}{
		{"public.listen", c.Public.Listen, true},
		{"admin.listen", c.Admin.Listen, true},
		{"rtmp.listen", c.RTMP.Listen, false},
		{"rtsp.listen", c.RTSP.Listen, false},
	}
	type bound struct{ path, host, port string }
	var bounds []bound
	for _, l := range listeners {
		host, port, ok := v.listen(l.path, l.addr, l.required)
		if !ok || port == "0" {
			continue
		}
		for _, b := range bounds {
			if b.port == port && (b.host == host || b.host == "" || host == "") {
				v.add(l.path, "%s uses the same port as %s", v.show(l.path, l.addr), b.path)
			}
		}
		bounds = append(bounds, bound{l.path, host, port})
		if l.path == "admin.listen" && !c.Admin.Token.IsSet() && !isLoopback(host) {
			v.add(l.path, "%s is not a loopback address: set admin.token to expose the admin API", v.show(l.path, l.addr))
		}
	}
	if c.Public.BaseURL != "" {
		u, err := url.Parse(c.Public.BaseURL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			v.add("public.base_url", "%s is not valid: use an absolute http:// or https:// URL, e.g. \"https://live.example.fr\"",
				v.show("public.base_url", RedactURL(c.Public.BaseURL)))
		}
	}

	if c.RTSP.Password.IsSet() != (c.RTSP.Username != "") {
		v.add("rtsp", "set both username and password to require credentials, or neither")
	}
	v.frameAncestors(c.Public.FrameAncestors)
	for i, p := range c.Public.TrustedProxies {
		path := "public.trusted_proxies[" + strconv.Itoa(i) + "]"
		if _, ok := parseProxy(p); !ok {
			v.add(path, "%s is not an IP address or CIDR range: use e.g. \"127.0.0.1\", \"10.0.0.0/8\" or \"2001:db8::/32\"", v.show(path, p))
		}
	}
	v.webRTC(&c.WebRTC)
	c.limits(v)
	if c.HLS.Enabled {
		v.hls(&c.HLS)
	}

	seen := make(map[string]int, len(c.Channels))
	for i := range c.Channels {
		path := "channels[" + strconv.Itoa(i) + "]"
		ch := &c.Channels[i]
		if v.name(path+".name", ch.Name) {
			if j, dup := seen[ch.Name]; dup {
				v.add("channels", "duplicate name %s (also channels[%d])", v.show(path+".name", ch.Name), j)
			} else {
				seen[ch.Name] = i
			}
		}
		v.channel(path, ch)
	}
	return v.errs
}

// listen checks a host:port listen address and returns its parts. An empty
// address is valid (disabled) unless required.
func (v *validator) listen(path, addr string, required bool) (host, port string, ok bool) {
	if addr == "" {
		if required {
			v.add(path, "must be set, e.g. \":8080\"")
		}
		return "", "", false
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		reason := "use host:port, e.g. \":8080\""
		if ae, ok := errors.AsType[*net.AddrError](err); ok {
			// AddrError.Err never quotes the address; AddrError.Error does.
			reason = ae.Err + ": use host:port, e.g. \":8080\""
		}
		v.add(path, "%s is not a valid address: %s", v.show(path, addr), reason)
		return "", "", false
	}
	if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 || strings.HasPrefix(port, "+") {
		v.add(path, "%s has an invalid port: use a number from 0 to 65535", v.show(path, addr))
		return "", "", false
	}
	return host, port, true
}

func isLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// frameAncestors keeps CSP source expressions from breaking the header.
func (v *validator) frameAncestors(list []string) {
	for i, a := range list {
		path := "public.frame_ancestors[" + strconv.Itoa(i) + "]"
		if a == "" || strings.ContainsAny(a, " ;,\t\r\n'\"") && a != "'self'" && a != "'none'" {
			v.add(path, "%s is not a valid origin: use e.g. \"https://www.bourg.fr\", \"*\" or \"'self'\"", v.show(path, a))
		}
	}
}

// atLeast checks that an integer limit is at least min.
func (v *validator) atLeast(path string, n, min int) {
	if n < min {
		v.add(path, "%s must be at least %d", showValue(v.tainted, path, strconv.Itoa(n)), min)
	}
}

// positive checks that a duration limit is above zero.
func (v *validator) positive(path string, d Duration) {
	if d <= 0 {
		v.add(path, "%s must be a positive duration, e.g. \"10s\"", showValue(v.tainted, path, strconv.Quote(d.String())))
	}
}

// limits checks the per-address limits and deadlines (Exposer seance sur
// Internet in the README).
func (c *Config) limits(v *validator) {
	v.positive("public.body_timeout", c.Public.BodyTimeout)
	v.atLeast("public.max_connections_per_address", c.Public.MaxConnectionsPerAddress, 1)
	v.atLeast("public.max_connections", c.Public.MaxConnections, 1)
	for i, h := range c.Admin.Hosts {
		path := "admin.hosts[" + strconv.Itoa(i) + "]"
		if h == "" || strings.ContainsAny(h, " /:@[]\t\r\n") {
			v.add(path, "%s is not a host name: use e.g. \"admin.seance.lan\" (no port, no scheme)", v.show(path, h))
		}
	}
	v.atLeast("rtmp.max_unauthenticated", c.RTMP.MaxUnauthenticated, 1)
	v.atLeast("rtmp.max_unauthenticated_per_address", c.RTMP.MaxUnauthenticatedPerAddress, 1)
	v.positive("rtmp.first_byte_timeout", c.RTMP.FirstByteTimeout)
	v.positive("rtmp.auth_timeout", c.RTMP.AuthTimeout)
	if p := c.RTSP.UDPPort; p < 1 || p > 65534 || p%2 != 0 {
		v.add("rtsp.udp_port", "%s must be an even port from 2 to 65534 (RTCP uses the next one)", showValue(v.tainted, "rtsp.udp_port", strconv.Itoa(p)))
	}
	v.positive("rtsp.session_timeout", c.RTSP.SessionTimeout)
	v.positive("rtsp.idle_timeout", c.RTSP.IdleTimeout)
	v.atLeast("rtsp.max_connections_per_address", c.RTSP.MaxConnectionsPerAddress, 1)
	v.atLeast("rtsp.max_connections", c.RTSP.MaxConnections, 1)
	v.atLeast("webrtc.max_candidates", c.WebRTC.MaxCandidates, 1)
	v.atLeast("webrtc.max_pending", c.WebRTC.MaxPending, 1)
	v.atLeast("webrtc.max_pending_per_address", c.WebRTC.MaxPendingPerAddress, 1)
	v.atLeast("webrtc.max_viewers_per_address", c.WebRTC.MaxViewersPerAddress, 1)
	if b := c.WebRTC.Bind; b != "" && net.ParseIP(b) == nil {
		v.add("webrtc.bind", "%s is not an IP address: use e.g. \"203.0.113.7\", or leave it empty for every interface", v.show("webrtc.bind", b))
	}
	for i, name := range c.WebRTC.Interfaces {
		if name == "" || strings.ContainsAny(name, " /\t\r\n") {
			path := "webrtc.interfaces[" + strconv.Itoa(i) + "]"
			v.add(path, "%s is not a network interface name: use e.g. \"eth0\"", v.show(path, name))
		}
	}
	v.atLeast("auth_failures.free", c.AuthFailures.Free, 0)
	v.positive("auth_failures.window", c.AuthFailures.Window)
	v.positive("auth_failures.max_wait", c.AuthFailures.MaxWait)
}

func (v *validator) webRTC(w *WebRTC) {
	if w.UDPPort < 0 || w.UDPPort > 65535 {
		v.add("webrtc.udp_port", "%s is out of range 1-65535",
			showValue(v.tainted, "webrtc.udp_port", strconv.Itoa(w.UDPPort)))
	}
	if w.TCPPort < 0 || w.TCPPort > 65535 {
		v.add("webrtc.tcp_port", "%s is out of range 1-65535 (0 disables ICE-TCP)",
			showValue(v.tainted, "webrtc.tcp_port", strconv.Itoa(w.TCPPort)))
	}
	if w.MaxViewers < 1 {
		v.add("webrtc.max_viewers", "%s must be at least 1",
			showValue(v.tainted, "webrtc.max_viewers", strconv.Itoa(w.MaxViewers)))
	}
	for i, ip := range w.NATIPs {
		path := "webrtc.nat_ips[" + strconv.Itoa(i) + "]"
		public, private, pair := strings.Cut(ip, "/")
		if net.ParseIP(public) == nil || (pair && net.ParseIP(private) == nil) {
			v.add(path, "%s is not an IP address (or public/private pair of them)", v.show(path, ip))
		}
	}
	for i, s := range w.ICEServers {
		path := "webrtc.ice_servers[" + strconv.Itoa(i) + "]"
		if len(s.URLs) == 0 {
			v.add(path+".urls", "must list at least one stun:, stuns:, turn: or turns: URL")
		}
		turn := false
		for j, u := range s.URLs {
			upath := path + ".urls[" + strconv.Itoa(j) + "]"
			scheme, rest, _ := strings.Cut(u, ":")
			switch {
			case rest == "" || strings.HasPrefix(rest, "//"):
				v.add(upath, "%s is not valid: use a stun:, stuns:, turn: or turns: URL, e.g. \"stun:stun.example.fr:3478\"", v.show(upath, u))
			case scheme == "turn" || scheme == "turns":
				turn = true
			case scheme == "stun" || scheme == "stuns":
			default:
				v.add(upath, "%s is not valid: use a stun:, stuns:, turn: or turns: URL, e.g. \"stun:stun.example.fr:3478\"", v.show(upath, u))
			}
		}
		switch {
		case s.Secret.IsSet() && s.Credential.IsSet():
			v.add(path, "set credential (static) or secret (short-lived credentials), not both")
		case turn && s.Secret.IsSet():
		case turn && (s.Username == "" || !s.Credential.IsSet()):
			v.add(path, "a turn: server needs username and credential, or secret")
		}
		if s.TTL < 0 {
			v.add(path+".ttl", "%s must not be negative: 0 means 1h", showValue(v.tainted, path+".ttl", strconv.Quote(s.TTL.String())))
		}
	}
}

var nameRE = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,63}$`)

// name checks a channel or destination name and reports whether it is valid.
func (v *validator) name(path, name string) bool {
	switch {
	case name == "":
		v.add(path, "must be set: use lowercase letters, digits, '-' and '_'")
	case nameRE.MatchString(name):
		return true
	case len(name) > 64:
		v.add(path, "%s is too long: use at most 64 characters", v.show(path, name))
	case name[0] == '-' || name[0] == '_':
		v.add(path, "%s is not valid: start with a lowercase letter or digit", v.show(path, name))
	default:
		v.add(path, "%s is not valid: use lowercase letters, digits, '-' and '_'", v.show(path, name))
	}
	return false
}

func (v *validator) channel(path string, ch *Channel) {
	v.ingest(path+".ingest", &ch.Ingest)

	switch grace := ch.Grace; {
	case grace < 0:
		v.add(path+".grace", "must not be negative (got %s)", showValue(v.tainted, path+".grace", grace.String()))
	case grace > maxGrace:
		v.add(path+".grace", "must be at most 24h (got %s)",
			showValue(v.tainted, path+".grace", grace.String()))
	}

	seen := make(map[string]int, len(ch.Destinations))
	for i := range ch.Destinations {
		dpath := path + ".destinations[" + strconv.Itoa(i) + "]"
		d := &ch.Destinations[i]
		if v.name(dpath+".name", d.Name) {
			if j, dup := seen[d.Name]; dup {
				v.add(path+".destinations", "duplicate name %s (also %s.destinations[%d])", v.show(dpath+".name", d.Name), path, j)
			} else {
				seen[d.Name] = i
			}
		}
		v.destination(dpath, d)
	}

	v.renditions(path, ch.Renditions)

	if ch.MaxViewers < 0 {
		v.add(path+".max_viewers", "must not be negative (got %s): 0 means no limit but the server's",
			showValue(v.tainted, path+".max_viewers", strconv.Itoa(ch.MaxViewers)))
	}
	if ch.Record.Enabled && ch.Record.Dir == "" {
		v.add(path+".record.dir", "must be set when record.enabled is true")
	}
	if seg := ch.Record.Segment; ch.Record.Enabled && seg < Duration(time.Minute) || seg > Duration(24*time.Hour) {
		v.add(path+".record.segment", "must be between 1m and 24h (got %s)",
			showValue(v.tainted, path+".record.segment", seg.String()))
	}
	if ch.Record.MaxAge < 0 {
		v.add(path+".record.max_age", "must not be negative: 0 keeps recordings whatever their age")
	}
	switch ch.Replay {
	case ReplayOff:
	case ReplayPublic:
		if !ch.Record.Enabled {
			v.add(path+".replay", "public needs record.enabled: true (replays are the recordings)")
		}
	default:
		v.add(path+".replay", "%s is not valid: use public or off", v.show(path+".replay", ch.Replay))
	}
}

func (v *validator) hls(h *HLS) {
	switch h.Variant {
	case HLSLowLatency, HLSFMP4, HLSMPEGTS:
	default:
		v.add("hls.variant", "%s is not valid: use low_latency, fmp4 or mpegts", v.show("hls.variant", h.Variant))
	}
	minSegments := 3
	if h.Variant == HLSLowLatency {
		minSegments = 7
	}
	if h.SegmentCount < minSegments {
		v.add("hls.segment_count", "must be at least %d for variant %s (got %d)", minSegments, h.Variant, h.SegmentCount)
	}
	if h.SegmentDuration < Duration(100*time.Millisecond) || h.SegmentDuration > Duration(30*time.Second) {
		v.add("hls.segment_duration", "must be between 100ms and 30s (got %s)", h.SegmentDuration)
	}
	if h.PartDuration < Duration(50*time.Millisecond) || h.PartDuration > h.SegmentDuration {
		v.add("hls.part_duration", "must be between 50ms and segment_duration (got %s)", h.PartDuration)
	}
	if h.MaxViewersPerAddress < 1 {
		v.add("hls.max_viewers_per_address", "must be at least 1 (got %d)", h.MaxViewersPerAddress)
	}
}

func (v *validator) ingest(path string, in *Ingest) {
	set := 0
	for _, ok := range []bool{in.Key.IsSet(), in.Pull != "", in.Demo, in.Meeting.IsSet()} {
		if ok {
			set++
		}
	}
	if in.Meeting.IsSet() {
		v.meeting(path+".meeting", &in.Meeting)
	}
	if set != 1 {
		msg := "set exactly one of key, pull, demo or meeting"
		if refs, ok := v.tainted[path+".key"]; ok && !in.Key.IsSet() {
			msg += " (" + strings.Join(refs, " and ") + " is empty)"
		}
		v.add(path, "%s", msg)
	}
	if in.Pull == "" {
		if in.Transport != "" || in.Username != "" || in.Password.IsSet() {
			v.add(path, "transport, username and password only apply to pull")
		}
		return
	}
	switch in.Transport {
	case "", "auto", "tcp", "udp":
	default:
		v.add(path+".transport", "%s is not valid: use tcp, udp or auto", v.show(path+".transport", in.Transport))
	}
	if in.Password.IsSet() && in.Username == "" {
		v.add(path+".username", "must be set with password")
	}
	ppath := path + ".pull"
	u, err := url.Parse(in.Pull)
	switch {
	case err != nil || u.Scheme == "":
		// url.Error quotes the URL, credentials included: keep none of it.
		v.add(ppath, "not a valid URL: use rtsp://, rtsps://, rtmp:// or rtmps://")
	case u.Scheme != "rtsp" && u.Scheme != "rtsps" && u.Scheme != "rtmp" && u.Scheme != "rtmps":
		if v.isTainted(ppath) {
			v.add(ppath, "%s has an unsupported scheme: use rtsp://, rtsps://, rtmp:// or rtmps://", v.show(ppath, ""))
		} else {
			v.add(ppath, "scheme %q is not supported: use rtsp://, rtsps://, rtmp:// or rtmps://", u.Scheme)
		}
	case u.Host == "":
		v.add(ppath, "%s has no host", v.show(ppath, RedactURL(in.Pull)))
	}
}

func (v *validator) destination(path string, d *Destination) {
	upath := path + ".url"
	u, err := url.Parse(d.URL)
	switch {
	case d.URL == "":
		v.add(upath, "must be set, e.g. \"rtmps://a.rtmps.youtube.com/live2\"")
	case err != nil || u.Scheme == "":
		// url.Error quotes the URL, stream key included: keep none of it.
		v.add(upath, "not a valid URL: use rtmp:// or rtmps://")
	case u.Scheme != "rtmp" && u.Scheme != "rtmps":
		if v.isTainted(upath) {
			v.add(upath, "%s has an unsupported scheme: use rtmp:// or rtmps://", v.show(upath, ""))
		} else {
			v.add(upath, "scheme %q is not supported: use rtmp:// or rtmps://", u.Scheme)
		}
	case u.Host == "":
		v.add(upath, "%s has no host", v.show(upath, RedactURL(d.URL)))
	case !d.hasStreamKey():
		v.add(path+".key", "must be set, or the url must end with the stream key (rtmp://host/app/KEY)")
	}
	switch d.Start {
	case StartAuto, StartManual:
	default:
		v.add(path+".start", "%s is not valid: use auto or manual", v.show(path+".start", d.Start))
	}
}

// maxMeetingID is BigBlueButton's limit on meeting IDs (API reference,
// "Updated in 2.4").
const maxMeetingID = 256

// meeting checks a meeting ingest. The Jitsi URL, the JWT and the BBB
// secret are never quoted.
func (v *validator) meeting(path string, m *Meeting) {
	hasJitsi, hasBBB, hasLiveKit := m.Jitsi != Jitsi{}, m.BBB != BBB{}, m.LiveKit != LiveKit{}
	switch {
	case hasLiveKit && (hasJitsi || hasBBB):
		v.add(path, "set one of jitsi, bbb or livekit, not several")
	case hasLiveKit:
		v.liveKit(path+".livekit", &m.LiveKit)
	case hasJitsi && hasBBB:
		v.add(path, "set jitsi or bbb, not both")
	case !hasJitsi && !hasBBB:
		v.add(path, "set jitsi (url), bbb (api, secret, meeting_id) or livekit (url, api_key, api_secret, room)")
	case hasJitsi:
		upath := path + ".jitsi.url"
		if !m.Jitsi.URL.IsSet() {
			v.add(upath, "must be set, e.g. \"https://visio.example.fr/ConseilBourg\"")
		} else if reason := meetingURLProblem(m.Jitsi.URL.Value(), true); reason != "" {
			v.add(upath, "is not a valid meeting address: %s", reason)
		}
		if jwt := m.Jitsi.JWT.Value(); strings.ContainsAny(jwt, " \t\r\n&#?") {
			v.add(path+".jitsi.jwt", "is not a valid token: a JWT has no spaces, '&', '#' or '?'")
		}
	default:
		apath := path + ".bbb.api"
		if m.BBB.API == "" {
			v.add(apath, "must be set, e.g. \"https://bbb.example.fr/bigbluebutton/api\"")
		} else if reason := meetingURLProblem(m.BBB.API, false); reason != "" {
			shown := m.BBB.API
			if strings.Contains(shown, "@") {
				shown = RedactURL(shown) // userinfo may hold a password
			}
			v.add(apath, "%s is not a valid API address: %s", v.show(apath, shown), reason)
		}
		if !m.BBB.Secret.IsSet() {
			v.add(path+".bbb.secret", "must be set: the server's shared secret (bbb-conf --secret)")
		}
		id := m.BBB.MeetingID
		ipath := path + ".bbb.meeting_id"
		switch {
		case id == "":
			v.add(ipath, "must be set: the meetingID the meeting is created with")
		case len(id) > maxMeetingID:
			v.add(ipath, "is too long: BigBlueButton takes at most %d characters", maxMeetingID)
		case strings.Contains(id, ","):
			v.add(ipath, "%s is not valid: BigBlueButton meeting IDs have no comma", v.show(ipath, id))
		}
	}
	if n := len([]rune(m.DisplayName)); n == 0 || n > 64 || strings.TrimSpace(m.DisplayName) == "" {
		v.add(path+".display_name", "%s is not valid: use 1 to 64 characters, e.g. \"Diffusion publique\"",
			v.show(path+".display_name", m.DisplayName))
	}
	switch m.Layout {
	case LayoutSpeaker, LayoutTiles:
	default:
		v.add(path+".layout", "%s is not valid: use speaker or tiles", v.show(path+".layout", m.Layout))
	}
	if w, _ := m.Dimensions(); w == 0 {
		v.add(path+".size", "%s is not valid: use 1280x720 or 1920x1080", v.show(path+".size", m.Size))
	}
	switch m.Start {
	case StartAuto, StartManual:
	default:
		v.add(path+".start", "%s is not valid: use auto or manual", v.show(path+".start", m.Start))
	}
	if m.RejoinAfter < 0 {
		v.add(path+".rejoin_after", "must not be negative: 0 (never rejoin on its own) or a duration, e.g. \"10m\"")
	}
	if m.AloneAfter < 0 {
		v.add(path+".alone_after", "must not be negative: a duration, e.g. \"5m\"")
	}
}

// maxLiveKitRoom bounds a LiveKit room name (seance's own bound: the
// server takes long names, meeting apps use short slugs).
const maxLiveKitRoom = 256

// liveKit checks a LiveKit room. The API secret and the room are never
// quoted.
func (v *validator) liveKit(path string, lk *LiveKit) {
	upath := path + ".url"
	if lk.URL == "" {
		v.add(upath, "must be set: the server's WebSocket address, e.g. \"wss://livekit.example.fr\"")
	} else if reason := liveKitURLProblem(lk.URL); reason != "" {
		shown := lk.URL
		if strings.Contains(shown, "@") {
			shown = RedactURL(shown)
		}
		v.add(upath, "%s is not a valid LiveKit address: %s", v.show(upath, shown), reason)
	}
	kpath := path + ".api_key"
	switch {
	case lk.APIKey == "":
		v.add(kpath, "must be set: an API key of the server (livekit.yaml keys)")
	case strings.ContainsFunc(lk.APIKey, func(r rune) bool { return r <= ' ' || r == 0x7f }):
		v.add(kpath, "is not valid: an API key has no spaces or control characters")
	}
	if !lk.APISecret.IsSet() {
		v.add(path+".api_secret", "must be set: the API key's secret (livekit.yaml keys)")
	}
	room := lk.Room.Value()
	rpath := path + ".room"
	switch {
	case room == "":
		v.add(rpath, "must be set: the room's name")
	case len(room) > maxLiveKitRoom:
		v.add(rpath, "is too long: at most %d bytes", maxLiveKitRoom)
	case !utf8.ValidString(room) || strings.ContainsFunc(room, func(r rune) bool { return r < ' ' || r == 0x7f }):
		v.add(rpath, "is not valid: a room name has no control characters")
	}
}

// liveKitURLProblem says what is wrong with a LiveKit server address, in
// words; "" when it is valid: wss://, or ws:// to a loopback host.
func liveKitURLProblem(raw string) string {
	u, err := url.Parse(raw)
	switch {
	case err != nil || (u.Scheme != "wss" && u.Scheme != "ws"):
		return "use a wss:// address (the server's WebSocket URL, not a meeting page)"
	case u.Hostname() == "":
		return "it has no host"
	case u.User != nil:
		return "remove the user name and password from it"
	case u.RawQuery != "" || u.Fragment != "":
		return "remove the query and fragment from it"
	case u.Scheme == "ws" && !isLoopbackHost(u.Hostname()):
		return "ws:// is only for a server on this machine (127.0.0.1, ::1, localhost): use wss://"
	}
	return ""
}

// isLoopbackHost reports whether host is localhost or a loopback IP.
func isLoopbackHost(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.IsLoopback()
}

// meetingURLProblem says what is wrong with a meeting or API address, in
// words that do not quote it; "" when it is valid. A meeting address needs
// a room (a path).
func meetingURLProblem(raw string, room bool) string {
	u, err := url.Parse(raw)
	switch {
	case err != nil || u.Scheme == "":
		return "use an https:// address"
	case u.Scheme != "https" && u.Scheme != "http":
		return "use an https:// address"
	case u.Hostname() == "":
		return "it has no host"
	case u.User != nil:
		return "remove the user name and password from it"
	case room && strings.Trim(u.Path, "/") == "":
		return "it names no room: add the room, e.g. https://visio.example.fr/ConseilBourg"
	}
	return ""
}

// renditions checks a channel's reduced renditions.
func (v *validator) renditions(path string, rs []Rendition) {
	seen := make(map[string]int, len(rs))
	for i := range rs {
		rpath := path + ".renditions[" + strconv.Itoa(i) + "]"
		r := &rs[i]
		if v.name(rpath+".name", r.Name) {
			switch j, dup := seen[r.Name]; {
			case r.Name == "full" || r.Name == "audio":
				v.add(rpath+".name", "%s is reserved (the full rendition and the audio-only one): choose another name", v.show(rpath+".name", r.Name))
			case dup:
				v.add(path+".renditions", "duplicate name %s (also %s.renditions[%d])", v.show(rpath+".name", r.Name), path, j)
			default:
				seen[r.Name] = i
			}
		}
		if h := r.Height; h < minRenditionHeight || h > maxRenditionHeight || h%2 != 0 {
			v.add(rpath+".height", "must be an even number of lines from %d to %d, e.g. 360 (got %s)",
				minRenditionHeight, maxRenditionHeight, showValue(v.tainted, rpath+".height", strconv.Itoa(h)))
		}
		if b := r.VideoBitrate; b < minRenditionBitrate || b > maxRenditionBitrate {
			v.add(rpath+".video_bitrate", "must be from %s to %s, e.g. \"500k\" (got %s)",
				minRenditionBitrate, maxRenditionBitrate, showValue(v.tainted, rpath+".video_bitrate", b.String()))
		}
	}
}
