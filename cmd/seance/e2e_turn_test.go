package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pion/ice/v4"
	"github.com/pion/webrtc/v4"
	"github.com/stretchr/testify/require"
)

const turnSecret = "turn-shared-secret-9f4e2c"

// startCoturn runs Debian's coturn on loopback with the TURN REST scheme
// (use-auth-secret) and returns its UDP port once it listens.
func startCoturn(t *testing.T) int {
	t.Helper()
	if _, err := exec.LookPath("turnserver"); err != nil {
		t.Fatalf("turnserver (coturn) is missing: run scripts/install-test-deps.sh (installs coturn)")
	}
	port := freeUDPPort(t)
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, "turnserver", "-n",
		"--listening-ip=127.0.0.1", "--relay-ip=127.0.0.1", "--listening-port="+strconv.Itoa(port),
		"--use-auth-secret", "--static-auth-secret="+turnSecret, "--realm=seance.test",
		"--allow-loopback-peers", "--no-cli", "--no-tls", "--no-dtls", "--no-tcp-relay",
		"--min-port=40000", "--max-port=40999", "--pidfile="+t.TempDir()+"/turnserver.pid",
		"--log-file=stdout", "--simple-log", "--no-software-attribute")
	out, err := cmd.StdoutPipe()
	require.NoError(t, err)
	cmd.Stderr = cmd.Stdout
	require.NoError(t, cmd.Start())
	var log syncBuffer
	done := make(chan struct{})
	go func() {
		defer close(done)
		_, _ = io.Copy(&log, out)
	}()
	t.Cleanup(func() {
		cancel()
		_ = cmd.Wait()
		<-done
		if t.Failed() {
			t.Logf("coturn:\n%s", tail(log.String(), 4000))
		}
	})
	// Ready when it answers a STUN binding request (RFC 8489 6).
	conn, err := net.ListenPacket("udp4", "127.0.0.1:0")
	require.NoError(t, err)
	defer conn.Close()
	to := &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: port}
	bind := []byte{0, 1, 0, 0, 0x21, 0x12, 0xa4, 0x42, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12}
	require.Eventually(t, func() bool {
		if _, err := conn.WriteTo(bind, to); err != nil {
			return false
		}
		_ = conn.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
		buf := make([]byte, 1500)
		n, _, err := conn.ReadFrom(buf)
		return err == nil && n >= 20 && buf[0] == 1 && buf[1] == 1
	}, 10*time.Second, 50*time.Millisecond, "coturn did not answer STUN within 10 s")
	return port
}

func freeUDPPort(t *testing.T) int {
	t.Helper()
	c, err := net.ListenPacket("udp4", "127.0.0.1:0")
	require.NoError(t, err)
	defer c.Close()
	return c.LocalAddr().(*net.UDPAddr).Port
}

var linkRE = regexp.MustCompile(`^<([^>]+)>; rel="ice-server"; username="([^"]*)"; credential="([^"]*)"; credential-type="password"$`)

