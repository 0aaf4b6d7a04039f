package webrtc

import (
	"time"

	"github.com/seance-relay/seance/relay"
)

// layerState is the writer's side of layer selection: which rendition's
// video the viewer receives and which it switches to. Owned by the writer
// goroutine. Names are "" for the full rendition.
type layerState struct {
	want    string              // asked by the viewer ("full" or a name)
	target  string              // the rendition to switch to, "" full
	playing string              // the rendition the viewer receives, "" full
	sub     *relay.Subscription // the rendition's frames, nil on full
	subOf   string              // the rendition sub belongs to
	changed <-chan struct{}     // the rendition channel's state changes
	needKey bool                // the rendition's frames wait for a keyframe
	// holdSince is when the full picture stopped, at a keyframe, for the
	// rendition to take over; zero when it is not held.
	holdSince time.Time
}

// holdMax bounds how long the full picture holds for a rendition's
// keyframe before it resumes (a rendition whose keyframes are not the
// source's, or whose ffmpeg is late).
const holdMax = 1500 * time.Millisecond

// frames returns the rendition subscription's queue, nil (never ready)
// without one.
func (l *layerState) frames() <-chan *relay.Frame {
	if l.sub == nil {
		return nil
	}
	return l.sub.Frames()
}

// rendition returns the rendition a name selects, nil for full.
func (s *session) rendition(name string) *relay.Rendition {
	if name == "" || name == relay.QualityFull {
		return nil
	}
	return s.ch.Rendition(name)
}

// retarget decides what to switch to after a request or a change of the
// wanted rendition's state: the wanted rendition while it is live, else
// the full stream (a rendition whose ffmpeg restarts is replaced by the
// full stream meanwhile, and taken again when it is back).
func (s *session) retarget() {
	target := ""
	r := s.rendition(s.lay.want)
	if r != nil {
		st, changed := r.Channel.State()
		s.lay.changed = changed
		if st != relay.StateIdle {
			target = r.Name
		}
	} else {
		s.lay.changed = nil
	}
	s.lay.target = target
	s.lay.holdSince = time.Time{}
	if target == "" {
		if s.lay.playing != "" {
			// Back to full at the publisher's next keyframe; ask for one
			// (a WHIP publisher sends it at once).
			s.ch.RequestKeyframe()
		} else if s.lay.sub != nil {
			// A switch that had not happened yet: nothing to take over.
			s.lay.sub.Close()
			s.lay.sub, s.lay.subOf = nil, ""
		}
		return
	}
	if s.lay.subOf != target {
		if s.lay.sub != nil {
			s.lay.sub.Close()
		}
		// The rendition's subscription starts at its cached keyframe or
		// waits for the next one; frames older than what the viewer got
		// are skipped (sendRendition), so the switch happens at the
		// first keyframe after it.
		s.lay.sub = r.Channel.Subscribe("webrtc", queueFrames)
		s.lay.subOf = target
		s.lay.needKey = true
	}
}

// fullVideo takes a video frame of the full rendition while a reduced one
// plays or is switched to.
func (s *session) fullVideo(f *relay.Frame) {
	switch {
	case s.lay.target != "" && s.lay.playing != "":
		return // the viewer gets the rendition
	case s.lay.target != "":
		// Switching to the rendition: the full picture goes on until its
		// next keyframe, then holds; the rendition's keyframes fall on
		// the source's (same timestamps), a few frames later, so the
		// rendition takes over at the same picture. If it does not come
		// within holdMax, the full picture resumes at a keyframe.
		if f.Key && s.vStarted {
			if s.lay.holdSince.IsZero() {
				s.lay.holdSince = f.Arrived
				return
			}
			if f.Arrived.Sub(s.lay.holdSince) < holdMax {
				return
			}
			s.lay.holdSince = time.Time{}
		} else if !s.lay.holdSince.IsZero() {
			return
		}
		s.sendVideo(f)
		return
	}
	// Switching back: the full stream takes over at its first keyframe
	// after what the viewer received.
	if !f.Key || (s.vStarted && f.DTS <= s.vLastDTS) {
		return
	}
	s.play("")
	s.sendVideo(f)
}

// sendRendition takes a frame of the rendition subscription.
func (s *session) sendRendition(f *relay.Frame) {
	if f.Kind != relay.KindVideo || s.lay.target != s.lay.subOf {
		return // audio stays the channel's; a rendition being left
	}
	if s.vStarted && f.DTS <= s.vLastDTS {
		if f.Key {
			s.lay.needKey = true
		}
		return
	}
	if s.lay.needKey || s.lay.playing != s.lay.target {
		if !f.Key {
			return
		}
		s.lay.needKey = false
	}
	if s.lay.playing != s.lay.target {
		s.play(s.lay.target)
		s.lay.holdSince = time.Time{}
	}
	s.sendVideo(f)
}

// play records that the viewer now receives rendition name ("" full).
func (s *session) play(name string) {
	s.lay.playing = name
	s.moveQuality(qualityName(name))
	if name == "" && s.lay.sub != nil {
		s.lay.sub.Close()
		s.lay.sub, s.lay.subOf = nil, ""
	}
}

func qualityName(name string) string {
	if name == "" {
		return relay.QualityFull
	}
	return name
}

// moveQuality counts the viewer under another quality, unless it has left
// (the writer may switch while the session ends).
func (s *session) moveQuality(to string) {
	s.qmu.Lock()
	defer s.qmu.Unlock()
	from := s.layerPlaying.Load().(string)
	s.layerPlaying.Store(to)
	if s.qdone || from == to {
		return
	}
	s.srv.met.quality(s.channel, from).Dec()
	s.srv.met.quality(s.channel, to).Inc()
}

// endQuality stops counting the viewer (Server.remove).
func (s *session) endQuality() {
	s.qmu.Lock()
	defer s.qmu.Unlock()
	if !s.qdone {
		s.qdone = true
		s.srv.met.quality(s.channel, s.layerPlaying.Load().(string)).Dec()
	}
}
