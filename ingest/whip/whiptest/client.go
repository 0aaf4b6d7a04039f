// Package whiptest is a WHIP publisher for tests: a pion PeerConnection
// that sends H.264 access units and a 440 Hz Opus tone the way a browser
// does, with one twist that makes keyframe requests observable: it sends a
// keyframe only when it receives a PLI (or FIR), and P-frames otherwise.
package whiptest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/ice/v4"
	"github.com/pion/interceptor"
	"github.com/pion/logging"
	"github.com/pion/rtcp"
	"github.com/pion/rtp"
	"github.com/pion/rtp/codecs"
	"github.com/pion/webrtc/v4"
	"github.com/thesyncim/gopus"
)

// Options configure a Client.
type Options struct {
	// Video is the H.264 stream as access units of NAL units (no start
	// codes): Video[0] an IDR with its SPS and PPS, the others the
	// P-frames that follow it. The client starts with Video[1] and goes
	// back to Video[0] on each PLI; past the last frame it sends no video
	// until the next PLI. Nil: no video track.
	Video [][][]byte
	// FPS is the video frame rate; 0 means 30.
	FPS int
	// VideoCodec is what the offer proposes for video: "" for H.264
	// (packetization mode 1, Constrained Baseline), or "VP8" for an offer
	// seance must refuse.
	VideoCodec string
	// ToneHz is the frequency of the Opus tone (mono, 20 ms packets); 0
	// means no audio track.
	ToneHz float64
	// Conn, when set, carries every ICE packet of the client (tests make
	// it drop traffic to simulate a publisher that vanished).
	Conn net.PacketConn
	// KeyframeLag delays each keyframe by this long after its capture
	// time (its RTP timestamp), with no video meanwhile, like a browser
	// whose encoder falls behind capture under CPU load. Audio goes on.
	// Zero sends keyframes at once.
	KeyframeLag time.Duration
}

// Client is one WHIP publisher.
type Client struct {
	opts     Options
	pc       *webrtc.PeerConnection
	video    *webrtc.TrackLocalStaticRTP
	audio    *webrtc.TrackLocalStaticRTP
	vsender  *webrtc.RTPSender
	offer    string
	location string
	token    string
	http     *http.Client

	connected chan struct{}
	connOnce  sync.Once
	pliWanted atomic.Bool
	tone      [][]byte // Opus packets sent in a loop
	cancel    context.CancelFunc
	wg        sync.WaitGroup

	// PLIs counts the keyframe requests (PLI, FIR) received.
	PLIs atomic.Int64
	// Keyframes counts the keyframes sent (each one answered a request).
	Keyframes atomic.Int64
	// Frames counts the video frames sent.
	Frames atomic.Int64
}

// New builds the PeerConnection and its offer, with every ICE candidate
// gathered (as OBS does: no trickle).
func New(o Options) (*Client, error) {
	if o.FPS == 0 {
		o.FPS = 30
	}
	me := &webrtc.MediaEngine{}
	fb := []webrtc.RTCPFeedback{{Type: "nack"}, {Type: "nack", Parameter: "pli"}, {Type: "ccm", Parameter: "fir"}}
	vc := webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeH264, ClockRate: 90000,
		SDPFmtpLine: "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f", RTCPFeedback: fb}
	if strings.EqualFold(o.VideoCodec, "VP8") {
		vc = webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeVP8, ClockRate: 90000, RTCPFeedback: fb}
	}
	ac := webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeOpus, ClockRate: 48000, Channels: 2, SDPFmtpLine: "minptime=10;useinbandfec=1"}
	if err := me.RegisterCodec(webrtc.RTPCodecParameters{RTPCodecCapability: vc, PayloadType: 96}, webrtc.RTPCodecTypeVideo); err != nil {
		return nil, err
	}
	if err := me.RegisterCodec(webrtc.RTPCodecParameters{RTPCodecCapability: ac, PayloadType: 111}, webrtc.RTPCodecTypeAudio); err != nil {
		return nil, err
	}
	// The defaults answer NACKs and send sender reports, as browsers do.
	reg := &interceptor.Registry{}
	if err := webrtc.RegisterDefaultInterceptors(me, reg); err != nil {
		return nil, err
	}
	var se webrtc.SettingEngine
	lf := logging.NewDefaultLoggerFactory()
	lf.DefaultLogLevel = logging.LogLevelDisabled
	se.LoggerFactory = lf
	se.SetIncludeLoopbackCandidate(true)
	se.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
	se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4})
	se.SetICETimeouts(4*time.Second, 6*time.Second, 2*time.Second)
	if o.Conn != nil {
		se.SetICEUDPMux(webrtc.NewICEUDPMux(lf.NewLogger("udpmux"), o.Conn))
	}
	api := webrtc.NewAPI(webrtc.WithMediaEngine(me), webrtc.WithSettingEngine(se), webrtc.WithInterceptorRegistry(reg))
	pc, err := api.NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		return nil, err
	}
	c := &Client{opts: o, pc: pc, connected: make(chan struct{}), http: &http.Client{Timeout: 10 * time.Second}}
	fail := func(err error) (*Client, error) {
		_ = pc.Close()
		return nil, err
	}
	pc.OnConnectionStateChange(func(s webrtc.PeerConnectionState) {
		if s == webrtc.PeerConnectionStateConnected {
			c.connOnce.Do(func() { close(c.connected) })
		}
	})
	send := webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionSendonly}
	if o.Video != nil || o.VideoCodec != "" {
		if c.video, err = webrtc.NewTrackLocalStaticRTP(vc, "video", "whiptest"); err != nil {
			return fail(err)
		}
		tr, err := pc.AddTransceiverFromTrack(c.video, send)
		if err != nil {
			return fail(err)
		}
		c.vsender = tr.Sender()
	}
	if o.ToneHz > 0 {
		if c.tone, err = toneLoop(o.ToneHz); err != nil {
			return fail(err)
		}
		if c.audio, err = webrtc.NewTrackLocalStaticRTP(ac, "audio", "whiptest"); err != nil {
			return fail(err)
		}
		if _, err := pc.AddTransceiverFromTrack(c.audio, send); err != nil {
			return fail(err)
		}
	}
	offer, err := pc.CreateOffer(nil)
	if err != nil {
		return fail(err)
	}
	gathered := webrtc.GatheringCompletePromise(pc)
	if err := pc.SetLocalDescription(offer); err != nil {
		return fail(err)
	}
	<-gathered
	c.offer = pc.LocalDescription().SDP
	return c, nil
}

