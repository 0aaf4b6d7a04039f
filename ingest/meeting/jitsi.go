package meeting

import (
	"encoding/json"
	"errors"
	"net/url"
	"strings"
)

// jitsiDefaults are the config overrides of a clean broadcast layout,
// which the meeting URL's own fragment may override: no toolbar, no
// filmstrip, no self view, no notifications, no deep-linking page, no
// analytics.
var jitsiDefaults = []struct {
	key   string
	value any
}{
	{"config.disableDeepLinking", true},
	{"config.prejoinConfig.enabled", false},
	{"config.prejoinPageEnabled", false}, // before prejoinConfig (2022)
	{"config.requireDisplayName", false},
	{"config.toolbarButtons", []string{}},
	{"config.filmstrip.disabled", true},
	{"config.disableSelfView", true},
	{"config.notifications", []string{}},
	{"config.analytics.disabled", true},
	{"config.disableInviteFunctions", true},
	{"interfaceConfig.TOOLBAR_BUTTONS", []string{}},
	{"interfaceConfig.filmStripOnly", false},
	{"interfaceConfig.DISABLE_JOIN_LEAVE_NOTIFICATIONS", true},
	{"interfaceConfig.SHOW_CHROME_EXTENSION_BANNER", false},
}

// jitsiForced are set last, over anything in the meeting URL: the bot
// joins muted with its camera off and never sends anything.
var jitsiForced = []struct {
	key   string
	value any
}{
	{"config.startWithAudioMuted", true},
	{"config.startWithVideoMuted", true},
	{"config.startAudioOnly", false}, // still receive the others' video
	{"config.startSilent", false},    // and their sound
}

// jitsiURL returns the address the browser opens to join a Jitsi Meet
// meeting: the meeting's URL with the JWT as the "jwt" query parameter
// (Jitsi's token authentication), and Jitsi's URL config overrides in the
// fragment, "#key=value&…", where each value is JSON, percent-encoded
// (jitsi-meet parseURLParams: split on '&' and '=', decodeURIComponent,
// JSON.parse). Overrides already in the URL's fragment are kept after
// seance's layout defaults, so they win, except the muting ones, which
// seance sets last.
func jitsiURL(meetingURL, jwt, displayName string) (string, error) {
	u, err := url.Parse(meetingURL)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Hostname() == "" || strings.Trim(u.Path, "/") == "" {
		// Never quote the URL: it is a secret.
		return "", errors.New("the Jitsi meeting URL is not an http(s) address with a room")
	}
	if jwt != "" {
		q := u.Query()
		q.Set("jwt", jwt)
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
		if key == "" || isForced(key) || key == "userInfo.displayName" {
			continue
		}
		parts = append(parts, p)
	}
	add("userInfo.displayName", displayName)
	for _, o := range jitsiForced {
		add(o.key, o.value)
	}
	u.Fragment, u.RawFragment = "", ""
	return u.String() + "#" + strings.Join(parts, "&"), nil
}

func isForced(key string) bool {
	for _, o := range jitsiForced {
		if o.key == key {
			return true
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

// jitsiProbe tells, in the meeting page, where the bot stands: "joined",
// "lobby" (waiting to be admitted), "loading", or "unknown" when the page
// is not Jitsi Meet as seance knows it. APP.conference.isJoined() and the
// lobby state are Jitsi's own.
const jitsiProbe = `(() => {
  try {
    if (typeof APP === 'undefined' || !APP.conference) return 'loading';
    if (APP.conference.isJoined()) return 'joined';
    const lobby = APP.store && APP.store.getState()['features/lobby'];
    if (lobby && lobby.knocking) return 'lobby';
    return 'loading';
  } catch (e) { return 'unknown'; }
})()`
