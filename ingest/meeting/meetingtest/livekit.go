package meetingtest

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	_ "embed" // the participants' page
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// LiveKit is a real livekit-server (scripts/build-livekit-server.sh builds
// it once per machine from the Go module proxy) run in development mode
// on loopback ports of its own, and the page its test participants
// publish from.
type LiveKit struct {
	// URL is the server's WebSocket address, "ws://127.0.0.1:port".
	URL string
	// APIKey and APISecret are the server's one key pair.
	APIKey, APISecret string

	http    string // the server's HTTP address (same port as URL)
	cmd     *exec.Cmd
	exited  chan struct{}
	log     *lockedBuffer
	pages   *httptest.Server
	tone    string // 440 Hz WAV for the participants' fake microphone
	tempDir string
}

// The test server's key pair (not development mode's devkey/secret, so
// that a test can look for the secret in what seance prints).
const (
	LiveKitAPIKey    = "APIseanceTest"
	LiveKitAPISecret = "lk-S3CR3T-api-secret-0123456789abcdefghij"
)

// repoRoot is the repository's top directory, from this file's path.
func repoRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..", "..")
}

// LiveKitServerBinary builds livekit-server if needed and returns its path.
func LiveKitServerBinary(t testing.TB) string {
	t.Helper()
	start := time.Now()
	bin, err := BuildLiveKitServer()
	if err != nil {
		t.Fatal(err)
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Logf("livekit-server built in %s", took.Round(time.Second))
	}
	return bin
}

// BuildLiveKitServer runs scripts/build-livekit-server.sh and returns the
// binary's path.
func BuildLiveKitServer() (string, error) {
	cmd := exec.Command("bash", filepath.Join(repoRoot(), "scripts", "build-livekit-server.sh"))
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("building livekit-server (scripts/build-livekit-server.sh): %w\n%s", err, stderr.String())
	}
	return strings.TrimSpace(string(out)), nil
}

// freePort returns a loopback port of network ("tcp" or "udp") that was
// free a moment ago: livekit-server takes no port 0.
func freePort(network string) (int, error) {
	if network == "udp" {
		c, err := net.ListenPacket("udp4", "127.0.0.1:0")
		if err != nil {
			return 0, err
		}
		defer c.Close()
		return c.LocalAddr().(*net.UDPAddr).Port, nil
	}
	l, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// StartLiveKit runs livekit-server --dev on loopback until the test ends.
func StartLiveKit(t testing.TB) *LiveKit {
	t.Helper()
	bin := LiveKitServerBinary(t)
	lk, err := RunLiveKit(bin, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		lk.Close()
		if t.Failed() {
			t.Logf("livekit-server output:\n%s", tailOf(lk.log.String(), 4000))
		}
	})
	return lk
}

// RunLiveKit starts the livekit-server binary in development mode on
// loopback ports it picks, with its files in dir, and waits until it
// answers. Close stops it.
func RunLiveKit(bin, dir string) (*LiveKit, error) {
	var ports [3]int
	for i, network := range []string{"tcp", "tcp", "udp"} {
		p, err := freePort(network)
		if err != nil {
			return nil, err
		}
		ports[i] = p
	}
	port, tcp, udp := ports[0], ports[1], ports[2]
	conf := fmt.Sprintf("port: %d\nrtc:\n  tcp_port: %d\n  udp_port: %d\n  use_external_ip: false\n"+
		"  enable_loopback_candidate: true\nlogging:\n  level: info\n", port, tcp, udp)
	lk := &LiveKit{
		URL: "ws://127.0.0.1:" + strconv.Itoa(port), APIKey: LiveKitAPIKey, APISecret: LiveKitAPISecret,
		http: "http://127.0.0.1:" + strconv.Itoa(port), exited: make(chan struct{}), log: &lockedBuffer{},
		tempDir: dir,
	}
	lk.cmd = exec.Command(bin, "--dev", "--bind", "127.0.0.1", "--node-ip", "127.0.0.1", "--config-body", conf,
		"--keys", lk.APIKey+": "+lk.APISecret)
	lk.cmd.Stdout, lk.cmd.Stderr = lk.log, lk.log
	lk.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := lk.cmd.Start(); err != nil {
		return nil, fmt.Errorf("livekit-server: %w", err)
	}
	go func() {
		_ = lk.cmd.Wait()
		close(lk.exited)
	}()
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get(lk.http + "/")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
		}
		select {
		case <-lk.exited:
			return nil, fmt.Errorf("livekit-server exited at start:\n%s", tailOf(lk.log.String(), 4000))
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			lk.Close()
			return nil, fmt.Errorf("livekit-server did not answer within 30 s:\n%s", tailOf(lk.log.String(), 4000))
		}
	}
	lk.pages = httptest.NewServer(participantPages())
	lk.tone = filepath.Join(lk.tempDir, "tone-440.wav")
	if err := os.WriteFile(lk.tone, toneWAV(440, 48000, 5*time.Second), 0o600); err != nil {
		lk.Close()
		return nil, err
	}
	return lk, nil
}

