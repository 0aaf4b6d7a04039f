package web

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"github.com/stretchr/testify/require"

	"github.com/seance-relay/seance/publish/rtmp"
	"github.com/seance-relay/seance/relay"
)

// sseEvent is one server-sent event, or a comment (name ":").
type sseEvent struct {
	name, data string
}

// sseClient reads an event stream in the background.
type sseClient struct {
	res    *http.Response
	events chan sseEvent
	done   chan struct{} // closed when the stream ends
}

// openEvents connects to GET /api/v1/events; the stream is closed when
// the test ends.
func openEvents(t *testing.T, base string, header http.Header) *sseClient {
	t.Helper()
	tr := &http.Transport{}
	t.Cleanup(tr.CloseIdleConnections)
	req, err := http.NewRequest(http.MethodGet, base+"/api/v1/events", nil)
	require.NoError(t, err)
	for k, vs := range header {
		req.Header[k] = vs
	}
	res, err := (&http.Client{Transport: tr}).Do(req)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, res.StatusCode)
	require.Equal(t, "text/event-stream", res.Header.Get("Content-Type"))
	require.Equal(t, "no-store", res.Header.Get("Cache-Control"))
	c := &sseClient{res: res, events: make(chan sseEvent, 4096), done: make(chan struct{})}
	go func() {
		defer close(c.done)
		sc := bufio.NewScanner(res.Body)
		sc.Buffer(make([]byte, 64<<10), 4<<20)
		var ev sseEvent
		for sc.Scan() {
			line := sc.Text()
			switch {
			case line == "":
				if ev.name != "" {
					c.events <- ev
				}
				ev = sseEvent{}
			case strings.HasPrefix(line, ":"):
				c.events <- sseEvent{name: ":", data: strings.TrimSpace(line[1:])}
			case strings.HasPrefix(line, "event: "):
				ev.name = line[len("event: "):]
			case strings.HasPrefix(line, "data: "):
				ev.data = line[len("data: "):]
			}
		}
	}()
	t.Cleanup(func() {
		res.Body.Close()
		<-c.done
	})
	return c
}

// next waits for the next event named name for which match (if set) is
// true, skipping the others.
func (c *sseClient) next(t *testing.T, name string, within time.Duration, match func(data string) bool) sseEvent {
	t.Helper()
	deadline := time.After(within)
	for {
		select {
		case ev := <-c.events:
			if ev.name == name && (match == nil || match(ev.data)) {
				return ev
			}
		case <-c.done:
			// Drain what was read before the end.
			for {
				select {
				case ev := <-c.events:
					if ev.name == name && (match == nil || match(ev.data)) {
						return ev
					}
				default:
					t.Fatalf("the event stream ended before a %q event", name)
				}
			}
		case <-deadline:
			t.Fatalf("no %q event within %s", name, within)
		}
	}
}

func decode[T any](t *testing.T, data string) T {
	t.Helper()
	var v T
	require.NoError(t, json.Unmarshal([]byte(data), &v), data)
	return v
}

// apiSample is a health event as a client reads it.
type apiSample struct {
	Channel      string           `json:"channel"`
	Time         time.Time        `json:"time"`
	State        string           `json:"state"`
	Bitrate      float64          `json:"bitrate_bps"`
	Viewers      map[string]int   `json:"viewers"`
	Warnings     []string         `json:"warnings"`
	Destinations []map[string]any `json:"destinations"`
	Pull         map[string]any   `json:"pull"`
}

// switchableDestination is a destination whose state the test sets.
type switchableDestination struct {
	st atomic.Pointer[rtmp.Status]
}

func (d *switchableDestination) Status() rtmp.Status { return *d.st.Load() }
func (d *switchableDestination) Start()              {}
func (d *switchableDestination) Stop()               {}

