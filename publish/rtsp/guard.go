package rtsp

import (
	"crypto/subtle"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/bluenviron/gortsplib/v4"
	"github.com/bluenviron/gortsplib/v4/pkg/base"
	"github.com/bluenviron/gortsplib/v4/pkg/headers"

	"github.com/seance-relay/seance/addrlimit"
)

// Defaults of the connection limits (Config fields at 0).
const (
	// DefaultSessionTimeout bounds the time from connect to PLAY: a player
	// sends OPTIONS, DESCRIBE, SETUP and PLAY within a second.
	DefaultSessionTimeout = 10 * time.Second
	// DefaultIdleTimeout closes a connection silent this long before it
	// plays; it is also gortsplib's read timeout of playing sessions (RTCP
	// receiver reports or keep-alives).
	DefaultIdleTimeout = 10 * time.Second
	// DefaultMaxConnsPerAddr bounds one address's connections: a player
	// opens one, a recorder or relay a few.
	DefaultMaxConnsPerAddr = 16
	// DefaultMaxConns bounds every RTSP connection.
	DefaultMaxConns = 512
)

// guardListener bounds connections per address and in all, and gives each
// connection a deadline to PLAY and an idle timeout until then (gortsplib
// clears read deadlines between requests, so they are enforced here).
type guardListener struct {
	*addrlimit.Listener
	session, idle time.Duration
}

func (l *guardListener) Accept() (net.Conn, error) {
	nc, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	g := &guardedConn{Conn: nc, by: time.Now().Add(l.session), idle: l.idle}
	g.last.Store(time.Now().UnixNano())
	g.timer = time.AfterFunc(min(l.session, l.idle), g.check)
	return g, nil
}

// guardedConn closes itself unless it plays in time and speaks often
// enough until then.
type guardedConn struct {
	net.Conn
	by      time.Time
	idle    time.Duration
	last    atomic.Int64 // UnixNano of the last read
	playing atomic.Bool
	mu      sync.Mutex
	timer   *time.Timer
}

func (c *guardedConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if n > 0 {
		c.last.Store(time.Now().UnixNano())
	}
	return n, err
}

// play lifts the deadlines: the session's own timeouts take over.
func (c *guardedConn) play() {
	c.playing.Store(true)
	c.mu.Lock()
	c.timer.Stop()
	c.mu.Unlock()
}

func (c *guardedConn) check() {
	if c.playing.Load() {
		return
	}
	now := time.Now()
	silent := now.Sub(time.Unix(0, c.last.Load()))
	if !now.Before(c.by) || silent >= c.idle {
		c.Conn.Close()
		return
	}
	c.mu.Lock()
	c.timer.Reset(min(c.by.Sub(now), c.idle-silent))
	c.mu.Unlock()
}

func (c *guardedConn) Close() error {
	c.mu.Lock()
	c.timer.Stop()
	c.mu.Unlock()
	return c.Conn.Close()
}

// played marks the connection of a session that started playing.
func played(conn *gortsplib.ServerConn) {
	if g, ok := conn.NetConn().(*guardedConn); ok {
		g.play()
	}
}

// verify checks the read credentials. Basic credentials are compared in
// constant time here (gortsplib compares strings); Digest goes through
// gortsplib, which must also make the nonce of its challenge: a digest
// response is a hash salted with that nonce, so its comparison time says
// nothing about the password.
func (s *Server) verify(conn *gortsplib.ServerConn, req *base.Request) bool {
	var auth headers.Authorization
	if h, ok := req.Header["Authorization"]; ok && auth.Unmarshal(h) == nil && auth.Method == headers.AuthMethodBasic {
		user := subtle.ConstantTimeCompare([]byte(auth.Username), []byte(s.cfg.Username))
		pass := subtle.ConstantTimeCompare([]byte(auth.BasicPass), []byte(s.cfg.Password.Value()))
		return user&pass == 1
	}
	return conn.VerifyCredentials(req, s.cfg.Username, s.cfg.Password.Value())
}
