package web

import (
	"context"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
	"github.com/stretchr/testify/require"

	"github.com/seance-relay/seance/publish/rtmp"
	"github.com/seance-relay/seance/relay"
)

const adminToken = "t0ken-S3CRET-admin-4d1e88"

// fakeDestination is a Destination whose behaviour each test sets.
type fakeDestination struct {
	status func() rtmp.Status
	start  func()
	stop   func()
}

func (f *fakeDestination) Status() rtmp.Status { return f.status() }
func (f *fakeDestination) Start()              { f.start() }
func (f *fakeDestination) Stop()               { f.stop() }

// calls records, in order, what the admin API asked of destinations.
type calls struct {
	mu   sync.Mutex
	list []string
}

func (c *calls) add(s string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.list = append(c.list, s)
}

func (c *calls) get() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.list)
}

// recordingDestination returns a fake named name that records "name start"
// and "name stop".
func recordingDestination(name string, c *calls) *fakeDestination {
	return &fakeDestination{
		status: func() rtmp.Status {
			return rtmp.Status{Name: name, URL: "rtmps://a.rtmps.youtube.com/live2#[redacted]", State: rtmp.StateIdle}
		},
		start: func() { c.add(name + " start") },
		stop:  func() { c.add(name + " stop") },
	}
}

// newHub returns a hub with two channels and the registry its metrics
// are on.
func newHub(t testing.TB) (*relay.Hub, *prometheus.Registry) {
	reg := prometheus.NewRegistry()
	hub := relay.NewHub([]relay.ChannelConfig{
		{Name: "bourg", Title: "Conseil municipal de Bourg"},
		{Name: "ville", Title: "Conseil <de> Ville & Cie"},
	}, zerolog.New(zerolog.NewTestWriter(t)), relay.NewMetrics(reg))
	return hub, reg
}

// run serves s until the test ends.
func run(t testing.TB, s *Server) string {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			require.NoError(t, err)
		case <-time.After(10 * time.Second):
			t.Error("Run did not return after cancel")
		}
	})
	return "http://" + s.Addr().String()
}

// client is an HTTP client whose idle connections are closed when the
// test ends.
func client(t testing.TB) *http.Client {
	tr := &http.Transport{}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: 5 * time.Second}
}

type response struct {
	status int
	header http.Header
	body   string
}

func do(t testing.TB, c *http.Client, method, url string, header http.Header) response {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	require.NoError(t, err)
	for k, vs := range header {
		req.Header[k] = vs
	}
	res, err := c.Do(req)
	require.NoError(t, err)
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	require.NoError(t, err)
	return response{status: res.StatusCode, header: res.Header, body: string(body)}
}

func bearer(v string) http.Header {
	return http.Header{"Authorization": {v}}
}

// logBuffer collects log output written from several goroutines.
type logBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
