package addrlimit

import (
	"net/netip"
	"sync"
	"time"
)

// Failures rate-limits failed key and token attempts per address: after
// Free failures within Window, an address waits before its next attempt
// is even checked, the wait doubling with each further failure up to
// MaxWait. It remembers at most maxTracked addresses (the oldest window
// is forgotten first). Safe for concurrent use.
type Failures struct {
	free    int
	window  time.Duration
	maxWait time.Duration
	now     func() time.Time

	mu   sync.Mutex
	seen map[netip.Addr]*failRecord
}

type failRecord struct {
	start  time.Time // the window's start
	n      int       // failures in the window
	until  time.Time // no attempt before this
	logged bool      // the window was logged
}

// maxTracked bounds the addresses Failures remembers.
const maxTracked = 4096

// NewFailures allows free failures per address per window before
// backing off, waiting at most maxWait.
func NewFailures(free int, window, maxWait time.Duration) *Failures {
	return &Failures{free: free, window: window, maxWait: maxWait, now: time.Now, seen: make(map[netip.Addr]*failRecord)}
}

// Allow says whether an attempt from a may be checked now; if not, how
// long until it may.
func (f *Failures) Allow(a netip.Addr) (ok bool, wait time.Duration) {
	a = Key(a)
	f.mu.Lock()
	defer f.mu.Unlock()
	r := f.seen[a]
	if r == nil {
		return true, 0
	}
	now := f.now()
	if now.Before(r.until) {
		return false, r.until.Sub(now)
	}
	return true, 0
}

// Fail records a failed attempt from a. first is true once per window
// for an address that starts backing off: log it then, not each time.
func (f *Failures) Fail(a netip.Addr) (first bool) {
	a = Key(a)
	f.mu.Lock()
	defer f.mu.Unlock()
	now := f.now()
	r := f.seen[a]
	if r == nil || now.Sub(r.start) > f.window && now.After(r.until) {
		if r == nil && len(f.seen) >= maxTracked {
			f.evict(now)
		}
		r = &failRecord{start: now}
		f.seen[a] = r
	}
	r.n++
	if over := r.n - f.free; over > 0 {
		wait := time.Second << min(over-1, 20)
		r.until = now.Add(min(wait, f.maxWait))
		if !r.logged {
			r.logged = true
			return true
		}
	}
	return false
}

// Succeed forgets a's failures.
func (f *Failures) Succeed(a netip.Addr) {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.seen, Key(a))
}

// evict forgets expired records, or the oldest one if none is.
func (f *Failures) evict(now time.Time) {
	var oldest netip.Addr
	var at time.Time
	for a, r := range f.seen {
		if now.Sub(r.start) > f.window && now.After(r.until) {
			delete(f.seen, a)
			continue
		}
		if at.IsZero() || r.start.Before(at) {
			oldest, at = a, r.start
		}
	}
	if len(f.seen) >= maxTracked {
		delete(f.seen, oldest)
	}
}

// Defaults of NewDefaultFailures: 5 free failures a minute, then 1 s, 2 s,
// 4 s… up to a minute between attempts. A publisher that mistyped its key
// retries at once; a guesser gets about one try a minute.
const (
	DefaultFreeFailures = 5
	DefaultFailWindow   = time.Minute
	DefaultMaxFailWait  = time.Minute
)

// NewDefaultFailures returns Failures with the defaults above.
func NewDefaultFailures() *Failures {
	return NewFailures(DefaultFreeFailures, DefaultFailWindow, DefaultMaxFailWait)
}
