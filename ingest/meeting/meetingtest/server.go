// Package meetingtest is a stand-in meeting server for tests: a page that
// behaves, as far as seance relies on it, as Jitsi Meet's or
// BigBlueButton's code does (moving picture, remote sound through WebRTC
// and an <audio> element, whitelisted URL config overrides, tile view from
// 3 participants, the lobby, the JWT, kicks, BBB's 3.x and 2.x screens: see
// page.html), and a stand-in BigBlueButton API (isMeetingRunning, join)
// that checks checksums and answers as bigbluebutton-web's
// ApiController.groovy does. The page reports to the server what it sends
// into the meeting and what it shows.
package meetingtest

import (
	"bytes"
	"crypto/sha1"
	"crypto/sha256"
	_ "embed" // the page
	"encoding/hex"
	"encoding/json"
	"encoding/xml"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"
)

//go:embed page.html
var page []byte

// Report is what a page last said about itself.
type Report struct {
	ID             string `json:"id"`
	Platform       string `json:"platform"`
	SessionToken   string `json:"sessionToken"`
	Joined         bool   `json:"joined"`
	GUMCalls       int    `json:"gumCalls"`
	SentAudioBytes int64  `json:"sentAudioBytes"`
	SentVideoBytes int64  `json:"sentVideoBytes"`
	DisplayName    string `json:"displayName"`
	Prejoin        any    `json:"prejoin"`
	DeepLinking    any    `json:"deepLinking"`
	ToolbarButtons any    `json:"toolbarButtons"`
	Filmstrip      any    `json:"filmstripDisabled"`
	TileViewOff    any    `json:"tileViewDisabled"`
	AutoKnock      any    `json:"autoKnock"`
	LowBandwidth   any    `json:"lowBandwidth"`
	// Ignored lists the URL overrides the page dropped: not in Jitsi's
	// whitelists.
	Ignored []string `json:"ignored"`
	JWT     string   `json:"jwt"`
	// JWTFrom is where the page found the JWT: "hash", "query" or "".
	JWTFrom  string `json:"jwtFrom"`
	Knocking bool   `json:"knocking"`
	InLobby  bool   `json:"inLobby"`
	// Shown is what the page shows: "speaker" (the large video), "tiles",
	// "nothing" (tile view with the filmstrip disabled), "audio_only",
	// "bbb", "none" (not in the meeting).
	Shown        string `json:"shown"`
	Participants int    `json:"participants"`
	AudioPlaying bool   `json:"audioPlaying"`
}

// Server is a stand-in meeting server on a loopback port.
type Server struct {
	// URL is the server's base URL, e.g. "http://127.0.0.1:41234".
	URL string

	srv    *httptest.Server
	secret string

	mu         sync.Mutex
	running    bool
	reports    map[string]Report // by page id
	order      []string
	kicked     map[string]bool
	userAgents []string
	joins      []url.Values
	bbbCalls   map[string]int
	sha1Only   bool
	tile       []byte
	others     int
	lobby      bool
	admitted   bool
	ended      bool
	maxUsers   int
	guestDeny  bool
	bbb2       bool
	config     map[string]any
	sessions   map[string]bool
	needJWT    string
}

// New starts a server. bbbSecret is the shared secret its BigBlueButton
// API checks checksums against (SHA-1 or SHA-256, as BigBlueButton does);
// the meeting is running until SetRunning(false).
func New(bbbSecret string) *Server {
	s := &Server{secret: bbbSecret, running: true, reports: map[string]Report{}, kicked: map[string]bool{},
		bbbCalls: map[string]int{}, config: map[string]any{}, sessions: map[string]bool{}}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /meetingtest/report", s.report)
	mux.HandleFunc("GET /meetingtest/server-config.js", func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		b, _ := json.Marshal(map[string]any{"config": s.config, "bbb2": s.bbb2})
		s.mu.Unlock()
		w.Header().Set("Content-Type", "text/javascript")
		_, _ = fmt.Fprintf(w, "window.meetingtestServer = %s;\n", b)
	})
	mux.HandleFunc("GET /logout", func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, "<!doctype html><title>Au revoir</title><p>Vous avez quitté la réunion.</p>")
	})
	mux.HandleFunc("GET /bigbluebutton/api/{call}", s.bbb)
	mux.HandleFunc("GET /meetingtest/tile.webm", func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		tile := s.tile
		s.mu.Unlock()
		w.Header().Set("Content-Type", "video/webm")
		http.ServeContent(w, r, "tile.webm", time.Time{}, bytes.NewReader(tile))
	})
	mux.HandleFunc("GET /", func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		s.userAgents = append(s.userAgents, r.UserAgent())
		s.mu.Unlock()
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		_, _ = w.Write(page)
	})
	s.srv = httptest.NewServer(mux)
	s.URL = s.srv.URL
	return s
}

