package main

import (
	"bytes"
	"encoding/hex"
	"fmt"
	"io"
	"math"
	"net/http"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pion/ice/v4"
	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"
	"github.com/stretchr/testify/require"
	"github.com/thesyncim/gopus"
)

// whepPacket is one RTP packet a WHEP viewer received.
type whepPacket struct {
	seq     uint16
	ts      uint32
	marker  bool
	payload []byte
	at      time.Time
}

// whepViewer is a pion WHEP client with pion's default codecs and
// interceptors (NACK, receiver reports), as a browser would have.
type whepViewer struct {
	pc       *webrtc.PeerConnection
	answer   string
	location string
	links    []string // the 201's Link headers

	mu    sync.Mutex
	video []whepPacket
	audio []whepPacket
}

func startWHEPViewer(t *testing.T, url string) *whepViewer {
	t.Helper()
	var se webrtc.SettingEngine
	se.SetIncludeLoopbackCandidate(true)
	se.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
	se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4})
	pc, err := webrtc.NewAPI(webrtc.WithSettingEngine(se)).NewPeerConnection(webrtc.Configuration{})
	require.NoError(t, err)
	t.Cleanup(func() { _ = pc.Close() })
	v := &whepViewer{pc: pc}
	for _, k := range []webrtc.RTPCodecType{webrtc.RTPCodecTypeVideo, webrtc.RTPCodecTypeAudio} {
		_, err = pc.AddTransceiverFromKind(k, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionRecvonly})
		require.NoError(t, err)
	}
	pc.OnTrack(func(tr *webrtc.TrackRemote, _ *webrtc.RTPReceiver) {
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
			r := whepPacket{seq: p.SequenceNumber, ts: p.Timestamp, marker: p.Marker, payload: bytes.Clone(p.Payload), at: time.Now()}
			v.mu.Lock()
			if tr.Kind() == webrtc.RTPCodecTypeVideo {
				v.video = append(v.video, r)
			} else {
				v.audio = append(v.audio, r)
			}
			v.mu.Unlock()
		}
	})
	offer, err := pc.CreateOffer(nil)
	require.NoError(t, err)
	gathered := webrtc.GatheringCompletePromise(pc)
	require.NoError(t, pc.SetLocalDescription(offer))
	<-gathered
	resp, err := http.Post(url, "application/sdp", strings.NewReader(pc.LocalDescription().SDP))
	require.NoError(t, err)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	require.Equal(t, http.StatusCreated, resp.StatusCode, string(body))
	v.answer, v.location, v.links = string(body), resp.Header.Get("Location"), resp.Header.Values("Link")
	require.NoError(t, pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: v.answer}))
	return v
}

// packets returns the video or audio packets in sequence order, each once
// (retransmissions answer the viewer's NACKs). Sequence numbers do not
// wrap within a test.
func (v *whepViewer) packets(video bool) []whepPacket {
	v.mu.Lock()
	src := v.audio
	if video {
		src = v.video
	}
	out := slices.Clone(src)
	v.mu.Unlock()
	if len(out) == 0 {
		return out
	}
	// Sequence numbers start at a random value and may wrap: order them
	// relative to a point well before the first packet received.
	base := out[0].seq - 1000
	slices.SortStableFunc(out, func(a, b whepPacket) int { return int(a.seq-base) - int(b.seq-base) })
	return slices.CompactFunc(out, func(a, b whepPacket) bool { return a.seq == b.seq })
}

// h264NAL returns the NAL unit type of an RTP H.264 payload (the
// fragmented one for FU-A).
func h264NAL(p []byte) byte {
	if len(p) >= 2 && p[0]&0x1f == 28 {
		return p[1] & 0x1f
	}
	if len(p) == 0 {
		return 0
	}
	return p[0] & 0x1f
}

// answerFmtp returns a parameter of the answer's H.264 fmtp line.
func answerFmtp(t *testing.T, sdp, param string) string {
	t.Helper()
	pt := ""
	for line := range strings.Lines(sdp) {
		if rest, ok := strings.CutPrefix(strings.TrimSpace(line), "a=rtpmap:"); ok && strings.HasSuffix(rest, " H264/90000") {
			require.Empty(t, pt, "the answer holds one H.264 payload type")
			pt, _, _ = strings.Cut(rest, " ")
		}
	}
	require.NotEmpty(t, pt, "no H.264 in the answer")
	for line := range strings.Lines(sdp) {
		if rest, ok := strings.CutPrefix(strings.TrimSpace(line), "a=fmtp:"+pt+" "); ok {
			for kv := range strings.SplitSeq(rest, ";") {
				if v, ok := strings.CutPrefix(kv, param+"="); ok {
					return v
				}
			}
		}
	}
	t.Fatalf("no %s for payload type %s in the answer", param, pt)
	return ""
}

// dominantFrequency returns the strongest frequency of x (48 kHz): a
// Hann-windowed Goertzel scan in 5 Hz steps, refined in 0.1 Hz steps.
func dominantFrequency(x []float64) float64 {
	w := make([]float64, len(x))
	for i, v := range x {
		w[i] = v * (0.5 - 0.5*math.Cos(2*math.Pi*float64(i)/float64(len(x))))
	}
	power := func(f float64) float64 {
		coeff := 2 * math.Cos(2*math.Pi*f/48000)
		var s1, s2 float64
		for _, v := range w {
			s1, s2 = v+coeff*s1-s2, s1
		}
		return s1*s1 + s2*s2 - coeff*s1*s2
	}
	best, freq := 0.0, 0.0
	scan := func(from, to, step float64) {
		for f := from; f <= to; f += step {
			if p := power(f); p > best {
				best, freq = p, f
			}
		}
	}
	scan(50, 4000, 5)
	scan(freq-5, freq+5, 0.1)
	return freq
}