// Close stops the server (killed: it would wait for its participants'
// timeouts, and keeps nothing) and the participants' page server.
func (lk *LiveKit) Close() {
	if lk.pages != nil {
		lk.pages.Close()
	}
	_ = lk.cmd.Process.Kill()
	<-lk.exited
}

// Log returns the server's output so far.
func (lk *LiveKit) Log() string { return lk.log.String() }

// Token mints a token with the server's key pair.
func (lk *LiveKit) Token(identity, name string, grant map[string]any) string {
	return liveKitJWT(lk.APIKey, lk.APISecret, identity, name, grant)
}

// liveKitJWT signs a LiveKit token independently of the code under test
// (golang's hmac, by hand), so that a mistake there shows.
func liveKitJWT(key, secret, identity, name string, video map[string]any) string {
	now := time.Now().Unix()
	claims, _ := json.Marshal(map[string]any{
		"iss": key, "sub": identity, "jti": identity, "name": name,
		"nbf": now - 10, "exp": now + 3600, "video": video,
	})
	enc := base64.RawURLEncoding
	signed := enc.EncodeToString([]byte(`{"alg":"HS256","typ":"JWT"}`)) + "." + enc.EncodeToString(claims)
	return signed + "." + enc.EncodeToString(hmacSHA256([]byte(secret), []byte(signed)))
}

// ServerParticipant is a participant as the server's RoomService lists it.
type ServerParticipant struct {
	Identity   string `json:"identity"`
	Name       string `json:"name"`
	Tracks     []any  `json:"tracks"`
	Permission struct {
		CanSubscribe   bool `json:"can_subscribe"`
		CanPublish     bool `json:"can_publish"`
		CanPublishData bool `json:"can_publish_data"`
		Hidden         bool `json:"hidden"`
	} `json:"permission"`
}

// Remove has the server remove a participant from the room, as a
// moderator does (RoomService.RemoveParticipant).
func (lk *LiveKit) Remove(room, identity string) error {
	_, err := lk.roomService("RemoveParticipant", room, map[string]string{"room": room, "identity": identity})
	return err
}

// roomService calls a RoomService method (Twirp JSON) as the room's admin.
func (lk *LiveKit) roomService(method, room string, body any) ([]byte, error) {
	token := liveKitJWT(lk.APIKey, lk.APISecret, "seance-test-admin", "", map[string]any{"room": room, "roomAdmin": true})
	b, _ := json.Marshal(body)
	req, err := http.NewRequest(http.MethodPost, lk.http+"/twirp/livekit.RoomService/"+method, bytes.NewReader(b))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var out bytes.Buffer
	_, _ = out.ReadFrom(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("%s: %s: %s", method, resp.Status, out.String())
	}
	return out.Bytes(), nil
}

// Participants asks the server (RoomService.ListParticipants, Twirp JSON)
// who is in the room.
func (lk *LiveKit) Participants(room string) ([]ServerParticipant, error) {
	b, err := lk.roomService("ListParticipants", room, map[string]string{"room": room})
	if err != nil {
		return nil, err
	}
	var out struct {
		Participants []ServerParticipant `json:"participants"`
	}
	if err := json.Unmarshal(b, &out); err != nil {
		return nil, err
	}
	return out.Participants, nil
}

// Validate asks the server whether it accepts a token, as livekit-client
// does after a failed connection (GET /rtc/validate): the status code.
func (lk *LiveKit) Validate(token string) (int, string, error) {
	resp, err := http.Get(lk.http + "/rtc/validate?access_token=" + token)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	var b bytes.Buffer
	_, _ = b.ReadFrom(resp.Body)
	return resp.StatusCode, strings.TrimSpace(b.String()), nil
}

// Participant is a headless Chromium that publishes its fake camera and a
// 440 Hz fake microphone into a LiveKit room.
type Participant struct {
	cmd    *exec.Cmd
	exited chan struct{}
	log    *lockedBuffer
	once   sync.Once
}

// Join starts a participant publishing width x height video into room.
// It leaves when Leave is called or the test ends.
func (lk *LiveKit) Join(t testing.TB, room, identity, name string, width, height int) *Participant {
	t.Helper()
	p, err := lk.publish(room, identity, name, width, height, false)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Leave)
	return p
}

