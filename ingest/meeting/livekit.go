package meeting

import (
	"crypto/hmac"
	"crypto/sha256"
	"embed"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io/fs"
	"net/http"
	"strings"
	"time"
)

// liveKitVideo is the "video" grant of a LiveKit access token (LiveKit's
// auth.VideoGrant, as far as seance uses it).
type liveKitVideo struct {
	Room           string `json:"room"`
	RoomJoin       bool   `json:"roomJoin"`
	CanSubscribe   bool   `json:"canSubscribe"`
	CanPublish     bool   `json:"canPublish"`
	CanPublishData bool   `json:"canPublishData"`
	Hidden         bool   `json:"hidden,omitempty"`
}

// liveKitToken signs a LiveKit access token: a JWT (RFC 7519), HS256 with
// the API secret, issued by the API key, for the participant identity,
// shown as name, valid for ttl. It is what LiveKit's own
// auth.AccessToken.ToJWT produces, without its dependencies.
func liveKitToken(apiKey, apiSecret, identity, name string, video liveKitVideo, ttl time.Duration) (string, error) {
	if apiKey == "" || apiSecret == "" || identity == "" || ttl <= 0 {
		return "", errors.New("livekit token: api key, secret, identity and lifetime are needed")
	}
	now := time.Now()
	claims, err := json.Marshal(struct {
		Issuer    string       `json:"iss"`
		Subject   string       `json:"sub"`
		ID        string       `json:"jti"`
		NotBefore int64        `json:"nbf"`
		Expiry    int64        `json:"exp"`
		Name      string       `json:"name,omitempty"`
		Video     liveKitVideo `json:"video"`
	}{apiKey, identity, identity, now.Add(-10 * time.Second).Unix(), now.Add(ttl).Unix(), name, video})
	if err != nil {
		return "", err
	}
	enc := base64.RawURLEncoding
	signed := enc.EncodeToString([]byte(`{"alg":"HS256","typ":"JWT"}`)) + "." + enc.EncodeToString(claims)
	mac := hmac.New(sha256.New, []byte(apiSecret))
	mac.Write([]byte(signed))
	return signed + "." + enc.EncodeToString(mac.Sum(nil)), nil
}

// Identity and lifetime of seance's tokens. The token only has to be valid
// when the page connects (LiveKit then refreshes it over the signalling
// connection), so it is short, and minted anew for every join.
const (
	liveKitIdentity = "seance-diffusion"
	liveKitTTL      = 5 * time.Minute
)

// liveKitViewerToken mints seance's token for the room: hidden, allowed to
// subscribe and nothing else.
func liveKitViewerToken(apiKey, apiSecret, room, name string) (string, error) {
	return liveKitToken(apiKey, apiSecret, liveKitIdentity, name, liveKitVideo{
		Room: room, RoomJoin: true, CanSubscribe: true, Hidden: true,
	}, liveKitTTL)
}

// liveKitPageConfig is what the layout page reads from its address's
// fragment (base64url JSON), then erases from it.
type liveKitPageConfig struct {
	URL    string `json:"url"`
	Token  string `json:"token"`
	Layout string `json:"layout"`
}

// liveKitPagePath is where PageHandler serves the layout page.
const liveKitPagePath = "/meeting/livekit/"

// liveKitURL returns the address the browser opens to join a LiveKit
// room: seance's own layout page on pageBase, the internal loopback
// listener, with the server, the token and the layout in the fragment
// (never sent to any server, so in no access log).
func liveKitURL(pageBase, serverURL, token, layout string) (string, error) {
	if pageBase == "" {
		return "", errors.New("no internal address to serve the LiveKit layout page from")
	}
	cfg, err := json.Marshal(liveKitPageConfig{URL: serverURL, Token: token, Layout: layout})
	if err != nil {
		return "", err
	}
	return strings.TrimSuffix(pageBase, "/") + liveKitPagePath + "#" + base64.RawURLEncoding.EncodeToString(cfg), nil
}

// liveKitProbe tells, in the layout page, where the bot stands:
// "joined:<n>" (connected to the room with n others, as the Jitsi probe
// says, so alone_after applies), "loading" (connecting or reconnecting), "removed" (a moderator removed
// the bot), "left" (disconnected otherwise after joining), "refused:<why>" (the server refused the
// connection), or "unknown" when the page is not seance's.
const liveKitProbe = `(() => {
  try {
    const s = window.seanceLiveKit;
    if (!s) return 'loading';
    return s.where === 'joined' ? 'joined:' + Number(s.participants) : String(s.where);
  } catch (e) { return 'unknown'; }
})()`

// liveKitFiles is the layout page and the livekit-client build it runs
// (gen.sh regenerates the latter from package-lock.json).
//
//go:embed livekit/index.html livekit/layout.js livekit/livekit-client.umd.js
var liveKitFiles embed.FS

// PageHandler serves the pages seance's own browser opens: the LiveKit
// layout page under /meeting/livekit/. It is mounted on the internal
// loopback listener only. Nothing in it comes from anywhere else: the
// Content-Security-Policy allows the page's own scripts, and WebSocket
// and WebRTC connections to the LiveKit server.
func PageHandler() http.Handler {
	sub, err := fs.Sub(liveKitFiles, "livekit")
	if err != nil {
		panic(err) // the embedded tree is fixed at build time
	}
	files := http.StripPrefix(liveKitPagePath, http.FileServerFS(sub))
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+liveKitPagePath+"{file...}", func(w http.ResponseWriter, r *http.Request) {
		switch r.PathValue("file") {
		case "", "layout.js", "livekit-client.umd.js":
		default:
			http.NotFound(w, r)
			return
		}
		h := w.Header()
		h.Set("Content-Security-Policy", "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; "+
			"connect-src ws: wss: http: https:; media-src 'self' blob: mediastream:; img-src 'self' data: blob:")
		h.Set("Cache-Control", "no-store")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("X-Content-Type-Options", "nosniff")
		files.ServeHTTP(w, r)
	})
	return mux
}
