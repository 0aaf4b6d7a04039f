// Package addrlimit bounds what one network address can hold: sessions
// or connections counted per client IP under a global cap (Counter), a
// net.Listener that refuses an address past its share (Listener), and a
// backoff on failed key and token guesses (Failures). ingest, publish and
// web share it, so it lives in a package of its own.
package addrlimit

import (
	"net"
	"net/netip"
	"sync"
)

// Counter counts what each address holds, up to PerAddr per address and
// Total in all. The zero value refuses everything; use NewCounter. Safe
// for concurrent use.
type Counter struct {
	perAddr, total int

	mu    sync.Mutex
	held  map[netip.Addr]int
	count int
}

// NewCounter returns a Counter allowing perAddr per address and total in
// all; 0 for either means no bound of that kind.
func NewCounter(perAddr, total int) *Counter {
	return &Counter{perAddr: perAddr, total: total, held: make(map[netip.Addr]int)}
}

// Result says why Acquire refused, or that it did not.
type Result int

// Acquire's results.
const (
	// OK: a slot was taken; call the release function once.
	OK Result = iota
	// AddrFull: the address holds its share.
	AddrFull
	// TotalFull: the global cap is reached.
	TotalFull
)

// Acquire takes one slot for a. release gives it back (idempotent); it
// is nil unless the result is OK.
func (c *Counter) Acquire(a netip.Addr) (release func(), r Result) {
	return c.acquire(a, false)
}

// AcquireShared is Acquire for an address many clients share (a trusted
// reverse proxy): it counts against the total only.
func (c *Counter) AcquireShared(a netip.Addr) (release func(), r Result) {
	return c.acquire(a, true)
}

func (c *Counter) acquire(a netip.Addr, shared bool) (release func(), r Result) {
	a = Key(a)
	c.mu.Lock()
	defer c.mu.Unlock()
	if !shared && c.perAddr > 0 && c.held[a] >= c.perAddr {
		return nil, AddrFull
	}
	if c.total > 0 && c.count >= c.total {
		return nil, TotalFull
	}
	c.held[a]++
	c.count++
	var once sync.Once
	return func() { once.Do(func() { c.release(a) }) }, OK
}

func (c *Counter) release(a netip.Addr) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.count--
	if c.held[a]--; c.held[a] <= 0 {
		delete(c.held, a)
	}
}

// Held returns what a holds now.
func (c *Counter) Held(a netip.Addr) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.held[Key(a)]
}

// Count returns what every address holds now.
func (c *Counter) Count() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.count
}

// Top returns the address holding the most, and how much.
func (c *Counter) Top() (netip.Addr, int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	var top netip.Addr
	n := 0
	for a, h := range c.held {
		if h > n {
			top, n = a, h
		}
	}
	return top, n
}

// Key is the address limits count a under: IPv4 as itself, IPv6 by its
// /64 (one subscriber's prefix: a single host may use any address of it).
func Key(a netip.Addr) netip.Addr {
	a = a.Unmap()
	if a.Is6() {
		p, _ := a.Prefix(64)
		return p.Addr()
	}
	return a
}

// Parse returns the IP of a "host:port" or bare host as net/http and
// net.Conn report them; the zero Addr when it is neither.
func Parse(hostport string) netip.Addr {
	if ap, err := netip.ParseAddrPort(hostport); err == nil {
		return ap.Addr().Unmap()
	}
	if a, err := netip.ParseAddr(hostport); err == nil {
		return a.Unmap()
	}
	if h, _, err := net.SplitHostPort(hostport); err == nil {
		if a, err := netip.ParseAddr(h); err == nil {
			return a.Unmap()
		}
	}
	return netip.Addr{}
}

// Of returns the IP of a connection's remote address.
func Of(addr net.Addr) netip.Addr {
	if addr == nil {
		return netip.Addr{}
	}
	if t, ok := addr.(*net.TCPAddr); ok {
		return t.AddrPort().Addr().Unmap()
	}
	return Parse(addr.String())
}
