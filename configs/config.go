package configs

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Config is seance's whole configuration, as read from one YAML file. Get one
// from Load, Parse or Default; they fill defaults and validate it. A Config is
// not modified after loading and may be read from any goroutine.
type Config struct {
	// Log sets the log level and format.
	Log Log `yaml:"log"`
	// Public is the citizens' HTTP server (watch pages, WHEP, WHIP, HLS).
	Public Public `yaml:"public"`
	// Admin is the IT staff's HTTP server (dashboard, metrics, API).
	Admin Admin `yaml:"admin"`
	// RTMP is the listener for RTMP pushes (Jitsi's Jibri, BBB, OBS).
	RTMP RTMP `yaml:"rtmp"`
	// RTSP is the read-only RTSP output of every live channel.
	RTSP RTSP `yaml:"rtsp"`
	// WebRTC sets the ICE transport of WebRTC sessions (WHEP viewers, WHIP).
	WebRTC WebRTC `yaml:"webrtc"`
	// HLS sets the HLS output of every live channel (/hls/{channel}/index.m3u8).
	HLS HLS `yaml:"hls"`
	// AuthFailures rate-limits wrong keys and tokens per address.
	AuthFailures AuthFailures `yaml:"auth_failures"`
	// Channels are the streams seance relays, one per council (or room). None
	// is valid: the server then serves nothing live.
	Channels []Channel `yaml:"channels"`
}

// Log sets logging.
type Log struct {
	// Level is debug, info, warn or error. Default info.
	Level string `yaml:"level"`
	// Format is json (one object a line) or console (for humans). Default json.
	Format string `yaml:"format"`
}

// Public is the public HTTP server.
type Public struct {
	// Listen is the TCP address, host:port. Default ":8080". Required.
	Listen string `yaml:"listen"`
	// BaseURL is the absolute http(s) URL citizens reach the server at, e.g.
	// "https://live.example.fr", used in log hints and links. Optional; loading
	// removes a trailing slash.
	BaseURL string `yaml:"base_url"`
	// FrameAncestors are the origins allowed to embed /embed/{channel} in
	// an iframe (CSP frame-ancestors), e.g. ["https://www.bourg.fr"].
	// Default ["*"]: any site. The watch page itself is never framed.
	FrameAncestors []string `yaml:"frame_ancestors"`
	// TrustedProxies are the reverse proxies (IP addresses or CIDR ranges,
	// e.g. "127.0.0.1", "10.0.0.0/8") whose X-Forwarded-For or Forwarded
	// header names the client: a request from one of them counts (HLS
	// viewers) and shows (WHIP publisher) as coming from the right-most
	// address in the header that is not a trusted proxy. Default none: the
	// headers are ignored and the TCP peer is the client.
	TrustedProxies []string `yaml:"trusted_proxies"`
	// BodyTimeout bounds the time a client has to send a request body
	// (WHEP/WHIP offers, trickle). Default 10s. Requests without a body
	// (SSE, held LL-HLS playlist reloads) are not bounded by it.
	BodyTimeout Duration `yaml:"body_timeout"`
	// MaxConnectionsPerAddress bounds one client address's open
	// connections. Default 512: a town hall's Wi-Fi or a mobile carrier's
	// NAT puts hundreds of citizens behind one address. Trusted proxies
	// are bounded only by MaxConnections.
	MaxConnectionsPerAddress int `yaml:"max_connections_per_address"`
	// MaxConnections bounds every open connection of the public listener.
	// Default 16384.
	MaxConnections int `yaml:"max_connections"`
}

// TrustedProxyPrefixes returns TrustedProxies as address ranges (an IP
// is a range of one). Call it on a validated Config: entries that do not
// parse are left out.
func (p Public) TrustedProxyPrefixes() []netip.Prefix {
	var out []netip.Prefix
	for _, s := range p.TrustedProxies {
		if pr, ok := parseProxy(s); ok {
			out = append(out, pr)
		}
	}
	return out
}

