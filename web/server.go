// Package web serves seance's HTTP listeners: the public one (citizens'
// pages and APIs, health check) and the admin one (metrics, admin API).
package web

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/rs/zerolog"
)

// Server is one HTTP listener.
type Server struct {
	ln  net.Listener
	srv *http.Server
	log zerolog.Logger
	// background runs beside the listener until Run's ctx is cancelled;
	// Run waits for it (the admin API's event monitor).
	background func(ctx context.Context)
	// admin is the admin API behind an admin server, nil on the public one.
	admin *admin
	// public is the public side behind a public server, nil on the admin one.
	public *public
}

// newServer binds addr at once so a taken port fails at startup.
func newServer(name, addr string, h http.Handler, log zerolog.Logger) (*Server, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("%s listener on %s: %w", name, addr, err)
	}
	return &Server{
		ln:  ln,
		log: log,
		srv: &http.Server{
			Handler:           h,
			ReadHeaderTimeout: 10 * time.Second,
			IdleTimeout:       2 * time.Minute,
			MaxHeaderBytes:    16 << 10,
			ErrorLog:          nil,
		},
	}, nil
}

// NewInternal binds a listener on a free loopback port for seance's own
// clients (the meeting capture's browser publishing over WHIP): h is
// reachable from this machine only.
func NewInternal(h http.Handler, log zerolog.Logger) (*Server, error) {
	return newServer("internal", "127.0.0.1:0", h, log.With().Str("component", "web.internal").Logger())
}

// Addr returns the bound address.
func (s *Server) Addr() net.Addr { return s.ln.Addr() }

// Run serves until ctx is cancelled, then shuts down gracefully (at most
// 3 s for in-flight requests).
func (s *Server) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	defer wg.Wait()
	if s.background != nil {
		bctx, cancel := context.WithCancel(ctx)
		defer cancel() // before wg.Wait: also when Serve fails
		wg.Go(func() { s.background(bctx) })
	}
	served := make(chan struct{})
	defer close(served)
	wg.Go(func() {
		select {
		case <-ctx.Done():
		case <-served:
			return
		}
		sctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		defer cancel()
		if err := s.srv.Shutdown(sctx); err != nil {
			s.srv.Close()
		}
	})
	err := s.srv.Serve(s.ln)
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}

// Close releases the listener of a server that will not Run.
func (s *Server) Close() error { return s.ln.Close() }
