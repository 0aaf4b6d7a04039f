package relay

import (
	"context"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/rs/zerolog"
)

// Hub holds the channels by name. The set of channels may change at run
// time (config reload, Add and Remove); all methods are safe for concurrent
// use.
type Hub struct {
	log zerolog.Logger
	met *Metrics

	mu      sync.Mutex
	byName  map[string]*Channel
	list    []*Channel    // copy-on-write, sorted by name
	changed chan struct{} // closed and replaced when the set changes
}

// NewHub creates the channels. Names must be unique (the config loader
// checks it).
func NewHub(cfgs []ChannelConfig, log zerolog.Logger, m *Metrics) *Hub {
	h := &Hub{
		log:     log.With().Str("component", "relay").Logger(),
		met:     m,
		byName:  make(map[string]*Channel, len(cfgs)),
		changed: make(chan struct{}),
	}
	for _, cfg := range cfgs {
		h.Add(cfg)
	}
	return h
}

// Add creates a channel and returns it. A channel of that name already
// there is returned unchanged, with false.
func (h *Hub) Add(cfg ChannelConfig) (*Channel, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if c, ok := h.byName[cfg.Name]; ok {
		return c, false
	}
	c := newChannel(cfg, h.log, h.met)
	h.byName[cfg.Name] = c
	list := append(slices.Clip(h.list), c)
	slices.SortFunc(list, func(a, b *Channel) int { return strings.Compare(a.Name(), b.Name()) })
	h.list = list
	close(h.changed)
	h.changed = make(chan struct{})
	return c, true
}

// Remove takes a channel out of the hub and ends it: its publisher is
// disconnected and its sinks see the session end, as at shutdown. It
// reports whether the channel existed.
func (h *Hub) Remove(name string) bool {
	h.mu.Lock()
	c, ok := h.byName[name]
	if ok {
		delete(h.byName, name)
		h.list = slices.DeleteFunc(slices.Clone(h.list), func(x *Channel) bool { return x == c })
		close(h.changed)
		h.changed = make(chan struct{})
	}
	h.mu.Unlock()
	if !ok {
		return false
	}
	c.remove()
	return true
}

// Channel returns the channel with that name, or ErrChannelNotFound.
func (h *Hub) Channel(name string) (*Channel, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	c, ok := h.byName[name]
	if !ok {
		return nil, ErrChannelNotFound
	}
	return c, nil
}

// Channels returns every channel, sorted by name. The slice is a snapshot:
// the caller must not modify it.
func (h *Hub) Channels() []*Channel {
	list, _ := h.Watch()
	return list
}

// Watch returns the channels, sorted by name, and a channel that is closed
// when the set of channels changes.
func (h *Hub) Watch() ([]*Channel, <-chan struct{}) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.list, h.changed
}

// Run updates health figures once a second until ctx is cancelled, then
// ends every channel so that sinks close their connections cleanly.
func (h *Hub) Run(ctx context.Context) error {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case now := <-t.C:
			for _, c := range h.Channels() {
				c.tick(now)
				for _, r := range c.renditions {
					r.Channel.tick(now)
				}
			}
		case <-ctx.Done():
			for _, c := range h.Channels() {
				c.close()
			}
			return nil
		}
	}
}