// parseProxy parses an IP address or a CIDR range. IPv4-mapped IPv6
// addresses become IPv4, as Go reports IPv4 peers so.
func parseProxy(s string) (netip.Prefix, bool) {
	if a, err := netip.ParseAddr(s); err == nil {
		if a.Zone() != "" {
			return netip.Prefix{}, false
		}
		a = a.Unmap()
		return netip.PrefixFrom(a, a.BitLen()), true
	}
	p, err := netip.ParsePrefix(s)
	if err != nil {
		return netip.Prefix{}, false
	}
	if a := p.Addr(); a.Is4In6() {
		if p.Bits() < 96 {
			return netip.Prefix{}, false
		}
		p = netip.PrefixFrom(a.Unmap(), p.Bits()-96)
	}
	return p.Masked(), true
}

// Admin is the admin HTTP server.
type Admin struct {
	// Listen is the TCP address, host:port. Default "127.0.0.1:9090". Required.
	// A non-loopback address needs Token.
	Listen string `yaml:"listen"`
	// Token, when set, is required as "Authorization: Bearer" on every admin
	// route. Empty: no authentication (loopback addresses only).
	Token Secret `yaml:"token"`
	// Hosts are the names the admin listener answers to in the Host
	// header, besides IP addresses and localhost, e.g. ["admin.seance.lan"].
	// Any other name is refused (421), token or not: DNS rebinding would
	// let a web page read the API. Default none.
	Hosts []string `yaml:"hosts"`
}

// RTMP is the RTMP listener.
type RTMP struct {
	// Listen is the TCP address, host:port. Default ":1935". Empty disables it.
	Listen string `yaml:"listen"`
	// MaxUnauthenticated bounds connections that have not passed the key
	// check. When reached, the address holding the most loses its oldest
	// to a newcomer from an address holding fewer. Default 64.
	MaxUnauthenticated int `yaml:"max_unauthenticated"`
	// MaxUnauthenticatedPerAddress bounds one address's connections that
	// have not passed the key check. Default 4.
	MaxUnauthenticatedPerAddress int `yaml:"max_unauthenticated_per_address"`
	// FirstByteTimeout closes a connection that sends nothing. Default 3s.
	FirstByteTimeout Duration `yaml:"first_byte_timeout"`
	// AuthTimeout bounds the time from connect to the key check. Default 5s.
	AuthTimeout Duration `yaml:"auth_timeout"`
}

// RTSP is the RTSP server.
type RTSP struct {
	// Listen is the TCP address, host:port. Default ":8554". Empty disables it.
	Listen string `yaml:"listen"`
	// Username and Password, when set, are required to read a channel over
	// RTSP. Default: open.
	Username string `yaml:"username"`
	Password Secret `yaml:"password"`
	// UDPPort is the even UDP port RTP is sent from, RTCP from the next
	// one. Default 8000.
	UDPPort int `yaml:"udp_port"`
	// SessionTimeout bounds the time from connect to PLAY. Default 10s.
	SessionTimeout Duration `yaml:"session_timeout"`
	// IdleTimeout closes a connection silent this long before it plays,
	// and a playing reader that sends nothing this long. Default 10s.
	IdleTimeout Duration `yaml:"idle_timeout"`
	// MaxConnectionsPerAddress bounds one address's connections. Default 16.
	MaxConnectionsPerAddress int `yaml:"max_connections_per_address"`
	// MaxConnections bounds every RTSP connection. Default 512.
	MaxConnections int `yaml:"max_connections"`
}

