package webrtc

import (
	"encoding/hex"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/pion/webrtc/v4"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"
)

// iceServers are advertised in every protocol test.
var iceServers = []ICEServer{
	{URLs: []string{"stun:stun.example.org:3478"}},
	{URLs: []string{"turn:turn.example.org:3478?transport=udp", "turns:turn.example.org:5349"}, Username: `mairie"1`, Credential: `s3cr\et`},
}

var wantLinks = []string{
	`<stun:stun.example.org:3478>; rel="ice-server"`,
	`<turn:turn.example.org:3478?transport=udp>; rel="ice-server"; username="mairie\"1"; credential="s3cr\\et"; credential-type="password"`,
	`<turns:turn.example.org:5349>; rel="ice-server"; username="mairie\"1"; credential="s3cr\\et"; credential-type="password"`,
}

// session starts a WHEP session with a pion offer and returns its
// Location, ETag and offer.
func (e *env) session(t *testing.T) (location, etag, offer string) {
	t.Helper()
	offer = makeOffer(t, playOffer)
	resp, body := e.post(t, "demo", offer)
	require.Equal(t, http.StatusCreated, resp.StatusCode, body)
	return resp.Header.Get("Location"), resp.Header.Get("ETag"), offer
}

// connected starts a WHEP session whose viewer connects and plays: it
// holds a viewer seat (a pending one does not).
func (e *env) connected(t *testing.T) {
	t.Helper()
	c := newClient(t, clientOpts{})
	c.post(e, "demo")
	c.waitFirstVideo(5 * time.Second)
}

// sdpAttr returns the first a=<name>: value of an SDP.
func sdpAttr(sdp, name string) string {
	for line := range strings.Lines(sdp) {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "a="+name+":"); ok {
			return v
		}
	}
	return ""
}

// sdpfrag is an RFC 8840 trickle fragment for the offer's ICE session.
func sdpfrag(offer, ufrag, candidate string) []byte {
	if ufrag == "" {
		ufrag = sdpAttr(offer, "ice-ufrag")
	}
	return []byte("a=ice-ufrag:" + ufrag + "\r\na=ice-pwd:" + sdpAttr(offer, "ice-pwd") + "\r\n" +
		"m=video 9 UDP/TLS/RTP/SAVPF 0\r\na=mid:0\r\na=" + candidate + "\r\n")
}

const (
	goodCandidate = "candidate:1 1 udp 2130706431 127.0.0.1 9 typ host"
	sdpFrag       = "application/trickle-ice-sdpfrag"
)

func readTestdata(t testing.TB, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	require.NoError(t, err)
	return string(b)
}

