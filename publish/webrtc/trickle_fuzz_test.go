package webrtc

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/pion/webrtc/v4"
)

// FuzzTrickle feeds the trickle-fragment parser (RFC 8840 fragments in a
// WHEP/WHIP PATCH) any body: it answers 204, 400, 413, 415 or 422, never
// takes more candidates than the budget, and never panics. The
// PeerConnection has a remote description but no local one, so its ICE
// agent never starts: the fuzzer's addresses get no packet.
func FuzzTrickle(f *testing.F) {
	offer := makeOffer(f, playOffer)
	ufrag, pwd := sdpAttr(offer, "ice-ufrag"), sdpAttr(offer, "ice-pwd")
	head := "a=ice-ufrag:" + ufrag + "\r\na=ice-pwd:" + pwd + "\r\nm=video 9 UDP/TLS/RTP/SAVPF 0\r\na=mid:0\r\n"
	for _, s := range []string{
		head + "a=" + goodCandidate + "\r\n",
		head + "a=candidate:1 1 udp 1 203.0.113.7 9 typ srflx raddr 0.0.0.0 rport 0\r\na=end-of-candidates\r\n",
		head + candidates(0, 40),
		"a=ice-ufrag:other\r\n" + "a=" + goodCandidate + "\r\n",
		head + "a=candidate:garbage\r\n",
		"a=mid:\r\na=candidate:\r\n\r\n\n",
		"",
	} {
		f.Add([]byte(s), "application/trickle-ice-sdpfrag")
	}
	f.Add([]byte(head), "text/plain")
	pc, err := webrtc.NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { _ = pc.Close() })
	if err := pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeOffer, SDP: offer}); err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, body []byte, contentType string) {
		budget := NewCandidates(4)
		req := httptest.NewRequest(http.MethodPatch, "/whep/demo/x", bytes.NewReader(body))
		req.Header.Set("Content-Type", contentType)
		rec := httptest.NewRecorder()
		PatchTrickleBounded(rec, req, pc, "x", budget)
		switch rec.Code {
		case http.StatusNoContent, http.StatusBadRequest, http.StatusRequestEntityTooLarge,
			http.StatusUnsupportedMediaType, http.StatusUnprocessableEntity:
		default:
			t.Fatalf("status %d", rec.Code)
		}
		if budget.used.Load() > 4 {
			t.Fatalf("%d candidates taken, budget 4", budget.used.Load())
		}
	})
}