// WebRTC sets the WebRTC transport.
type WebRTC struct {
	// UDPPort is the one UDP port every WebRTC session shares (ICE UDP mux),
	// 1-65535. Default 8189. 0 picks a free port at start (tests).
	UDPPort int `yaml:"udp_port"`
	// TCPPort, when set, accepts ICE-TCP on that one TCP port, for viewers
	// whose network blocks UDP. Default 0: disabled.
	TCPPort int `yaml:"tcp_port"`
	// MaxViewers bounds WebRTC viewers on the server. Default 1000.
	MaxViewers int `yaml:"max_viewers"`
	// NATIPs are the public addresses announced in ICE candidates when seance
	// runs behind a 1:1 NAT, each an IP or "public/private". Default none.
	NATIPs []string `yaml:"nat_ips"`
	// ICEServers are the STUN and TURN servers offered to browsers. Default
	// none: no third party learns who watches.
	ICEServers []ICEServer `yaml:"ice_servers"`
	// MaxCandidates bounds the remote ICE candidates of one session (offer
	// and trickle PATCHes together); past it, 422. Default 32 (a browser
	// sends 2-10).
	MaxCandidates int `yaml:"max_candidates"`
	// MaxPending bounds the WebRTC sessions (WHEP) that have not connected
	// yet, a budget apart from max_viewers, which counts viewers once ICE
	// connects. Default 200.
	MaxPending int `yaml:"max_pending"`
	// MaxPendingPerAddress bounds one client address's sessions that have
	// not connected yet; past it, 429. Default 8.
	MaxPendingPerAddress int `yaml:"max_pending_per_address"`
	// MaxViewersPerAddress bounds one client address's connected WebRTC
	// viewers. Default 200: a council chamber's Wi-Fi or a carrier's NAT
	// puts many citizens behind one address, and 200 still leaves four
	// fifths of the default max_viewers to everybody else.
	MaxViewersPerAddress int `yaml:"max_viewers_per_address"`
	// Bind is the IP address the WebRTC UDP (and TCP) port binds to, and
	// the only local address announced. Default "": every interface.
	Bind string `yaml:"bind"`
	// Interfaces, when set, are the network interfaces (e.g. ["eth0"])
	// whose addresses are announced as ICE candidates. Default: all.
	Interfaces []string `yaml:"interfaces"`
	// AnnounceLoopback announces 127.0.0.1 and ::1 as ICE candidates, for a
	// browser on the same machine. Default false; the embedded demo config
	// sets it.
	AnnounceLoopback bool `yaml:"announce_loopback"`
	// AnnouncePrivate announces private and link-local addresses (10/8,
	// 192.168/16, fc00::/7…), for viewers on the same LAN. Default false:
	// they tell the internet about the network behind the relay, and
	// viewers outside cannot use them. With nat_ips they are gathered
	// anyway, to be replaced by the public ones. The embedded demo config
	// sets it.
	AnnouncePrivate bool `yaml:"announce_private"`
}

// AuthFailures rate-limits wrong ingest keys (RTMP, WHIP) and admin tokens
// per address: after Free failures in Window, the address waits 1 s, 2 s,
// 4 s… up to MaxWait before its next attempt is checked.
type AuthFailures struct {
	// Free is the failures allowed per window before backing off. Default 5.
	Free int `yaml:"free"`
	// Window is the period Free counts in. Default 1m.
	Window Duration `yaml:"window"`
	// MaxWait bounds the wait between attempts. Default 1m.
	MaxWait Duration `yaml:"max_wait"`
}

// HLS variants.
const (
	// HLSLowLatency is Apple's Low-Latency HLS (fMP4 parts, blocking
	// playlist reloads); players that do not know it play it as fMP4 HLS.
	HLSLowLatency = "low_latency"
	// HLSFMP4 is HLS with fMP4 segments.
	HLSFMP4 = "fmp4"
	// HLSMPEGTS is HLS with MPEG-TS segments, audio and video muxed in
	// one rendition: the default, played by every engine tested.
	HLSMPEGTS = "mpegts"
)

// HLS sets the HLS output.
type HLS struct {
	// Enabled serves every live channel at /hls/{channel}/index.m3u8 on the
	// public server. Default true.
	Enabled bool `yaml:"enabled"`
	// Variant is mpegts (default), low_latency or fmp4. mpegts muxes audio
	// and video in one rendition, which every engine plays: WebKitGTK's
	// native HLS shows 0-0.5 frames/s of the fMP4 variants, whose audio
	// gohlslib serves as a separate rendition. low_latency (LL-HLS) is for
	// those whose players take it (Safari, hls.js).
	Variant string `yaml:"variant"`
	// SegmentCount is how many segments the live playlist lists. Default 7,
	// at least 3 (7 for low_latency).
	SegmentCount int `yaml:"segment_count"`
	// SegmentDuration is the minimum segment length; a segment ends at the
	// first keyframe after it. Default 1s.
	SegmentDuration Duration `yaml:"segment_duration"`
	// PartDuration is the length of a low-latency part. Default 200ms.
	PartDuration Duration `yaml:"part_duration"`
	// MaxViewersPerAddress bounds the HLS viewers one client address
	// counts as (each browser, by User-Agent, is a viewer), so that varying
	// the User-Agent cannot inflate the count. Default 200. It bounds the
	// count only: every request is still served.
	MaxViewersPerAddress int `yaml:"max_viewers_per_address"`
}