// TestE2EWebRTCJibriToPion: Jibri publishes over RTMP, a WHEP viewer plays:
// H.264 from a keyframe at full frame rate with the stream's own profile
// in the answer, and Opus that decodes to the 440 Hz tone.
func TestE2EWebRTCJibriToPion(t *testing.T) {
	if _, err := exec.LookPath("ffmpeg"); err != nil {
		t.Fatalf("ffmpeg is missing: %s", toolsHint)
	}
	const (
		dur    = 20 * time.Second
		window = 5 * time.Second
	)
	s := startSeance(t, listeners+fmt.Sprintf(`
admin: {listen: "127.0.0.1:0"}
channels:
  - name: conseil
    ingest: {key: %q}
    grace: 1s
`, secretIngestKey), "")
	pub := startPublisher(t, s.publishURL("conseil", secretIngestKey), dur)
	s.waitChannel("conseil", "live", "", 15*time.Second)

	v := startWHEPViewer(t, "http://"+s.app.public.Addr().String()+"/whep/conseil")
	require.Equal(t, 1, s.app.webrtc.Viewers("conseil"))

	// The first access unit: SPS, PPS, then the IDR (SEI allowed).
	// Every packet from the first sequence number to the first marker bit
	// (some may come again after a NACK).
	require.Eventually(t, func() bool {
		pkts := v.packets(true)
		for i, p := range pkts {
			if p.seq != pkts[0].seq+uint16(i) {
				return false
			}
			if p.marker {
				return true
			}
		}
		return false
	}, 10*time.Second, 10*time.Millisecond, "no complete first video frame; ffmpeg: %s", pub.output())
	first := v.packets(true)
	var types []byte
	for _, p := range first {
		types = append(types, h264NAL(p.payload))
		if p.marker {
			break
		}
	}
	require.Equal(t, []byte{7, 8}, types[:2], "SPS then PPS: %v", types)
	types = slices.DeleteFunc(types[2:], func(b byte) bool { return b == 6 })
	require.NotEmpty(t, types)
	for _, typ := range types {
		require.Equal(t, byte(5), typ, "then IDR slices only: %v", types)
	}

	// The answer announces what x264 encodes (High), not a fixed Baseline.
	sps := first[0].payload
	require.GreaterOrEqual(t, len(sps), 4)
	require.Equal(t, byte(100), sps[1], "x264 encodes High profile")
	plid := answerFmtp(t, v.answer, "profile-level-id")
	require.Equal(t, hex.EncodeToString(sps[1:4]), plid)
	require.Equal(t, "1", answerFmtp(t, v.answer, "packetization-mode"))

	// Frame rate: frames (marker bits) received over 5 s, after the
	// fast-start burst.
	start := first[0].at.Add(time.Second)
	require.Eventually(t, func() bool {
		pkts := v.packets(true)
		for _, p := range pkts {
			if p.at.After(start.Add(window)) {
				return true
			}
		}
		return false
	}, window+10*time.Second, 50*time.Millisecond)
	frames := 0
	for _, p := range v.packets(true) {
		if p.marker && !p.at.Before(start) && p.at.Before(start.Add(window)) {
			frames++
		}
	}
	fps := float64(frames) / window.Seconds()
	t.Logf("video: %.1f fps over %s, profile-level-id %s", fps, window, plid)
	require.GreaterOrEqual(t, fps, 25.0)

	// Audio: 1.5 s of Opus without a loss (Opus is not retransmitted),
	// after the first half second, decodes to the tone.
	const run = 75 // packets of 20 ms
	audio := v.packets(false)
	from := 25
	for i := from + 1; i < len(audio) && i-from < run; i++ {
		if audio[i].seq != audio[i-1].seq+1 {
			from = i
		}
	}
	require.GreaterOrEqual(t, len(audio)-from, run, "%d Opus packets, no %d in a row", len(audio), run)
	dec, err := gopus.NewDecoder(gopus.DefaultDecoderConfig(48000, 2))
	require.NoError(t, err)
	pcm := make([]float32, 5760*2)
	var left []float64
	for _, p := range audio[from : from+run] {
		n, err := dec.Decode(p.payload, pcm)
		require.NoError(t, err, "Opus packet %d", p.seq)
		require.Equal(t, 960, n, "20 ms at 48 kHz")
		for j := range n {
			left = append(left, float64(pcm[2*j]))
		}
	}
	freq := dominantFrequency(left)
	t.Logf("audio: %d Opus packets, %.1f Hz over %.1f s", len(audio), freq, float64(len(left))/48000)
	require.InDelta(t, 440, freq, 5)

	// DELETE ends the session.
	req, err := http.NewRequest(http.MethodDelete, "http://"+s.app.public.Addr().String()+v.location, nil)
	require.NoError(t, err)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Eventually(t, func() bool { return s.app.webrtc.Viewers("conseil") == 0 }, 5*time.Second, 10*time.Millisecond)
	http.DefaultClient.CloseIdleConnections()
}
