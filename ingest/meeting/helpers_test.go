package meeting

import (
	"bytes"
	"context"
	"io"
	"net"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/pion/ice/v4"
	"github.com/pion/logging"
	"github.com/pion/webrtc/v4"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
	"github.com/stretchr/testify/require"

	"github.com/seance-relay/seance/configs"
	"github.com/seance-relay/seance/ingest/meeting/meetingtest"
	"github.com/seance-relay/seance/ingest/whip"
	"github.com/seance-relay/seance/relay"
)

const (
	chromiumHint = "chromium is missing: run make test (scripts/install-test-deps.sh installs it)"
	testBBBKey   = "bbb-secret-Kq7Wm2Zt"
	testJWT      = "eyJhbGciOiJIUzI1NiJ9.eyJyb29tIjoiKiJ9.jwt-S3CR3T-Vb8"
	testRoom     = "ConseilMunicipal-S3CR3T-Rq4"
)

func requireChromium(t *testing.T) {
	t.Helper()
	if _, err := findBrowser(""); err != nil {
		t.Fatal(chromiumHint)
	}
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// env is a channel "conseil" (30 s grace), seance's WHIP endpoint for its
// own publishers on a loopback port, and a stand-in meeting server.
type env struct {
	hub     *relay.Hub
	ch      *relay.Channel
	whip    *whip.Server
	whipURL string
	meet    *meetingtest.Server
	reg     *prometheus.Registry
	met     *Metrics
	logs    *syncBuffer
	log     zerolog.Logger
	tmp     string
}

func newEnv(t *testing.T) *env {
	t.Helper()
	logs := &syncBuffer{}
	log := zerolog.New(io.MultiWriter(logs, zerolog.NewTestWriter(t))).Level(zerolog.DebugLevel).With().Timestamp().Logger()
	reg := prometheus.NewRegistry()
	hub := relay.NewHub([]relay.ChannelConfig{{Name: "conseil", Grace: 30 * time.Second}}, log, relay.NewMetrics(reg))
	udp, err := net.ListenPacket("udp4", "127.0.0.1:0")
	require.NoError(t, err)
	var se webrtc.SettingEngine
	lf := logging.NewDefaultLoggerFactory()
	lf.DefaultLogLevel = logging.LogLevelDisabled
	se.LoggerFactory = lf
	se.SetICEUDPMux(webrtc.NewICEUDPMux(lf.NewLogger("udpmux"), udp))
	se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4})
	se.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
	se.SetIncludeLoopbackCandidate(true)
	ws, err := whip.New(whip.Config{SettingEngine: se}, hub, log, reg)
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { _ = hub.Run(ctx) })
	wg.Go(func() { _ = ws.Run(ctx) })
	internal := httptest.NewServer(ws.InternalHandler())
	meet := meetingtest.New(testBBBKey)
	ch, err := hub.Channel("conseil")
	require.NoError(t, err)
	tmp := t.TempDir()
	t.Cleanup(func() {
		meet.Close()
		internal.Close()
		cancel()
		wg.Wait()
		udp.Close()
	})
	return &env{
		hub: hub, ch: ch, whip: ws, whipURL: internal.URL + "/whip/conseil", meet: meet,
		reg: reg, met: NewMetrics(reg), logs: logs, log: log, tmp: tmp,
	}
}

// capture makes a capture of m for channel conseil, with test timings.
func (e *env) capture(t *testing.T, m configs.Meeting) *Capture {
	t.Helper()
	if m.DisplayName == "" {
		m.DisplayName = configs.DefaultDisplayName
	}
	if m.Size == "" {
		m.Size = configs.Size720p
	}
	if m.Start == "" {
		m.Start = configs.StartAuto
	}
	c, err := New(Config{
		Channel: "conseil", Meeting: m,
		WHIPURL: e.whipURL, WHIPToken: e.whip.InternalToken("conseil"),
		Disconnect: func() { e.whip.Disconnect("conseil") },
		TempDir:    e.tmp,
		hangAfter:  3 * time.Second, statsEvery: 500 * time.Millisecond, leftAfter: 2 * time.Second, bbbPoll: 300 * time.Millisecond,
	}, e.log, e.met)
	require.NoError(t, err)
	return c
}

// runCapture runs c until the returned stop is called (or the test ends); stop
// waits for Run to return.
func runCapture(t *testing.T, c *Capture) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-done:
				require.NoError(t, err)
			case <-time.After(10 * time.Second):
				t.Error("Run did not return within 10 s of its context being cancelled")
			}
		})
	}
	t.Cleanup(stop)
	return stop
}

func (c *Capture) browserPID() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.pid
}

// waitState waits for the capture to be in state, and returns its status.
func waitState(t *testing.T, c *Capture, state State, timeout time.Duration) Status {
	t.Helper()
	var st Status
	require.Eventually(t, func() bool {
		st = c.Status()
		return st.State == state
	}, timeout, 20*time.Millisecond, "capture state %s (last: %+v)", state, &st)
	return st
}

func stateOf(ch *relay.Channel) relay.State {
	s, _ := ch.State()
	return s
}

// leftovers lists what a capture left in dir.
func leftovers(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	ents, err := os.ReadDir(dir)
	require.NoError(t, err)
	for _, e := range ents {
		out = append(out, filepath.Join(dir, e.Name()))
	}
	return out
}

func requireNoSecret(t *testing.T, text string, secrets ...string) {
	t.Helper()
	for _, s := range secrets {
		require.False(t, strings.Contains(text, s), "a secret leaked")
	}
}

// processGone reports whether pid has exited (a zombie waiting for its
// reaper counts as gone).
func processGone(pid int) bool {
	if syscall.Kill(pid, 0) != nil {
		return true
	}
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	return err != nil || containsState(b, 'Z')
}
