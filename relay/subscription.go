package relay

import (
	"slices"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
)

// Subscription is a sink's bounded queue of frames from a channel. The
// publisher never waits for it: when the queue is full the frame is
// dropped, counted, and the subscription skips everything until the next
// video keyframe, so the sink always resumes on a decodable picture.
type Subscription struct {
	c       *Channel
	q       chan *Frame
	wait    atomic.Uint32 // waitNone, waitStart or waitDrop
	dropped atomic.Uint64
	counter prometheus.Counter
}

// Subscribe adds a sink. sink names its kind for metrics ("rtmp",
// "webrtc", "hls", "record", "rtsp"); size is the queue length in frames.
// If the channel is live, the queue starts with the cached GOP, so the
// sink can start at once from a keyframe; otherwise the first frame will
// be a keyframe. The caller must Close the subscription.
func (c *Channel) Subscribe(sink string, size int) *Subscription {
	sub := &Subscription{c: c, q: make(chan *Frame, size), counter: c.met.sinkDropped(sink)}
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.gop) > 0 && len(c.gop) < size {
		for _, f := range c.gop {
			sub.q <- f
		}
	} else {
		sub.wait.Store(waitStart)
		if c.state == StateLive {
			c.RequestKeyframe()
		}
	}
	subs := make([]*Subscription, len(c.subs), len(c.subs)+1)
	copy(subs, c.subs)
	c.subs = append(subs, sub)
	return sub
}

// Frames returns the queue to read from.
func (s *Subscription) Frames() <-chan *Frame { return s.q }

// Dropped returns how many frames this subscription lost.
func (s *Subscription) Dropped() uint64 { return s.dropped.Load() }

// Close removes the subscription from its channel. It is idempotent.
func (s *Subscription) Close() {
	c := s.c
	c.mu.Lock()
	defer c.mu.Unlock()
	if i := slices.Index(c.subs, s); i >= 0 {
		c.subs = slices.Delete(slices.Clone(c.subs), i, i+1)
	}
}

// push delivers f without blocking. It runs on the publisher's goroutine.
func (s *Subscription) push(f *Frame) {
	if w := s.wait.Load(); w != waitNone {
		if f.Kind != KindVideo || !f.Key {
			if w == waitDrop {
				s.drop()
			}
			return
		}
		s.wait.Store(waitNone)
	}
	select {
	case s.q <- f:
	default:
		s.wait.Store(waitDrop)
		s.drop()
	}
}

// What a subscription waits for before it takes frames again.
const (
	waitNone  = iota // takes every frame
	waitStart        // waits for a first keyframe; skipped frames are not losses
	waitDrop         // its queue overflowed; skipped frames count as dropped
)

func (s *Subscription) drop() {
	s.dropped.Add(1)
	s.counter.Inc()
}

// Snapshot empties the queue and returns the channel's cached GOP, for a
// sink that must restart from a keyframe now (a viewer's picture loss).
// Frames the publisher delivers afterwards follow the snapshot; frames of
// the snapshot may still arrive through the queue once (the sink drops
// them by timestamp).
func (s *Subscription) Snapshot() []*Frame {
	c := s.c
	c.mu.Lock()
	defer c.mu.Unlock()
	for {
		select {
		case <-s.q:
			continue
		default:
		}
		break
	}
	if len(c.gop) == 0 {
		s.wait.Store(waitStart)
		c.RequestKeyframe()
		return nil
	}
	s.wait.Store(waitNone)
	return slices.Clone(c.gop)
}