// Offer returns the SDP offer.
func (c *Client) Offer() string { return c.offer }

// StatusError is a WHIP request refused by the server.
type StatusError struct {
	Code int
	Body string
}

func (e *StatusError) Error() string {
	return fmt.Sprintf("WHIP server answered %d: %s", e.Code, e.Body)
}

// Publish posts the offer to endpoint (http://host/whip/{channel}) with
// token, applies the answer and starts sending once connected. A refusal
// is a *StatusError.
func (c *Client) Publish(ctx context.Context, endpoint, token string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint, strings.NewReader(c.offer))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/sdp")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return err
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		return &StatusError{Code: resp.StatusCode, Body: strings.TrimSpace(string(body))}
	}
	loc, err := req.URL.Parse(resp.Header.Get("Location"))
	if err != nil {
		return fmt.Errorf("bad Location %q: %w", resp.Header.Get("Location"), err)
	}
	c.location, c.token = loc.String(), token
	if err := c.pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: string(body)}); err != nil {
		return fmt.Errorf("answer: %w", err)
	}
	sctx, cancel := context.WithCancel(context.Background())
	c.cancel = cancel
	if c.vsender != nil {
		c.wg.Go(c.readRTCP)
	}
	c.wg.Go(func() { c.send(sctx) })
	return nil
}

// Location is the session URL from the 201 answer.
func (c *Client) Location() *url.URL {
	u, _ := url.Parse(c.location)
	return u
}

// WaitConnected waits for ICE and DTLS to complete.
func (c *Client) WaitConnected(timeout time.Duration) error {
	select {
	case <-c.connected:
		return nil
	case <-time.After(timeout):
		return errors.New("whiptest: not connected within " + timeout.String())
	}
}

// Close ends the session with DELETE (when it was published) and closes
// the PeerConnection. It returns the DELETE status code (0 if none).
func (c *Client) Close() (int, error) {
	code := 0
	var derr error
	if c.location != "" {
		req, err := http.NewRequest(http.MethodDelete, c.location, nil)
		if err == nil {
			if c.token != "" {
				req.Header.Set("Authorization", "Bearer "+c.token)
			}
			var resp *http.Response
			if resp, derr = c.http.Do(req); derr == nil {
				code = resp.StatusCode
				resp.Body.Close()
			}
		}
	}
	c.stop()
	return code, derr
}

// Abandon closes the PeerConnection without DELETE, like a publisher that
// crashed; with a dropping Conn it vanishes without even a DTLS close.
func (c *Client) Abandon() { c.stop() }

func (c *Client) stop() {
	if c.cancel != nil {
		c.cancel()
	}
	_ = c.pc.Close()
	c.wg.Wait()
}

// readRTCP turns PLIs and FIRs into a keyframe on the next video frame.
func (c *Client) readRTCP() {
	for {
		pkts, _, err := c.vsender.ReadRTCP()
		if err != nil {
			return
		}
		for _, p := range pkts {
			switch p.(type) {
			case *rtcp.PictureLossIndication, *rtcp.FullIntraRequest:
				c.PLIs.Add(1)
				c.pliWanted.Store(true)
			}
		}
	}
}