// Close shuts the server down.
func (s *Server) Close() { s.srv.Close() }

// JitsiURL is the address of a Jitsi-like meeting room.
func (s *Server) JitsiURL(room string) string { return s.URL + "/" + room }

// BBBAPI is the stand-in BigBlueButton API endpoint.
func (s *Server) BBBAPI() string { return s.URL + "/bigbluebutton/api" }

// SetRunning says whether the BigBlueButton meeting runs.
func (s *Server) SetRunning(running bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.running = running
}

// SetTileVideo sets the WebM video the page plays in each of its
// participant tiles (meeting URL query "?tiles=N").
func (s *Server) SetTileVideo(webm []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.tile = webm
}

// SHA1Only makes the API accept SHA-1 checksums only (servers set up with
// supportedChecksumAlgorithms=sha1).
func (s *Server) SHA1Only() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.sha1Only = true
}

// SetParticipants sets how many other participants are in the meeting.
func (s *Server) SetParticipants(n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.others = n
}

// SetLobby turns the Jitsi room's lobby on: pages that join wait in it.
func (s *Server) SetLobby(on bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.lobby, s.admitted = on, false
}

// Admit lets the pages knocking at the lobby in, as a moderator does.
func (s *Server) Admit() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.admitted = true
}

// SetServerConfig sets a key of the Jitsi server's own config.js, e.g.
// "startLowBandwidthMode"; URL overrides apply over it. Pages opened
// afterwards read it.
func (s *Server) SetServerConfig(key string, value any) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.config[key] = value
}

// RequireJWT makes the Jitsi room a secure domain that admits only pages
// holding jwt; the others get the authentication prompt
// (features/base/conference authRequired) and never join.
func (s *Server) RequireJWT(jwt string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.needJWT = jwt
}

// SetBBB2 makes the BigBlueButton client show 2.x's screens.
func (s *Server) SetBBB2() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.bbb2 = true
}

// SetMaxParticipants limits the BigBlueButton meeting's users (0: none).
func (s *Server) SetMaxParticipants(n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.maxUsers = n
}

// SetGuestDeny makes the BigBlueButton meeting's guest policy deny viewers.
func (s *Server) SetGuestDeny(deny bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.guestDeny = deny
}

// EndMeeting ends the BigBlueButton meeting, as its moderator does: the
// clients show the meeting-ended screen, the meeting no longer runs, and
// a join is refused with meetingForciblyEnded.
func (s *Server) EndMeeting() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.ended, s.running = true, false
}

// Kick throws every page that joined so far out of the meeting.
func (s *Server) Kick() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for id := range s.reports {
		s.kicked[id] = true
	}
}

// Reports returns the last report of each page, in the order the pages
// first reported.
func (s *Server) Reports() []Report {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Report, 0, len(s.order))
	for _, id := range s.order {
		out = append(out, s.reports[id])
	}
	return out
}

// UserAgents returns the User-Agent of every page request.
func (s *Server) UserAgents() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.userAgents...)
}

// SessionTokens returns the session tokens the BigBlueButton join handed
// out: secrets, which must appear in no log or API answer.
func (s *Server) SessionTokens() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]string, 0, len(s.sessions))
	for t := range s.sessions {
		out = append(out, t)
	}
	return out
}

// Joins returns the parameters of every accepted BigBlueButton join.
func (s *Server) Joins() []url.Values {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]url.Values(nil), s.joins...)
}

// BBBCalls counts the API calls by name (checksum errors included).
func (s *Server) BBBCalls(call string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.bbbCalls[call]
}

func (s *Server) report(w http.ResponseWriter, r *http.Request) {
	var rep Report
	body, _ := io.ReadAll(io.LimitReader(r.Body, 64<<10))
	if json.Unmarshal(body, &rep) != nil || rep.ID == "" {
		http.Error(w, "bad report", http.StatusBadRequest)
		return
	}
	s.mu.Lock()
	if _, ok := s.reports[rep.ID]; !ok {
		s.order = append(s.order, rep.ID)
	}
	s.reports[rep.ID] = rep
	answer := map[string]any{
		"kicked": s.kicked[rep.ID], "others": s.others, "lobby": s.lobby, "admitted": s.admitted,
		"ended": s.ended, "invalidSession": rep.Platform == "bbb" && !s.sessions[rep.SessionToken],
		"authRequired": rep.Platform == "jitsi" && s.needJWT != "" && rep.JWT != s.needJWT,
	}
	s.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(answer)
}