// TestE2ETURNEphemeralCredentials: with webrtc.ice_servers[].secret, the
// WHEP Link headers carry a short-lived TURN REST credential, never the
// secret; a pion viewer allowed only relay candidates plays through
// Debian's coturn (use-auth-secret) with it; the secret appears in no log
// line, metric or API answer.
func TestE2ETURNEphemeralCredentials(t *testing.T) {
	port := startCoturn(t)
	turnURL := fmt.Sprintf("turn:127.0.0.1:%d?transport=udp", port)
	s := startSeance(t, fmt.Sprintf(`
public: {listen: "127.0.0.1:0"}
rtmp: {listen: ""}
rtsp: {listen: ""}
admin: {listen: "127.0.0.1:0"}
webrtc:
  udp_port: 0
  announce_loopback: true
  ice_servers:
    - {urls: [%q], secret: %q, ttl: 10m}
channels:
  - name: demo
    ingest: {demo: true}
`, turnURL, turnSecret), "")
	s.waitChannel("demo", "live", "", 15*time.Second)
	whep := "http://" + s.app.public.Addr().String() + "/whep/demo"

	// RFC 9725 4.6: the client asks for the ICE servers before its offer.
	req, err := http.NewRequest(http.MethodOptions, whep, nil)
	require.NoError(t, err)
	res, err := s.http.Do(req)
	require.NoError(t, err)
	res.Body.Close()
	links := res.Header.Values("Link")
	require.Len(t, links, 1)
	m := linkRE.FindStringSubmatch(links[0])
	require.NotNil(t, m, links[0])
	require.Equal(t, turnURL, m[1])
	user, cred := m[2], m[3]
	expiry, tag, ok := strings.Cut(user, ":")
	require.True(t, ok, user)
	require.Equal(t, "seance", tag)
	exp, err := strconv.ParseInt(expiry, 10, 64)
	require.NoError(t, err)
	require.InDelta(t, time.Now().Add(10*time.Minute).Unix(), exp, 5, "valid for the ttl")
	require.NotContains(t, links[0], turnSecret)

	var se webrtc.SettingEngine
	se.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
	se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4})
	pc, err := webrtc.NewAPI(webrtc.WithSettingEngine(se)).NewPeerConnection(webrtc.Configuration{
		ICEServers:         []webrtc.ICEServer{{URLs: []string{turnURL}, Username: user, Credential: cred}},
		ICETransportPolicy: webrtc.ICETransportPolicyRelay,
	})
	require.NoError(t, err)
	t.Cleanup(func() { _ = pc.Close() })
	for _, k := range []webrtc.RTPCodecType{webrtc.RTPCodecTypeVideo, webrtc.RTPCodecTypeAudio} {
		_, err = pc.AddTransceiverFromKind(k, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionRecvonly})
		require.NoError(t, err)
	}
	video := make(chan struct{})
	pc.OnTrack(func(tr *webrtc.TrackRemote, _ *webrtc.RTPReceiver) {
		buf := make([]byte, 1500)
		n := 0
		for {
			if _, _, err := tr.Read(buf); err != nil {
				return
			}
			if n++; n == 50 && tr.Kind() == webrtc.RTPCodecTypeVideo {
				close(video)
			}
		}
	})
	offer, err := pc.CreateOffer(nil)
	require.NoError(t, err)
	gathered := webrtc.GatheringCompletePromise(pc)
	require.NoError(t, pc.SetLocalDescription(offer))
	select {
	case <-gathered:
	case <-time.After(10 * time.Second):
		t.Fatal("the viewer gathered no relay candidate within 10 s")
	}
	sdp := pc.LocalDescription().SDP
	require.Contains(t, sdp, "typ relay", "coturn allocated a relay with the short-lived credential")
	require.NotContains(t, sdp, "typ host")
	start := time.Now()
	res, err = s.http.Post(whep, "application/sdp", strings.NewReader(sdp))
	require.NoError(t, err)
	answer, err := io.ReadAll(res.Body)
	res.Body.Close()
	require.NoError(t, err)
	require.Equal(t, http.StatusCreated, res.StatusCode, string(answer))
	require.NotContains(t, strings.Join(res.Header.Values("Link"), "\n"), turnSecret)
	require.NoError(t, pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: string(answer)}))
	select {
	case <-video:
		t.Logf("50 video packets through coturn %v after the offer", time.Since(start))
	case <-time.After(10 * time.Second):
		t.Fatal("no video through the TURN relay within 10 s")
	}
	pair, err := pc.GetTransceivers()[0].Receiver().Transport().ICETransport().GetSelectedCandidatePair()
	require.NoError(t, err)
	require.Equal(t, webrtc.ICECandidateTypeRelay, pair.Local.Typ, "the media went through the relay")

	_, metrics, err := s.get("/metrics", false)
	require.NoError(t, err)
	requireNoSecrets(t, []string{turnSecret}, map[string]string{
		"logs": s.logs.String(), "/metrics": metrics, "API": s.mustGet("/api/v1/channels"),
		"public API": s.publicGet("/api/public/channels/demo"), "answer": string(answer),
	})
}
