package addrlimit

import (
	"net"
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
}

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
		release, r := l.c.Acquire(Of(nc.RemoteAddr()))
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
