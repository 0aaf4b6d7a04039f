package hls

import (
	"bytes"
	"context"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/seance-relay/seance/relay"
)

// PathPrefix is where the public server mounts Handler.
const PathPrefix = "/hls/"

// Cache-Control of each answer, for browsers and a CDN in front. Segment,
// part and init file names carry a prefix gohlslib draws at random for
// each muxer, so a name never names other content: those files are
// immutable. Playlists change with every part.
const (
	cacheImmutable = "public, max-age=86400, immutable"
	cachePlaylist  = "public, max-age=1"
	cacheError     = "no-cache"
	cacheNever     = "no-store"
)

// fileKind is what an HLS file name names, and the value of
// seance_hls_requests_total's kind label.
type fileKind string

const (
	kindPlaylist fileKind = "playlist" // index.m3u8 and the media playlists
	kindSegment  fileKind = "segment"
	kindPart     fileKind = "part" // low-latency partial segment
	kindInit     fileKind = "init" // fMP4 initialisation segment
)

// held reports whether gohlslib may hold a request for this kind of file
// until the stream has it: playlists (before the first segment, and
// low-latency blocking reloads) and parts (the preload hint names the part
// being written).
func (k fileKind) held() bool { return k == kindPlaylist || k == kindPart }

// parsePath splits "/hls/{channel}/{file}" or, for a reduced rendition
// or the audio-only one, "/hls/{channel}/{sub}/{file}", and says what the
// file is. It accepts only names seance's channels and gohlslib's files
// can have.
func parsePath(path string) (channel, sub, file string, kind fileKind, ok bool) {
	rest, found := strings.CutPrefix(path, PathPrefix)
	if !found {
		return "", "", "", "", false
	}
	channel, file, found = strings.Cut(rest, "/")
	if !found || !validName(channel, 64) {
		return "", "", "", "", false
	}
	if s, f, nested := strings.Cut(file, "/"); nested {
		if !validName(s, 64) {
			return "", "", "", "", false
		}
		sub, file = s, f
	}
	if !validName(file, 128) {
		return "", "", "", "", false
	}
	switch {
	case file == "index.m3u8", strings.HasSuffix(file, "_stream.m3u8"):
		kind = kindPlaylist
	case strings.HasSuffix(file, "_init.mp4"):
		kind = kindInit
	case numbered(file, "_part", ".mp4"):
		kind = kindPart
	case numbered(file, "_seg", ".mp4"), numbered(file, "_seg", ".ts"):
		kind = kindSegment
	default:
		return "", "", "", "", false
	}
	return channel, sub, file, kind, true
}

// validName accepts 1 to max characters among a-z A-Z 0-9 - _ and dots
// that do not start the name.
func validName(s string, max int) bool {
	if s == "" || len(s) > max || s[0] == '.' {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_' || c == '.') {
			return false
		}
	}
	return true
}

// numbered reports whether file ends with infix, digits, suffix.
func numbered(file, infix, suffix string) bool {
	base, ok := strings.CutSuffix(file, suffix)
	if !ok {
		return false
	}
	i := strings.LastIndex(base, infix)
	if i < 0 {
		return false
	}
	digits := base[i+len(infix):]
	if digits == "" || len(digits) > 20 {
		return false
	}
	for j := 0; j < len(digits); j++ {
		if digits[j] < '0' || digits[j] > '9' {
			return false
		}
	}
	return true
}

// Handler serves /hls/{channel}/… on the public server: 404 for an
// unknown or idle channel (never a hung request), CORS open to every
// origin (players on the commune's own site), cache headers for a CDN.
func (s *Server) Handler() http.Handler { return http.HandlerFunc(s.serveHTTP) }

