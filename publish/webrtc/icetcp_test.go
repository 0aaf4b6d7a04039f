package webrtc

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/pion/interceptor"
	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
	"github.com/stretchr/testify/require"

	"github.com/seance-relay/seance/ingest/demo"
	"github.com/seance-relay/seance/relay"
)

// TestICETCP: a viewer whose network blocks UDP reaches the relay over its
// one ICE-TCP port and plays.
func TestICETCP(t *testing.T) {
	log := zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.WarnLevel)
	reg := prometheus.NewRegistry()
	hub := relay.NewHub([]relay.ChannelConfig{{Name: "demo", Grace: time.Second}}, log, relay.NewMetrics(reg))
	srv, err := New(Config{Host: "127.0.0.1", TCPPort: -1, IncludeLoopback: true}, hub, log, reg)
	require.NoError(t, err)
	require.NotNil(t, srv.TCPAddr())
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{}, 3)
	go func() { _ = hub.Run(ctx); done <- struct{}{} }()
	go func() { _ = srv.Run(ctx); done <- struct{}{} }()
	ch, _ := hub.Channel("demo")
	src, err := demo.New(ch, log)
	require.NoError(t, err)
	go func() { _ = src.Run(ctx); done <- struct{}{} }()
	hs := httptest.NewServer(srv.Handler(nil))
	defer func() {
		hs.Close()
		cancel()
		for range 3 {
			<-done
		}
	}()
	require.Eventually(t, func() bool { return ch.Tracks() != nil }, 5*time.Second, 10*time.Millisecond)

	// The viewer may only use TCP.
	var se webrtc.SettingEngine
	se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeTCP4})
	se.SetIncludeLoopbackCandidate(true)
	me := &webrtc.MediaEngine{}
	require.NoError(t, me.RegisterDefaultCodecs())
	api := webrtc.NewAPI(webrtc.WithMediaEngine(me), webrtc.WithSettingEngine(se), webrtc.WithInterceptorRegistry(&interceptor.Registry{}))
	pc, err := api.NewPeerConnection(webrtc.Configuration{})
	require.NoError(t, err)
	defer pc.Close()
	_, err = pc.AddTransceiverFromKind(webrtc.RTPCodecTypeVideo, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionRecvonly})
	require.NoError(t, err)
	got := make(chan struct{})
	pc.OnTrack(func(tr *webrtc.TrackRemote, _ *webrtc.RTPReceiver) {
		var p rtp.Packet
		buf := make([]byte, 1500)
		n := 0
		for {
			k, _, err := tr.Read(buf)
			if err != nil {
				return
			}
			if p.Unmarshal(buf[:k]) == nil && p.Marker {
				if n++; n == 30 {
					close(got)
				}
			}
		}
	})
	offer, err := pc.CreateOffer(nil)
	require.NoError(t, err)
	gathered := webrtc.GatheringCompletePromise(pc)
	require.NoError(t, pc.SetLocalDescription(offer))
	<-gathered
	// pion gathers active TCP candidates without signalling them: the
	// offer has no candidate at all, and certainly no UDP one.
	require.NotContains(t, strings.ToLower(pc.LocalDescription().SDP), " udp ", "the media must go over ICE-TCP")
	resp, err := http.Post(hs.URL+"/whep/demo", "application/sdp", strings.NewReader(pc.LocalDescription().SDP))
	require.NoError(t, err)
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.Equal(t, http.StatusCreated, resp.StatusCode, string(body))
	require.Contains(t, string(body), "tcptype passive", "the answer offers the ICE-TCP port")
	require.NoError(t, pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: string(body)}))
	select {
	case <-got:
	case <-time.After(10 * time.Second):
		t.Fatal("no video over ICE-TCP within 10 s")
	}
}