func TestWHEPProtocol(t *testing.T) {
	type result struct {
		resp *http.Response
		body string
	}
	for _, tc := range []struct {
		name    string
		env     envOpts
		do      func(t *testing.T, e *env) result
		status  int
		header  map[string]string // exact values; "" means absent
		body    string            // substring of the body
		refused string            // seance_viewer_refused_total reason incremented once
		viewers int               // Viewers("demo") afterwards
		check   func(t *testing.T, e *env, r result)
	}{
		{
			name: "offer: 201 with the answer, Location, ETag and ICE servers",
			do: func(t *testing.T, e *env) result {
				r, b := e.post(t, "demo", makeOffer(t, playOffer))
				return result{r, b}
			},
			status: http.StatusCreated,
			header: map[string]string{
				"Content-Type":                "application/sdp",
				"Accept-Patch":                sdpFrag,
				"Cache-Control":               "no-store",
				"Access-Control-Allow-Origin": "*",
			},
			body:    "v=0",
			viewers: 1,
			check: func(t *testing.T, e *env, r result) {
				loc := r.resp.Header.Get("Location")
				id, ok := strings.CutPrefix(loc, "/whep/demo/")
				require.True(t, ok, loc)
				require.Len(t, id, 32)
				require.Equal(t, `"`+id+`"`, r.resp.Header.Get("ETag"))
				require.Equal(t, wantLinks, r.resp.Header.Values("Link"))
				require.Contains(t, r.resp.Header.Get("Access-Control-Expose-Headers"), "Location")
				require.Contains(t, r.resp.Header.Get("Access-Control-Expose-Headers"), "ETag")
				// The answer advertises the stream's own profile (RFC 6184
				// 8.1), sends H.264 and Opus, and has host candidates.
				require.Contains(t, r.body, "a=sendonly")
				require.Contains(t, r.body, "opus/48000/2")
				require.Contains(t, r.body, "a=candidate:")
				require.Contains(t, r.body, "a=end-of-candidates")
				ch, _ := e.hub.Channel("demo")
				require.Equal(t, hex.EncodeToString(ch.Tracks().Video.SPS[1:4]), fmtpOf(r.body, "profile-level-id"))
			},
		},
		{
			name: "offer with a charset parameter: 201",
			do: func(t *testing.T, e *env) result {
				r, b := e.do(t, http.MethodPost, "/whep/demo", "application/sdp; charset=utf-8", []byte(makeOffer(t, playOffer)))
				return result{r, b}
			},
			status:  http.StatusCreated,
			header:  map[string]string{"Content-Type": "application/sdp"},
			viewers: 1,
		},
		{
			name: "Chrome offer with several H.264 profiles: 201, the stream's profile is picked",
			do: func(t *testing.T, e *env) result {
				r, b := e.post(t, "demo", readTestdata(t, "chrome_offer.sdp"))
				return result{r, b}
			},
			status:  http.StatusCreated,
			header:  map[string]string{"Content-Type": "application/sdp"},
			viewers: 1,
			check: func(t *testing.T, e *env, r result) {
				// The demo clip is x264's Main (4d40): Chrome offers Main
				// as 4d00, payload type 127 (packetization-mode 1) and 39
				// (mode 0). The answer keeps 127 alone, with the stream's
				// profile-level-id.
				require.Regexp(t, `m=video 9 UDP/TLS/RTP/SAVPF 127\r\n`, r.body)
				require.Equal(t, 1, strings.Count(r.body, "H264/90000"), r.body)
				ch, _ := e.hub.Channel("demo")
				require.Contains(t, r.body, "a=fmtp:127 level-asymmetry-allowed=1;packetization-mode=1;profile-level-id="+hex.EncodeToString(ch.Tracks().Video.SPS[1:4])+"\r\n")
				require.Contains(t, r.body, "a=mid:1")
				require.Contains(t, r.body, "a=rtpmap:111 opus/48000/2")
			},
		},
		{
			name: "OPTIONS on the channel: 204 with Accept-Post and CORS",
			do: func(t *testing.T, e *env) result {
				r, b := e.do(t, http.MethodOptions, "/whep/demo", "", nil,
					"Origin", "https://mairie.example", "Access-Control-Request-Method", "POST")
				return result{r, b}
			},
			status: http.StatusNoContent,
			header: map[string]string{
				"Accept-Post":                  "application/sdp",
				"Access-Control-Allow-Origin":  "*",
				"Access-Control-Allow-Methods": "POST, PATCH, DELETE, OPTIONS",
				"Access-Control-Allow-Headers": "Content-Type, If-Match, Authorization",
			},
			check: func(t *testing.T, e *env, r result) {
				require.Equal(t, wantLinks, r.resp.Header.Values("Link"))
			},
		},
		{
			name: "OPTIONS on a session: 204 with Accept-Patch",
			do: func(t *testing.T, e *env) result {
				loc, _, _ := e.session(t)
				r, b := e.do(t, http.MethodOptions, loc, "", nil)
				return result{r, b}
			},
			status:  http.StatusNoContent,
			header:  map[string]string{"Accept-Patch": sdpFrag, "Access-Control-Allow-Origin": "*"},
			viewers: 1,
		},
		{
			name: "PATCH a trickled candidate: 204",
			do: func(t *testing.T, e *env) result {
				loc, etag, offer := e.session(t)
				r, b := e.do(t, http.MethodPatch, loc, sdpFrag, sdpfrag(offer, "", goodCandidate), "If-Match", etag)
				return result{r, b}
			},
			status:  http.StatusNoContent,
			header:  map[string]string{"Access-Control-Allow-Origin": "*"},
			viewers: 1,
		},
		{
			name: "PATCH with If-Match *: 204",
			do: func(t *testing.T, e *env) result {
				loc, _, offer := e.session(t)
				r, b := e.do(t, http.MethodPatch, loc, sdpFrag, sdpfrag(offer, "", goodCandidate), "If-Match", "*")
				return result{r, b}
			},
			status:  http.StatusNoContent,
			viewers: 1,
		},
		{
			name: "PATCH with another session's ETag: 412",
			do: func(t *testing.T, e *env) result {
				loc, _, offer := e.session(t)
				_, other, _ := e.session(t)
				r, b := e.do(t, http.MethodPatch, loc, sdpFrag, sdpfrag(offer, "", goodCandidate), "If-Match", other)
				return result{r, b}
			},
			status:  http.StatusPreconditionFailed,
			body:    "ETag",
			viewers: 2,
		},
		{
			name: "PATCH with the wrong content type: 415",
			do: func(t *testing.T, e *env) result {
				loc, etag, offer := e.session(t)
				r, b := e.do(t, http.MethodPatch, loc, "application/sdp", sdpfrag(offer, "", goodCandidate), "If-Match", etag)
				return result{r, b}
			},
			status:  http.StatusUnsupportedMediaType,
			body:    "trickle-ice-sdpfrag",
			viewers: 1,
		},
		{
			name: "PATCH an unknown session: 404",
			do: func(t *testing.T, e *env) result {
				r, b := e.do(t, http.MethodPatch, "/whep/demo/00112233445566778899aabbccddeeff", sdpFrag, []byte("a=candidate:x\r\n"))
				return result{r, b}
			},
			status: http.StatusNotFound,
			body:   "no such session",
		},
		{
			name: "PATCH with a new ufrag (ICE restart): 422",
			do: func(t *testing.T, e *env) result {
				loc, etag, offer := e.session(t)
				r, b := e.do(t, http.MethodPatch, loc, sdpFrag, sdpfrag(offer, "restart1", goodCandidate), "If-Match", etag)
				return result{r, b}
			},
			status:  http.StatusUnprocessableEntity,
			body:    "ICE restart",
			viewers: 1,
		},
		{
			name: "PATCH a malformed candidate: 400",
			do: func(t *testing.T, e *env) result {
				loc, etag, offer := e.session(t)
				r, b := e.do(t, http.MethodPatch, loc, sdpFrag, sdpfrag(offer, "", "candidate:nonsense"), "If-Match", etag)
				return result{r, b}
			},
			status:  http.StatusBadRequest,
			body:    "bad ICE candidate",
			viewers: 1,
		},
		{
			name: "DELETE: 200, the viewer is gone",
			do: func(t *testing.T, e *env) result {
				loc, _, _ := e.session(t)
				r, b := e.do(t, http.MethodDelete, loc, "", nil)
				return result{r, b}
			},
			status: http.StatusOK,
			header: map[string]string{"Access-Control-Allow-Origin": "*"},
			check: func(t *testing.T, e *env, _ result) {
				require.Equal(t, 1.0, e.ended("deleted"))
			},
		},
		{
			name: "DELETE twice: 404",
			do: func(t *testing.T, e *env) result {
				loc, _, _ := e.session(t)
				r, b := e.do(t, http.MethodDelete, loc, "", nil)
				require.Equal(t, http.StatusOK, r.StatusCode, b)
				r, b = e.do(t, http.MethodDelete, loc, "", nil)
				return result{r, b}
			},
			status: http.StatusNotFound,
			body:   "no such session",
		},
		{
			name: "DELETE a session through another channel: 404",
			do: func(t *testing.T, e *env) result {
				loc, _, _ := e.session(t)
				r, b := e.do(t, http.MethodDelete, strings.Replace(loc, "/demo/", "/idle/", 1), "", nil)
				return result{r, b}
			},
			status:  http.StatusNotFound,
			viewers: 1,
		},
		{
			name: "unknown channel: 404",
			do: func(t *testing.T, e *env) result {
				r, b := e.post(t, "nowhere", makeOffer(t, playOffer))
				return result{r, b}
			},
			status: http.StatusNotFound,
			body:   "no such channel",
		},
		{
			name: "channel not live: 409 with Retry-After",
			do: func(t *testing.T, e *env) result {
				r, b := e.post(t, "idle", makeOffer(t, playOffer))
				return result{r, b}
			},
			status:  http.StatusConflict,
			header:  map[string]string{"Retry-After": "5", "Access-Control-Allow-Origin": "*"},
			body:    "not started",
			refused: "not_live",
		},
		{
			name: "publisher gone past the grace period: 409",
			env:  envOpts{idle: true},
			do: func(t *testing.T, e *env) result {
				r, b := e.post(t, "demo", makeOffer(t, playOffer))
				return result{r, b}
			},
			status:  http.StatusConflict,
			header:  map[string]string{"Retry-After": "5"},
			refused: "not_live",
		},
		{
			name: "server limit: 503 with Retry-After once a viewer connected",
			env:  envOpts{cfg: Config{MaxViewers: 1}},
			do: func(t *testing.T, e *env) result {
				e.connected(t)
				r, b := e.post(t, "demo", makeOffer(t, playOffer))
				return result{r, b}
			},
			status:  http.StatusServiceUnavailable,
			header:  map[string]string{"Retry-After": "30", "Access-Control-Allow-Origin": "*"},
			body:    "too many viewers",
			refused: "server_full",
			viewers: 1,
		},
		{
			name: "server limit counts every channel: a slot freed by DELETE is taken again",
			env:  envOpts{cfg: Config{MaxViewers: 1}},
			do: func(t *testing.T, e *env) result {
				loc, _, _ := e.session(t)
				r, b := e.do(t, http.MethodDelete, loc, "", nil)
				require.Equal(t, http.StatusOK, r.StatusCode, b)
				require.Eventually(t, func() bool { return e.srv.Viewers("demo") == 0 }, 5*time.Second, time.Millisecond)
				r, b = e.post(t, "demo", makeOffer(t, playOffer))
				return result{r, b}
			},
			status:  http.StatusCreated,
			viewers: 1,
		},
		{
			name: "channel limit: 503 with Retry-After once a viewer connected",
			env:  envOpts{cfg: Config{ChannelMaxViewers: map[string]int{"demo": 1}}},
			do: func(t *testing.T, e *env) result {
				e.connected(t)
				r, b := e.post(t, "demo", makeOffer(t, playOffer))
				return result{r, b}
			},
			status:  http.StatusServiceUnavailable,
			header:  map[string]string{"Retry-After": "30"},
			body:    "too many viewers",
			refused: "channel_full",
			viewers: 1,
		},
		{
			name: "garbage SDP: 400",
			do: func(t *testing.T, e *env) result {
				r, b := e.post(t, "demo", "this is not SDP")
				return result{r, b}
			},
			status:  http.StatusBadRequest,
			body:    "bad SDP offer",
			refused: "bad_request",
		},
		{
			name: "empty body: 400",
			do: func(t *testing.T, e *env) result {
				r, b := e.post(t, "demo", "")
				return result{r, b}
			},
			status:  http.StatusBadRequest,
			body:    "empty SDP offer",
			refused: "bad_request",
		},
		{
			name: "offer without a video m-line (« Son seul »): 201, audio only",
			do: func(t *testing.T, e *env) result {
				r, b := e.post(t, "demo", makeOffer(t, offerOpts{audio: webrtc.RTPTransceiverDirectionRecvonly}))
				return result{r, b}
			},
			status:  http.StatusCreated,
			viewers: 1,
			check: func(t *testing.T, e *env, r result) {
				require.NotContains(t, r.body, "m=video")
				require.Regexp(t, `m=audio 9 UDP/TLS/RTP/SAVPF 111\r\n`, r.body)
				require.Contains(t, r.body, "a=sendonly")
			},
		},
		{
			name: "audio-only sendonly offer: 400",
			do: func(t *testing.T, e *env) result {
				r, b := e.post(t, "demo", makeOffer(t, offerOpts{audio: webrtc.RTPTransceiverDirectionSendonly}))
				return result{r, b}
			},
			status:  http.StatusBadRequest,
			body:    "does not receive Opus audio",
			refused: "bad_request",
		},
		{
			name: "sendonly offer (a publisher, not a viewer): 400",
			do: func(t *testing.T, e *env) result {
				r, b := e.post(t, "demo", makeOffer(t, offerOpts{video: webrtc.RTPTransceiverDirectionSendonly, audio: webrtc.RTPTransceiverDirectionSendonly}))
				return result{r, b}
			},
			status:  http.StatusBadRequest,
			body:    "does not receive H.264 video",
			refused: "bad_request",
		},
		{
			name: "Chrome offer with Baseline only: 201 on its payload type, as offered",
			do: func(t *testing.T, e *env) result {
				r, b := e.post(t, "demo", chromeOffer(t, "96", "106", "107"))
				return result{r, b}
			},
			status:  http.StatusCreated,
			viewers: 1,
			check: func(t *testing.T, e *env, r result) {
				require.Regexp(t, `m=video 9 UDP/TLS/RTP/SAVPF 106\r\n`, r.body)
				require.Contains(t, r.body, "a=fmtp:106 level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f\r\n")
			},
		},
		{
			name: "offer with H.264 in packetization-mode 0 only: 400",
			do: func(t *testing.T, e *env) result {
				r, b := e.post(t, "demo", chromeOffer(t, "104", "108", "39"))
				return result{r, b}
			},
			status:  http.StatusBadRequest,
			body:    "does not receive H.264 video",
			refused: "bad_request",
		},
		{
			name: "offer without H.264: 400",
			do: func(t *testing.T, e *env) result {
				r, b := e.post(t, "demo", chromeOffer(t, "96", "97", "98", "45"))
				return result{r, b}
			},
			status:  http.StatusBadRequest,
			body:    "does not receive H.264 video",
			refused: "bad_request",
		},
		{
			name: "body over 64 KiB: 413",
			do: func(t *testing.T, e *env) result {
				offer := makeOffer(t, playOffer)
				offer += "a=x-pad:" + strings.Repeat("x", 64<<10-len(offer)) + "\r\n"
				r, b := e.post(t, "demo", offer)
				return result{r, b}
			},
			status:  http.StatusRequestEntityTooLarge,
			body:    "64 KiB",
			refused: "bad_request",
		},
		{
			name: "POST with the wrong content type: 415",
			do: func(t *testing.T, e *env) result {
				r, b := e.do(t, http.MethodPost, "/whep/demo", "text/plain", []byte(makeOffer(t, playOffer)))
				return result{r, b}
			},
			status:  http.StatusUnsupportedMediaType,
			body:    "application/sdp",
			refused: "bad_request",
		},
		{
			name: "POST without a content type: 415",
			do: func(t *testing.T, e *env) result {
				r, b := e.do(t, http.MethodPost, "/whep/demo", "", []byte(makeOffer(t, playOffer)))
				return result{r, b}
			},
			status:  http.StatusUnsupportedMediaType,
			refused: "bad_request",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			opts := tc.env
			opts.ice = iceServers
			e := newEnv(t, opts)
			r := tc.do(t, e)
			require.Equal(t, tc.status, r.resp.StatusCode, r.body)
			for k, v := range tc.header {
				require.Equal(t, v, r.resp.Header.Get(k), k)
			}
			require.Contains(t, r.body, tc.body)
			if tc.status >= 400 {
				require.Equal(t, "text/plain; charset=utf-8", r.resp.Header.Get("Content-Type"))
				require.NotEmpty(t, strings.TrimSpace(r.body), "an error has a message")
			}
			for _, reason := range []string{"not_live", "channel_full", "server_full", "bad_request"} {
				want := 0.0
				if reason == tc.refused {
					want = 1
				}
				require.Equal(t, want, testutil.ToFloat64(e.srv.met.refused.WithLabelValues(reason)), reason)
			}
			require.Eventually(t, func() bool { return e.srv.Viewers("demo") == tc.viewers }, 5*time.Second, time.Millisecond,
				"Viewers(demo) = %d, want %d", e.srv.Viewers("demo"), tc.viewers)
			if tc.check != nil {
				tc.check(t, e, r)
			}
		})
	}
}

// chromeOffer returns testdata/chrome_offer.sdp with only the given video
// payload types.
func chromeOffer(t testing.TB, keep ...string) string {
	t.Helper()
	var out strings.Builder
	video := false
	for line := range strings.Lines(readTestdata(t, "chrome_offer.sdp")) {
		if strings.HasPrefix(line, "m=") {
			video = strings.HasPrefix(line, "m=video")
			if video {
				line = "m=video 9 UDP/TLS/RTP/SAVPF " + strings.Join(keep, " ") + "\r\n"
			}
		}
		if video {
			if _, rest, ok := strings.Cut(line, ":"); ok && (strings.HasPrefix(line, "a=rtpmap:") || strings.HasPrefix(line, "a=fmtp:") || strings.HasPrefix(line, "a=rtcp-fb:")) {
				pt, _, _ := strings.Cut(rest, " ")
				if !slices.Contains(keep, pt) {
					continue
				}
			}
		}
		out.WriteString(line)
	}
	return out.String()
}