func (s *Server) serveHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Access-Control-Allow-Origin", "*")
	// hls.js reads Age to compute low-latency delivery directives
	// behind a CDN (draft-pantos-hls-rfc8216bis, appendix C).
	h.Set("Access-Control-Expose-Headers", "Age, Date")
	switch r.Method {
	case http.MethodGet, http.MethodHead:
	case http.MethodOptions:
		h.Set("Access-Control-Allow-Methods", "GET, HEAD, OPTIONS")
		h.Set("Access-Control-Allow-Headers", "Range")
		h.Set("Access-Control-Max-Age", "86400")
		w.WriteHeader(http.StatusNoContent)
		return
	default:
		h.Set("Allow", "GET, HEAD, OPTIONS")
		s.refuse(w, http.StatusMethodNotAllowed, refusedBadRequest, "method not allowed")
		return
	}
	channel, sub, file, kind, ok := parsePath(r.URL.Path)
	if !ok {
		s.refuse(w, http.StatusNotFound, refusedBadRequest, "not an HLS file")
		return
	}
	ch, err := s.hub.Channel(channel)
	if err != nil {
		s.refuse(w, http.StatusNotFound, refusedUnknownChannel, "no such channel")
		return
	}
	hold := time.NewTimer(s.hold)
	defer hold.Stop()
	if sub == "" && file == "index.m3u8" && len(ch.Renditions()) > 0 {
		s.serveMultivariant(w, r, ch, hold.C)
		return
	}
	f, ok := feedOf(ch, sub)
	if !ok {
		// A subdirectory that names none of the channel's renditions.
		s.refuse(w, http.StatusNotFound, refusedBadRequest, "not an HLS file")
		return
	}
	mx := s.waitMuxer(w, r, f, hold.C)
	if mx == nil {
		return
	}
	key := s.viewers.clientKey(r)
	s.viewers.seenFrom(channel, key, s.viewers.addrKey(r), s.now())
	if file != "index.m3u8" {
		// Media playlists and segments say which rendition plays.
		s.quality.seenFrom(channel+"/"+f.quality(), key, s.viewers.addrKey(r), s.now())
	}
	if kind.held() {
		s.serveHeld(w, r, mx, channel, file, kind, hold.C)
		return
	}
	rw := &responseWriter{ResponseWriter: w, s: s, channel: channel, kind: kind}
	mx.m.Handle(rw, r)
	if !rw.wrote {
		// gohlslib writes nothing for a file it does not have.
		s.refuse(w, http.StatusNotFound, refusedNotFound, "no such file (it may have expired)")
	}
}

// waitMuxer returns the channel's muxer. A channel that is live but has
// no muxer yet (its first keyframe is on its way) is waited for until hold
// fires; otherwise, or if the client leaves, it answers and returns nil.
func (s *Server) waitMuxer(w http.ResponseWriter, r *http.Request, f feedSpec, hold <-chan time.Time) *muxer {
	for {
		mx, changed := s.watchMuxer(f.key)
		if mx != nil {
			return mx
		}
		state, stateChanged := f.ch.State()
		if state == relay.StateIdle {
			s.refuse(w, http.StatusNotFound, refusedNotLive, "channel is not live")
			return nil
		}
		if !s.wait(w, r, hold, changed, stateChanged) {
			return nil
		}
	}
}

// wait waits until a or b is closed and reports true. When the hold bound
// fires first, it answers 503 and reports false; when the client leaves,
// false (b may be nil).
func (s *Server) wait(w http.ResponseWriter, r *http.Request, hold <-chan time.Time, a, b <-chan struct{}) bool {
	s.met.held.Inc()
	defer s.met.held.Dec()
	select {
	case <-a:
		return true
	case <-b:
		return true
	case <-hold:
		// draft-pantos-hls-rfc8216bis 6.2.5.2 lets a server that cannot
		// deliver a blocking reload in time answer 503.
		w.Header().Set("Retry-After", "1")
		s.refuse(w, http.StatusServiceUnavailable, refusedTimeout, "not available yet, try again")
		return false
	case <-r.Context().Done():
		return false // the client left
	}
}

