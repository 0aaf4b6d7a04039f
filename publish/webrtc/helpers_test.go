package webrtc

import (
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pion/ice/v4"
	"github.com/pion/logging"
	"github.com/pion/rtcp"
	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/rs/zerolog"
	"github.com/stretchr/testify/require"

	"github.com/seance-relay/seance/ingest/demo"
	"github.com/seance-relay/seance/relay"
	"github.com/seance-relay/seance/transcode/rendition"
)

// env is a hub with two channels, "demo" (fed by the demo source unless
// idle) and "idle" (never live), and a WHEP server in front of it on a
// loopback httptest server.
type env struct {
	hub  *relay.Hub
	srv  *Server
	url  string
	http *http.Client
	// stopSource makes the demo publisher leave; it waits for it.
	stopSource func()
	// makers make the demo channel's renditions (envOpts.renditions).
	makers []*rendition.Maker
}

type envOpts struct {
	cfg   Config
	ice   []ICEServer
	grace time.Duration // the demo channel's; default 1 s
	idle  bool          // do not start the demo source
	// renditions are the demo channel's; each is made by a real ffmpeg
	// (transcode/rendition).
	renditions []relay.RenditionConfig
}

func newEnv(t testing.TB, o envOpts) *env {
	t.Helper()
	log := zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.WarnLevel)
	reg := prometheus.NewRegistry()
	if o.grace == 0 {
		o.grace = time.Second
	}
	hub := relay.NewHub([]relay.ChannelConfig{
		{Name: "demo", Title: "Démo", Grace: o.grace, Renditions: o.renditions},
		{Name: "idle", Title: "Rien"},
	}, log, relay.NewMetrics(reg))
	o.cfg.Host, o.cfg.IncludeLoopback = "127.0.0.1", true
	if o.cfg.MaxPendingPerAddr == 0 {
		// Every test viewer comes from 127.0.0.1: the per-address bound
		// is tested where a test sets it.
		o.cfg.MaxPendingPerAddr = -1
	}
	srv, err := New(o.cfg, hub, log, reg)
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { _ = hub.Run(ctx) })
	wg.Go(func() { _ = srv.Run(ctx) })
	e := &env{hub: hub, srv: srv, stopSource: func() {}}
	if len(o.renditions) > 0 {
		e.makers = startRenditions(t, ctx, &wg, hub, log, reg)
	}
	if !o.idle {
		ch, _ := hub.Channel("demo")
		src, err := demo.New(ch, log)
		require.NoError(t, err)
		sctx, scancel := context.WithCancel(ctx)
		done := make(chan struct{})
		go func() { _ = src.Run(sctx); close(done) }()
		e.stopSource = func() { scancel(); <-done }
		require.Eventually(t, func() bool { return ch.Tracks() != nil }, 5*time.Second, 5*time.Millisecond)
	}
	hs := httptest.NewServer(srv.Handler(o.ice))
	e.url = hs.URL
	tr := &http.Transport{MaxIdleConnsPerHost: 16}
	e.http = &http.Client{Timeout: 10 * time.Second, Transport: tr}
	t.Cleanup(func() {
		tr.CloseIdleConnections()
		hs.Close()
		e.stopSource()
		cancel()
		wg.Wait()
	})
	return e
}

// do sends a request to the WHEP handler and returns the response with its
// body read.
func (e *env) do(t testing.TB, method, path, contentType string, body []byte, hdr ...string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(method, e.url+path, bytes.NewReader(body))
	require.NoError(t, err)
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := e.http.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp, string(b)
}

// post offers sdp on a channel.
func (e *env) post(t testing.TB, channel, sdp string) (*http.Response, string) {
	t.Helper()
	return e.do(t, http.MethodPost, "/whep/"+channel, "application/sdp", []byte(sdp))
}

// ended reads seance_viewer_sessions_ended_total{channel="demo",reason=...}.
func (e *env) ended(reason string) float64 {
	return testutil.ToFloat64(e.srv.met.ended.WithLabelValues("demo", "webrtc", reason))
}

// offerOpts shapes a pion offer.
type offerOpts struct {
	video, audio webrtc.RTPTransceiverDirection // 0: no such m-line
}

var playOffer = offerOpts{video: webrtc.RTPTransceiverDirectionRecvonly, audio: webrtc.RTPTransceiverDirectionRecvonly}

