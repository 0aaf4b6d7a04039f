package webrtc

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
	"github.com/stretchr/testify/require"

	"github.com/seance-relay/seance/ingest/demo"
	"github.com/seance-relay/seance/relay"
)

// testRelay is a hub with one channel fed by the demo source, and a WHEP
// server in front of it.
type testRelay struct {
	hub *relay.Hub
	srv *Server
	url string
}

func startRelay(t *testing.T, live bool) *testRelay {
	t.Helper()
	log := zerolog.New(zerolog.NewTestWriter(t))
	reg := prometheus.NewRegistry()
	hub := relay.NewHub([]relay.ChannelConfig{{Name: "demo", Title: "Démo", Grace: time.Second}}, log, relay.NewMetrics(reg))
	srv, err := New(Config{Host: "127.0.0.1", IncludeLoopback: true}, hub, log, reg)
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{}, 3)
	go func() { _ = hub.Run(ctx); done <- struct{}{} }()
	go func() { _ = srv.Run(ctx); done <- struct{}{} }()
	n := 2
	if live {
		ch, _ := hub.Channel("demo")
		src, err := demo.New(ch, log)
		require.NoError(t, err)
		go func() { _ = src.Run(ctx); done <- struct{}{} }()
		n++
		require.Eventually(t, func() bool { return ch.Tracks() != nil }, 5*time.Second, 10*time.Millisecond)
	}
	hs := httptest.NewServer(srv.Handler(nil))
	t.Cleanup(func() {
		hs.Close()
		cancel()
		for range n {
			<-done
		}
	})
	return &testRelay{hub: hub, srv: srv, url: hs.URL}
}

// viewer is a pion WHEP client.
type viewer struct {
	pc        *webrtc.PeerConnection
	location  string
	keyframe  chan time.Duration
	videoPkts atomic.Int64
	audioPkts atomic.Int64
}

func newViewer(t *testing.T, base, channel string) (*viewer, *http.Response) {
	t.Helper()
	me := &webrtc.MediaEngine{}
	require.NoError(t, me.RegisterDefaultCodecs())
	api := webrtc.NewAPI(webrtc.WithMediaEngine(me))
	pc, err := api.NewPeerConnection(webrtc.Configuration{})
	require.NoError(t, err)
	v := &viewer{pc: pc, keyframe: make(chan time.Duration, 1)}
	start := time.Now()
	_, err = pc.AddTransceiverFromKind(webrtc.RTPCodecTypeVideo, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionRecvonly})
	require.NoError(t, err)
	_, err = pc.AddTransceiverFromKind(webrtc.RTPCodecTypeAudio, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionRecvonly})
	require.NoError(t, err)
	pc.OnTrack(func(tr *webrtc.TrackRemote, _ *webrtc.RTPReceiver) {
		var p rtp.Packet
		buf := make([]byte, 1500)
		for {
			n, _, err := tr.Read(buf)
			if err != nil {
				return
			}
			if p.Unmarshal(buf[:n]) != nil {
				continue
			}
			if tr.Kind() == webrtc.RTPCodecTypeAudio {
				v.audioPkts.Add(1)
				continue
			}
			v.videoPkts.Add(1)
			if isIDRStart(p.Payload) {
				select {
				case v.keyframe <- time.Since(start):
				default:
				}
			}
		}
	})
	offer, err := pc.CreateOffer(nil)
	require.NoError(t, err)
	gathered := webrtc.GatheringCompletePromise(pc)
	require.NoError(t, pc.SetLocalDescription(offer))
	<-gathered
	resp, err := http.Post(base+"/whep/"+channel, "application/sdp", strings.NewReader(pc.LocalDescription().SDP))
	require.NoError(t, err)
	t.Cleanup(func() { _ = pc.Close() })
	if resp.StatusCode != http.StatusCreated {
		return v, resp
	}
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	require.Equal(t, "application/sdp", resp.Header.Get("Content-Type"))
	v.location = resp.Header.Get("Location")
	require.NoError(t, pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: string(body)}))
	return v, resp
}

// isIDRStart says whether an RTP H.264 payload starts an IDR picture (or
// its SPS, which seance sends in front of every IDR).
func isIDRStart(p []byte) bool {
	if len(p) < 2 {
		return false
	}
	switch p[0] & 0x1f {
	case 5, 7:
		return true
	case 28:
		return p[1]&0x80 != 0 && p[1]&0x1f == 5
	}
	return false
}

func TestWHEPPlaysVideoAndAudio(t *testing.T) {
	r := startRelay(t, true)
	v, resp := newViewer(t, r.url, "demo")
	require.Equal(t, http.StatusCreated, resp.StatusCode)
	require.True(t, strings.HasPrefix(v.location, "/whep/demo/"), v.location)
	select {
	case d := <-v.keyframe:
		t.Logf("first keyframe after %v", d)
	case <-time.After(5 * time.Second):
		t.Fatal("no keyframe within 5 s")
	}
	require.Eventually(t, func() bool { return v.audioPkts.Load() > 20 && v.videoPkts.Load() > 100 }, 5*time.Second, 20*time.Millisecond)
	require.Equal(t, 1, r.srv.Viewers("demo"))

	req, _ := http.NewRequest(http.MethodDelete, r.url+v.location, nil)
	dresp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, dresp.StatusCode)
	require.Eventually(t, func() bool { return r.srv.Viewers("demo") == 0 }, 5*time.Second, 20*time.Millisecond)
}
