package rtmp

import (
	"net"
	"net/netip"
	"slices"
	"sync"
	"time"
)

// admit registers nc, from addr, as not authenticated yet (under s.mu),
// or returns the result it is refused with. Past the address's share the
// newcomer is refused: it is the one flooding. Past the global bound the
// address holding the most loses its oldest connection to a newcomer from
// an address holding fewer, so idle sockets from a few addresses never
// lock out a publisher from another; a newcomer from the top address
// itself is refused.
func (s *Server) admit(nc net.Conn, addr netip.Addr) (refused string) {
	mine := s.pending[addr]
	if len(mine) >= s.cfg.MaxPendingPerAddr {
		return "address_busy"
	}
	if s.npending >= s.cfg.MaxPending {
		var top netip.Addr
		for a, conns := range s.pending {
			if len(conns) > len(s.pending[top]) {
				top = a
			}
		}
		if len(s.pending[top]) <= len(mine) {
			return "overloaded"
		}
		victim := s.pending[top][0]
		s.drop(victim, top)
		// Closing it ends its handler, whose settle finds it gone.
		victim.Close()
		s.conns.WithLabelValues("evicted").Inc()
	}
	s.pending[addr] = append(s.pending[addr], nc)
	s.npending++
	return ""
}

// settle removes nc from the unauthenticated connections (authenticated,
// refused or closed).
func (s *Server) settle(nc net.Conn, addr netip.Addr) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.drop(nc, addr)
}

// drop removes nc from addr's pending list, if there (under s.mu).
func (s *Server) drop(nc net.Conn, addr netip.Addr) {
	conns := s.pending[addr]
	i := slices.Index(conns, nc)
	if i < 0 {
		return
	}
	conns = slices.Delete(conns, i, i+1)
	if len(conns) == 0 {
		delete(s.pending, addr)
	} else {
		s.pending[addr] = conns
	}
	s.npending--
}

// firstByteConn moves the read deadline from the first-byte deadline to
// the authentication deadline once the client has sent something.
type firstByteConn struct {
	net.Conn
	then time.Time
	once sync.Once
}

func (c *firstByteConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if n > 0 {
		c.once.Do(func() { _ = c.Conn.SetReadDeadline(c.then) })
	}
	return n, err
}
