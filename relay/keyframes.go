package relay

import "sync"

// keyframeState lets sinks ask the publisher for keyframes. Only
// publishers that can produce one on demand (WHIP: a PLI to the browser)
// listen; others (RTMP, files) send them on their own schedule.
type keyframeState struct {
	requests chan struct{} // capacity 1: requests coalesce
	periodic sync.Mutex
	wanting  int
}

// RequestKeyframe asks the publisher for a keyframe as soon as it can.
// Requests coalesce; it never blocks.
func (c *Channel) RequestKeyframe() {
	select {
	case c.kf.requests <- struct{}{}:
	default:
	}
}

// KeyframeRequests returns the channel a publisher reads keyframe requests
// from.
func (c *Channel) KeyframeRequests() <-chan struct{} { return c.kf.requests }

// WantPeriodicKeyframes registers a sink that needs keyframes at least
// every 2 s (YouTube rejects intervals over 4 s), until release is called.
func (c *Channel) WantPeriodicKeyframes() (release func()) {
	c.kf.periodic.Lock()
	c.kf.wanting++
	c.kf.periodic.Unlock()
	var once sync.Once
	return func() {
		once.Do(func() {
			c.kf.periodic.Lock()
			c.kf.wanting--
			c.kf.periodic.Unlock()
		})
	}
}

// PeriodicKeyframesWanted says whether any sink needs regular keyframes.
func (c *Channel) PeriodicKeyframesWanted() bool {
	c.kf.periodic.Lock()
	defer c.kf.periodic.Unlock()
	return c.kf.wanting > 0
}