// clientAPI is a pion API for test viewers: default codecs, no
// interceptors (the test sends its own NACKs and PLIs), loopback
// candidates, no mDNS.
func clientAPI(conn net.PacketConn, replayProtection bool) *webrtc.API {
	me := &webrtc.MediaEngine{}
	if err := me.RegisterDefaultCodecs(); err != nil {
		panic(err)
	}
	var se webrtc.SettingEngine
	se.SetIncludeLoopbackCandidate(true)
	se.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
	se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4})
	if !replayProtection {
		// A browser only NACKs packets it lost, which SRTP replay
		// protection lets through; this viewer NACKs packets it got.
		se.DisableSRTPReplayProtection(true)
	}
	if conn != nil {
		lf := logging.NewDefaultLoggerFactory()
		lf.DefaultLogLevel = logging.LogLevelDisabled
		se.SetICEUDPMux(webrtc.NewICEUDPMux(lf.NewLogger("udpmux"), conn))
	}
	return webrtc.NewAPI(webrtc.WithMediaEngine(me), webrtc.WithSettingEngine(se))
}

// makeOffer returns a real pion offer, without candidates (no gathering,
// so no socket is opened).
func makeOffer(t testing.TB, o offerOpts) string {
	t.Helper()
	pc, err := clientAPI(nil, true).NewPeerConnection(webrtc.Configuration{})
	require.NoError(t, err)
	defer pc.Close()
	if o.video != 0 {
		_, err = pc.AddTransceiverFromKind(webrtc.RTPCodecTypeVideo, webrtc.RTPTransceiverInit{Direction: o.video})
		require.NoError(t, err)
	}
	if o.audio != 0 {
		_, err = pc.AddTransceiverFromKind(webrtc.RTPCodecTypeAudio, webrtc.RTPTransceiverInit{Direction: o.audio})
		require.NoError(t, err)
	}
	offer, err := pc.CreateOffer(nil)
	require.NoError(t, err)
	return offer.SDP
}

// pkt is one received RTP packet.
type pkt struct {
	seq     uint16
	ts      uint32
	marker  bool
	payload []byte
	at      time.Time
}

// client is a pion WHEP viewer that records every video RTP packet.
type client struct {
	t     testing.TB
	pc    *webrtc.PeerConnection
	conn  *dropConn
	offer string

	location, etag, answer string
	posted                 time.Time
	resp                   *http.Response // the 201 (body read)

	firstVideo chan struct{} // closed on the first video packet
	firstAudio chan struct{} // closed on the first audio packet
	mu         sync.Mutex
	video      []pkt
	videoSSRC  uint32
	// audioBytes and videoBytes count the RTP payload bytes received.
	audioBytes, videoBytes int
}

type clientOpts struct {
	// vanishable routes the client's ICE through a socket whose traffic
	// can be cut (vanish), as if the viewer's device lost its network.
	vanishable bool
	// noReplayProtection lets the client receive a packet twice.
	noReplayProtection bool
	// block, when set, holds the track readers until it is closed.
	block <-chan struct{}
	// audioOnly offers to receive audio only (the player's « Son seul »).
	audioOnly bool
}

// newClient creates a viewer and gathers its offer; post sends it.
func newClient(t testing.TB, o clientOpts) *client {
	t.Helper()
	c := &client{t: t, firstVideo: make(chan struct{}), firstAudio: make(chan struct{})}
	var conn net.PacketConn
	if o.vanishable {
		udp, err := net.ListenPacket("udp4", "127.0.0.1:0")
		require.NoError(t, err)
		c.conn = &dropConn{PacketConn: udp}
		conn = c.conn
	}
	pc, err := clientAPI(conn, !o.noReplayProtection).NewPeerConnection(webrtc.Configuration{})
	require.NoError(t, err)
	c.pc = pc
	t.Cleanup(func() {
		_ = pc.Close()
		if c.conn != nil {
			_ = c.conn.Close()
		}
	})
	kinds := []webrtc.RTPCodecType{webrtc.RTPCodecTypeVideo, webrtc.RTPCodecTypeAudio}
	if o.audioOnly {
		kinds = kinds[1:]
	}
	for _, k := range kinds {
		_, err = pc.AddTransceiverFromKind(k, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionRecvonly})
		require.NoError(t, err)
	}
	var once, audioOnce sync.Once
	pc.OnTrack(func(tr *webrtc.TrackRemote, _ *webrtc.RTPReceiver) {
		if o.block != nil {
			<-o.block
		}
		video := tr.Kind() == webrtc.RTPCodecTypeVideo
		if video {
			c.mu.Lock()
			c.videoSSRC = uint32(tr.SSRC())
			c.mu.Unlock()
		}
		buf := make([]byte, 1500)
		for {
			n, _, err := tr.Read(buf)
			if err != nil {
				return
			}
			var p rtp.Packet
			if p.Unmarshal(buf[:n]) != nil {
				continue
			}
			if !video {
				c.mu.Lock()
				c.audioBytes += len(p.Payload)
				c.mu.Unlock()
				audioOnce.Do(func() { close(c.firstAudio) })
				continue
			}
			r := pkt{seq: p.SequenceNumber, ts: p.Timestamp, marker: p.Marker, payload: bytes.Clone(p.Payload), at: time.Now()}
			c.mu.Lock()
			c.video = append(c.video, r)
			c.videoBytes += len(p.Payload)
			c.mu.Unlock()
			once.Do(func() { close(c.firstVideo) })
		}
	})
	offer, err := pc.CreateOffer(nil)
	require.NoError(t, err)
	gathered := webrtc.GatheringCompletePromise(pc)
	require.NoError(t, pc.SetLocalDescription(offer))
	select {
	case <-gathered:
	case <-time.After(5 * time.Second):
		t.Fatal("the client did not gather its candidates within 5 s")
	}
	c.offer = pc.LocalDescription().SDP
	return c
}

