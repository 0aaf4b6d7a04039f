package meeting

import (
	"encoding/json"
	"errors"
	"net/url"
	"strings"

	"github.com/seance-relay/seance/configs"
)

// The URL overrides below are all in jitsi-meet's whitelists
// (react/features/base/config/configWhitelist.ts and
// interfaceConfigWhitelist.ts): any other key in the fragment is dropped by
// the page (getWhitelistedJSON), so none is sent. Keys no longer read
// (prejoinPageEnabled, interfaceConfig.filmStripOnly, startAudioOnly) are
// not sent either.
type jitsiOverride struct {
	key   string
	value any
}

// jitsiDefaults are the config overrides of a clean broadcast layout,
// which the meeting URL's own fragment may override: no toolbar, no self
// view, no notifications, no deep-linking page, no pre-join screen, no
// analytics, and a lobby that knocks.
var jitsiDefaults = []jitsiOverride{
	{"config.deeplinking.disabled", true},
	// Servers from before the deeplinking object (2022) read only this one;
	// current ones use it when deeplinking.disabled is unset
	// (react/features/base/config/reducer.ts).
	{"config.disableDeepLinking", true},
	{"config.prejoinConfig.enabled", false},
	{"config.requireDisplayName", false},
	{"config.toolbarButtons", []string{}},
	{"config.disableSelfView", true},
	{"config.notifications", []string{}},
	{"config.analytics.disabled", true},
	{"config.disableInviteFunctions", true},
	{"interfaceConfig.TOOLBAR_BUTTONS", []string{}},
	{"interfaceConfig.DISABLE_JOIN_LEAVE_NOTIFICATIONS", true},
	{"interfaceConfig.SHOW_CHROME_EXTENSION_BANNER", false},
}

// jitsiForced are set last, over anything in the meeting URL: the bot
// joins muted with its camera off and never sends anything, knocks at the
// lobby, and keeps the layout it was configured with.
var jitsiForced = []jitsiOverride{
	{"config.startWithAudioMuted", true},
	{"config.startWithVideoMuted", true},
	// startLowBandwidthMode true would join audio only, receiving no
	// video at all (react/features/base/media/middleware.any.ts,
	// setLowBandwidthMode): a server config setting it is overridden.
	{"config.startLowBandwidthMode", false},
	{"config.startSilent", false}, // hear the others
	// With the pre-join screen off the client does not knock at the lobby
	// unless lobby.autoKnock is set (shouldAutoKnock in
	// react/features/prejoin/functions.any.ts, used by
	// react/features/lobby/middleware.ts on MEMBERS_ONLY_ERROR).
	{"config.lobby.autoKnock", true},
	// Older servers read autoKnockLobby only; current ones map it to
	// lobby.autoKnock when that is unset (base/config/reducer.ts).
	{"config.autoKnockLobby", true},
}

// jitsiLayout are the overrides of each layout, forced as well.
// react/features/video-layout/functions.any.ts (shouldDisplayTileView)
// switches to tile view by itself from 3 participants, the bot included,
// unless tileView.disabled; in tile view the tiles live in the filmstrip
// and the large video is hidden, so filmstrip.disabled would leave an empty
// page (react/features/filmstrip/components/web/Filmstrip.tsx, isVisible).
var jitsiLayout = map[string][]jitsiOverride{
	configs.LayoutSpeaker: {
		{"config.tileView.disabled", true},
		{"config.filmstrip.disabled", true},
	},
	configs.LayoutTiles: {
		{"config.tileView.disabled", false},
		{"config.disableTileView", false},
		{"config.filmstrip.disabled", false},
	},
}

