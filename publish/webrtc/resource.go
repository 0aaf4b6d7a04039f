package webrtc

import (
	"io"
	"net/http"
)

// CORS lets a page on another origin use a WHIP or WHEP resource (RFC 9725
// 4.4): a commune's website embedding the player, a browser publishing.
// No cookie is involved; a WHIP publisher is authorised by its Bearer
// token, not by its origin.
func CORS(w http.ResponseWriter) {
	h := w.Header()
	h.Set("Access-Control-Allow-Origin", "*")
	h.Set("Access-Control-Allow-Methods", "POST, PATCH, DELETE, OPTIONS")
	h.Set("Access-Control-Allow-Headers", "Content-Type, If-Match, Authorization")
	h.Set("Access-Control-Expose-Headers", "Location, ETag, Link, Accept-Patch, Retry-After, WWW-Authenticate")
}

// HTTPError answers a WHIP or WHEP request with a short plain-text message
// for people.
func HTTPError(w http.ResponseWriter, status int, msg string) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = io.WriteString(w, msg+"\n")
}