// post sends the offer and applies the answer; it requires a 201.
func (c *client) post(e *env, channel string) {
	c.t.Helper()
	c.posted = time.Now()
	resp, body := e.post(c.t, channel, c.offer)
	require.Equal(c.t, http.StatusCreated, resp.StatusCode, body)
	c.location, c.etag, c.answer, c.resp = resp.Header.Get("Location"), resp.Header.Get("ETag"), body, resp
	require.NoError(c.t, c.pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: body}))
}

// received returns the audio and video payload bytes received so far.
func (c *client) received() (audio, video int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.audioBytes, c.videoBytes
}

// videoPackets returns a copy of the video packets received so far.
func (c *client) videoPackets() []pkt {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]pkt(nil), c.video...)
}

// idrStarts returns the indexes of the video packets that start an IDR
// access unit (its SPS, which seance sends first).
func idrStarts(pkts []pkt) []int {
	var out []int
	for i, p := range pkts {
		if len(p.payload) > 0 && p.payload[0]&0x1f == 7 {
			out = append(out, i)
		}
	}
	return out
}

// sendRTCP sends RTCP to the server (NACK, PLI).
func (c *client) sendRTCP(pkts ...rtcp.Packet) {
	c.t.Helper()
	require.NoError(c.t, c.pc.WriteRTCP(pkts))
}

// waitFirstVideo waits for the first video packet.
func (c *client) waitFirstVideo(timeout time.Duration) {
	c.t.Helper()
	select {
	case <-c.firstVideo:
	case <-time.After(timeout):
		c.t.Fatalf("no video within %s of the offer", timeout)
	}
}

// dropConn is a packet socket that can go silent both ways, like a phone
// that left the building.
type dropConn struct {
	net.PacketConn
	gone atomic.Bool
}

func (d *dropConn) vanish() { d.gone.Store(true) }

func (d *dropConn) WriteTo(p []byte, addr net.Addr) (int, error) {
	if d.gone.Load() {
		return len(p), nil
	}
	return d.PacketConn.WriteTo(p, addr)
}

func (d *dropConn) ReadFrom(p []byte) (int, net.Addr, error) {
	for {
		n, addr, err := d.PacketConn.ReadFrom(p)
		if err != nil || !d.gone.Load() {
			return n, addr, err
		}
	}
}

// openFDs counts this process's file descriptors.
func openFDs(t testing.TB) int {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	require.NoError(t, err)
	return len(ents)
}

// fmtpOf returns the fmtp parameter of the first H.264 payload type of an
// SDP (e.g. "profile-level-id").
func fmtpOf(sdp, param string) string {
	pt := ""
	for line := range strings.Lines(sdp) {
		line = strings.TrimSpace(line)
		if rest, ok := strings.CutPrefix(line, "a=rtpmap:"); ok && strings.Contains(strings.ToUpper(rest), " H264/") {
			pt, _, _ = strings.Cut(rest, " ")
			break
		}
	}
	if pt == "" {
		return ""
	}
	for line := range strings.Lines(sdp) {
		line = strings.TrimSpace(line)
		if rest, ok := strings.CutPrefix(line, "a=fmtp:"+pt+" "); ok {
			for kv := range strings.SplitSeq(rest, ";") {
				if v, ok := strings.CutPrefix(strings.TrimSpace(kv), param+"="); ok {
					return v
				}
			}
		}
	}
	return ""
}