// bbb answers isMeetingRunning and join as bigbluebutton-web's
// ApiController.groovy does: the checksum is the hex SHA-1 or SHA-256 of
// the call name, the query string without the checksum, and the secret.
// join's errors redirect to the logout URL with
// "errors=[{"key":…,"message":…}]" whatever redirect says (invalid(…,
// REDIRECT_RESPONSE), respondWithRedirect); a join that succeeds redirects
// to the client, or with redirect=false answers XML with its <url>.
func (s *Server) bbb(w http.ResponseWriter, r *http.Request) {
	call := r.PathValue("call")
	s.mu.Lock()
	s.bbbCalls[call]++
	running, sha1Only, ended := s.running, s.sha1Only, s.ended
	full := s.maxUsers > 0 && len(s.joins) >= s.maxUsers
	deny := s.guestDeny
	s.mu.Unlock()
	q, sum, _ := strings.Cut(r.URL.RawQuery, "checksum=")
	q = strings.TrimSuffix(q, "&")
	params, perr := url.ParseQuery(q)
	fail := func(key, msg string) {
		if call == "join" {
			s.joinError(w, r, params, key, msg)
			return
		}
		writeXML(w, "<response><returncode>FAILED</returncode><messageKey>"+key+"</messageKey><message>"+msg+"</message></response>")
	}
	if !validChecksum(call+q+s.secret, sum, sha1Only) {
		fail("checksumError", "Checksums do not match")
		return
	}
	if perr != nil || params.Get("meetingID") == "" {
		fail("missingParamMeetingID", "You must specify a meeting ID for the meeting.")
		return
	}
	switch call {
	case "isMeetingRunning":
		writeXML(w, fmt.Sprintf("<response><returncode>SUCCESS</returncode><running>%t</running></response>", running))
	case "join":
		switch {
		case ended:
			fail("meetingForciblyEnded", "You can not re-join a meeting that has already been forcibly ended.")
			return
		case !running:
			fail("invalidMeetingIdentifier", "The meeting ID that you supplied did not match any existing meetings")
			return
		case full:
			fail("maxParticipantsReached", "The number of participants allowed for this meeting has been reached.")
			return
		case deny:
			fail("guestDeniedAccess", "You have been denied access to this meeting based on the meeting's guest policy")
			return
		}
		token := "st" + hex.EncodeToString([]byte(params.Get("meetingID"))) + fmt.Sprint(time.Now().UnixNano())
		s.mu.Lock()
		s.joins = append(s.joins, params)
		s.sessions[token] = true
		s.mu.Unlock()
		next := url.Values{"sessionToken": {token}, "fullName": {params.Get("fullName")}}
		if params.Get("userdata-bbb_force_listen_only") == "true" {
			next.Set("listenOnly", "true")
		}
		client := "http://" + r.Host + "/html5client/join?" + next.Encode()
		if redirect, err := strconv.ParseBool(params.Get("redirect")); err == nil && !redirect {
			writeXML(w, "<response><returncode>SUCCESS</returncode><messageKey>successfullyJoined</messageKey>"+
				"<message>You have joined successfully.</message><meeting_id>internal</meeting_id><user_id>w_bot</user_id>"+
				"<auth_token>at</auth_token><session_token>"+token+"</session_token><guestStatus>ALLOW</guestStatus>"+
				"<url>"+xmlEscape(client)+"</url></response>")
			return
		}
		http.Redirect(w, r, client, http.StatusFound)
	default:
		fail("unsupportedRequest", "This request is not supported.")
	}
}

// joinError is respondWithRedirect: the logout URL (the join's logoutURL,
// else the server's default) with the errors as a JSON array.
func (s *Server) joinError(w http.ResponseWriter, r *http.Request, params url.Values, key, msg string) {
	logout := "http://" + r.Host + "/logout"
	if l := params.Get("logoutURL"); l != "" {
		logout = l
	}
	errs, _ := json.Marshal([]map[string]string{{"key": key, "message": msg}})
	u, err := url.Parse(logout)
	if err != nil {
		http.Error(w, "bad logoutURL", http.StatusBadRequest)
		return
	}
	q := u.Query()
	q.Set("errors", string(errs))
	u.RawQuery = q.Encode()
	http.Redirect(w, r, u.String(), http.StatusFound)
}

func xmlEscape(s string) string {
	var b strings.Builder
	_ = xml.EscapeText(&b, []byte(s))
	return b.String()
}

func validChecksum(data, sum string, sha1Only bool) bool {
	s1 := sha1.Sum([]byte(data))
	s256 := sha256.Sum256([]byte(data))
	return sum == hex.EncodeToString(s1[:]) || (!sha1Only && sum == hex.EncodeToString(s256[:]))
}

func writeXML(w http.ResponseWriter, body string) {
	w.Header().Set("Content-Type", "text/xml;charset=utf-8")
	_, _ = io.WriteString(w, body)
}