// ICEServer is one STUN or TURN server, as in the W3C RTCIceServer dictionary.
type ICEServer struct {
	// URLs are stun:, stuns:, turn: or turns: URLs. At least one.
	URLs []string `yaml:"urls"`
	// Username is the TURN user name; required for turn: and turns: URLs.
	Username string `yaml:"username"`
	// Credential is the TURN password; a turn: server needs it or Secret.
	// A static credential is sent to every browser in the WHEP Link
	// headers: anyone watching can use the TURN server with it. Prefer
	// Secret.
	Credential Secret `yaml:"credential"`
	// Secret is the TURN server's shared secret (coturn's
	// static-auth-secret with use-auth-secret): each WHEP answer then
	// carries a short-lived credential derived from it (TURN REST scheme:
	// username "expiry:Username", credential base64(HMAC-SHA1(secret,
	// username))), and the secret never leaves seance.
	Secret Secret `yaml:"secret"`
	// TTL is how long a credential derived from Secret is valid. Default 1h
	// (a session's length: a viewer that reconnects gets a new one).
	TTL Duration `yaml:"ttl"`
}

// Channel is one stream: one source in, any number of viewers and destinations
// out.
type Channel struct {
	// Name identifies the channel in URLs, metrics and the API: 1 to 64 of
	// a-z, 0-9, '-' and '_', starting with a letter or digit; unique.
	Name string `yaml:"name"`
	// Title is shown to citizens. Default: Name.
	Title string `yaml:"title"`
	// Ingest says where the stream comes from.
	Ingest Ingest `yaml:"ingest"`
	// Grace is how long a publisher may drop and come back as the same session
	// (viewers and destinations stay connected). Default 30s; 0 means none;
	// at most 24h.
	Grace Duration `yaml:"grace"`
	// Destinations are where the stream is pushed (YouTube and others).
	Destinations []Destination `yaml:"destinations"`
	// Record sets the archive recording.
	Record Record `yaml:"record"`
	// Replay is ReplayPublic to let citizens replay the channel's recordings
	// from its watch page, or ReplayOff (default). Public needs Record.
	Replay string `yaml:"replay"`
	// Slate is what destinations and viewers see while the publisher is gone
	// within the grace period.
	Slate Slate `yaml:"slate"`
	// MaxViewers bounds the channel's WebRTC viewers. Default 0: only the
	// server's limit applies.
	MaxViewers int `yaml:"max_viewers"`
	// Renditions are reduced video renditions made from the live stream,
	// once per channel, by ffmpeg (checked at startup), for viewers on weak
	// connections: offered over WHEP's layer selection and in the HLS
	// multivariant playlist. Default none.
	Renditions []Rendition `yaml:"renditions"`
}

// Rendition is one reduced video rendition of a channel.
type Rendition struct {
	// Name names the rendition in URLs and the WHEP layer API (encodingId):
	// like a channel name, unique in the channel, not "full" nor "audio".
	Name string `yaml:"name"`
	// Height is the picture height in lines, even, from 144 to 720; the
	// width follows the source's aspect ratio. Default 360.
	Height int `yaml:"height"`
	// VideoBitrate is the H.264 bit rate, e.g. "500k". Default 500k; from
	// 50k to 5M.
	VideoBitrate BitRate `yaml:"video_bitrate"`
}

// Rendition defaults and bounds.
const (
	defaultRenditionHeight  = 360
	defaultRenditionBitrate = BitRate(500_000)
	minRenditionHeight      = 144
	maxRenditionHeight      = 720
	minRenditionBitrate     = BitRate(50_000)
	maxRenditionBitrate     = BitRate(5_000_000)
)

// setDefaults gives a rendition read from a list its defaults.
func (r *Rendition) setDefaults() {
	r.Height = defaultRenditionHeight
	r.VideoBitrate = defaultRenditionBitrate
}

