package webrtc

import (
	"bytes"
	"encoding/hex"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/bluenviron/mediacommon/v2/pkg/codecs/mpeg4audio"
	"github.com/pion/webrtc/v4"
	"github.com/stretchr/testify/require"

	"github.com/seance-relay/seance/relay"
)

// The demo clip's parameter sets (x264 Main, 1280x720).
var (
	demoSPS, _ = hex.DecodeString("674d401fd9005005bb0110000003001000000303c8f1832480")
	demoPPS, _ = hex.DecodeString("68ebccb2")
)

// FuzzWHEPOffer posts arbitrary bytes as the SDP offer: the handler never
// panics and answers 201 (the session is then deleted) or a 4xx with a
// message. The channel is live but still (tracks, no frames), so that
// coverage does not drift with a publisher running in the background.
func FuzzWHEPOffer(f *testing.F) {
	pion := makeOffer(f, playOffer)
	chrome := readTestdata(f, "chrome_offer.sdp")
	for _, seed := range []string{
		pion,
		chrome,
		chromeOffer(f, "127", "125"),
		strings.ReplaceAll(pion, "\r\n", "\n"),
		makeOffer(f, offerOpts{video: webrtc.RTPTransceiverDirectionSendonly}),
		makeOffer(f, offerOpts{audio: webrtc.RTPTransceiverDirectionRecvonly}),
		chrome[:len(chrome)/2],
		"",
		"v=0\r\n",
		"m=video 9 UDP/TLS/RTP/SAVPF 96\r\n",
		"\x00\xff\xfe junk \r\n\r\n",
	} {
		f.Add([]byte(seed))
	}
	e := newEnv(f, envOpts{idle: true})
	ch, err := e.hub.Channel("demo")
	require.NoError(f, err)
	pub, err := ch.Publish(relay.PublisherInfo{Protocol: "demo"}, relay.Tracks{
		Video: &relay.VideoTrack{SPS: demoSPS, PPS: demoPPS},
		Audio: &relay.AudioTrack{Config: &mpeg4audio.AudioSpecificConfig{Type: mpeg4audio.ObjectTypeAACLC, SampleRate: 48000, ChannelConfig: 2}},
	})
	require.NoError(f, err)
	f.Cleanup(pub.Close)
	h := e.srv.Handler(nil)
	f.Fuzz(func(t *testing.T, offer []byte) {
		req := httptest.NewRequest(http.MethodPost, "/whep/demo", bytes.NewReader(offer))
		req.Header.Set("Content-Type", "application/sdp")
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		switch {
		case w.Code == http.StatusCreated:
			require.Equal(t, "application/sdp", w.Header().Get("Content-Type"))
			require.True(t, strings.HasPrefix(w.Body.String(), "v=0"), w.Body.String())
			del := httptest.NewRecorder()
			h.ServeHTTP(del, httptest.NewRequest(http.MethodDelete, w.Header().Get("Location"), nil))
			require.Equal(t, http.StatusOK, del.Code, del.Body.String())
			// The session is gone before the next input.
			require.Eventually(t, func() bool { return e.srv.Viewers("demo") == 0 }, 5*time.Second, time.Millisecond)
		case w.Code >= 400 && w.Code < 500:
			require.NotEmpty(t, strings.TrimSpace(w.Body.String()), "status %d without a message", w.Code)
		default:
			t.Fatalf("status %d: %s", w.Code, w.Body.String())
		}
	})
}
