// Package demo is the built-in test source: it publishes an embedded 8 s
// clip (test pattern and 440 Hz tone) in a loop, in real time, so that a
// fresh install has a live channel with zero setup.
package demo

import (
	"context"
	"fmt"
	"time"

	"github.com/rs/zerolog"

	"github.com/seance-relay/seance/relay"
)

// maxLag is how far the source may fall behind the wall clock (a stalled
// writer, a suspended host) before it stops catching up: past it, pacing
// restarts from now instead of bursting the backlog. Timestamps stay
// continuous either way.
const maxLag = time.Second

// Session is a publishing session; *relay.Session implements it.
type Session interface {
	WriteH264(pts, dts time.Duration, nalus [][]byte)
	WriteAAC(pts time.Duration, au []byte)
	Close()
	// Done is closed when the session is closed; a kick from the admin
	// API closes it.
	Done() <-chan struct{}
}

// Channel is where the source publishes; *relay.Channel implements it
// (with S = *relay.Session).
type Channel[S Session] interface {
	Publish(relay.PublisherInfo, relay.Tracks) (S, error)
}

// Source publishes the demo clip on one channel.
type Source struct {
	publish func(relay.PublisherInfo, relay.Tracks) (Session, error)
	clip    *clip
	log     zerolog.Logger
}

// New returns a source that will publish on ch. It fails if the embedded
// clip cannot be parsed. With a *relay.Channel, S is inferred:
//
//	src, err := demo.New(ch, log)
func New[S Session](ch Channel[S], log zerolog.Logger) (*Source, error) {
	c, err := loadClip()
	if err != nil {
		return nil, err
	}
	return newSource(func(info relay.PublisherInfo, tracks relay.Tracks) (Session, error) {
		s, err := ch.Publish(info, tracks)
		if err != nil {
			return nil, err // not s: a nil *relay.Session is a non-nil Session
		}
		return s, nil
	}, c, log), nil
}

func newSource(publish func(relay.PublisherInfo, relay.Tracks) (Session, error), c *clip, log zerolog.Logger) *Source {
	return &Source{
		publish: publish,
		clip:    c,
		log:     log.With().Str("component", "ingest.demo").Logger(),
	}
}

// kickedPause is how long a kicked demo source waits before publishing
// again, like a real encoder that reconnects.
const kickedPause = 2 * time.Second

// Run publishes the clip and plays it in a loop, paced on the wall clock,
// with timestamps that keep increasing across loops. It returns nil once ctx
// is cancelled, after closing the session, or an error if the channel
// refuses the publisher (relay.ErrChannelBusy, for one). A kicked source
// publishes again after kickedPause.
func (s *Source) Run(ctx context.Context) error {
	c := s.clip
	cfg := *c.audioConfig
	for {
		sess, err := s.publish(
			relay.PublisherInfo{Protocol: "demo", RemoteAddr: "built-in"},
			relay.Tracks{
				Video: &relay.VideoTrack{SPS: c.sps, PPS: c.pps},
				Audio: &relay.AudioTrack{Config: &cfg},
			})
		if err != nil {
			return fmt.Errorf("publish demo clip: %w", err)
		}
		s.log.Info().
			Dur("loop", c.duration).
			Int("video_frames", len(c.video)).
			Int("audio_frames", len(c.audio)).
			Msg("demo source live")
		s.play(ctx, sess)
		sess.Close()
		if ctx.Err() != nil {
			return nil
		}
		s.log.Info().Dur("again_in", kickedPause).Msg("demo source kicked: publishing again shortly")
		t := time.NewTimer(kickedPause)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-t.C:
		}
	}
}

// play writes the clip's frames in timestamp order, each when the wall clock
// reaches it, until ctx is cancelled.
func (s *Source) play(ctx context.Context, w Session) {
	c := s.clip
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	defer timer.Stop()

	start := time.Now()
	var offset time.Duration // n × c.duration in loop n
	vi, ai := 0, 0
	for {
		// Every frame of a loop starts before c.duration, and a finished
		// track's next timestamp is c.duration, so a finished track is never
		// picked before the other one finishes too.
		vts := offset + c.videoTS(vi)
		ats := offset + c.audioTS(ai)
		next := min(vts, ats)

		switch wait := next - time.Since(start); {
		case wait > 0:
			timer.Reset(wait)
			select {
			case <-ctx.Done():
				return
			case <-w.Done():
				return
			case <-timer.C:
			}
		case ctx.Err() != nil:
			return
		case wait < -maxLag:
			start = start.Add(-wait)
		}

		if vts <= ats {
			w.WriteH264(vts, vts, c.video[vi].nalus)
			vi++
		} else {
			w.WriteAAC(ats, c.audio[ai])
			ai++
		}
		if vi == len(c.video) && ai == len(c.audio) {
			vi, ai = 0, 0
			offset += c.duration
		}
	}
}
