package meeting

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
)

// maxCDPMessage bounds one message from the browser; seance asks for
// nothing large (no screenshots, no network bodies).
const maxCDPMessage = 4 << 20

// errCDPClosed is returned by calls once the pipe is closed or the
// browser is gone.
var errCDPClosed = errors.New("the browser's DevTools pipe is closed")

// cdpMessage is one message of the Chrome DevTools Protocol: a command
// (ID, Method, Params), its answer (ID, Result or Error) or an event
// (Method, Params), each with the flat session it belongs to.
type cdpMessage struct {
	ID        int64           `json:"id,omitempty"`
	Method    string          `json:"method,omitempty"`
	Params    json.RawMessage `json:"params,omitempty"`
	SessionID string          `json:"sessionId,omitempty"`
	Result    json.RawMessage `json:"result,omitempty"`
	Error     *cdpError       `json:"error,omitempty"`
}

type cdpError struct {
	Code    int    `json:"code"`
	Message string `json:"message"`
}

// cdp is a DevTools protocol client over the pipe Chromium opens with
// --remote-debugging-pipe: seance writes commands to its fd 3 and reads
// answers and events from its fd 4, each message a JSON object followed
// by a NUL byte. Calls are safe for concurrent use; Close stops the reader.
type cdp struct {
	w   io.WriteCloser
	r   io.ReadCloser
	wmu sync.Mutex // one message at a time on the pipe

	mu      sync.Mutex
	nextID  int64
	pending map[int64]chan cdpMessage
	err     error // why the reader stopped, once it did

	events  chan cdpMessage // bounded: the reader never waits
	dropped atomic.Int64    // events lost because nobody read them
	done    chan struct{}   // closed when the reader has exited
}

// newCDP starts reading r; w takes the commands.
func newCDP(r io.ReadCloser, w io.WriteCloser) *cdp {
	c := &cdp{
		w: w, r: r,
		pending: map[int64]chan cdpMessage{},
		events:  make(chan cdpMessage, 256),
		done:    make(chan struct{}),
	}
	go c.read()
	return c
}

// Events delivers the browser's events; it is closed when the reader
// stops. Events that arrive while 256 are waiting are dropped.
func (c *cdp) Events() <-chan cdpMessage { return c.events }

// Done is closed when the pipe is closed or broken (the browser exited).
func (c *cdp) Done() <-chan struct{} { return c.done }

// Close closes both ends of the pipe and waits for the reader.
func (c *cdp) Close() {
	c.w.Close()
	c.r.Close()
	<-c.done
}

// splitNUL is a bufio.SplitFunc for NUL-terminated messages.
func splitNUL(data []byte, atEOF bool) (int, []byte, error) {
	if i := bytes.IndexByte(data, 0); i >= 0 {
		return i + 1, data[:i], nil
	}
	if atEOF && len(data) > 0 {
		return 0, nil, errors.New("the browser's last DevTools message is cut short")
	}
	return 0, nil, nil
}

func (c *cdp) read() {
	sc := bufio.NewScanner(c.r)
	sc.Buffer(make([]byte, 0, 64<<10), maxCDPMessage)
	sc.Split(splitNUL)
	for sc.Scan() {
		c.dispatch(sc.Bytes())
	}
	err := sc.Err()
	if err == nil {
		err = errCDPClosed
	} else {
		err = fmt.Errorf("%w: %w", errCDPClosed, err)
	}
	c.mu.Lock()
	c.err = err
	pending := c.pending
	c.pending = nil
	c.mu.Unlock()
	for _, ch := range pending {
		close(ch)
	}
	close(c.events)
	close(c.done)
}

// dispatch routes one message: an answer to its caller, an event to
// Events. Messages that do not parse are ignored.
func (c *cdp) dispatch(b []byte) {
	var m cdpMessage
	if json.Unmarshal(b, &m) != nil {
		return
	}
	if m.ID != 0 {
		c.mu.Lock()
		ch := c.pending[m.ID]
		delete(c.pending, m.ID)
		c.mu.Unlock()
		if ch != nil {
			ch <- m // buffered
		}
		return
	}
	if m.Method == "" {
		return
	}
	select {
	case c.events <- m:
	default:
		c.dropped.Add(1)
	}
}

// call sends a command to the browser (session "" for the browser
// itself) and decodes its result into result, when not nil.
func (c *cdp) call(ctx context.Context, session, method string, params, result any) error {
	c.mu.Lock()
	if c.pending == nil {
		err := c.err
		c.mu.Unlock()
		return err
	}
	c.nextID++
	id := c.nextID
	ch := make(chan cdpMessage, 1)
	c.pending[id] = ch
	c.mu.Unlock()

	msg, err := json.Marshal(struct {
		ID        int64  `json:"id"`
		Method    string `json:"method"`
		Params    any    `json:"params,omitempty"`
		SessionID string `json:"sessionId,omitempty"`
	}{id, method, params, session})
	if err == nil {
		c.wmu.Lock()
		_, err = c.w.Write(append(msg, 0))
		c.wmu.Unlock()
	}
	if err != nil {
		c.forget(id)
		return fmt.Errorf("%s: %w: %w", method, errCDPClosed, err)
	}
	select {
	case m, ok := <-ch:
		if !ok {
			c.mu.Lock()
			err := c.err
			c.mu.Unlock()
			return fmt.Errorf("%s: %w", method, err)
		}
		if m.Error != nil {
			return fmt.Errorf("%s: %s", method, m.Error.Message)
		}
		if result != nil {
			if err := json.Unmarshal(m.Result, result); err != nil {
				return fmt.Errorf("%s: unexpected answer: %w", method, err)
			}
		}
		return nil
	case <-ctx.Done():
		c.forget(id)
		return fmt.Errorf("%s: %w", method, ctx.Err())
	}
}

func (c *cdp) forget(id int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.pending != nil {
		delete(c.pending, id)
	}
}

// remoteObject is Runtime.RemoteObject, as far as seance reads it.
type remoteObject struct {
	Type        string          `json:"type"`
	Value       json.RawMessage `json:"value"`
	Description string          `json:"description"`
}

// exceptionDetails is Runtime.ExceptionDetails, as far as seance reads it.
type exceptionDetails struct {
	Text      string        `json:"text"`
	Exception *remoteObject `json:"exception"`
}

func (e *exceptionDetails) String() string {
	if e.Exception != nil && e.Exception.Description != "" {
		return e.Exception.Description
	}
	return e.Text
}

// evaluate runs a JavaScript expression in a session's page or worker,
// waits for the promise it returns, and decodes its value into out (when
// not nil). A JavaScript exception is an error.
func (c *cdp) evaluate(ctx context.Context, session, expr string, out any) error {
	var res struct {
		Result           remoteObject      `json:"result"`
		ExceptionDetails *exceptionDetails `json:"exceptionDetails"`
	}
	err := c.call(ctx, session, "Runtime.evaluate", map[string]any{
		"expression": expr, "awaitPromise": true, "returnByValue": true,
	}, &res)
	if err != nil {
		return err
	}
	if res.ExceptionDetails != nil {
		return fmt.Errorf("javascript: %s", firstLine(res.ExceptionDetails.String()))
	}
	if out != nil && len(res.Result.Value) > 0 {
		if err := json.Unmarshal(res.Result.Value, out); err != nil {
			return fmt.Errorf("javascript: unexpected value: %w", err)
		}
	}
	return nil
}

func firstLine(s string) string {
	if i := bytes.IndexByte([]byte(s), '\n'); i >= 0 {
		return s[:i]
	}
	return s
}
