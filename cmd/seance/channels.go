package main

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net/url"
	"slices"
	"time"

	"github.com/rs/zerolog"

	"github.com/seance-relay/seance/configs"
	"github.com/seance-relay/seance/ingest/demo"
	"github.com/seance-relay/seance/ingest/meeting"
	"github.com/seance-relay/seance/ingest/pull"
	"github.com/seance-relay/seance/publish/record"
	pubrtmp "github.com/seance-relay/seance/publish/rtmp"
	"github.com/seance-relay/seance/relay"
	"github.com/seance-relay/seance/web"
)

// task is one per-channel runner (demo source, pull, destination) started
// by a channelSet, with its own cancel so that a reload can stop it alone.
type task struct {
	name   string
	r      runner
	cancel context.CancelFunc
	done   chan struct{}
}

// chanTasks are the runners of one channel.
type chanTasks struct {
	ingest  *task            // demo, pull or meeting; nil for pushed channels
	pull    *pull.Puller     // the pull behind ingest, for the admin API
	meeting *meeting.Capture // the meeting capture behind ingest, for the admin API
	dests   []*task          // in config order
	byDest  map[string]*task // by destination name
	rec     *task            // the recorder, nil when record.enabled is false
	replay  bool             // replay: public
}

// recorder returns the channel's recorder, nil when it does not record.
func (ct *chanTasks) recorder() *record.Recorder {
	if ct.rec == nil {
		return nil
	}
	return ct.rec.r.(*record.Recorder)
}

// ingestTask is a prepared ingest runner and what the admin API shows of
// it.
type ingestTask struct {
	task    *task
	pull    *pull.Puller
	meeting *meeting.Capture
}

// meetingPublisher is where meeting captures publish: seance's WHIP
// server, served for its own publishers on a loopback listener.
type meetingPublisher interface {
	InternalToken(channel string) configs.Secret
	Disconnect(channel string) bool
}

// channelSet runs the per-channel runners. Its Run loop owns them: a
// reload sends it the change to apply and waits for the answer.
type channelSet struct {
	log     zerolog.Logger
	hub     *relay.Hub
	destMet *pubrtmp.Metrics
	pullMet *pull.Metrics
	meetMet *meeting.Metrics
	// whip and whipBase ("http://127.0.0.1:port") are where meeting
	// captures publish; set before the first prepare.
	whip     meetingPublisher
	whipBase string
	recMet   *record.Metrics

	chans   map[string]*chanTasks // owned by Run once it started
	reqs    chan func(ctx context.Context)
	stopped chan struct{} // closed when Run returns
}

func newChannelSet(hub *relay.Hub, log zerolog.Logger, destMet *pubrtmp.Metrics, pullMet *pull.Metrics, meetMet *meeting.Metrics, recMet *record.Metrics) *channelSet {
	return &channelSet{
		log: log, hub: hub, destMet: destMet, pullMet: pullMet, meetMet: meetMet, recMet: recMet,
		chans:   map[string]*chanTasks{},
		reqs:    make(chan func(ctx context.Context)),
		stopped: make(chan struct{}),
	}
}

// prepare builds (without running) the runners of channel c, which must be
// in the hub. It validates what New validates, so a bad channel fails
// before anything changes.
func (s *channelSet) prepare(c configs.Channel) (*chanTasks, error) {
	ch, err := s.hub.Channel(c.Name)
	if err != nil {
		return nil, fmt.Errorf("channel %s: %w", c.Name, err)
	}
	ct := &chanTasks{byDest: map[string]*task{}, replay: c.Replay == configs.ReplayPublic}
	in, err := s.prepareIngest(c, ch)
	if err != nil {
		return nil, err
	}
	ct.ingest, ct.pull, ct.meeting = in.task, in.pull, in.meeting
	if ct.rec, err = s.prepareRecord(c, ch); err != nil {
		return nil, err
	}
	for _, d := range c.Destinations {
		t, err := s.prepareDest(c.Name, d, ch)
		if err != nil {
			return nil, err
		}
		ct.dests = append(ct.dests, t)
		ct.byDest[d.Name] = t
	}
	return ct, nil
}

func (s *channelSet) prepareIngest(c configs.Channel, ch *relay.Channel) (ingestTask, error) {
	switch {
	case c.Ingest.Demo:
		src, err := demo.New(ch, s.log)
		if err != nil {
			return ingestTask{}, fmt.Errorf("channel %s: demo source: %w", c.Name, err)
		}
		return ingestTask{task: &task{name: "demo source", r: src}}, nil
	case c.Ingest.Pull != "":
		p, err := pull.New(pull.Config{
			URL:       c.Ingest.Pull,
			Transport: c.Ingest.Transport,
			Username:  c.Ingest.Username,
			Password:  c.Ingest.Password,
		}, ch, s.log, s.pullMet)
		if err != nil {
			return ingestTask{}, fmt.Errorf("channel %s: pull: %w", c.Name, err)
		}
		return ingestTask{task: &task{name: "pull ingest", r: p}, pull: p}, nil
	case c.Ingest.Meeting.IsSet():
		name := c.Name
		m, err := meeting.New(meeting.Config{
			Channel:    name,
			Meeting:    c.Ingest.Meeting,
			WHIPURL:    s.whipBase + "/whip/" + url.PathEscape(name),
			WHIPToken:  s.whip.InternalToken(name),
			PageBase:   s.whipBase,
			Disconnect: func() { s.whip.Disconnect(name) },
		}, s.log, s.meetMet)
		if err != nil {
			return ingestTask{}, fmt.Errorf("channel %s: meeting: %w", c.Name, err)
		}
		return ingestTask{task: &task{name: "meeting capture", r: m}, meeting: m}, nil
	}
	return ingestTask{}, nil
}

