package addrlimit

import (
	"net"
	"net/netip"
	"sync"
)

// Listener wraps a net.Listener so that no address holds more than its
// share of open connections, nor all of them more than the total: a
// connection past either is closed at once, before a byte is read, and
// Accept waits for the next. Refused is called for each (a metric).
type Listener struct {
	net.Listener
	c       *Counter
	refused func(Result)
	exempt  []netip.Prefix
}

// Exempt counts connections from p in the total only (reverse proxies,
// through which every client comes). Call it before Accept.
func (l *Listener) Exempt(p netip.Prefix) { l.exempt = append(l.exempt, p) }

// NewListener returns ln bounded to perAddr connections per address and
// total in all (0: no bound of that kind). refused may be nil.
func NewListener(ln net.Listener, perAddr, total int, refused func(Result)) *Listener {
	if refused == nil {
		refused = func(Result) {}
	}
	return &Listener{Listener: ln, c: NewCounter(perAddr, total), refused: refused}
}

// Counter returns the live count (tests, metrics).
func (l *Listener) Counter() *Counter { return l.c }

// Accept returns the next connection within the bounds.
func (l *Listener) Accept() (net.Conn, error) {
	for {
		nc, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		a := Of(nc.RemoteAddr())
		acquire := l.c.Acquire
		for _, p := range l.exempt {
			if p.Contains(a) {
				acquire = l.c.AcquireShared
				break
			}
		}
		release, r := acquire(a)
		if r != OK {
			l.refused(r)
			nc.Close()
			continue
		}
		return &conn{Conn: nc, release: release}, nil
	}
}

// conn gives its slot back when closed.
type conn struct {
	net.Conn
	release func()
	once    sync.Once
}

func (c *conn) Close() error {
	err := c.Conn.Close()
	c.once.Do(c.release)
	return err
}