// Ingest is a channel's source. Exactly one of Key, Pull, Demo and Meeting
// is set.
type Ingest struct {
	// Key lets publishers push (RTMP, WHIP) when they present it.
	Key Secret `yaml:"key"`
	// Pull is an rtsp, rtsps, rtmp or rtmps URL seance reads the stream from.
	// It may hold credentials: log it only through RedactURL.
	Pull string `yaml:"pull"`
	// Demo makes the channel play the built-in test source.
	Demo bool `yaml:"demo"`
	// Meeting makes seance join a Jitsi Meet or BigBlueButton meeting in
	// headless Chromium, as a silent viewer, and broadcast what it shows.
	Meeting Meeting `yaml:"meeting"`
	// Transport is how an rtsp:// pull receives media: tcp, udp or auto
	// (default: try UDP, fall back to TCP).
	Transport string `yaml:"transport"`
	// Username and Password authenticate a pull when they are not in the
	// URL.
	Username string `yaml:"username"`
	Password Secret `yaml:"password"`
}

// String describes the source without its secrets.
func (in Ingest) String() string {
	switch {
	case in.Key.IsSet():
		return "push (key " + in.Key.String() + ")"
	case in.Pull != "":
		return "pull " + RedactURL(in.Pull)
	case in.Demo:
		return "demo"
	case in.Meeting.IsSet():
		return "meeting (" + in.Meeting.String() + ")"
	}
	return "none"
}

// GoString is String, so %#v does not print the pull URL's credentials.
func (in Ingest) GoString() string { return in.String() }

// MarshalJSON encodes the ingest with its secrets redacted.
func (in Ingest) MarshalJSON() ([]byte, error) { return json.Marshal(in.redacted()) }

// MarshalYAML encodes the ingest with its secrets redacted.
func (in Ingest) MarshalYAML() (any, error) { return in.redacted(), nil }

// plainIngest is Ingest without its methods, for encoding.
type plainIngest Ingest

func (in Ingest) redacted() plainIngest {
	p := plainIngest(in)
	p.Pull = RedactURL(p.Pull)
	return p
}

// Meeting platforms (Meeting.Platform).
const (
	PlatformJitsi   = "jitsi"
	PlatformBBB     = "bbb"
	PlatformLiveKit = "livekit"
)

// Meeting layouts (Meeting.Layout).
const (
	// LayoutSpeaker shows the active speaker large (a screen share wins).
	LayoutSpeaker = "speaker"
	// LayoutTiles shows every participant in a grid.
	LayoutTiles = "tiles"
)

// Meeting sizes: the browser's viewport, which is the captured picture.
const (
	Size720p  = "1280x720"
	Size1080p = "1920x1080"
)

// DefaultDisplayName is the name seance joins a meeting under.
const DefaultDisplayName = "Diffusion publique"

// Meeting is a video meeting seance joins as a silent viewer (muted, camera
// off) to broadcast it. Exactly one of Jitsi, BBB and LiveKit is set. The meeting's
// URL, JWT and BBB secret are secrets: they are never printed.
type Meeting struct {
	// Jitsi is a Jitsi Meet meeting.
	Jitsi Jitsi `yaml:"jitsi"`
	// BBB is a BigBlueButton meeting, joined through its API.
	BBB BBB `yaml:"bbb"`
	// LiveKit is a LiveKit room (self-hosted LiveKit, La Suite Meet),
	// joined with a token seance mints, through seance's own layout page.
	LiveKit LiveKit `yaml:"livekit"`
	// DisplayName is the name other participants see. Default
	// "Diffusion publique".
	DisplayName string `yaml:"display_name"`
	// Size is the captured picture, Size720p (default) or Size1080p.
	Size string `yaml:"size"`
	// Start is StartAuto (default: join when seance starts) or StartManual
	// (join when IT staff start it from the dashboard or the API).
	Start string `yaml:"start"`
	// Layout is LayoutSpeaker (default: the active speaker large, as Jibri
	// broadcasts) or LayoutTiles (everyone in tiles), for Jitsi Meet and
	// LiveKit rooms.
	Layout string `yaml:"layout"`
	// RejoinAfter is how long seance waits, once a moderator removed it
	// from the meeting, before it joins again on its own. Default 0: never;
	// IT staff start it again from the dashboard or the API.
	RejoinAfter Duration `yaml:"rejoin_after"`
	// AloneAfter is how long seance broadcasts a meeting where no one else
	// is left before it shows the slate instead. Default 5 min.
	AloneAfter Duration `yaml:"alone_after"`
}