// serveHTTP's held requests run gohlslib's handler on a helper goroutine
// that answers into a buffer, while the request waits for it at most
// s.hold, or until the client leaves. A helper that outlives its request
// stays blocked in gohlslib until the stream makes progress or the muxer
// closes (muxer.close waits for it); slots bound how many there may be.
func (s *Server) serveHeld(w http.ResponseWriter, r *http.Request, mx *muxer, channel, file string, kind fileKind, hold <-chan time.Time) {
	select {
	case mx.slots <- struct{}{}:
	default:
		if mx.closed.Load() {
			s.refuse(w, http.StatusNotFound, refusedNotLive, "channel is not live")
		} else {
			w.Header().Set("Retry-After", "1")
			s.refuse(w, http.StatusServiceUnavailable, refusedBusy, "too many waiting requests, try again")
		}
		return
	}
	rec := &recorder{header: http.Header{}}
	req := r.Clone(context.Background())
	done := make(chan struct{})
	go func() {
		defer func() {
			<-mx.slots
			close(done)
		}()
		mx.m.Handle(rec, req)
	}()
	if !s.wait(w, r, hold, done, nil) {
		return
	}
	if rec.code == 0 && rec.body.Len() == 0 {
		s.refuse(w, http.StatusNotFound, refusedNotFound, "no such file (it may have expired)")
		return
	}
	if rec.code == 0 {
		rec.code = http.StatusOK
	}
	if ct := rec.header.Get("Content-Type"); ct != "" {
		w.Header().Set("Content-Type", ct)
	}
	if rec.code >= 400 {
		reason := refusedError
		switch {
		case rec.code == http.StatusBadRequest: // _HLS_msn or _HLS_part out of range
			reason = refusedBadRequest
		case rec.code == http.StatusNotFound && mx.closed.Load():
			reason = refusedNotLive
		case rec.code == http.StatusNotFound:
			reason = refusedNotFound
		}
		s.refuse(w, rec.code, reason, strings.ToLower(http.StatusText(rec.code)))
		return
	}
	body := rec.body.Bytes()
	if kind == kindPlaylist {
		body = mx.playlist(file, body)
	}
	s.met.requests.WithLabelValues(channel, string(kind)).Inc()
	s.met.bytes.WithLabelValues(channel).Add(float64(len(body)))
	w.Header().Set("Cache-Control", cacheControl(kind))
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(rec.code)
	_, _ = w.Write(body)
}

// refuse answers with a short plain-text error.
func (s *Server) refuse(w http.ResponseWriter, code int, reason, msg string) {
	s.met.refused.WithLabelValues(reason).Inc()
	h := w.Header()
	h.Del("Content-Length")
	h.Set("Content-Type", "text/plain; charset=utf-8")
	if code == http.StatusServiceUnavailable {
		h.Set("Cache-Control", cacheNever)
	} else {
		h.Set("Cache-Control", cacheError)
	}
	w.WriteHeader(code)
	_, _ = w.Write([]byte(msg + "\n"))
}

func cacheControl(kind fileKind) string {
	if kind == kindPlaylist {
		return cachePlaylist
	}
	return cacheImmutable
}

// responseWriter passes gohlslib's answer of a file it serves at once
// (segments, init) through, with seance's cache headers, and counts it.
type responseWriter struct {
	http.ResponseWriter
	s       *Server
	channel string
	kind    fileKind
	wrote   bool
}

func (rw *responseWriter) WriteHeader(code int) {
	if rw.wrote {
		return
	}
	rw.wrote = true
	if code < 400 {
		rw.Header().Set("Cache-Control", cacheControl(rw.kind))
		rw.s.met.requests.WithLabelValues(rw.channel, string(rw.kind)).Inc()
	} else {
		rw.s.met.refused.WithLabelValues(refusedError).Inc()
		rw.Header().Set("Cache-Control", cacheError)
	}
	rw.ResponseWriter.WriteHeader(code)
}

func (rw *responseWriter) Write(p []byte) (int, error) {
	if !rw.wrote {
		rw.WriteHeader(http.StatusOK)
	}
	n, err := rw.ResponseWriter.Write(p)
	rw.s.met.bytes.WithLabelValues(rw.channel).Add(float64(n))
	return n, err
}

// recorder is the buffer a helper goroutine answers into.
type recorder struct {
	header http.Header
	code   int
	body   bytes.Buffer
}

func (r *recorder) Header() http.Header { return r.header }

func (r *recorder) WriteHeader(code int) {
	if r.code == 0 {
		r.code = code
	}
}

func (r *recorder) Write(p []byte) (int, error) {
	if r.code == 0 {
		r.code = http.StatusOK
	}
	return r.body.Write(p)
}
