package rtmp

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/bluenviron/gortmplib"
	"github.com/rs/zerolog"

	"github.com/seance-relay/seance/configs"
	"github.com/seance-relay/seance/relay"
)

// PullSource plays a stream from an RTMP server (nginx-rtmp, a media
// server, another seance) into a channel; each Pull is one connection.
type PullSource struct {
	url     *url.URL // stream key in the fragment, as gortmplib wants it
	display string
	log     zerolog.Logger
}

// NewPullSource prepares a pull from u: rtmp[s]://[user:pass@]host[:port]/app/stream,
// or with the stream name already in the fragment (rtmp://host/app#stream).
// A query on the URL goes with the stream name (play "stream?token=…"),
// as servers that authenticate plays expect. Its errors never contain
// the URL's credentials or stream name.
func NewPullSource(u *url.URL, log zerolog.Logger) (*PullSource, error) {
	display := configs.RedactURL(u.String())
	if (u.Scheme != "rtmp" && u.Scheme != "rtmps") || u.Host == "" {
		return nil, fmt.Errorf("pull URL %s: use rtmp:// or rtmps:// with a host", display)
	}
	pu := *u
	if pu.Fragment == "" {
		app, key, _ := strings.Cut(strings.TrimPrefix(pu.Path, "/"), "/")
		if app == "" || strings.Trim(key, "/") == "" {
			return nil, fmt.Errorf("pull URL %s has no stream name: use rtmp://host/app/stream", display)
		}
		if pu.RawQuery != "" {
			key += "?" + pu.RawQuery
		}
		pu.Path, pu.RawPath, pu.RawQuery = "/"+app, "", ""
		pu.Fragment, pu.RawFragment = key, ""
	}
	return &PullSource{url: &pu, display: display, log: log.With().Str("protocol", "rtmp").Logger()}, nil
}

// StreamKey returns the stream name the source plays, to scrub it from
// messages: RTMP stream names double as keys.
func (s *PullSource) StreamKey() string { return s.url.Fragment }

// Pull connects, plays the stream, publishes it once its media headers
// are known, and relays it until the connection ends or ctx is cancelled
// (then it returns nil). The session is closed before it returns.
func (s *PullSource) Pull(ctx context.Context, publish func(relay.PublisherInfo, relay.Tracks) (*relay.Session, error)) error {
	cctx, cancel := context.WithTimeout(ctx, handshakeTimeout)
	u := *s.url
	client := &gortmplib.Client{URL: &u, Publish: false}
	err := client.Initialize(cctx)
	cancel()
	if err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return fmt.Errorf("rtmp connect: %w", err)
	}
	defer client.Close()
	nc := client.NetConn()
	// Closing the connection unblocks the reader at once.
	stop := context.AfterFunc(ctx, func() { nc.Close() })
	defer stop()

	_ = nc.SetDeadline(time.Now().Add(handshakeTimeout))
	r := &gortmplib.Reader{Conn: client}
	if err := r.Initialize(); err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return fmt.Errorf("rtmp: no usable media headers from the source: %w", err)
	}
	tracks, setup, err := pickTracks(r)
	if err != nil {
		return fmt.Errorf("rtmp: %w", err)
	}
	sess, err := publish(relay.PublisherInfo{Protocol: "rtmp", RemoteAddr: u.Host}, tracks)
	if err != nil {
		return err
	}
	defer sess.Close()
	setup(r, sess)
	for {
		_ = nc.SetDeadline(time.Now().Add(readTimeout))
		if err := r.Read(); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return errors.New("rtmp: " + describeEnd(err))
		}
	}
}
