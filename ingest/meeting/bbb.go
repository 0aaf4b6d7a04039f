package meeting

import (
	"context"
	"crypto/sha1" // BigBlueButton servers that accept only SHA-1
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
)

// Checksum algorithms of the BigBlueButton API (supportedChecksumAlgorithms
// in bbb-web). seance uses SHA-256 and falls back to SHA-1 for servers
// that accept only it.
const (
	checksumSHA256 = "sha256"
	checksumSHA1   = "sha1"
)

// bbbChecksum is the API call's checksum: the hex digest of the call name,
// the query string and the shared secret, concatenated (API reference,
// "API Security Model").
func bbbChecksum(algo, call, query, secret string) string {
	data := []byte(call + query + secret)
	if algo == checksumSHA1 {
		s := sha1.Sum(data)
		return hex.EncodeToString(s[:])
	}
	s := sha256.Sum256(data)
	return hex.EncodeToString(s[:])
}

// bbbQuery encodes params in their order, as BigBlueButton's examples do
// (spaces as '+'). The checksum covers exactly this string.
func bbbQuery(params [][2]string) string {
	parts := make([]string, len(params))
	for i, p := range params {
		parts[i] = url.QueryEscape(p[0]) + "=" + url.QueryEscape(p[1])
	}
	return strings.Join(parts, "&")
}

// normalizeBBBAPI returns the API endpoint without a trailing slash,
// adding "api" to the address `bbb-conf --secret` prints
// (https://host/bigbluebutton/).
func normalizeBBBAPI(api string) string {
	api = strings.TrimRight(api, "/")
	if strings.HasSuffix(api, "/bigbluebutton") {
		api += "/api"
	}
	return api
}

// bbbClient calls a BigBlueButton server's API for one meeting.
type bbbClient struct {
	api       string
	secret    string
	meetingID string
	algo      string
	http      *http.Client
}

func newBBBClient(api, secret, meetingID string, hc *http.Client) *bbbClient {
	return &bbbClient{api: normalizeBBBAPI(api), secret: secret, meetingID: meetingID, algo: checksumSHA256, http: hc}
}

// callURL is the signed URL of an API call.
func (b *bbbClient) callURL(call string, params [][2]string) string {
	q := bbbQuery(params)
	sep := "&"
	if q == "" {
		sep = ""
	}
	return b.api + "/" + call + "?" + q + sep + "checksum=" + bbbChecksum(b.algo, call, q, b.secret)
}

// joinParams are the join call's parameters: role VIEWER, listen-only
// audio joined at once without the echo test, no webcam, a clean layout,
// and redirect=false, so that the API answers XML with the client's URL
// instead of redirecting (ApiController.groovy, join: redirectClient).
// bbb_listen_only_mode is ignored with the LiveKit audio bridge (BBB 3.x);
// bbb_force_listen_only still applies.
func (b *bbbClient) joinParams(displayName string) [][2]string {
	return [][2]string{
		{"fullName", displayName},
		{"meetingID", b.meetingID},
		{"role", "VIEWER"},
		{"redirect", "false"},
		{"userdata-bbb_auto_join_audio", "true"},
		{"userdata-bbb_listen_only_mode", "true"},
		{"userdata-bbb_force_listen_only", "true"},
		{"userdata-bbb_skip_check_audio", "true"},
		{"userdata-bbb_skip_check_audio_on_first_join", "true"},
		{"userdata-bbb_auto_share_webcam", "false"},
		{"userdata-bbb_skip_video_preview", "true"},
		{"userdata-bbb_show_participants_on_login", "false"},
		{"userdata-bbb_show_public_chat_on_login", "false"},
		{"userdata-bbb_hide_nav_bar", "true"},
		{"userdata-bbb_hide_actions_bar", "true"},
		{"userdata-bbb_ask_for_feedback_on_logout", "false"},
	}
}

// joinURL is the signed join call.
func (b *bbbClient) joinURL(displayName string) string {
	return b.callURL("join", b.joinParams(displayName))
}

// BBBJoinError is BigBlueButton refusing the join: Key is its messageKey
// (checksumError, invalidMeetingIdentifier…), shown with its meaning in
// French on the dashboard and the API.
type BBBJoinError struct {
	Key string
}

