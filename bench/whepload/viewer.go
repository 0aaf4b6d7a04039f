package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/pion/ice/v4"
	"github.com/pion/interceptor"
	"github.com/pion/logging"
	"github.com/pion/webrtc/v4"
)

// newAPI builds a cheap receive-only pion API: no interceptors (so no NACK,
// no receiver reports, no TWCC feedback), loopback host candidates only,
// no mDNS, no SRTP replay windows.
func newAPI() (*webrtc.API, error) {
	m := &webrtc.MediaEngine{}
	// Browser-like offer: H.264 packetization-mode 1 in the usual
	// profiles, with NACK and PLI feedback (the server keeps what it keeps
	// for a browser), and Opus. No header extensions.
	fb := []webrtc.RTCPFeedback{{Type: "nack"}, {Type: "nack", Parameter: "pli"}, {Type: "ccm", Parameter: "fir"}}
	for _, c := range []struct {
		pt   webrtc.PayloadType
		fmtp string
	}{
		{106, "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f"},
		{102, "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42001f"},
		{127, "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=4d001f"},
		{112, "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=64001f"},
	} {
		if err := m.RegisterCodec(webrtc.RTPCodecParameters{
			RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeH264, ClockRate: 90000, SDPFmtpLine: c.fmtp, RTCPFeedback: fb},
			PayloadType:        c.pt,
		}, webrtc.RTPCodecTypeVideo); err != nil {
			return nil, err
		}
	}
	// Opus, then G.711 as browsers offer it (MediaMTX answers PCMU when
	// its stream has no audio WebRTC can carry).
	for _, c := range []webrtc.RTPCodecParameters{
		{RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeOpus, ClockRate: 48000, Channels: 2, SDPFmtpLine: "minptime=10;useinbandfec=1"}, PayloadType: 111},
		{RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypePCMU, ClockRate: 8000}, PayloadType: 0},
		{RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypePCMA, ClockRate: 8000}, PayloadType: 8},
	} {
		if err := m.RegisterCodec(c, webrtc.RTPCodecTypeAudio); err != nil {
			return nil, err
		}
	}
	var se webrtc.SettingEngine
	lf := logging.NewDefaultLoggerFactory()
	lf.DefaultLogLevel = logging.LogLevelDisabled
	se.LoggerFactory = lf
	se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4, webrtc.NetworkTypeUDP6})
	se.SetIncludeLoopbackCandidate(true)
	se.SetIPFilter(func(ip net.IP) bool { return ip.IsLoopback() })
	// Only the server's loopback candidates are tried: the benchmark never
	// leaves the machine.
	se.SetRemoteIPFilter(func(ip net.IP) bool { return ip.IsLoopback() })
	se.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
	se.DisableSRTPReplayProtection(true)
	se.DisableSRTCPReplayProtection(true)
	// An empty registry: without it pion adds its default interceptors
	// (NACK generator, receiver reports, TWCC feedback, stats).
	return webrtc.NewAPI(webrtc.WithMediaEngine(m), webrtc.WithSettingEngine(se),
		webrtc.WithInterceptorRegistry(&interceptor.Registry{})), nil
}

// checkLoopbackURL refuses any URL that does not point at this machine.
func checkLoopbackURL(raw string) (*url.URL, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return nil, err
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return nil, fmt.Errorf("%q: use an http:// URL", raw)
	}
	if !isLoopbackHost(u.Hostname()) {
		return nil, fmt.Errorf("%q is not a loopback URL: whepload only loads servers on this machine (127.0.0.1, ::1, localhost)", raw)
	}
	return u, nil
}

func isLoopbackHost(h string) bool {
	if strings.EqualFold(h, "localhost") {
		return true
	}
	ip := net.ParseIP(h)
	return ip != nil && ip.IsLoopback()
}

