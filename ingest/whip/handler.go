package whip

import (
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/seance-relay/seance/addrlimit"
	"github.com/seance-relay/seance/configs"
	pubwebrtc "github.com/seance-relay/seance/publish/webrtc"
	"github.com/seance-relay/seance/relay"
)

// maxBody bounds SDP offers and trickle fragments (413 past it).
const maxBody = 64 << 10

// Handler serves WHIP (RFC 9725):
//
//	POST    /whip/{channel}       SDP offer in, 201 + SDP answer + Location
//	PATCH   /whip/{channel}/{id}  trickle ICE (application/trickle-ice-sdpfrag), 204
//	DELETE  /whip/{channel}/{id}  ends the session, 200
//	OPTIONS on both               CORS preflight, Accept-Post
//
// Every request but OPTIONS needs the channel's ingest key as Bearer token
// (RFC 9725 4.5, RFC 6750).
func (s *Server) Handler() http.Handler { return s.handler(false) }

// InternalHandler serves the same routes for seance's own publishers (the
// meeting capture's browser): the Bearer token is the channel's
// InternalToken, and the channel's publisher shows as protocol "meeting".
// Serve it on a loopback listener only.
func (s *Server) InternalHandler() http.Handler { return s.handler(true) }

func (s *Server) handler(internal bool) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /whip/{channel}", func(w http.ResponseWriter, r *http.Request) { s.post(w, r, internal) })
	mux.HandleFunc("OPTIONS /whip/{channel}", func(w http.ResponseWriter, _ *http.Request) {
		pubwebrtc.CORS(w)
		w.Header().Set("Accept-Post", "application/sdp")
		w.WriteHeader(http.StatusNoContent)
	})
	mux.HandleFunc("PATCH /whip/{channel}/{id}", func(w http.ResponseWriter, r *http.Request) { s.patch(w, r, internal) })
	mux.HandleFunc("DELETE /whip/{channel}/{id}", func(w http.ResponseWriter, r *http.Request) { s.delete(w, r, internal) })
	mux.HandleFunc("OPTIONS /whip/{channel}/{id}", func(w http.ResponseWriter, _ *http.Request) {
		pubwebrtc.CORS(w)
		w.Header().Set("Accept-Patch", "application/trickle-ice-sdpfrag")
		w.WriteHeader(http.StatusNoContent)
	})
	return mux
}

// authorized checks the Bearer token as authorized does, after the
// address's failed attempts allow it (429 with Retry-After while it backs
// off); a failure is counted, and logged once per window per address.
func (s *Server) authorized(w http.ResponseWriter, r *http.Request, key configs.Secret, internal bool) bool {
	addr := addrlimit.Parse(r.RemoteAddr)
	if internal {
		return authorized(w, r, key)
	}
	if ok, wait := s.cfg.Failures.Allow(addr); !ok {
		s.met.sessions.WithLabelValues(resultThrottled).Inc()
		w.Header().Set("Retry-After", strconv.Itoa(int(wait.Seconds())+1))
		pubwebrtc.HTTPError(w, http.StatusTooManyRequests, "too many wrong ingest keys from your address: wait before trying again")
		return false
	}
	if authorized(w, r, key) {
		return true
	}
	s.met.sessions.WithLabelValues(resultUnauthorized).Inc()
	if s.cfg.Failures.Fail(addr) {
		s.log.Warn().Str("channel", printable(r.PathValue("channel"))).Str("remote", r.RemoteAddr).Msg("WHIP: repeated wrong or missing ingest keys from one address: backing off (logged once per window)")
	} else {
		s.log.Debug().Str("channel", printable(r.PathValue("channel"))).Str("remote", r.RemoteAddr).Msg("WHIP publisher refused: wrong or missing ingest key")
	}
	return false
}

// printable keeps a client-supplied name short and safe for a log line.
func printable(s string) string {
	if len(s) > 64 {
		s = s[:64]
	}
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return '?'
		}
		return r
	}, s)
}

// authorized checks the Bearer token in constant time (configs.Secret).
// On failure it answers 401 with a challenge (RFC 6750 3).
func authorized(w http.ResponseWriter, r *http.Request, key configs.Secret) bool {
	token, ok := bearer(r.Header.Get("Authorization"))
	if ok && key.Equal(token) {
		return true
	}
	challenge := `Bearer realm="seance"`
	if ok {
		challenge += `, error="invalid_token"`
	}
	w.Header().Set("WWW-Authenticate", challenge)
	pubwebrtc.HTTPError(w, http.StatusUnauthorized, "wrong or missing ingest key: send the channel's ingest key as the Bearer token")
	return false
}