// bbbJoinReasons are the join's error keys in plain French. The keys are
// ApiController.groovy's (join: invalid(…), respondWithErrors) and
// ValidationService's.
var bbbJoinReasons = map[string]string{
	"checksumError":            "la somme de contrôle est refusée : vérifiez ingest.meeting.bbb.secret (bbb-conf --secret sur le serveur)",
	"invalidMeetingIdentifier": "aucune réunion en cours ne porte cet identifiant : vérifiez ingest.meeting.bbb.meeting_id",
	"notFound":                 "aucune réunion en cours ne porte cet identifiant : vérifiez ingest.meeting.bbb.meeting_id",
	"meetingForciblyEnded":     "la réunion a été terminée par un modérateur : elle ne peut pas être rejointe avant d'être recréée",
	"maxParticipantsReached":   "la réunion est complète : le nombre maximal de participants est atteint",
	"guestDeniedAccess":        "la politique d'invités de la réunion refuse l'entrée de « Diffusion publique »",
	"guestDeny":                "la politique d'invités de la réunion refuse l'entrée de « Diffusion publique »",
	"mismatchCreateTimeParam":  "la réunion a été recréée entre-temps",
	"missingParamMeetingID":    "requête incomplète : identifiant de réunion manquant",
	"missingParamFullName":     "requête incomplète : nom manquant",
	"missingParamChecksum":     "requête incomplète : somme de contrôle manquante",
	"validationError":          "requête refusée par le serveur (paramètre non valide)",
}

// Error says, in French, why BigBlueButton refused, with its key.
func (e *BBBJoinError) Error() string {
	why, ok := bbbJoinReasons[e.Key]
	if !ok {
		why = "erreur inconnue"
	}
	return "BigBlueButton refuse l'entrée dans la réunion : " + why + " (" + e.Key + ")"
}

// bbbErrorKey keeps a key the server sent printable and short.
func bbbErrorKey(k string) string {
	k = strings.TrimSpace(strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return -1
		}
		return r
	}, k))
	if k == "" {
		return "unknown"
	}
	return oneLine(k, 60)
}

// join calls the API's join and returns the URL the browser opens. Errors
// come back as a redirect to the logout URL with "errors=[{key,message}]"
// even with redirect=false (ApiController.groovy: invalid(…,
// REDIRECT_RESPONSE) and respondWithRedirect), or as XML with
// returncode FAILED; success is XML with <url> (or, from a server that
// ignores redirect=false, a redirect to the client). The URL carries the
// session token: it is a secret, never printed.
func (b *bbbClient) join(ctx context.Context, displayName string) (string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, b.joinURL(displayName), nil)
	if err != nil {
		return "", errors.New("BigBlueButton API address is not valid")
	}
	hc := *b.http
	hc.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	resp, err := hc.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return "", fmt.Errorf("BigBlueButton API unreachable: %w", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if err != nil {
		return "", fmt.Errorf("BigBlueButton API: %w", err)
	}
	if resp.StatusCode >= 300 && resp.StatusCode < 400 {
		loc, err := resp.Location()
		if err != nil {
			return "", fmt.Errorf("BigBlueButton's join answered HTTP %d without a valid Location", resp.StatusCode)
		}
		return joinRedirect(loc)
	}
	r, err := parseBBBResponse(body)
	if err != nil {
		return "", fmt.Errorf("BigBlueButton's join answered HTTP %d, %w", resp.StatusCode, err)
	}
	if !strings.EqualFold(r.ReturnCode, "SUCCESS") {
		return "", &BBBJoinError{Key: bbbErrorKey(r.MessageKey)}
	}
	if r.MessageKey == "guestDeny" {
		// BBB 2.4-2.5 answer SUCCESS with the logout URL for a denied guest.
		return "", &BBBJoinError{Key: "guestDeny"}
	}
	u, err := url.Parse(strings.TrimSpace(r.URL))
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return "", errors.New("BigBlueButton's join answered no client address (<url>)")
	}
	return u.String(), nil
}

// joinRedirect reads where the join redirected: the logout URL with
// "errors=[{"key":…,"message":…}]" (respondWithRedirect), or the client.
func joinRedirect(loc *url.URL) (string, error) {
	if q := loc.Query(); q.Has("errors") {
		var errs []struct {
			Key string `json:"key"`
		}
		if json.Unmarshal([]byte(q.Get("errors")), &errs) != nil || len(errs) == 0 {
			return "", &BBBJoinError{Key: "unknown"}
		}
		return "", &BBBJoinError{Key: bbbErrorKey(errs[0].Key)}
	}
	if (loc.Scheme != "https" && loc.Scheme != "http") || loc.Host == "" {
		return "", errors.New("BigBlueButton's join redirected to an address that is not http(s)")
	}
	return loc.String(), nil
}