// DefaultAloneAfter is Meeting.AloneAfter's default.
const DefaultAloneAfter = Duration(5 * time.Minute)

// Jitsi is a Jitsi Meet meeting.
type Jitsi struct {
	// URL is the meeting's address, e.g.
	// "https://visio.example.fr/ConseilBourg". Anyone who has it can join:
	// it is a secret.
	URL Secret `yaml:"url"`
	// JWT is the token of deployments that require one (secure domain with
	// token authentication); empty otherwise.
	JWT Secret `yaml:"jwt"`
}

// BBB is a BigBlueButton meeting.
type BBB struct {
	// API is the server's API endpoint, e.g.
	// "https://bbb.example.fr/bigbluebutton/api" (what `bbb-conf --secret`
	// prints as URL, followed by "api").
	API string `yaml:"api"`
	// Secret is the server's shared secret (`bbb-conf --secret`).
	Secret Secret `yaml:"secret"`
	// MeetingID is the meetingID the meeting is created with.
	MeetingID string `yaml:"meeting_id"`
}

// LiveKit is a room on a LiveKit server. seance joins it hidden, allowed
// to subscribe only, with a token it signs with the API secret.
type LiveKit struct {
	// URL is the server's WebSocket address, e.g. "wss://livekit.example.fr"
	// (what LiveKit clients are given; ws:// only on loopback).
	URL string `yaml:"url"`
	// APIKey and APISecret are an API key pair of the server (livekit.yaml
	// "keys"); the secret signs seance's tokens.
	APIKey    string `yaml:"api_key"`
	APISecret Secret `yaml:"api_secret"`
	// Room is the room's name (La Suite Meet: the room's id, a UUID). It
	// is kept out of logs and the API: with a meeting app in front of the
	// server, whoever has it and a key pair can join.
	Room Secret `yaml:"room"`
}

// IsSet reports whether any key of the meeting is set.
func (m Meeting) IsSet() bool { return m != Meeting{} }

// Platform returns PlatformJitsi or PlatformBBB, or "" when neither is set.
func (m Meeting) Platform() string {
	switch {
	case m.Jitsi != Jitsi{}:
		return PlatformJitsi
	case m.BBB != BBB{}:
		return PlatformBBB
	case m.LiveKit != LiveKit{}:
		return PlatformLiveKit
	}
	return ""
}

// Dimensions returns the width and height of Size; 0, 0 when it is not
// valid.
func (m Meeting) Dimensions() (width, height int) {
	switch m.Size {
	case Size720p:
		return 1280, 720
	case Size1080p:
		return 1920, 1080
	}
	return 0, 0
}

// String describes the meeting without its secrets: the platform and the
// server's host name (never the room, the token or the join URL).
func (m Meeting) String() string {
	switch m.Platform() {
	case PlatformJitsi:
		return "Jitsi on " + hostOf(m.Jitsi.URL.Value())
	case PlatformBBB:
		return "BigBlueButton on " + hostOf(m.BBB.API) + ", meeting " + strconv.Quote(m.BBB.MeetingID)
	case PlatformLiveKit:
		return "LiveKit on " + hostOf(m.LiveKit.URL)
	}
	return "no platform"
}

// hostOf returns the host name of an http(s) URL, or "[invalid URL]".
func hostOf(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.Hostname() == "" {
		return invalidURL
	}
	return u.Hostname()
}

// Start values of a Destination.
const (
	// StartAuto pushes to the destination whenever the channel is live.
	StartAuto = "auto"
	// StartManual pushes only after IT staff start the destination.
	StartManual = "manual"
)

// Destination is an RTMP server a channel's stream is pushed to.
type Destination struct {
	// Name identifies the destination within its channel (metrics, API, logs):
	// same characters as channel names; unique in the channel.
	Name string `yaml:"name"`
	// URL is the rtmp:// or rtmps:// ingestion URL, e.g.
	// "rtmps://a.rtmps.youtube.com/live2". It may end with the stream key
	// ("rtmp://host/app/KEY") when Key is empty: log it through RedactURL.
	URL string `yaml:"url"`
	// Key is the stream key. Empty: the key is the URL's last path segments.
	Key Secret `yaml:"key"`
	// Start is StartAuto (default) or StartManual.
	Start string `yaml:"start"`
}

