package webrtc

import (
	"fmt"
	"io"
	"net/http"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestWHEPConcurrentOffersDoNotLeak: 200 viewers offer at once, 10 of them
// play, then all leave with DELETE: every session, goroutine and socket
// is released.
func TestWHEPConcurrentOffersDoNotLeak(t *testing.T) {
	const (
		offers  = 200
		playing = 10
		// Goroutines and descriptors that come and go on their own:
		// the demo source's timer, HTTP keep-alive connections.
		tolerance = 8
	)
	e := newEnv(t, envOpts{})
	// One full session first, so that what is started once per process
	// (pion's and net/http's lazily started goroutines) is in the baseline.
	warm := newClient(t, clientOpts{})
	warm.post(e, "demo")
	warm.waitFirstVideo(5 * time.Second)
	resp, body := e.do(t, http.MethodDelete, warm.location, "", nil)
	require.Equal(t, http.StatusOK, resp.StatusCode, body)
	require.NoError(t, warm.pc.Close())
	require.Eventually(t, func() bool { return e.srv.Viewers("demo") == 0 }, 5*time.Second, 10*time.Millisecond)
	e.http.CloseIdleConnections()

	baseG, baseFD := 0, 0
	require.Eventually(t, func() bool {
		g, fd := runtime.NumGoroutine(), openFDs(t)
		settled := g == baseG && fd == baseFD
		baseG, baseFD = g, fd
		return settled
	}, 5*time.Second, 50*time.Millisecond)

	clients := make([]*client, playing)
	sdps := make([]string, offers)
	for i := range offers {
		if i < playing {
			clients[i] = newClient(t, clientOpts{})
			sdps[i] = clients[i].offer
		} else {
			sdps[i] = makeOffer(t, playOffer)
		}
	}

	start := time.Now()
	locations := make([]string, offers)
	errs := make([]error, offers)
	var wg sync.WaitGroup
	for i := range offers {
		wg.Go(func() {
			if i < playing {
				errs[i] = clients[i].postE(e, "demo")
				locations[i] = clients[i].location
				return
			}
			resp, err := e.http.Post(e.url+"/whep/demo", "application/sdp", stringsReader(sdps[i]))
			if err != nil {
				errs[i] = err
				return
			}
			defer resp.Body.Close()
			b, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != http.StatusCreated {
				errs[i] = fmt.Errorf("%d %s", resp.StatusCode, b)
				return
			}
			locations[i] = resp.Header.Get("Location")
		})
	}
	wg.Wait()
	for i, err := range errs {
		require.NoError(t, err, "offer %d", i)
	}
	t.Logf("%d offers answered in %v", offers, time.Since(start))
	require.Equal(t, offers, e.srv.Viewers("demo"))
	for _, c := range clients {
		c.waitFirstVideo(10 * time.Second)
	}
	t.Logf("peak: %d goroutines, %d descriptors (baseline %d, %d)", runtime.NumGoroutine(), openFDs(t), baseG, baseFD)

	for i := range offers {
		wg.Go(func() {
			req, err := http.NewRequest(http.MethodDelete, e.url+locations[i], nil)
			if err == nil {
				var resp *http.Response
				if resp, err = e.http.Do(req); err == nil {
					resp.Body.Close()
					if resp.StatusCode != http.StatusOK {
						err = fmt.Errorf("DELETE: %d", resp.StatusCode)
					}
				}
			}
			errs[i] = err
		})
	}
	wg.Wait()
	for i, err := range errs {
		require.NoError(t, err, "DELETE %d", i)
	}
	for _, c := range clients {
		require.NoError(t, c.pc.Close())
	}
	require.Eventually(t, func() bool { return e.srv.Viewers("demo") == 0 }, 10*time.Second, 10*time.Millisecond)
	require.Equal(t, float64(offers+1), e.ended("deleted"))
	e.http.CloseIdleConnections()
	var g, fd int
	require.Eventually(t, func() bool {
		g, fd = runtime.NumGoroutine(), openFDs(t)
		return g <= baseG+tolerance && fd <= baseFD+tolerance
	}, 10*time.Second, 50*time.Millisecond, "goroutines %d (baseline %d), descriptors %d (baseline %d)", g, baseG, fd, baseFD)
	t.Logf("after DELETE: %d goroutines, %d descriptors; took %v", g, fd, time.Since(start))
	e.srv.mu.Lock()
	defer e.srv.mu.Unlock()
	require.Empty(t, e.srv.sessions)
}

func stringsReader(s string) io.Reader { return strings.NewReader(s) }