func (s *channelSet) prepareDest(channel string, d configs.Destination, ch *relay.Channel) (*task, error) {
	u, err := d.PublishURL()
	if err != nil {
		return nil, fmt.Errorf("channel %s, destination %s: %w", channel, d.Name, err)
	}
	dest := pubrtmp.New(pubrtmp.Config{
		Name:    d.Name,
		URL:     u,
		Display: configs.RedactURL(d.URL),
		Manual:  d.Start == "manual",
	}, ch, s.log, s.destMet)
	return &task{name: "destination", r: dest}, nil
}

// prepareRecord builds the recorder of a channel with record.enabled.
func (s *channelSet) prepareRecord(c configs.Channel, ch *relay.Channel) (*task, error) {
	if !c.Record.Enabled {
		return nil, nil
	}
	rec, err := record.New(record.Config{
		Dir:     c.Record.Dir,
		Segment: time.Duration(c.Record.Segment),
		MaxAge:  time.Duration(c.Record.MaxAge),
		MaxSize: int64(c.Record.MaxSize),
	}, ch, s.log, s.recMet)
	if err != nil {
		return nil, fmt.Errorf("channel %s: %w", c.Name, err)
	}
	return &task{name: "recorder", r: rec}, nil
}

// recorders returns, for the web servers, every channel's recorder (the
// admin API) and those of the channels whose replays are public.
func (s *channelSet) recorders() (all, replay map[string]web.Recorder) {
	all, replay = map[string]web.Recorder{}, map[string]web.Recorder{}
	for name, ct := range s.chans {
		if rec := ct.recorder(); rec != nil {
			all[name] = rec
			if ct.replay {
				replay[name] = rec
			}
		}
	}
	return all, replay
}

// sinks returns the destinations and pulls for the admin API.
func (s *channelSet) sinks() (map[string][]web.Destination, map[string]web.Pull) {
	dests := map[string][]web.Destination{}
	pulls := map[string]web.Pull{}
	for name, ct := range s.chans {
		for _, t := range ct.dests {
			dests[name] = append(dests[name], t.r.(*pubrtmp.Destination))
		}
		if ct.pull != nil {
			pulls[name] = ct.pull
		}
	}
	return dests, pulls
}

// meetings returns the meeting captures for the admin API.
func (s *channelSet) meetings() map[string]web.Meeting {
	out := map[string]web.Meeting{}
	for name, ct := range s.chans {
		if ct.meeting != nil {
			out[name] = ct.meeting
		}
	}
	return out
}

// Run starts the runners prepared so far, applies reloads, and when ctx
// is cancelled stops every runner and waits for them.
func (s *channelSet) Run(ctx context.Context) error {
	defer close(s.stopped)
	for _, name := range slices.Sorted(maps.Keys(s.chans)) {
		s.startChannel(ctx, name, s.chans[name])
	}
	for {
		select {
		case f := <-s.reqs:
			f(ctx)
		case <-ctx.Done():
			for _, ct := range s.chans {
				for _, t := range ct.all() {
					stopTask(t)
				}
			}
			return nil
		}
	}
}

// errStopping refuses a reload while seance stops.
var errStopping = errors.New("seance is stopping")

// do runs f on Run's goroutine and waits for it.
func (s *channelSet) do(ctx context.Context, f func(ctx context.Context)) error {
	done := make(chan struct{})
	select {
	case s.reqs <- func(rctx context.Context) { f(rctx); close(done) }:
	case <-ctx.Done():
		return ctx.Err()
	case <-s.stopped:
		return errStopping
	}
	<-done
	return nil
}

func (ct *chanTasks) all() []*task {
	var out []*task
	if ct.ingest != nil {
		out = append(out, ct.ingest)
	}
	if ct.rec != nil {
		out = append(out, ct.rec)
	}
	return append(out, ct.dests...)
}

func (s *channelSet) startChannel(ctx context.Context, name string, ct *chanTasks) {
	for _, t := range ct.all() {
		s.startTask(ctx, name, t)
	}
}

// startTask runs t until its own cancel or ctx. A runner's error is logged
// here: one channel's failure does not stop the others.
func (s *channelSet) startTask(ctx context.Context, channel string, t *task) {
	tctx, cancel := context.WithCancel(ctx)
	t.cancel, t.done = cancel, make(chan struct{})
	go func() {
		defer close(t.done)
		if err := t.r.Run(tctx); err != nil {
			s.log.Error().Err(err).Str("channel", channel).Str("runner", t.name).Msg("channel runner stopped")
		}
	}()
}

// stopTask cancels t and waits for it to return.
func stopTask(t *task) {
	if t.cancel == nil {
		return
	}
	t.cancel()
	<-t.done
}
