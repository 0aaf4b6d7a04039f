package relay

import (
	"context"
	"sort"
	"time"

	"github.com/rs/zerolog"
)

// Hub holds the channels by name. The set of channels is fixed at New.
type Hub struct {
	byName map[string]*Channel
	list   []*Channel
}

// NewHub creates the channels. Names must be unique (the config loader
// checks it).
func NewHub(cfgs []ChannelConfig, log zerolog.Logger, m *Metrics) *Hub {
	h := &Hub{byName: make(map[string]*Channel, len(cfgs))}
	for _, cfg := range cfgs {
		c := newChannel(cfg, log.With().Str("component", "relay").Logger(), m)
		h.byName[cfg.Name] = c
		h.list = append(h.list, c)
	}
	sort.Slice(h.list, func(i, j int) bool { return h.list[i].Name() < h.list[j].Name() })
	return h
}

// Channel returns the channel with that name, or ErrChannelNotFound.
func (h *Hub) Channel(name string) (*Channel, error) {
	c, ok := h.byName[name]
	if !ok {
		return nil, ErrChannelNotFound
	}
	return c, nil
}

// Channels returns every channel, sorted by name.
func (h *Hub) Channels() []*Channel { return h.list }

// Run updates health figures once a second until ctx is cancelled, then
// ends every channel so that sinks close their connections cleanly.
func (h *Hub) Run(ctx context.Context) error {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case now := <-t.C:
			for _, c := range h.list {
				c.tick(now)
			}
		case <-ctx.Done():
			for _, c := range h.list {
				c.close()
			}
			return nil
		}
	}
}