// send paces video at FPS and audio at 20 ms until ctx ends. Video RTP
// timestamps are capture times on the frame grid of a camera: the latest
// frame period begun when the frame is made, strictly increasing (a late
// frame leaves a gap). A ticker's values would not do: under CPU load
// they are late by however long the runtime took to send them, off the
// grid and at times earlier than the previous one. Audio timestamps
// follow the sample count. The tone is encoded beforehand (New), as a
// browser encodes audio on a thread of its own: encoding it here, which
// under the race detector on a loaded machine is no faster than real time,
// held video up for seconds.
func (c *Client) send(ctx context.Context) {
	select {
	case <-ctx.Done():
		return
	case <-c.connected:
	}
	var (
		start     = time.Now()
		period    = time.Second / time.Duration(c.opts.FPS)
		vtick     = time.NewTicker(period)
		lastFrame = int64(-1) // grid index of the last frame captured
		atick     = time.NewTicker(20 * time.Millisecond)
		vpay      codecs.H264Payloader
		vseq      uint16
		aseq      uint16
		next      = 1
		audioSent int64
		lagging   <-chan time.Time // the delayed keyframe is due (KeyframeLag)
		lagTS     uint32           // its capture time
	)
	defer vtick.Stop()
	defer atick.Stop()
	if c.audio == nil {
		atick.Stop()
	}
	if c.video == nil || c.opts.Video == nil {
		vtick.Stop()
	}
	writeVideo := func(ts uint32) bool {
		if next == 0 {
			c.Keyframes.Add(1)
		}
		payloads := vpay.Payload(1200, annexB(c.opts.Video[next]))
		next++
		for i, p := range payloads {
			pkt := &rtp.Packet{Header: rtp.Header{Version: 2, SequenceNumber: vseq, Timestamp: ts, Marker: i == len(payloads)-1}, Payload: p}
			vseq++
			if c.video.WriteRTP(pkt) != nil {
				return false
			}
		}
		c.Frames.Add(1)
		return true
	}
	for {
		select {
		case <-ctx.Done():
			return
		case <-vtick.C:
			if lagging != nil {
				continue // the encoder is still busy with the keyframe
			}
			if c.pliWanted.Swap(false) {
				next = 0
			}
			if next >= len(c.opts.Video) {
				continue // frozen until asked for a keyframe
			}
			k := max(int64(time.Since(start)/period), lastFrame+1)
			lastFrame = k
			ts := uint32(k * 90000 / int64(c.opts.FPS))
			if next == 0 && c.opts.KeyframeLag > 0 {
				lagging, lagTS = time.After(c.opts.KeyframeLag), ts
				continue
			}
			if !writeVideo(ts) {
				return
			}
		case <-lagging:
			lagging = nil
			if !writeVideo(lagTS) {
				return
			}
		case <-atick.C:
			// Catch up if a tick was late so the audio clock keeps pace.
			for audioSent*20 < time.Since(start).Milliseconds()+20 {
				pkt := c.tone[audioSent%int64(len(c.tone))]
				rp := &rtp.Packet{Header: rtp.Header{Version: 2, SequenceNumber: aseq, Timestamp: uint32(audioSent * 960), Marker: audioSent == 0}, Payload: pkt}
				aseq++
				audioSent++
				if c.audio.WriteRTP(rp) != nil {
					return
				}
			}
		}
	}
}

func annexB(nalus [][]byte) []byte {
	var b bytes.Buffer
	for _, n := range nalus {
		b.Write([]byte{0, 0, 0, 1})
		b.Write(n)
	}
	return b.Bytes()
}

// tones caches the Opus packets of each tone frequency for the process.
var tones struct {
	sync.Mutex
	loops map[float64][][]byte
}

// toneLoop returns one second of 20 ms mono Opus packets of a sine of hz at
// amplitude 1/4, encoded once per process, to be sent in a loop. A whole
// number of periods fits in a second for an integer hz, so the loop
// joins in phase; the encoder runs 10 packets before the loop so its
// state at the end of the loop matches what the start was encoded with.
func toneLoop(hz float64) ([][]byte, error) {
	tones.Lock()
	defer tones.Unlock()
	if loop, ok := tones.loops[hz]; ok {
		return loop, nil
	}
	enc, err := gopus.NewEncoder(gopus.EncoderConfig{SampleRate: 48000, Channels: 1, Application: gopus.ApplicationAudio})
	if err != nil {
		return nil, err
	}
	if err := enc.SetBitrate(48000); err != nil {
		return nil, err
	}
	const warmup, packets = 10, 50
	var (
		pcm  = make([]float32, 960)
		out  = make([]byte, 4000)
		n    int
		loop [][]byte
	)
	for i := range warmup + packets {
		for j := range pcm {
			pcm[j] = float32(0.25 * math.Sin(2*math.Pi*hz*float64(n)/48000))
			n++
		}
		size, err := enc.Encode(pcm, out)
		if err != nil {
			return nil, err
		}
		if i >= warmup {
			loop = append(loop, bytes.Clone(out[:size]))
		}
	}
	if tones.loops == nil {
		tones.loops = map[float64][][]byte{}
	}
	tones.loops[hz] = loop
	return loop, nil
}
