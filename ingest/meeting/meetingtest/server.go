// Package meetingtest is a stand-in meeting server for tests: a page that
// behaves, as far as seance relies on it, like Jitsi Meet's or
// BigBlueButton's (moving picture, remote sound through WebRTC and an
// <audio> element, URL config overrides, join state), and a stand-in
// BigBlueButton API (isMeetingRunning, join) that checks checksums. The
// page reports to the server what it sends into the meeting.
package meetingtest

import (
	"bytes"
	"crypto/sha1"
	"crypto/sha256"
	_ "embed" // the page
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
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
	Joined         bool   `json:"joined"`
	GUMCalls       int    `json:"gumCalls"`
	SentAudioBytes int64  `json:"sentAudioBytes"`
	SentVideoBytes int64  `json:"sentVideoBytes"`
	DisplayName    string `json:"displayName"`
	Prejoin        any    `json:"prejoin"`
	DeepLinking    any    `json:"deepLinking"`
	ToolbarButtons any    `json:"toolbarButtons"`
	Filmstrip      any    `json:"filmstripDisabled"`
	JWT            string `json:"jwt"`
	AudioPlaying   bool   `json:"audioPlaying"`
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
}

// New starts a server. bbbSecret is the shared secret its BigBlueButton
// API checks checksums against (SHA-1 or SHA-256, as BigBlueButton does);
// the meeting is running until SetRunning(false).
func New(bbbSecret string) *Server {
	s := &Server{secret: bbbSecret, running: true, reports: map[string]Report{}, kicked: map[string]bool{}, bbbCalls: map[string]int{}}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /meetingtest/report", s.report)
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
	kicked := s.kicked[rep.ID]
	s.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]bool{"kicked": kicked})
}

// bbb answers isMeetingRunning and join as BigBlueButton does: the
// checksum is the hex SHA-1 or SHA-256 of the call name, the query string
// without the checksum, and the secret.
func (s *Server) bbb(w http.ResponseWriter, r *http.Request) {
	call := r.PathValue("call")
	s.mu.Lock()
	s.bbbCalls[call]++
	running, sha1Only := s.running, s.sha1Only
	s.mu.Unlock()
	q, sum, _ := strings.Cut(r.URL.RawQuery, "checksum=")
	q = strings.TrimSuffix(q, "&")
	if !validChecksum(call+q+s.secret, sum, sha1Only) {
		writeXML(w, "<response><returncode>FAILED</returncode><messageKey>checksumError</messageKey><message>Checksums do not match</message></response>")
		return
	}
	params, err := url.ParseQuery(q)
	if err != nil || params.Get("meetingID") == "" {
		writeXML(w, "<response><returncode>FAILED</returncode><messageKey>missingParamMeetingID</messageKey><message>You must specify a meeting ID for the meeting.</message></response>")
		return
	}
	switch call {
	case "isMeetingRunning":
		writeXML(w, fmt.Sprintf("<response><returncode>SUCCESS</returncode><running>%t</running></response>", running))
	case "join":
		if !running {
			writeXML(w, "<response><returncode>FAILED</returncode><messageKey>invalidMeetingIdentifier</messageKey><message>The meeting ID that you supplied did not match any existing meetings</message></response>")
			return
		}
		s.mu.Lock()
		s.joins = append(s.joins, params)
		s.mu.Unlock()
		listenOnly := params.Get("userdata-bbb_listen_only_mode") == "true" && params.Get("userdata-bbb_force_listen_only") == "true"
		next := url.Values{"sessionToken": {"st" + hex.EncodeToString([]byte(params.Get("meetingID")))}, "fullName": {params.Get("fullName")}}
		if listenOnly {
			next.Set("listenOnly", "true")
		}
		http.Redirect(w, r, "/html5client/join?"+next.Encode(), http.StatusFound)
	default:
		writeXML(w, "<response><returncode>FAILED</returncode><messageKey>unsupportedRequest</messageKey><message>This request is not supported.</message></response>")
	}
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