// newHTTPClient only dials loopback addresses and follows no redirects.
func newHTTPClient() *http.Client {
	d := &net.Dialer{
		Timeout: 5 * time.Second,
		Control: func(_, address string, _ syscall.RawConn) error {
			host, _, err := net.SplitHostPort(address)
			if err != nil {
				return err
			}
			if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
				return fmt.Errorf("refusing to connect to %s: not a loopback address", address)
			}
			return nil
		},
	}
	return &http.Client{
		Timeout: 10 * time.Second,
		Transport: &http.Transport{
			DialContext:         d.DialContext,
			MaxIdleConnsPerHost: 64,
		},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// trackStats counts one track's packets; the reader goroutine writes, the
// reporter reads.
type trackStats struct {
	packets atomic.Uint64
	bytes   atomic.Uint64
	lost    atomic.Uint64 // sequence numbers skipped
	discont atomic.Uint64 // jumps too large to be loss (stream restarts)
}

// discontinuity: a forward jump of at least this many sequence numbers is
// counted as a stream discontinuity, not as loss.
const discontinuity = 3000

// viewer is one WHEP session.
type viewer struct {
	pc       *webrtc.PeerConnection
	location string // session URL for DELETE

	tPost    time.Time
	answer   time.Duration // POST sent → 201 received
	firstPkt atomic.Int64  // ns after tPost; 0 = none yet
	firstKF  atomic.Int64  // ns after tPost; 0 = none yet
	video    trackStats
	audio    trackStats
	gotVideo atomic.Bool
	gotAudio atomic.Bool
}

// start makes the offer, POSTs it and applies the answer. The viewer's
// PeerConnection is set even on failure so that close releases it.
func (v *viewer) start(ctx context.Context, api *webrtc.API, client *http.Client, endpoint *url.URL) error {
	pc, err := api.NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		return err
	}
	v.pc = pc
	for _, k := range []webrtc.RTPCodecType{webrtc.RTPCodecTypeVideo, webrtc.RTPCodecTypeAudio} {
		if _, err := pc.AddTransceiverFromKind(k, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionRecvonly}); err != nil {
			return err
		}
	}
	pc.OnTrack(v.onTrack)
	offer, err := pc.CreateOffer(nil)
	if err != nil {
		return err
	}
	gathered := webrtc.GatheringCompletePromise(pc)
	if err := pc.SetLocalDescription(offer); err != nil {
		return err
	}
	select {
	case <-gathered:
	case <-ctx.Done():
		return ctx.Err()
	}
	sdp := pc.LocalDescription().SDP

	v.tPost = time.Now()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint.String(), strings.NewReader(sdp))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/sdp")
	resp, err := client.Do(req)
	if err != nil {
		return fmt.Errorf("POST: %w", err)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, 256<<10))
	resp.Body.Close()
	if err != nil {
		return fmt.Errorf("POST: reading the answer: %w", err)
	}
	if resp.StatusCode != http.StatusCreated {
		return fmt.Errorf("POST: status %d: %.120s", resp.StatusCode, strings.TrimSpace(string(body)))
	}
	v.answer = time.Since(v.tPost)
	if loc := resp.Header.Get("Location"); loc != "" {
		if u, err := endpoint.Parse(loc); err == nil && isLoopbackHost(u.Hostname()) {
			v.location = u.String()
		}
	}
	return pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: string(body)})
}

// onTrack runs in its own goroutine per track (pion starts one): it reads
// every packet into one buffer, counts it and, for video, looks for the
// first complete keyframe. A second goroutine drains the receiver's RTCP
// (sender reports) so pion's buffers never fill.
func (v *viewer) onTrack(tr *webrtc.TrackRemote, rcv *webrtc.RTPReceiver) {
	go func() {
		buf := make([]byte, 1500)
		for {
			if _, _, err := rcv.Read(buf); err != nil {
				return
			}
		}
	}()
	st := &v.audio
	isVideo := tr.Kind() == webrtc.RTPCodecTypeVideo
	if isVideo {
		st = &v.video
		v.gotVideo.Store(true)
	} else {
		v.gotAudio.Store(true)
	}
	h264 := isVideo && strings.EqualFold(tr.Codec().MimeType, webrtc.MimeTypeH264)
	var (
		kf      keyframeDetector
		lastSeq uint16
		started bool
	)
	buf := make([]byte, 1500)
	for {
		n, _, err := tr.Read(buf)
		if err != nil {
			return
		}
		p, ok := parseRTP(buf[:n])
		if !ok {
			continue
		}
		st.packets.Add(1)
		st.bytes.Add(uint64(n))
		if !started {
			started = true
			v.firstPkt.CompareAndSwap(0, int64(time.Since(v.tPost)))
		} else if diff := p.seq - lastSeq; diff != 0 && diff < 0x8000 {
			if diff >= discontinuity {
				st.discont.Add(1)
			} else if diff > 1 {
				st.lost.Add(uint64(diff - 1))
			}
		} else {
			continue // duplicate or late packet
		}
		lastSeq = p.seq
		if h264 && !kf.done && kf.push(p) {
			v.firstKF.Store(int64(time.Since(v.tPost)))
		}
	}
}

// stop ends the session: DELETE (best effort) then close.
func (v *viewer) stop(client *http.Client) {
	if v.location != "" {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		req, err := http.NewRequestWithContext(ctx, http.MethodDelete, v.location, nil)
		if err == nil {
			if resp, err := client.Do(req); err == nil {
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
		}
		cancel()
	}
	if v.pc != nil {
		_ = v.pc.Close()
	}
}
