// Package rtsp pulls a channel's stream from an RTSP server or an IP
// camera (gortsplib client): H.264 video with AAC audio, over TCP or UDP.
package rtsp

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/bluenviron/gortsplib/v4"
	"github.com/bluenviron/gortsplib/v4/pkg/base"
	"github.com/rs/zerolog"

	"github.com/seance-relay/seance/configs"
	"github.com/seance-relay/seance/relay"
)

// Defaults of Config's timeouts.
const (
	// DefaultReadTimeout is how long the source may stay silent (or
	// slow to answer a request) before it is considered gone.
	DefaultReadTimeout = 10 * time.Second
	// DefaultFirstKeyframeTimeout is how long after PLAY the first H.264
	// keyframe may take; cameras send one every 1 to 4 s.
	DefaultFirstKeyframeTimeout = 15 * time.Second
)

// Config configures a pull from an RTSP server.
type Config struct {
	// URL is the rtsp:// or rtsps:// URL, credentials included (RTSP
	// Basic or Digest authentication). It is never logged.
	URL *url.URL
	// Transport is tcp, udp or auto ("" is auto: UDP, then TCP when no
	// UDP packet arrives).
	Transport string
	// ReadTimeout: zero means DefaultReadTimeout.
	ReadTimeout time.Duration
	// FirstKeyframeTimeout: zero means DefaultFirstKeyframeTimeout.
	FirstKeyframeTimeout time.Duration
}

// Source pulls one RTSP stream; each Pull is one connection.
type Source struct {
	cfg       Config
	transport *gortsplib.Transport
	display   string
	log       zerolog.Logger
}

// NewSource checks cfg. Its errors never contain the URL's credentials.
func NewSource(cfg Config, log zerolog.Logger) (*Source, error) {
	if cfg.URL == nil || (cfg.URL.Scheme != "rtsp" && cfg.URL.Scheme != "rtsps") || cfg.URL.Host == "" {
		return nil, errors.New("the RTSP source needs an rtsp:// or rtsps:// URL with a host")
	}
	s := &Source{cfg: cfg, display: configs.RedactURL(cfg.URL.String()), log: log.With().Str("protocol", "rtsp").Logger()}
	switch cfg.Transport {
	case "", "auto":
	case "tcp":
		t := gortsplib.TransportTCP
		s.transport = &t
	case "udp":
		t := gortsplib.TransportUDP
		s.transport = &t
	default:
		return nil, fmt.Errorf("RTSP transport %q is not valid: use tcp, udp or auto", cfg.Transport)
	}
	if s.cfg.ReadTimeout <= 0 {
		s.cfg.ReadTimeout = DefaultReadTimeout
	}
	if s.cfg.FirstKeyframeTimeout <= 0 {
		s.cfg.FirstKeyframeTimeout = DefaultFirstKeyframeTimeout
	}
	return s, nil
}

// Pull connects, publishes at the first H.264 keyframe and relays the
// stream until the connection ends or ctx is cancelled (then it returns
// nil). The session it got from publish is closed before it returns.
func (s *Source) Pull(ctx context.Context, publish func(relay.PublisherInfo, relay.Tracks) (*relay.Session, error)) error {
	u := base.URL(*s.cfg.URL)
	st := &stream{publish: publish, info: relay.PublisherInfo{Protocol: "rtsp", RemoteAddr: u.Host}, log: s.log, failed: make(chan error, 1), live: make(chan struct{})}
	c := &gortsplib.Client{
		Scheme:       u.Scheme,
		Host:         u.Host,
		Transport:    s.transport,
		ReadTimeout:  s.cfg.ReadTimeout,
		WriteTimeout: s.cfg.ReadTimeout,
		// The defaults print to the standard logger, once per event.
		OnTransportSwitch: func(err error) {
			s.log.Info().Str("reason", err.Error()).Msg("RTSP source: switching transport")
		},
		OnPacketsLost: func(n uint64) { st.lost.Add(n) },
		OnDecodeError: func(error) { st.decodeErrors.Add(1) },
	}
	if err := c.Start2(); err != nil {
		return fmt.Errorf("rtsp client: %w", err)
	}
	// Close unblocks a pending request (DESCRIBE, SETUP, PLAY) at once.
	stop := context.AfterFunc(ctx, c.Close)
	defer func() {
		stop()
		c.Close()
		st.close()
	}()

	desc, _, err := c.Describe(&u)
	if err != nil {
		return s.fail(ctx, "DESCRIBE", err)
	}
	if err := st.pick(desc); err != nil {
		return err
	}
	if err := c.SetupAll(desc.BaseURL, st.medias()); err != nil {
		return s.fail(ctx, "SETUP", err)
	}
	st.attach(c)
	if _, err := c.Play(nil); err != nil {
		return s.fail(ctx, "PLAY", err)
	}
	s.log.Debug().Str("source", s.display).Str("transport", transportName(s.transport)).Msg("RTSP source playing: waiting for the first keyframe")

	waitErr := make(chan error, 1)
	go func() { waitErr <- c.Wait() }()
	defer func() { c.Close(); <-waitErr }()
	first := time.NewTimer(s.cfg.FirstKeyframeTimeout)
	defer first.Stop()
	live := st.live
	for {
		select {
		case <-ctx.Done():
			return nil
		case err := <-st.failed:
			return err
		case err := <-waitErr:
			waitErr <- err // for the deferred receive
			return s.fail(ctx, "read", err)
		case <-first.C:
			return fmt.Errorf("%w within %s of PLAY", ErrNoKeyframe, s.cfg.FirstKeyframeTimeout)
		case <-live:
			first.Stop()
			live = nil
		}
	}
}

// fail wraps a client error, or returns nil when the pull was cancelled
// (the error is then only the client being closed).
func (s *Source) fail(ctx context.Context, op string, err error) error {
	if ctx.Err() != nil {
		return nil
	}
	return fmt.Errorf("rtsp %s: %w", op, err)
}

func transportName(t *gortsplib.Transport) string {
	if t == nil {
		return "auto"
	}
	return strings.ToLower(t.String())
}