func TestAdminEvents(t *testing.T) {
	hub, _ := newHub(t)
	dest := &switchableDestination{}
	dest.st.Store(&rtmp.Status{Name: "youtube", URL: "rtmps://a.rtmps.youtube.com/live2#[redacted]", State: rtmp.StateIdle})
	base, _, _, _, _ := startAdminWith(t, hub, AdminConfig{
		Token:        adminToken,
		heartbeat:    50 * time.Millisecond,
		sampleEvery:  100 * time.Millisecond,
		Destinations: map[string][]Destination{"bourg": {dest}},
	})
	ev := openEvents(t, base, bearer("Bearer "+adminToken))
	require.Equal(t, "connected", ev.next(t, ":", time.Second, nil).data)

	t.Run("heartbeat", func(t *testing.T) {
		ev.next(t, ":", time.Second, func(d string) bool { return d == "ping" })
	})

	t.Run("state change within 1 s", func(t *testing.T) {
		ch, err := hub.Channel("bourg")
		require.NoError(t, err)
		start := time.Now()
		sess, err := ch.Publish(relay.PublisherInfo{Protocol: "rtmp", RemoteAddr: "192.0.2.1:50000"}, relay.Tracks{Video: &relay.VideoTrack{}})
		require.NoError(t, err)
		e := ev.next(t, eventState, time.Second, nil)
		require.Less(t, time.Since(start), time.Second)
		st := decode[apiStatus](t, e.data)
		require.Equal(t, "bourg", st.Name)
		require.Equal(t, "live", st.State)
		require.Equal(t, "rtmp", st.Ingest.Protocol)

		sess.Close()
		st = decode[apiStatus](t, ev.next(t, eventState, time.Second, nil).data)
		require.Equal(t, "idle", st.State)
		require.Nil(t, st.Ingest)
	})

	t.Run("health samples for every channel", func(t *testing.T) {
		seen := map[string]apiSample{}
		for len(seen) < 2 {
			s := decode[apiSample](t, ev.next(t, eventHealth, time.Second, nil).data)
			seen[s.Channel] = s
		}
		require.Equal(t, map[string]int{"webrtc": 2, "rtsp": 1, "total": 3}, seen["bourg"].Viewers)
		require.NotNil(t, seen["bourg"].Warnings)
		require.Len(t, seen["bourg"].Destinations, 1)
		require.WithinDuration(t, time.Now(), seen["bourg"].Time, 2*time.Second)
		require.NotNil(t, seen["ville"].Pull)
	})

	t.Run("destination state change", func(t *testing.T) {
		dest.st.Store(&rtmp.Status{Name: "youtube", State: rtmp.StateRetrying, LastError: "dial tcp: connection refused"})
		e := decode[struct {
			Channel     string         `json:"channel"`
			Destination map[string]any `json:"destination"`
		}](t, ev.next(t, eventDestination, time.Second, nil).data)
		require.Equal(t, "bourg", e.Channel)
		require.Equal(t, "retrying", e.Destination["state"])
		require.Equal(t, "dial tcp: connection refused", e.Destination["last_error"])
	})
}

// TestAdminEventsHealthEverySecond: with the default period, each channel
// gets one health sample a second.
func TestAdminEventsHealthEverySecond(t *testing.T) {
	hub, _ := newHub(t)
	base, _, _, _, _ := startAdminWith(t, hub, AdminConfig{})
	ev := openEvents(t, base, nil)
	isBourg := func(d string) bool { return strings.Contains(d, `"channel":"bourg"`) }
	a := decode[apiSample](t, ev.next(t, eventHealth, 1500*time.Millisecond, isBourg).data)
	b := decode[apiSample](t, ev.next(t, eventHealth, 1500*time.Millisecond, isBourg).data)
	require.InDelta(t, time.Second, b.Time.Sub(a.Time), float64(100*time.Millisecond))
}

// TestBrokerSlowClient: a client that does not read is dropped once its
// queue is full; publishing never blocks and the others get everything.
func TestBrokerSlowClient(t *testing.T) {
	b := newBroker(8, zerolog.New(zerolog.NewTestWriter(t)))
	slow := b.subscribe("192.0.2.1:1")
	fast := b.subscribe("192.0.2.2:2")
	var got [][]byte
	start := time.Now()
	for i := range 1000 {
		b.publish(eventHealth, map[string]int{"i": i})
		got = append(got, <-fast.ch) // fast keeps up
	}
	require.Less(t, time.Since(start), time.Second, "publishing does not wait for clients")
	require.True(t, b.wasDropped(slow))
	n := 0
	for range slow.ch { // closed, with its queue full
		n++
	}
	require.Equal(t, 8, n)
	require.Equal(t, 1, b.count())
	require.False(t, b.wasDropped(fast))
	require.Len(t, got, 1000)
	require.Equal(t, "id: 1000\nevent: health\ndata: {\"i\":999}\n\n", string(got[999]))
	b.close()
	_, open := <-fast.ch
	require.False(t, open, "close ends every stream")
	require.False(t, b.wasDropped(fast), "closed, not dropped")
	require.Nil(t, b.subscribe("192.0.2.3:3"), "no subscription after close")
}

