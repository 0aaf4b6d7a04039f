package web

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"github.com/seance-relay/seance/ingest/meeting"
	"github.com/seance-relay/seance/ingest/pull"
	"github.com/seance-relay/seance/publish/record"
	"github.com/seance-relay/seance/publish/rtmp"
	"github.com/seance-relay/seance/relay"
	"github.com/seance-relay/seance/transcode/rendition"
)

// Server-sent events of GET /api/v1/events (WHATWG HTML, 9.2
// "Server-sent events"). Each event's data is one JSON object:
//
//	state        a channel changed state: its ChannelStatus
//	destination  a destination changed state or error: destinationEvent
//	health       once a second per channel: healthSample (with the
//	             recorder's state for channels that record)
//	shutdown     the relay is stopping; reconnect later
const (
	eventState       = "state"
	eventDestination = "destination"
	eventHealth      = "health"
	eventShutdown    = "shutdown"
)

// destinationEvent is the data of a destination event.
type destinationEvent struct {
	Channel     string      `json:"channel"`
	Destination rtmp.Status `json:"destination"`
}

// healthSample is the data of a health event, and what the history keeps.
type healthSample struct {
	Channel          string          `json:"channel"`
	Time             time.Time       `json:"time"`
	State            relay.State     `json:"state"`
	Bitrate          float64         `json:"bitrate_bps"`
	FPS              float64         `json:"fps"`
	KeyframeInterval float64         `json:"keyframe_interval_s"`
	Viewers          map[string]int  `json:"viewers"`
	Warnings         []string        `json:"warnings"`
	Slate            bool            `json:"slate"`
	Destinations     []rtmp.Status   `json:"destinations"`
	Pull             *pull.Status    `json:"pull,omitempty"`
	Meeting          *meeting.Status `json:"meeting,omitempty"`
	// Recording is the recorder's state, for channels that record.
	Recording *record.Status `json:"recording,omitempty"`
	// Renditions are the reduced renditions' states, for channels that
	// have some.
	Renditions []rendition.Status `json:"renditions,omitempty"`
}

// destPollEvery is how often destinations are checked for a state change
// (they have no change notification).
const destPollEvery = 250 * time.Millisecond

// monitor samples every channel's health each sampleEvery (history and
// health events), and publishes channel and destination state changes,
// until ctx is cancelled; then it ends every event stream.
func (a *admin) monitor(ctx context.Context) {
	var wg sync.WaitGroup
	defer func() {
		wg.Wait()
		a.events.close()
	}()
	// One state watcher per channel, each with its own cancel, so that
	// a reload starts and stops watchers for the channels it changes.
	watchers := map[*relay.Channel]context.CancelFunc{}
	reconcile := func() <-chan struct{} {
		list, changed := a.hub.Watch()
		keep := make(map[*relay.Channel]bool, len(list))
		for _, c := range list {
			keep[c] = true
			if watchers[c] == nil {
				wctx, cancel := context.WithCancel(ctx)
				watchers[c] = cancel
				wg.Go(func() { a.watchState(wctx, c) })
			}
		}
		for c, cancel := range watchers {
			if !keep[c] {
				cancel()
				delete(watchers, c)
			}
		}
		a.forget(list)
		return changed
	}
	setChanged := reconcile()
	dests := map[string]rtmp.Status{} // by channel + "\x00" + destination
	for _, c := range a.hub.Channels() {
		for _, st := range a.destinations(c.Name()) {
			dests[c.Name()+"\x00"+st.Name] = st
		}
	}
	sample := time.NewTicker(a.cfg.sampleEvery)
	defer sample.Stop()
	poll := time.NewTicker(min(destPollEvery, a.cfg.sampleEvery))
	defer poll.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-setChanged:
			setChanged = reconcile()
		case now := <-sample.C:
			for _, c := range a.hub.Channels() {
				s := a.sample(c, now)
				a.historyOf(c.Name()).add(s)
				a.events.publish(eventHealth, s)
			}
		case <-poll.C:
			for _, c := range a.hub.Channels() {
				for _, st := range a.destinations(c.Name()) {
					key := c.Name() + "\x00" + st.Name
					prev := dests[key]
					dests[key] = st
					if prev.State != st.State || prev.LastError != st.LastError {
						a.events.publish(eventDestination, destinationEvent{Channel: c.Name(), Destination: st})
					}
				}
			}
		}
	}
}

// watchState publishes a state event on each of c's state changes. Each
// change moves the state's since, so changes that follow each other too
// fast to be seen apart still give one event, with the latest state.
func (a *admin) watchState(ctx context.Context, c *relay.Channel) {
	_, changed := c.State()
	last := c.Health().Since
	for {
		select {
		case <-ctx.Done():
			return
		case <-changed:
		}
		_, changed = c.State()
		if st := a.status(c); !st.Since.Equal(last) {
			last = st.Since
			a.events.publish(eventState, st)
		}
	}
}

