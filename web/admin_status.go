package web

import (
	"time"

	"github.com/seance-relay/seance/ingest/meeting"
	"github.com/seance-relay/seance/ingest/pull"
	"github.com/seance-relay/seance/publish/record"
	"github.com/seance-relay/seance/publish/rtmp"
	"github.com/seance-relay/seance/relay"
	"github.com/seance-relay/seance/transcode/rendition"
)

// ChannelStatus is one channel as the admin API shows it.
type ChannelStatus struct {
	Name  string      `json:"name"`
	Title string      `json:"title"`
	State relay.State `json:"state"`
	Since time.Time   `json:"since"`
	// Ingest is the current publisher; nil when the channel is idle.
	Ingest *ingestStatus `json:"ingest"`
	Health relay.Health  `json:"health"`
	// Viewers counts viewers by protocol, with their "total".
	Viewers      map[string]int `json:"viewers"`
	Destinations []rtmp.Status  `json:"destinations"`
	// Pull is the state of the channel's pull; nil for pushed channels.
	Pull *pull.Status `json:"pull"`
	// Meeting is the state of the channel's meeting capture; nil for
	// channels not fed by a meeting.
	Meeting *meeting.Status `json:"meeting"`
	// Recording is the state of the channel's recorder; enabled is false
	// for a channel that does not record.
	Recording record.Status `json:"recording"`
	// Renditions are the states of the channel's reduced renditions
	// (ffmpeg's health, frame rate and CPU), empty without any.
	Renditions []rendition.Status `json:"renditions"`
}

// ingestStatus says who publishes on a channel.
type ingestStatus struct {
	Protocol   string `json:"protocol"`
	RemoteAddr string `json:"remote_addr"`
}

func (a *admin) status(c *relay.Channel) ChannelStatus {
	h := c.Health()
	st := ChannelStatus{
		Name:         c.Name(),
		Title:        c.Title(),
		State:        h.State,
		Since:        h.Since,
		Health:       h,
		Viewers:      a.viewers(c.Name()),
		Destinations: a.destinations(c.Name()),
		Recording:    a.recordingStatus(c.Name()),
		Renditions:   []rendition.Status{},
	}
	for _, r := range a.cfg.Renditions[c.Name()] {
		st.Renditions = append(st.Renditions, r.Status())
	}
	if h.State != relay.StateIdle {
		st.Ingest = &ingestStatus{Protocol: h.Protocol, RemoteAddr: h.RemoteAddr}
	}
	if p, ok := a.pull(c.Name()); ok {
		ps := p.Status()
		st.Pull = &ps
	}
	if m, ok := a.meeting(c.Name()); ok {
		ms := m.Status()
		st.Meeting = &ms
	}
	return st
}

func (a *admin) viewers(channel string) map[string]int {
	out := map[string]int{"total": 0}
	for proto, count := range a.cfg.Viewers {
		n := count(channel)
		out[proto] = n
		out["total"] += n
	}
	return out
}

func (a *admin) destinations(channel string) []rtmp.Status {
	out := []rtmp.Status{}
	for _, d := range a.sinks.Load().dests[channel] {
		out = append(out, d.Status())
	}
	return out
}