// TestAdminEventsSlowClient: over HTTP, a client that stops reading is
// disconnected without delaying anything, and its stream ends.
func TestAdminEventsSlowClient(t *testing.T) {
	hub, _ := newHub(t)
	base, _, _, logs, a := startAdminWith(t, hub, AdminConfig{
		sseBuffer:    4,
		writeTimeout: 200 * time.Millisecond,
		sampleEvery:  time.Hour, // only the test's events
	})
	req, err := http.NewRequest(http.MethodGet, base+"/api/v1/events", nil)
	require.NoError(t, err)
	tr := &http.Transport{}
	defer tr.CloseIdleConnections()
	res, err := (&http.Client{Transport: tr}).Do(req)
	require.NoError(t, err)
	defer res.Body.Close()
	require.Eventually(t, func() bool { return a.events.count() == 1 }, time.Second, 5*time.Millisecond)

	// The client reads nothing: once the socket buffers are full, the
	// handler's writes time out or its queue fills, and it is dropped.
	pad := strings.Repeat("x", 256<<10)
	start := time.Now()
	for i := 0; a.events.count() > 0; i++ {
		require.Less(t, i, 5000, "the slow client was never dropped")
		b := time.Now()
		a.events.publish(eventHealth, map[string]string{"pad": pad})
		require.Less(t, time.Since(b), 100*time.Millisecond, "publish blocked")
	}
	t.Logf("slow client dropped after %s", time.Since(start).Round(time.Millisecond))
	// Its stream ends: reading it to the end returns.
	done := make(chan error, 1)
	go func() {
		_, err := io.Copy(io.Discard, res.Body)
		done <- err
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("the dropped client's stream did not end")
	}
	require.Eventually(t, func() bool {
		return strings.Contains(logs.String(), "event stream client too slow") || a.events.count() == 0
	}, time.Second, 10*time.Millisecond)
}

// TestAdminEventsShutdown: stopping the server ends the streams at once,
// with a shutdown event, well before the 3 s graceful-shutdown limit.
func TestAdminEventsShutdown(t *testing.T) {
	hub, reg := newHub(t)
	a, err := newAdmin(AdminConfig{Listen: "127.0.0.1:0", Gatherer: reg}, hub, zerolog.New(zerolog.NewTestWriter(t)))
	require.NoError(t, err)
	s, err := newServer("admin", "127.0.0.1:0", a.handler(), a.log)
	require.NoError(t, err)
	s.background = a.monitor
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	base := "http://" + s.Addr().String()

	ev := openEvents(t, base, nil)
	ev.next(t, ":", time.Second, nil)
	start := time.Now()
	cancel()
	ev.next(t, eventShutdown, time.Second, nil)
	select {
	case <-ev.done:
	case <-time.After(time.Second):
		t.Fatal("the stream did not end")
	}
	select {
	case err := <-done:
		require.NoError(t, err)
	case <-time.After(2 * time.Second):
		t.Fatal("Run did not return")
	}
	require.Less(t, time.Since(start), time.Second, "shutdown waited for the stream")

	// Once stopped, nobody subscribes.
	rec := &recorder{h: http.Header{}}
	req, _ := http.NewRequest(http.MethodGet, "/api/v1/events", nil)
	a.handler().ServeHTTP(rec, req)
	require.Equal(t, http.StatusServiceUnavailable, rec.status)
	require.Contains(t, rec.body.String(), `"shutting_down"`)
}

// recorder is a minimal ResponseWriter.
type recorder struct {
	h      http.Header
	status int
	body   strings.Builder
}

func (r *recorder) Header() http.Header { return r.h }
func (r *recorder) Write(p []byte) (int, error) {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	return r.body.Write(p)
}
func (r *recorder) WriteHeader(s int) { r.status = s }