func (a *admin) sample(c *relay.Channel, now time.Time) healthSample {
	h := c.Health()
	s := healthSample{
		Channel:          c.Name(),
		Time:             now,
		State:            h.State,
		Bitrate:          h.Bitrate,
		FPS:              h.FPS,
		KeyframeInterval: h.KeyframeInterval,
		Viewers:          a.viewers(c.Name()),
		Warnings:         h.Warnings,
		Slate:            h.Slate,
		Destinations:     a.destinations(c.Name()),
	}
	if p, ok := a.pull(c.Name()); ok {
		ps := p.Status()
		s.Pull = &ps
	}
	if m, ok := a.meeting(c.Name()); ok {
		ms := m.Status()
		s.Meeting = &ms
	}
	if rec, ok := a.recorders()[c.Name()]; ok {
		rs := rec.Status()
		s.Recording = &rs
	}
	for _, r := range a.cfg.Renditions[c.Name()] {
		s.Renditions = append(s.Renditions, r.Status())
	}
	return s
}

// serveEvents streams server-sent events until the client leaves, the
// server shuts down, or the client is too slow and is dropped.
func (a *admin) serveEvents(w http.ResponseWriter, r *http.Request) {
	sub := a.events.subscribe(r.RemoteAddr)
	if sub == nil {
		a.fail(w, r, http.StatusServiceUnavailable, "shutting_down", "the relay is stopping: try again in a moment", nil)
		return
	}
	defer a.events.unsubscribe(sub)
	rc := http.NewResponseController(w)
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no") // nginx: do not buffer the stream
	w.WriteHeader(http.StatusOK)
	// A write that takes longer than writeTimeout means a client that does
	// not read: the write fails and the stream ends.
	write := func(b []byte) bool {
		if err := rc.SetWriteDeadline(time.Now().Add(a.cfg.writeTimeout)); err != nil && !errors.Is(err, http.ErrNotSupported) {
			return false
		}
		if _, err := w.Write(b); err != nil {
			return false
		}
		return rc.Flush() == nil
	}
	if !write([]byte("retry: 2000\n: connected\n\n")) {
		return
	}
	hb := time.NewTicker(a.cfg.heartbeat)
	defer hb.Stop()
	for {
		select {
		case <-r.Context().Done():
			return
		case <-hb.C:
			if !write([]byte(": ping\n\n")) {
				return
			}
		case ev, ok := <-sub.ch:
			if !ok {
				if !a.events.wasDropped(sub) {
					write([]byte("event: " + eventShutdown + "\ndata: {}\n\n"))
				}
				return
			}
			if !write(ev) {
				return
			}
		}
	}
}

// broker fans events out to the SSE clients. Each client has a bounded
// queue; a client whose queue is full is dropped, so a slow client never
// delays the others or the relay. Safe for concurrent use.
type broker struct {
	size int
	log  zerolog.Logger

	mu     sync.Mutex
	subs   map[*subscriber]struct{}
	seq    uint64
	closed bool
}

type subscriber struct {
	ch      chan []byte // closed when dropped or on shutdown
	remote  string
	dropped bool // under broker.mu
}

func newBroker(size int, log zerolog.Logger) *broker {
	return &broker{size: size, log: log, subs: map[*subscriber]struct{}{}}
}

// subscribe adds a client; nil once the broker is closed.
func (b *broker) subscribe(remote string) *subscriber {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return nil
	}
	s := &subscriber{ch: make(chan []byte, b.size), remote: remote}
	b.subs[s] = struct{}{}
	return s
}

func (b *broker) unsubscribe(s *subscriber) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if _, ok := b.subs[s]; ok {
		delete(b.subs, s)
		close(s.ch)
	}
}

func (b *broker) wasDropped(s *subscriber) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return s.dropped
}

// count returns the number of connected clients.
func (b *broker) count() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.subs)
}

// publish sends one event to every client without blocking. The event is
// encoded once for all.
func (b *broker) publish(event string, v any) {
	data, err := json.Marshal(v)
	if err != nil {
		b.log.Error().Err(err).Str("event", event).Msg("encoding an admin event failed")
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed || len(b.subs) == 0 {
		return
	}
	b.seq++
	frame := make([]byte, 0, len(data)+len(event)+32)
	frame = append(frame, "id: "...)
	frame = strconv.AppendUint(frame, b.seq, 10)
	frame = append(frame, "\nevent: "...)
	frame = append(frame, event...)
	frame = append(frame, "\ndata: "...)
	frame = append(frame, data...)
	frame = append(frame, "\n\n"...)
	for s := range b.subs {
		select {
		case s.ch <- frame:
		default:
			s.dropped = true
			delete(b.subs, s)
			close(s.ch)
			b.log.Warn().Str("remote", s.remote).Int("queued", b.size).
				Msg("event stream client too slow: disconnected (it may reconnect)")
		}
	}
}

// close ends every stream (shutdown); later subscriptions are refused.
func (b *broker) close() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.closed = true
	for s := range b.subs {
		delete(b.subs, s)
		close(s.ch)
	}
}