// JoinSharing is Join, the participant also sharing its "screen" (its
// camera again, published as a screen share).
func (lk *LiveKit) JoinSharing(t testing.TB, room, identity, name string, width, height int) *Participant {
	t.Helper()
	p, err := lk.publish(room, identity, name, width, height, true)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Leave)
	return p
}

// Publish starts a participant publishing width x height video (15 fps)
// and the tone into room, until Leave.
func (lk *LiveKit) Publish(room, identity, name string, width, height int) (*Participant, error) {
	return lk.publish(room, identity, name, width, height, false)
}

func (lk *LiveKit) publish(room, identity, name string, width, height int, screen bool) (*Participant, error) {
	token := lk.Token(identity, name, map[string]any{
		"room": room, "roomJoin": true, "canPublish": true, "canSubscribe": false, "canPublishData": false,
	})
	cfg, _ := json.Marshal(map[string]any{"url": lk.URL, "token": token, "width": width, "height": height, "screen": screen})
	pageURL := lk.pages.URL + "/publish.html#" + base64.RawURLEncoding.EncodeToString(cfg)
	profile, err := os.MkdirTemp(lk.tempDir, "participant-")
	if err != nil {
		return nil, err
	}
	args := []string{
		"--headless=new", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
		"--disable-sync", "--no-first-run", "--no-default-browser-check", "--user-data-dir=" + profile,
		"--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream",
		"--use-file-for-fake-audio-capture=" + lk.tone,
		"--allow-loopback-in-peer-connection", "--autoplay-policy=no-user-gesture-required",
		"--window-size=" + strconv.Itoa(width) + "," + strconv.Itoa(height),
		"--remote-debugging-port=0", // keeps new headless running with a page open
	}
	if os.Geteuid() == 0 {
		args = append(args, "--no-sandbox")
	}
	p := &Participant{exited: make(chan struct{}), log: &lockedBuffer{}}
	p.cmd = exec.Command("chromium", append(args, pageURL)...)
	p.cmd.Stdout, p.cmd.Stderr = p.log, p.log
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := p.cmd.Start(); err != nil {
		return nil, fmt.Errorf("participant chromium: %w", err)
	}
	go func() {
		_ = p.cmd.Wait()
		close(p.exited)
	}()
	return p, nil
}

// PID is the participant's browser's main process.
func (p *Participant) PID() int { return p.cmd.Process.Pid }

// Leave kills the participant's browser (its whole process group) and
// waits for it.
func (p *Participant) Leave() {
	p.once.Do(func() {
		_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
		<-p.exited
	})
}

// toneWAV is a mono 16-bit PCM WAV of a sine at hz, for Chromium's
// --use-file-for-fake-audio-capture (which loops it).
func toneWAV(hz float64, rate int, d time.Duration) []byte {
	n := int(d.Seconds() * float64(rate))
	// Whole periods, so that the loop has no click.
	per := float64(rate) / hz
	n = int(math.Floor(float64(n)/per) * per)
	var b bytes.Buffer
	w := func(v any) { _ = binary.Write(&b, binary.LittleEndian, v) }
	b.WriteString("RIFF")
	w(uint32(36 + 2*n))
	b.WriteString("WAVEfmt ")
	w(uint32(16))
	w(uint16(1)) // PCM
	w(uint16(1)) // mono
	w(uint32(rate))
	w(uint32(2 * rate))
	w(uint16(2))
	w(uint16(16))
	b.WriteString("data")
	w(uint32(2 * n))
	for i := range n {
		w(int16(0.5 * 32767 * math.Sin(2*math.Pi*hz*float64(i)/float64(rate))))
	}
	return b.Bytes()
}

// lockedBuffer is a bytes.Buffer safe for concurrent writers.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func tailOf(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

func hmacSHA256(key, msg []byte) []byte {
	m := hmac.New(sha256.New, key)
	m.Write(msg)
	return m.Sum(nil)
}

//go:embed publish.html
var publishPage []byte

// participantPages serves the participants' page and the livekit-client
// build seance embeds (read from the source tree: this package cannot
// embed its parent's files).
func participantPages() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /publish.html", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		_, _ = w.Write(publishPage)
	})
	mux.HandleFunc("GET /livekit-client.umd.js", func(w http.ResponseWriter, r *http.Request) {
		http.ServeFile(w, r, filepath.Join(repoRoot(), "ingest", "meeting", "livekit", "livekit-client.umd.js"))
	})
	return mux
}
