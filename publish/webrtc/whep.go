package webrtc

import (
	"cmp"
	"crypto/hmac"
	"crypto/sha1"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/seance-relay/seance/addrlimit"
	"github.com/seance-relay/seance/relay"
)

// maxBody bounds SDP offers and trickle fragments (WHEP answers 413 past it).
const maxBody = 64 << 10

// ICEServer is a STUN/TURN server advertised to viewers in Link headers
// (RFC 9725 4.6).
type ICEServer struct {
	URLs       []string
	Username   string
	Credential string
	// Secret, when set, is the TURN server's shared secret: each answer
	// carries a credential valid TTL from now (turnREST), never Secret.
	Secret string
	// TTL is the validity of credentials made from Secret; 0 is
	// DefaultTURNTTL.
	TTL time.Duration
}

// Handler serves WHEP (RFC 9725's protocol, for playback):
//
//	POST   /whep/{channel}       SDP offer in, 201 + SDP answer + Location
//	PATCH  /whep/{channel}/{id}  trickle ICE (application/trickle-ice-sdpfrag), 204
//	DELETE /whep/{channel}/{id}  ends the session, 200
//	OPTIONS on both              CORS preflight, Accept-Post
func (s *Server) Handler(iceServers []ICEServer) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /whep/{channel}", func(w http.ResponseWriter, r *http.Request) {
		s.post(w, r, linkHeaders(iceServers, time.Now()))
	})
	mux.HandleFunc("OPTIONS /whep/{channel}", func(w http.ResponseWriter, r *http.Request) {
		CORS(w)
		w.Header().Set("Accept-Post", "application/sdp")
		for _, l := range linkHeaders(iceServers, time.Now()) {
			w.Header().Add("Link", l)
		}
		w.WriteHeader(http.StatusNoContent)
	})
	mux.HandleFunc("PATCH /whep/{channel}/{id}", s.patch)
	mux.HandleFunc("DELETE /whep/{channel}/{id}", s.delete)
	mux.HandleFunc("OPTIONS /whep/{channel}/{id}", func(w http.ResponseWriter, r *http.Request) {
		CORS(w)
		w.Header().Set("Accept-Patch", "application/trickle-ice-sdpfrag")
		w.WriteHeader(http.StatusNoContent)
	})
	// WHEP core extensions (layer.go), for channels with renditions.
	mux.HandleFunc("POST /whep/{channel}/{id}/layer", s.layerPost)
	mux.HandleFunc("POST /whep/{channel}/{id}/sse", s.ssePost)
	mux.HandleFunc("GET /whep/{channel}/{id}/sse", s.sseGet)
	mux.HandleFunc("DELETE /whep/{channel}/{id}/sse", s.sseDelete)
	preflight := func(w http.ResponseWriter, r *http.Request) {
		CORS(w)
		w.Header().Set("Access-Control-Allow-Methods", "GET, POST, DELETE, OPTIONS")
		w.WriteHeader(http.StatusNoContent)
	}
	mux.HandleFunc("OPTIONS /whep/{channel}/{id}/layer", preflight)
	mux.HandleFunc("OPTIONS /whep/{channel}/{id}/sse", preflight)
	return mux
}