// String describes the destination without its stream key.
func (d Destination) String() string {
	return d.Name + " " + RedactURL(d.URL)
}

// GoString is String, so %#v does not print the stream key.
func (d Destination) GoString() string { return d.String() }

// MarshalJSON encodes the destination with its secrets redacted.
func (d Destination) MarshalJSON() ([]byte, error) { return json.Marshal(d.redacted()) }

// MarshalYAML encodes the destination with its secrets redacted.
func (d Destination) MarshalYAML() (any, error) { return d.redacted(), nil }

// plainDestination is Destination without its methods, for encoding.
type plainDestination Destination

func (d Destination) redacted() plainDestination {
	p := plainDestination(d)
	p.URL = RedactURL(p.URL)
	return p
}

// PublishURL returns the URL to give gortmplib's RTMP client, which takes the
// stream key from the URL fragment: with Key set, URL with Key as fragment (a
// query such as YouTube's ?backup=1 stays on the application); otherwise the
// first path segment is the application and the rest moves to the fragment.
// Its errors wrap ErrInvalidURL or ErrNoStreamKey and never contain the key.
func (d Destination) PublishURL() (*url.URL, error) {
	u, err := parseRTMPURL(d.URL)
	if err != nil {
		return nil, fmt.Errorf("destination %q: %w", d.Name, err)
	}
	if d.Key.IsSet() {
		u.Fragment, u.RawFragment = d.Key.Value(), ""
		return u, nil
	}
	if u.Fragment != "" {
		return u, nil
	}
	app, key, ok := splitStreamKey(u.Path)
	if !ok {
		return nil, fmt.Errorf("destination %q: %w: set its key, or end its URL with it (%s)",
			d.Name, ErrNoStreamKey, RedactURL(d.URL))
	}
	u.Path, u.RawPath = "/"+app, ""
	u.Fragment, u.RawFragment = key, ""
	return u, nil
}

// hasStreamKey reports whether the destination says its stream key, in Key,
// the URL's path or fragment. It assumes URL parses.
func (d Destination) hasStreamKey() bool {
	if d.Key.IsSet() {
		return true
	}
	u, err := url.Parse(d.URL)
	if err != nil {
		return false
	}
	_, _, ok := splitStreamKey(u.Path)
	return ok || u.Fragment != ""
}

// parseRTMPURL parses an rtmp:// or rtmps:// URL with a host. Its errors wrap
// ErrInvalidURL and show the URL only through RedactURL.
func parseRTMPURL(raw string) (*url.URL, error) {
	u, err := url.Parse(raw)
	if err != nil || u.Scheme == "" {
		// url.Error quotes the URL: keep only the sentinel.
		return nil, ErrInvalidURL
	}
	if u.Scheme != "rtmp" && u.Scheme != "rtmps" {
		return nil, fmt.Errorf("%w: scheme %q is not supported: use rtmp:// or rtmps://", ErrInvalidURL, u.Scheme)
	}
	if u.Host == "" {
		return nil, fmt.Errorf("%w: %s has no host", ErrInvalidURL, RedactURL(raw))
	}
	return u, nil
}

// splitStreamKey splits an RTMP path "/app/KEY" into its application and the
// stream key after it. ok is false when there is no key.
func splitStreamKey(path string) (app, key string, ok bool) {
	app, key, _ = strings.Cut(strings.TrimPrefix(path, "/"), "/")
	return app, key, app != "" && strings.Trim(key, "/") != ""
}

// Record sets a channel's archive recording.
type Record struct {
	// Enabled turns recording on while the channel is live. Default false.
	Enabled bool `yaml:"enabled"`
	// Dir is the directory recordings are written to; required when Enabled.
	// Channels may share it: file names start with the channel's name.
	Dir string `yaml:"dir"`
	// Segment is the longest a recording file runs before the next one
	// starts (at a keyframe). Default 1h; 1m to 24h.
	Segment Duration `yaml:"segment"`
	// MaxAge deletes the channel's recordings older than this. Default 0:
	// kept whatever their age.
	MaxAge Duration `yaml:"max_age"`
	// MaxSize deletes the channel's oldest recordings while their total
	// size is over it, e.g. "50GiB". Default 0: no limit.
	MaxSize ByteSize `yaml:"max_size"`
}