// bbbResponse is the XML answer of an API call.
type bbbResponse struct {
	ReturnCode string `xml:"returncode"`
	Running    string `xml:"running"`
	MessageKey string `xml:"messageKey"`
	Message    string `xml:"message"`
	URL        string `xml:"url"`
}

// parseBBBResponse decodes an API answer; anything but a <response> with a
// return code is an error.
func parseBBBResponse(body []byte) (bbbResponse, error) {
	var r bbbResponse
	dec := xml.NewDecoder(strings.NewReader(string(body)))
	dec.Strict = true
	var root struct {
		XMLName xml.Name
		bbbResponse
	}
	if err := dec.Decode(&root); err != nil || root.XMLName.Local != "response" {
		return r, errors.New("not a BigBlueButton API answer")
	}
	r = root.bbbResponse
	r.ReturnCode = strings.TrimSpace(r.ReturnCode)
	if r.ReturnCode == "" {
		return r, errors.New("not a BigBlueButton API answer: no returncode")
	}
	return r, nil
}

// running asks the server whether the meeting is running. A checksum
// refused with SHA-256 is tried once with SHA-1 (servers configured for
// SHA-1 only); the algorithm that works is kept.
func (b *bbbClient) running(ctx context.Context) (bool, error) {
	r, err := b.isMeetingRunning(ctx)
	if err == nil && r.MessageKey == "checksumError" && b.algo == checksumSHA256 {
		b.algo = checksumSHA1
		r, err = b.isMeetingRunning(ctx)
		if err == nil && r.MessageKey == "checksumError" {
			b.algo = checksumSHA256
		}
	}
	switch {
	case err != nil:
		return false, err
	case r.MessageKey == "checksumError":
		return false, ErrWrongSecret
	case !strings.EqualFold(r.ReturnCode, "SUCCESS"):
		return false, fmt.Errorf("%w isMeetingRunning: %s (%s)", ErrBBBRefused, oneLine(r.Message, 200), r.MessageKey)
	}
	return strings.TrimSpace(r.Running) == "true", nil
}

func (b *bbbClient) isMeetingRunning(ctx context.Context) (bbbResponse, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, b.callURL("isMeetingRunning", [][2]string{{"meetingID", b.meetingID}}), nil)
	if err != nil {
		return bbbResponse{}, errors.New("BigBlueButton API address is not valid")
	}
	resp, err := b.http.Do(req)
	if err != nil {
		// url.Error quotes the URL, checksum included: keep the cause.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return bbbResponse{}, fmt.Errorf("BigBlueButton API unreachable: %w", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if err != nil {
		return bbbResponse{}, fmt.Errorf("BigBlueButton API: %w", err)
	}
	r, err := parseBBBResponse(body)
	if err != nil {
		return r, fmt.Errorf("BigBlueButton API answered HTTP %d, %w: check ingest.meeting.bbb.api", resp.StatusCode, err)
	}
	return r, nil
}

// oneLine trims s to one line of at most n bytes.
func oneLine(s string, n int) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > n {
		s = s[:n] + "…"
	}
	return s
}

// bbbProbe tells, in the meeting page, where the bot stands: "joined"
// (the client's layout is up), "left" (the meeting-ended screen, also shown
// to a removed user: data-test="meetingEndedModal" in BBB 3.x,
// bigbluebutton-html5 meeting-ended/component.tsx, and
// "meetingEndedModalTitle" in 2.x), "error:<message>" (3.x's error screen,
// data-test="errorScreenMessage", or an API error as XML), "lobby" (the
// guest wait page), or "loading".
const bbbProbe = `(() => {
  try {
    const ct = document.contentType || '';
    if (ct.includes('xml')) {
      const m = document.querySelector('messageKey') || document.querySelector('message');
      return 'error:' + (m ? m.textContent : 'the join link answered an error');
    }
    if (document.querySelector('[data-test="meetingEndedModal"], [data-test="meetingEndedModalTitle"]')) return 'left';
    const e = document.querySelector('[data-test="errorScreenMessage"]');
    if (e) return 'error:' + (e.textContent || 'error screen');
    if (document.getElementById('layout') || document.querySelector('[data-test="leaveAudio"]')) return 'joined';
    if (/guest-?wait/i.test(location.pathname)) return 'lobby';
    return 'loading';
  } catch (e) { return 'unknown'; }
})()`