func (s *Server) post(w http.ResponseWriter, r *http.Request, links []string) {
	CORS(w)
	channel := r.PathValue("channel")
	if mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); mt != "application/sdp" {
		s.met.refused.WithLabelValues("bad_request").Inc()
		HTTPError(w, http.StatusUnsupportedMediaType, "the body must be an SDP offer (Content-Type: application/sdp)")
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
	if err != nil {
		s.met.refused.WithLabelValues("bad_request").Inc()
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			HTTPError(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("the SDP offer is larger than %d KiB", maxBody>>10))
			return
		}
		HTTPError(w, http.StatusBadRequest, "could not read the SDP offer")
		return
	}
	if len(body) == 0 {
		s.met.refused.WithLabelValues("bad_request").Inc()
		HTTPError(w, http.StatusBadRequest, "empty SDP offer")
		return
	}
	answer, id, err := s.CreateSessionFrom(channel, string(body), addrlimit.Parse(r.RemoteAddr))
	var ext []string
	if err == nil {
		if ch, cerr := s.hub.Channel(channel); cerr == nil && len(ch.Renditions()) > 0 {
			ext = extensionLinks("/whep/" + url.PathEscape(channel) + "/" + id)
		}
	}
	switch {
	case err == nil:
	case errors.Is(err, relay.ErrChannelNotFound):
		HTTPError(w, http.StatusNotFound, "no such channel")
		return
	case errors.Is(err, ErrNotLive):
		s.met.refused.WithLabelValues("not_live").Inc()
		w.Header().Set("Retry-After", "5")
		HTTPError(w, http.StatusConflict, "the session has not started yet")
		return
	case errors.Is(err, ErrChannelFull), errors.Is(err, ErrServerFull):
		reason := "channel_full"
		if errors.Is(err, ErrServerFull) {
			reason = "server_full"
		}
		s.met.refused.WithLabelValues(reason).Inc()
		w.Header().Set("Retry-After", "30")
		HTTPError(w, http.StatusServiceUnavailable, "too many viewers right now: try again shortly")
		return
	case errors.Is(err, ErrTooManyCandidates):
		s.met.refused.WithLabelValues("too_many_candidates").Inc()
		HTTPError(w, http.StatusUnprocessableEntity, err.Error())
		return
	case errors.Is(err, ErrAddrBusy):
		s.met.refused.WithLabelValues("address_busy").Inc()
		w.Header().Set("Retry-After", "10")
		HTTPError(w, http.StatusTooManyRequests, "too many sessions from your address: close another player or try again shortly")
		return
	case errors.Is(err, ErrBadOffer):
		s.met.refused.WithLabelValues("bad_request").Inc()
		HTTPError(w, http.StatusBadRequest, err.Error())
		return
	default:
		s.log.Error().Err(err).Str("channel", channel).Msg("WHEP session failed")
		HTTPError(w, http.StatusInternalServerError, "could not start the session")
		return
	}
	h := w.Header()
	h.Set("Content-Type", "application/sdp")
	h.Set("Location", "/whep/"+url.PathEscape(channel)+"/"+id)
	h.Set("ETag", `"`+id+`"`)
	h.Set("Accept-Patch", "application/trickle-ice-sdpfrag")
	h.Set("Cache-Control", "no-store")
	for _, l := range links {
		h.Add("Link", l)
	}
	for _, l := range ext {
		h.Add("Link", l)
	}
	w.WriteHeader(http.StatusCreated)
	_, _ = io.WriteString(w, answer)
}

// patch takes trickled ICE candidates (RFC 8840 fragments). ICE restarts
// are not supported (the client makes a new session instead).
func (s *Server) patch(w http.ResponseWriter, r *http.Request) {
	CORS(w)
	sess, err := s.session(r.PathValue("channel"), r.PathValue("id"))
	if err != nil {
		HTTPError(w, http.StatusNotFound, "no such session")
		return
	}
	PatchTrickleBounded(w, r, sess.pc, sess.id, sess.cands)
}

func (s *Server) delete(w http.ResponseWriter, r *http.Request) {
	CORS(w)
	sess, err := s.session(r.PathValue("channel"), r.PathValue("id"))
	if err != nil {
		HTTPError(w, http.StatusNotFound, "no such session")
		return
	}
	sess.end("deleted")
	w.WriteHeader(http.StatusOK)
}

// linkHeaders advertises ICE servers (RFC 9725 4.6, RFC 8288).
// Credentials made from a shared secret are valid from now.
func linkHeaders(servers []ICEServer, now time.Time) []string {
	var out []string
	for _, srv := range servers {
		user, cred := srv.Username, srv.Credential
		if srv.Secret != "" {
			user, cred = turnREST(srv.Secret, srv.Username, now.Add(cmp.Or(srv.TTL, DefaultTURNTTL)))
		}
		for _, u := range srv.URLs {
			l := "<" + u + `>; rel="ice-server"`
			if user != "" {
				l += `; username="` + quote(user) + `"; credential="` + quote(cred) + `"; credential-type="password"`
			}
			out = append(out, l)
		}
	}
	return out
}

// DefaultTURNTTL is the validity of short-lived TURN credentials.
const DefaultTURNTTL = time.Hour

// turnREST makes a short-lived TURN credential from the server's shared
// secret, as coturn's use-auth-secret checks it (draft-uberti-behave-
// turn-rest-00 section 2.2): the username is the expiry as a Unix time,
// then ":" and a tag (tag "seance" when empty); the password is
// base64(HMAC-SHA1(secret, username)).
func turnREST(secret, tag string, expiry time.Time) (username, credential string) {
	username = strconv.FormatInt(expiry.Unix(), 10) + ":" + cmp.Or(tag, "seance")
	mac := hmac.New(sha1.New, []byte(secret))
	mac.Write([]byte(username))
	return username, base64.StdEncoding.EncodeToString(mac.Sum(nil))
}

func quote(s string) string {
	return strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(s)
}
