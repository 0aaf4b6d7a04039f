package meeting

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// fakeBrowser is the browser's end of a DevTools pipe: it answers each
// command with answer(method), or not at all when it returns nil.
type fakeBrowser struct {
	toBrowser   *io.PipeReader
	fromBrowser *io.PipeWriter
	wg          sync.WaitGroup
}

func newFakeBrowser(t *testing.T, answer func(m cdpMessage) []byte) (*cdp, *fakeBrowser) {
	t.Helper()
	cmdR, cmdW := io.Pipe()
	resR, resW := io.Pipe()
	fb := &fakeBrowser{toBrowser: cmdR, fromBrowser: resW}
	fb.wg.Go(func() {
		sc := bufio.NewScanner(cmdR)
		sc.Split(splitNUL)
		for sc.Scan() {
			var m cdpMessage
			if json.Unmarshal(sc.Bytes(), &m) != nil {
				continue
			}
			if out := answer(m); out != nil {
				if _, err := resW.Write(append(out, 0)); err != nil {
					return
				}
			}
		}
	})
	c := newCDP(resR, cmdW)
	t.Cleanup(func() {
		c.Close()
		cmdR.Close()
		resW.Close()
		fb.wg.Wait()
	})
	return c, fb
}

func TestCDPCall(t *testing.T) {
	c, _ := newFakeBrowser(t, func(m cdpMessage) []byte {
		switch m.Method {
		case "Browser.getVersion":
			// An event first, on a session, then the answer.
			return []byte(`{"method":"Runtime.consoleAPICalled","sessionId":"S1","params":{"type":"error"}}` + "\x00" +
				`{"id":` + itoa(m.ID) + `,"result":{"userAgent":"Mozilla/5.0 HeadlessChrome/156.0.0.0"}}`)
		case "Runtime.evaluate":
			var p struct {
				Expression string `json:"expression"`
			}
			_ = json.Unmarshal(m.Params, &p)
			if p.Expression == "boom()" {
				return []byte(`{"id":` + itoa(m.ID) + `,"sessionId":"` + m.SessionID + `","result":{"result":{"type":"object"},"exceptionDetails":{"text":"Uncaught","exception":{"description":"Error: boom\n    at <anonymous>:1:1"}}}}`)
			}
			return []byte(`{"id":` + itoa(m.ID) + `,"sessionId":"` + m.SessionID + `","result":{"result":{"type":"object","value":{"frames":42}}}}`)
		case "Never.answers":
			return nil
		}
		return []byte(`{"id":` + itoa(m.ID) + `,"error":{"code":-32601,"message":"'` + m.Method + `' wasn't found"}}`)
	})
	ctx := t.Context()
	var v struct {
		UserAgent string `json:"userAgent"`
	}
	require.NoError(t, c.call(ctx, "", "Browser.getVersion", nil, &v))
	require.Equal(t, "Mozilla/5.0 HeadlessChrome/156.0.0.0", v.UserAgent)
	ev := <-c.Events()
	require.Equal(t, "Runtime.consoleAPICalled", ev.Method)
	require.Equal(t, "S1", ev.SessionID)

	require.EqualError(t, c.call(ctx, "", "No.such", nil, nil), "No.such: 'No.such' wasn't found")

	var st struct {
		Frames int `json:"frames"`
	}
	require.NoError(t, c.evaluate(ctx, "S2", "seanceStats()", &st))
	require.Equal(t, 42, st.Frames)
	require.EqualError(t, c.evaluate(ctx, "S2", "boom()", nil), "javascript: Error: boom")

	// Concurrent calls each get their own answer.
	var wg sync.WaitGroup
	for range 20 {
		wg.Go(func() {
			var st struct {
				Frames int `json:"frames"`
			}
			if err := c.evaluate(ctx, "S3", "seanceStats()", &st); err != nil || st.Frames != 42 {
				t.Errorf("concurrent evaluate: %v %d", err, st.Frames)
			}
		})
	}
	wg.Wait()

	tctx, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	require.ErrorIs(t, c.call(tctx, "", "Never.answers", nil, nil), context.DeadlineExceeded)
	c.mu.Lock()
	require.Empty(t, c.pending, "a call that gave up is forgotten")
	c.mu.Unlock()
}

// TestCDPBrowserGone: when the browser's end closes, waiting calls fail at
// once, later calls too, and Events is closed.
func TestCDPBrowserGone(t *testing.T) {
	c, fb := newFakeBrowser(t, func(cdpMessage) []byte { return nil })
	errs := make(chan error, 1)
	go func() { errs <- c.call(t.Context(), "", "Never.answers", nil, nil) }()
	require.Eventually(t, func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		return len(c.pending) == 1
	}, time.Second, time.Millisecond)
	fb.fromBrowser.Close()
	select {
	case err := <-errs:
		require.ErrorIs(t, err, errCDPClosed)
	case <-time.After(5 * time.Second):
		t.Fatal("a waiting call did not fail when the pipe closed")
	}
	<-c.Done()
	require.ErrorIs(t, c.call(t.Context(), "", "Browser.getVersion", nil, nil), errCDPClosed)
	_, open := <-c.Events()
	require.False(t, open)
}

// TestCDPOversizedMessage: a message over the limit ends the connection
// rather than growing memory.
func TestCDPOversizedMessage(t *testing.T) {
	c, fb := newFakeBrowser(t, func(cdpMessage) []byte { return nil })
	go func() {
		_, _ = fb.fromBrowser.Write(bytes.Repeat([]byte("x"), maxCDPMessage+10))
	}()
	select {
	case <-c.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("an oversized message did not end the connection")
	}
	require.ErrorContains(t, c.call(t.Context(), "", "X.y", nil, nil), "too long")
}

// FuzzCDPRead feeds anything the browser could write: it never panics,
// answers reach only their caller, and the end of the pipe fails what is
// still waiting.
func FuzzCDPRead(f *testing.F) {
	f.Add([]byte(`{"id":1,"result":{}}` + "\x00" + `{"method":"X.y","params":{}}` + "\x00"))
	f.Add([]byte("\x00\x00{\x00" + `{"id":-1}` + "\x00" + `{"id":1,"error":{"message":"no"}}`))
	f.Add([]byte(`{"id":1,"result":"not an object"}` + "\x00"))
	f.Add([]byte(strings.Repeat(`{"method":"E"}`+"\x00", 300)))
	f.Fuzz(func(t *testing.T, data []byte) {
		r, w := io.Pipe()
		c := newCDP(r, nopWriteCloser{io.Discard})
		errs := make(chan error, 1)
		go func() {
			var out map[string]any
			errs <- c.call(context.Background(), "", "A.b", nil, &out)
		}()
		go func() {
			for range c.Events() {
			}
		}()
		// Wait for the call to be registered as id 1 before the data
		// that may answer it.
		for {
			c.mu.Lock()
			n := len(c.pending)
			c.mu.Unlock()
			if n == 1 {
				break
			}
			time.Sleep(time.Millisecond)
		}
		_, _ = w.Write(data)
		w.Close()
		<-errs // answered, or failed by the end of the pipe
		c.Close()
	})
}

type nopWriteCloser struct{ io.Writer }

func (nopWriteCloser) Close() error { return nil }

func itoa(i int64) string {
	b, _ := json.Marshal(i)
	return string(b)
}
