package whip

import (
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/seance-relay/seance/ingest/whip/whiptest"
)

func sdp(sections ...string) string {
	return "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n" + strings.Join(sections, "")
}

func media(kind, dir string, formats ...string) string {
	var pts, attrs []string
	for i, f := range formats {
		pt := 96 + i
		name, fmtp, _ := strings.Cut(f, " ")
		pts = append(pts, strconv.Itoa(pt))
		attrs = append(attrs, "a=rtpmap:"+strconv.Itoa(pt)+" "+name+"\r\n")
		if fmtp != "" {
			attrs = append(attrs, "a=fmtp:"+strconv.Itoa(pt)+" "+fmtp+"\r\n")
		}
	}
	s := "m=" + kind + " 9 UDP/TLS/RTP/SAVPF " + strings.Join(pts, " ") + "\r\nc=IN IP4 0.0.0.0\r\n"
	if dir != "" {
		s += "a=" + dir + "\r\n"
	}
	return s + strings.Join(attrs, "")
}

const (
	h264CB   = "H264/90000 level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f"
	h264High = "H264/90000 packetization-mode=1;profile-level-id=640032"
	h264PM0  = "H264/90000 packetization-mode=0;profile-level-id=42e01f"
	h264Hi44 = "H264/90000 packetization-mode=1;profile-level-id=f4001f"
	opus     = "opus/48000/2 minptime=10;useinbandfec=1"
)

// offerCases feeds TestCheckOffer and the fuzz seeds.
var offerCases = []struct {
	name  string
	offer string
	audio bool
	err   string // "" for success
}{
	{name: "browser", offer: sdp(media("audio", "sendonly", opus), media("video", "sendonly", "VP8/90000", h264CB, "rtx/90000 apt=97")), audio: true},
	{name: "OBS x264 high", offer: sdp(media("audio", "sendonly", opus), media("video", "sendonly", h264High)), audio: true},
	{name: "video only, sendrecv", offer: sdp(media("video", "", h264CB))},
	{name: "VP8 and AV1", offer: sdp(media("audio", "sendonly", opus), media("video", "sendonly", "VP8/90000", "AV1/90000", "rtx/90000 apt=96")),
		err: "the offer has no H.264 video: it offers AV1, VP8 (set the encoder to H.264)"},
	{name: "H.264 mode 0 only", offer: sdp(media("video", "sendonly", h264PM0)),
		err: "the offer has no H.264 video: it offers H.264 in another packetization mode or profile (set the encoder to H.264)"},
	{name: "H.264 High 4:4:4", offer: sdp(media("video", "sendonly", h264Hi44)),
		err: "the offer has no H.264 video: it offers H.264 in another packetization mode or profile"},
	{name: "audio only", offer: sdp(media("audio", "sendonly", opus)),
		err: "the offer has no H.264 video: it has no video"},
	{name: "WHEP offer", offer: sdp(media("video", "recvonly", h264CB)),
		err: "the offer has no H.264 video: it only receives video"},
	{name: "garbage", offer: "hello", err: "bad SDP offer"},
}

func TestCheckOffer(t *testing.T) {
	for _, tc := range offerCases {
		t.Run(tc.name, func(t *testing.T) {
			info, err := checkOffer(tc.offer)
			if tc.err == "" {
				require.NoError(t, err)
				require.Equal(t, tc.audio, info.audio)
				return
			}
			require.ErrorIs(t, err, ErrBadOffer)
			require.Contains(t, err.Error(), tc.err)
		})
	}
}

func TestBearer(t *testing.T) {
	for _, tc := range []struct {
		h, token string
		ok       bool
	}{
		{"Bearer abc", "abc", true},
		{"bearer abc", "abc", true},
		{"Bearer  abc ", "abc", true},
		{"Bearer", "", false},
		{"Bearer ", "", false},
		{"Basic abc", "", false},
		{"", "", false},
	} {
		token, ok := bearer(tc.h)
		require.Equal(t, tc.ok, ok, tc.h)
		require.Equal(t, tc.token, token, tc.h)
	}
}

// FuzzWHIPOffer posts offers through the whole SDP path (checks, pion's
// parser and negotiation) on a live server: every outcome is 201 or 400,
// and a created session is deleted again.
func FuzzWHIPOffer(f *testing.F) {
	for _, tc := range offerCases {
		f.Add(tc.offer)
	}
	c, err := whiptest.New(whiptest.Options{VideoCodec: "H264", ToneHz: 440})
	require.NoError(f, err)
	f.Add(c.Offer())
	c.Abandon()
	f.Add(sdp(media("video", "sendonly", h264CB), media("video", "sendonly", h264CB)))
	f.Add(sdp("m=video 0 RTP/AVP 96\r\n"))
	f.Add(strings.Replace(sdp(media("video", "sendonly", h264CB)), "a=rtpmap:96", "a=rtpmap:", 1))

	e := newEnv(f)
	h := e.srv.Handler()
	f.Fuzz(func(t *testing.T, offer string) {
		req := httptest.NewRequest(http.MethodPost, "/whip/conseil", strings.NewReader(offer))
		req.Header.Set("Content-Type", "application/sdp")
		req.Header.Set("Authorization", "Bearer "+testKey)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		switch rec.Code {
		case http.StatusCreated:
			del := httptest.NewRequest(http.MethodDelete, rec.Header().Get("Location"), nil)
			del.Header.Set("Authorization", "Bearer "+testKey)
			drec := httptest.NewRecorder()
			h.ServeHTTP(drec, del)
			require.Equal(t, http.StatusOK, drec.Code)
			require.Eventually(t, func() bool {
				e.srv.mu.Lock()
				defer e.srv.mu.Unlock()
				return len(e.srv.byChannel) == 0
			}, 5*time.Second, time.Millisecond)
		case http.StatusBadRequest:
		default:
			t.Fatalf("status %d: %s", rec.Code, rec.Body)
		}
	})
}