// Replay values of a Channel.
const (
	// ReplayOff keeps recordings for IT staff only (the admin API).
	ReplayOff = "off"
	// ReplayPublic lists the channel's recordings on its watch page.
	ReplayPublic = "public"
)

// Slate sets the picture shown while a channel's publisher is gone.
type Slate struct {
	// Enabled sends the slate (picture and silence) to destinations and
	// viewers during an interruption, so YouTube keeps the broadcast and
	// viewers see why. Default true.
	Enabled bool `yaml:"enabled"`
	// Image is a PNG or JPEG file rendered into the slate at the live
	// stream's size and frame rate when the channel goes live (needs
	// ffmpeg; seance checks the file and ffmpeg at startup). Default: the
	// built-in bilingual slate.
	Image string `yaml:"image"`
}

// Defaults of the keys a file leaves out.
const (
	defaultGrace   = Duration(30 * time.Second)
	maxGrace       = Duration(24 * time.Hour)
	defaultUDPPort = 8189
	defaultSegment = Duration(time.Hour)
)

// defaults returns the configuration Parse decodes a file over: the keys a file
// leaves out keep these values, and the keys it sets, even to "" or 0, do not.
func defaults() *Config {
	return &Config{
		Log: Log{Level: "info", Format: "json"},
		Public: Public{Listen: ":8080", FrameAncestors: []string{"*"},
			BodyTimeout: Duration(10 * time.Second), MaxConnectionsPerAddress: 512, MaxConnections: 16384},
		Admin: Admin{Listen: "127.0.0.1:9090"},
		RTMP: RTMP{Listen: ":1935", MaxUnauthenticated: 64, MaxUnauthenticatedPerAddress: 4,
			FirstByteTimeout: Duration(3 * time.Second), AuthTimeout: Duration(5 * time.Second)},
		RTSP: RTSP{Listen: ":8554", UDPPort: 8000, SessionTimeout: Duration(10 * time.Second),
			IdleTimeout: Duration(10 * time.Second), MaxConnectionsPerAddress: 16, MaxConnections: 512},
		WebRTC: WebRTC{UDPPort: defaultUDPPort, MaxViewers: 1000,
			MaxCandidates: 32, MaxPending: 200, MaxPendingPerAddress: 8, MaxViewersPerAddress: 200},
		AuthFailures: AuthFailures{Free: 5, Window: Duration(time.Minute), MaxWait: Duration(time.Minute)},
		HLS: HLS{
			Enabled: true, Variant: HLSMPEGTS, SegmentCount: 7,
			SegmentDuration: Duration(time.Second), PartDuration: Duration(200 * time.Millisecond),
			MaxViewersPerAddress: 200,
		},
	}
}

// setDefaults gives a channel read from a list its defaults before its keys
// are decoded over them.
func (c *Channel) setDefaults() {
	c.Grace = defaultGrace
	c.Replay = ReplayOff
	c.Slate.Enabled = true
	c.Record.Segment = defaultSegment
}

// setDefaults gives a destination read from a list its defaults.
func (d *Destination) setDefaults() { d.Start = StartAuto }

// fill sets the defaults that depend on other keys, after decoding.
func (c *Config) fill() {
	c.Public.BaseURL = strings.TrimRight(c.Public.BaseURL, "/")
	for i := range c.Channels {
		ch := &c.Channels[i]
		if ch.Title == "" {
			ch.Title = ch.Name
		}
		if ch.Replay == "" {
			ch.Replay = ReplayOff
		}
		if ch.Record.Segment == 0 {
			ch.Record.Segment = defaultSegment
		}
		for j := range ch.Destinations {
			if ch.Destinations[j].Start == "" {
				ch.Destinations[j].Start = StartAuto
			}
		}
		if m := &ch.Ingest.Meeting; m.IsSet() {
			if m.DisplayName == "" {
				m.DisplayName = DefaultDisplayName
			}
			if m.Size == "" {
				m.Size = Size720p
			}
			if m.Layout == "" {
				m.Layout = LayoutSpeaker
			}
			if m.Start == "" {
				m.Start = StartAuto
			}
			if m.Layout == "" {
				m.Layout = LayoutSpeaker
			}
			if m.AloneAfter == 0 {
				m.AloneAfter = DefaultAloneAfter
			}
		}
	}
}
