package webrtc

import (
	"io"
	"mime"
	"net/http"
	"strings"

	"github.com/pion/webrtc/v4"
)

// PatchTrickle answers a WHIP/WHEP PATCH carrying trickled ICE candidates
// (RFC 8840 SDP fragments, RFC 9725 4.3) for the session whose ETag is
// etag: 204 once the candidates are added, 415 for another content type,
// 412 when If-Match names another session, 413 past 64 KiB, 400 for a bad
// candidate, 422 for an ICE restart (a new ufrag), which seance does not
// do: the client starts a new session instead. WHEP viewers and WHIP
// publishers share it.
func PatchTrickle(w http.ResponseWriter, r *http.Request, pc *webrtc.PeerConnection, etag string) {
	PatchTrickleBounded(w, r, pc, etag, nil)
}

// PatchTrickleBounded is PatchTrickle with the session's candidate budget:
// a fragment that would take the session past it adds none of its
// candidates and gets 422. A nil budget is unbounded.
func PatchTrickleBounded(w http.ResponseWriter, r *http.Request, pc *webrtc.PeerConnection, etag string, budget *Candidates) {
	if mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); mt != "application/trickle-ice-sdpfrag" {
		HTTPError(w, http.StatusUnsupportedMediaType, "the body must be an SDP fragment (Content-Type: application/trickle-ice-sdpfrag)")
		return
	}
	if m := r.Header.Get("If-Match"); m != "" && m != "*" && m != `"`+etag+`"` {
		HTTPError(w, http.StatusPreconditionFailed, "the ETag does not match this session")
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
	if err != nil {
		HTTPError(w, http.StatusRequestEntityTooLarge, "fragment too large")
		return
	}
	if !budget.take(countCandidates(string(body))) {
		tooManyCandidates(w, budget.Max())
		return
	}
	mid := ""
	for line := range strings.Lines(string(body)) {
		line = strings.TrimRight(line, "\r\n")
		switch {
		case strings.HasPrefix(line, "a=ice-ufrag:"):
			if remote := pc.RemoteDescription(); remote != nil && !strings.Contains(remote.SDP, line) {
				HTTPError(w, http.StatusUnprocessableEntity, "ICE restart is not supported: start a new session")
				return
			}
		case strings.HasPrefix(line, "a=mid:"):
			mid = strings.TrimPrefix(line, "a=mid:")
		case strings.HasPrefix(line, "a=candidate:"):
			c := webrtc.ICECandidateInit{Candidate: strings.TrimPrefix(line, "a=")}
			if mid != "" {
				m := mid
				c.SDPMid = &m
			}
			if err := pc.AddICECandidate(c); err != nil {
				HTTPError(w, http.StatusBadRequest, "bad ICE candidate")
				return
			}
		}
	}
	w.WriteHeader(http.StatusNoContent)
}