// bearer extracts the token of an Authorization header (RFC 6750 2.1; the
// scheme is case-insensitive).
func bearer(h string) (string, bool) {
	scheme, token, ok := strings.Cut(h, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	token = strings.TrimSpace(token)
	return token, token != ""
}

func (s *Server) post(w http.ResponseWriter, r *http.Request, internal bool) {
	pubwebrtc.CORS(w)
	name := r.PathValue("channel")
	ch, key, err := s.channel(name, internal)
	if err != nil {
		s.met.sessions.WithLabelValues(resultUnknownChannel).Inc()
		pubwebrtc.HTTPError(w, http.StatusNotFound, "no such channel takes WHIP pushes")
		return
	}
	if !s.authorized(w, r, key, internal) {
		return
	}
	if mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); mt != "application/sdp" {
		s.met.sessions.WithLabelValues(resultBadRequest).Inc()
		pubwebrtc.HTTPError(w, http.StatusUnsupportedMediaType, "the body must be an SDP offer (Content-Type: application/sdp)")
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
	if err != nil {
		s.met.sessions.WithLabelValues(resultBadRequest).Inc()
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			pubwebrtc.HTTPError(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("the SDP offer is larger than %d KiB", maxBody>>10))
			return
		}
		pubwebrtc.HTTPError(w, http.StatusBadRequest, "could not read the SDP offer")
		return
	}
	if len(body) == 0 {
		s.met.sessions.WithLabelValues(resultBadRequest).Inc()
		pubwebrtc.HTTPError(w, http.StatusBadRequest, "empty SDP offer")
		return
	}
	cands := pubwebrtc.NewCandidates(s.cfg.MaxCandidates)
	if err := cands.TakeOffer(string(body)); err != nil {
		s.met.sessions.WithLabelValues(resultBadRequest).Inc()
		pubwebrtc.HTTPError(w, http.StatusUnprocessableEntity, err.Error())
		return
	}
	answer, id, err := s.createSession(ch, string(body), r.RemoteAddr, internal, cands)
	switch {
	case err == nil:
	case errors.Is(err, ErrBusy), errors.Is(err, relay.ErrChannelBusy):
		s.met.sessions.WithLabelValues(resultBusy).Inc()
		s.log.Warn().Str("channel", name).Str("remote", r.RemoteAddr).Msg("WHIP publisher refused: the channel already has a live publisher")
		pubwebrtc.HTTPError(w, http.StatusConflict, "the channel already has a live publisher")
		return
	case errors.Is(err, ErrNoH264):
		s.met.sessions.WithLabelValues(resultUnsupported).Inc()
		s.log.Warn().Str("channel", name).Str("remote", r.RemoteAddr).Err(err).Msg("WHIP publisher refused")
		pubwebrtc.HTTPError(w, http.StatusBadRequest, strings.TrimPrefix(err.Error(), ErrBadOffer.Error()+": "))
		return
	case errors.Is(err, ErrBadOffer):
		s.met.sessions.WithLabelValues(resultBadRequest).Inc()
		pubwebrtc.HTTPError(w, http.StatusBadRequest, err.Error())
		return
	case errors.Is(err, ErrShuttingDown):
		s.met.sessions.WithLabelValues(resultUnavailable).Inc()
		w.Header().Set("Retry-After", "5")
		pubwebrtc.HTTPError(w, http.StatusServiceUnavailable, "the server is restarting: try again shortly")
		return
	default:
		s.met.sessions.WithLabelValues(resultError).Inc()
		s.log.Error().Err(err).Str("channel", name).Msg("WHIP session failed")
		pubwebrtc.HTTPError(w, http.StatusInternalServerError, "could not start the session")
		return
	}
	s.met.sessions.WithLabelValues(resultAccepted).Inc()
	h := w.Header()
	h.Set("Content-Type", "application/sdp")
	h.Set("Location", "/whip/"+url.PathEscape(name)+"/"+id)
	h.Set("ETag", `"`+id+`"`)
	h.Set("Accept-Patch", "application/trickle-ice-sdpfrag")
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusCreated)
	_, _ = io.WriteString(w, answer)
}

// sessionFor authorises a request on a session URL and returns the session.
func (s *Server) sessionFor(w http.ResponseWriter, r *http.Request, internal bool) (*session, bool) {
	pubwebrtc.CORS(w)
	_, key, err := s.channel(r.PathValue("channel"), internal)
	if err != nil {
		pubwebrtc.HTTPError(w, http.StatusNotFound, "no such session")
		return nil, false
	}
	if !s.authorized(w, r, key, internal) {
		return nil, false
	}
	sess, err := s.session(r.PathValue("channel"), r.PathValue("id"))
	if err != nil || sess.internal != internal {
		pubwebrtc.HTTPError(w, http.StatusNotFound, "no such session")
		return nil, false
	}
	return sess, true
}

// patch takes trickled ICE candidates (RFC 8840 fragments, RFC 9725 4.3).
// ICE restarts are not supported: the publisher starts a new session.
func (s *Server) patch(w http.ResponseWriter, r *http.Request, internal bool) {
	sess, ok := s.sessionFor(w, r, internal)
	if !ok {
		return
	}
	pubwebrtc.PatchTrickleBounded(w, r, sess.pc, sess.id, sess.cands)
}

// delete ends the session (RFC 9725 4.2); the channel enters its grace
// period.
func (s *Server) delete(w http.ResponseWriter, r *http.Request, internal bool) {
	sess, ok := s.sessionFor(w, r, internal)
	if !ok {
		return
	}
	sess.end("deleted")
	w.WriteHeader(http.StatusOK)
}