// jitsiURL returns the address the browser opens to join a Jitsi Meet
// meeting: the meeting's URL with Jitsi's URL config overrides in the
// fragment, "#key=value&…", where each value is JSON, percent-encoded
// (react/features/base/util/parseURLParams.ts: split on '&' and '=',
// decodeURIComponent, JSON.parse; a later duplicate wins). The JWT goes in
// the fragment too, JSON-quoted, as jitsi-meet's own tests pass it: the
// page reads the fragment first and the query only as a legacy fallback
// (parseJWTFromURLParams in react/features/base/jwt/functions.ts), and a
// query lands in the web server's access log. Overrides already in the
// URL's fragment are kept after seance's defaults, so they win, except the
// forced ones, which seance sets last.
func jitsiURL(meetingURL, jwt, displayName, layout string) (string, error) {
	u, err := url.Parse(meetingURL)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Hostname() == "" || strings.Trim(u.Path, "/") == "" {
		// Never quote the URL: it is a secret.
		return "", errors.New("the Jitsi meeting URL is not an http(s) address with a room")
	}
	lay, ok := jitsiLayout[layout]
	if !ok {
		lay = jitsiLayout[configs.LayoutSpeaker]
	}
	if jwt != "" && u.Query().Has("jwt") {
		q := u.Query()
		q.Del("jwt")
		u.RawQuery = q.Encode()
	}
	var parts []string
	add := func(key string, value any) {
		parts = append(parts, key+"="+encodeURIComponent(jsonValue(value)))
	}
	for _, o := range jitsiDefaults {
		add(o.key, o.value)
	}
	for _, p := range strings.Split(u.EscapedFragment(), "&") {
		key, _, _ := strings.Cut(p, "=")
		if key == "" || isForced(key) || key == "userInfo.displayName" || (key == "jwt" && jwt != "") {
			continue
		}
		parts = append(parts, p)
	}
	add("userInfo.displayName", displayName)
	for _, o := range jitsiForced {
		add(o.key, o.value)
	}
	for _, o := range lay {
		add(o.key, o.value)
	}
	if jwt != "" {
		add("jwt", jwt)
	}
	u.Fragment, u.RawFragment = "", ""
	return u.String() + "#" + strings.Join(parts, "&"), nil
}

// isForced reports whether seance sets key last, whatever the URL says.
func isForced(key string) bool {
	for _, o := range jitsiForced {
		if o.key == key {
			return true
		}
	}
	for _, lay := range jitsiLayout {
		for _, o := range lay {
			if o.key == key {
				return true
			}
		}
	}
	return false
}

// jsonValue encodes v as JSON for a Jitsi URL override. jitsi-meet turns
// curly quotes into straight ones before JSON.parse, which would break a
// string holding them: they are escaped.
func jsonValue(v any) string {
	b, _ := json.Marshal(v) // booleans, strings and string lists only
	r := strings.NewReplacer("\u2018", `\u2018`, "\u2019", `\u2019`, "\u201c", `\u201c`, "\u201d", `\u201d`)
	return r.Replace(string(b))
}

// encodeURIComponent percent-encodes s as JavaScript's encodeURIComponent
// does: everything but A-Z a-z 0-9 - _ . ! ~ * ' ( ).
func encodeURIComponent(s string) string {
	const hex = "0123456789ABCDEF"
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9', strings.IndexByte("-_.!~*'()", c) >= 0:
			b.WriteByte(c)
		default:
			b.WriteByte('%')
			b.WriteByte(hex[c>>4])
			b.WriteByte(hex[c&15])
		}
	}
	return b.String()
}

// jitsiProbe tells, in the meeting page, where the bot stands:
//   - "joined:N": in the conference (APP.conference.isJoined()) with N
//     other participants, counted as getParticipantCount does
//     (react/features/base/participants/functions.ts) minus the bot; -1
//     when the page does not say;
//   - "removed": a moderator kicked the bot. The page hangs up and leaves
//     for its welcome or close page (react/features/conference/
//     middleware.web.ts, KICKED_OUT), so the probe listens for
//     lib-jitsi-meet's KICKED event ("conference.kicked") on the
//     conference in features/base/conference and keeps the fact in the
//     tab's sessionStorage, which survives that navigation;
//   - "lobby": knocking at the lobby (features/lobby knocking);
//     "lobby_no_knock": the lobby screen without knocking;
//   - "login": the meeting asks for a login or a password
//     (features/base/conference authRequired, passwordRequired);
//   - "other": a loaded page that is not Jitsi Meet (a login, error or
//     logout page); "loading"; "unknown".
const jitsiProbe = `(() => {
  try {
    if (sessionStorage.getItem('seance-removed')) return 'removed';
    if (typeof APP === 'undefined' || !APP.conference || !APP.store) {
      return document.readyState === 'complete' ? 'other' : 'loading';
    }
    const st = APP.store.getState();
    const conf = st['features/base/conference'] || {};
    const room = conf.conference;
    if (room && typeof room.on === 'function' && !room.seanceListening) {
      room.seanceListening = true;
      room.on('conference.kicked', () => sessionStorage.setItem('seance-removed', '1'));
    }
    if (APP.conference.isJoined()) {
      const p = st['features/base/participants'];
      if (!p || !p.remote) return 'joined:-1';
      const size = (m) => (m && m.size) || 0;
      return 'joined:' + (size(p.remote) - size(p.fakeParticipants) - size(p.sortedRemoteVirtualScreenshareParticipants));
    }
    const lobby = st['features/lobby'];
    if (lobby && lobby.knocking) return 'lobby';
    if (lobby && lobby.lobbyVisible) return 'lobby_no_knock';
    if (conf.authRequired || conf.passwordRequired) return 'login';
    return 'loading';
  } catch (e) { return 'unknown'; }
})()`
