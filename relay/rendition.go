package relay

import (
	"sync"

	"github.com/prometheus/client_golang/prometheus"
)

// RenditionConfig describes one reduced video rendition of a channel.
type RenditionConfig struct {
	// Name names the rendition in URLs and the WHEP layer API.
	Name string
	// Height is the picture height in lines.
	Height int
	// VideoBitrate is the target H.264 bit rate, in bits per second.
	VideoBitrate int64
}

// Rendition is a channel's reduced rendition: a derived channel, not in
// the hub, that its maker (an ffmpeg supervisor) publishes into and sinks
// subscribe to like any channel (GOP cache, bounded queues, RTP payloads
// computed once). Its frames keep the timestamps of the parent channel's
// timeline, so a sink can switch between the two at a keyframe and keep
// its own timestamps continuous.
type Rendition struct {
	RenditionConfig
	// Channel is the derived channel. It goes live when its maker
	// publishes, idle when the maker stops (no grace, no slate: the
	// parent's slate is encoded like any other picture).
	Channel *Channel
}

// DerivedName is the name of a rendition's channel in logs: channel and
// rendition names cannot hold a dot, so it names nothing else.
func DerivedName(channel, rendition string) string { return channel + "." + rendition }

// Renditions returns the channel's reduced renditions, in config order.
// The slice is fixed when the channel is created; the caller must not
// modify it.
func (c *Channel) Renditions() []*Rendition { return c.renditions }

// Rendition returns the rendition of that name, or nil.
func (c *Channel) Rendition(name string) *Rendition {
	for _, r := range c.renditions {
		if r.Name == name {
			return r
		}
	}
	return nil
}

// derivedMetrics returns the metrics derived channels count into: a
// registry of their own that nothing exposes, so that the renditions do
// not appear as channels on /metrics (their health has its own family,
// from their maker).
func (m *Metrics) derivedMetrics() *Metrics {
	m.derivedOnce.Do(func() { m.derived = NewMetrics(prometheus.NewRegistry()) })
	return m.derived
}

// derivedState is the part of Metrics that derived channels need.
type derivedState struct {
	derivedOnce sync.Once
	derived     *Metrics
}
