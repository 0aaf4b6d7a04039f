package main

import (
	"context"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"time"

	"github.com/seance-relay/seance/configs"
	"github.com/seance-relay/seance/relay"
)

// reloadResult is the answer to a reload (POST /api/v1/reload, and the
// log of SIGHUP).
type reloadResult struct {
	// Reloaded is false on the embedded config: there is no file to read.
	Reloaded  bool            `json:"reloaded"`
	Message   string          `json:"message"`
	Added     []string        `json:"added"`
	Removed   []string        `json:"removed"`
	Changed   []channelChange `json:"changed"`
	Unchanged []string        `json:"unchanged"`
	// RestartNeeded are the YAML keys whose change applies only after a
	// restart (listeners, WebRTC transport).
	RestartNeeded []string `json:"restart_needed"`
}

// channelChange says what changed in one channel kept across a reload.
type channelChange struct {
	Channel string   `json:"channel"`
	What    []string `json:"what"`

	title, grace, key, source, slate bool
	destsAdded, destsRemoved         []string // destinations changed are in both
	// record: the recorder restarts (enabled, dir or segment changed);
	// limits: only max_age or max_size changed, applied in place.
	record, limits, replay bool
}

// configDiff compares two loaded configs channel by channel.
func configDiff(old, cur *configs.Config) reloadResult {
	res := reloadResult{
		Added: []string{}, Removed: []string{}, Changed: []channelChange{},
		Unchanged: []string{}, RestartNeeded: []string{},
	}
	for _, f := range []struct {
		key      string
		old, cur any
	}{
		{"log", old.Log, cur.Log},
		{"public", old.Public, cur.Public},
		{"admin", old.Admin, cur.Admin},
		{"rtmp", old.RTMP, cur.RTMP},
		{"rtsp", old.RTSP, cur.RTSP},
		{"webrtc", old.WebRTC, cur.WebRTC},
		{"hls", old.HLS, cur.HLS},
		{"auth_failures", old.AuthFailures, cur.AuthFailures},
	} {
		if !reflect.DeepEqual(f.old, f.cur) {
			res.RestartNeeded = append(res.RestartNeeded, f.key)
		}
	}
	olds := map[string]configs.Channel{}
	for _, c := range old.Channels {
		olds[c.Name] = c
	}
	curs := map[string]bool{}
	for _, c := range cur.Channels {
		curs[c.Name] = true
		o, ok := olds[c.Name]
		if !ok {
			res.Added = append(res.Added, c.Name)
			if c.MaxViewers != 0 {
				res.RestartNeeded = append(res.RestartNeeded, "channels."+c.Name+".max_viewers")
			}
			if len(c.Renditions) > 0 {
				res.RestartNeeded = append(res.RestartNeeded, "channels."+c.Name+".renditions")
			}
			continue
		}
		ch := diffChannel(o, c)
		if o.MaxViewers != c.MaxViewers {
			res.RestartNeeded = append(res.RestartNeeded, "channels."+c.Name+".max_viewers")
		}
		if !reflect.DeepEqual(o.Renditions, c.Renditions) {
			res.RestartNeeded = append(res.RestartNeeded, "channels."+c.Name+".renditions")
		}
		if len(ch.What) == 0 {
			res.Unchanged = append(res.Unchanged, c.Name)
		} else {
			res.Changed = append(res.Changed, ch)
		}
	}
	for _, c := range old.Channels {
		if !curs[c.Name] {
			res.Removed = append(res.Removed, c.Name)
		}
	}
	slices.Sort(res.Added)
	slices.Sort(res.Removed)
	slices.Sort(res.Unchanged)
	slices.SortFunc(res.Changed, func(a, b channelChange) int { return strings.Compare(a.Channel, b.Channel) })
	return res
}

func diffChannel(o, c configs.Channel) channelChange {
	ch := channelChange{Channel: c.Name, What: []string{}}
	if o.Title != c.Title {
		ch.title = true
		ch.What = append(ch.What, "title")
	}
	if o.Grace != c.Grace {
		ch.grace = true
		ch.What = append(ch.What, "grace")
	}
	if o.Slate != c.Slate {
		ch.slate = true
		ch.What = append(ch.What, "slate")
	}
	if o.Ingest.Key != c.Ingest.Key {
		ch.key = true
		ch.What = append(ch.What, "ingest.key")
	}
	oi, ci := o.Ingest, c.Ingest
	oi.Key, ci.Key = "", ""
	if !reflect.DeepEqual(oi, ci) {
		ch.source = true
		ch.What = append(ch.What, "ingest")
	}
	if o.Record != c.Record {
		or, cr := o.Record, c.Record
		or.MaxAge, or.MaxSize, cr.MaxAge, cr.MaxSize = 0, 0, 0, 0
		if or == cr && c.Record.Enabled {
			ch.limits = true
			ch.What = append(ch.What, "record retention")
		} else {
			ch.record = true
			ch.What = append(ch.What, "record")
		}
	}
	if o.Replay != c.Replay {
		ch.replay = true
		ch.What = append(ch.What, "replay")
	}
	olds := map[string]configs.Destination{}
	for _, d := range o.Destinations {
		olds[d.Name] = d
	}
	curs := map[string]bool{}
	for _, d := range c.Destinations {
		curs[d.Name] = true
		od, ok := olds[d.Name]
		switch {
		case !ok:
			ch.destsAdded = append(ch.destsAdded, d.Name)
			ch.What = append(ch.What, "destination "+d.Name+" added")
		case !reflect.DeepEqual(od, d):
			ch.destsAdded = append(ch.destsAdded, d.Name)
			ch.destsRemoved = append(ch.destsRemoved, d.Name)
			ch.What = append(ch.What, "destination "+d.Name+" changed")
		}
	}
	for _, d := range o.Destinations {
		if !curs[d.Name] {
			ch.destsRemoved = append(ch.destsRemoved, d.Name)
			ch.What = append(ch.What, "destination "+d.Name+" removed")
		}
	}
	return ch
}

// reload re-reads the config file and applies it. On error nothing
// changed. Reloads are serialised.
func (a *app) reload(ctx context.Context) (*reloadResult, error) {
	a.reloadMu.Lock()
	defer a.reloadMu.Unlock()
	if a.path == "" {
		res := configDiff(a.cfg, a.cfg)
		res.Message = "running on the embedded demo config: there is no file to re-read, nothing changed (start with -config FILE)"
		a.log.Warn().Msg(res.Message)
		return &res, nil
	}
	cur, err := configs.Load(a.path)
	if err != nil {
		err = fmt.Errorf("%s: %w", a.path, err)
		a.log.Error().Err(err).Msg("config not reloaded: the running config stays")
		return nil, err
	}
	res := configDiff(a.cfg, cur)
	if err := a.apply(ctx, cur, &res); err != nil {
		a.log.Error().Err(err).Msg("config not reloaded: the running config stays")
		return nil, err
	}
	a.cfg = cur
	res.Reloaded = true
	res.Message = fmt.Sprintf("config reloaded: %d channel(s) added, %d removed, %d changed, %d unchanged",
		len(res.Added), len(res.Removed), len(res.Changed), len(res.Unchanged))
	ev := a.log.Info().Strs("added", res.Added).Strs("removed", res.Removed).Strs("unchanged", res.Unchanged)
	for _, c := range res.Changed {
		ev = ev.Strs("changed_"+c.Channel, c.What)
	}
	ev.Msg(res.Message)
	if len(res.RestartNeeded) > 0 {
		a.log.Warn().Strs("keys", res.RestartNeeded).Msg("these settings changed but apply only after a restart of seance")
	}
	return &res, nil
}

// apply starts and stops what res says. Everything that can fail is
// prepared first; if it fails, the channels it added are removed again.
func (a *app) apply(ctx context.Context, cur *configs.Config, res *reloadResult) (err error) {
	byName := map[string]configs.Channel{}
	for _, c := range cur.Channels {
		byName[c.Name] = c
	}
	var added []string
	defer func() {
		if err != nil {
			for _, name := range added {
				a.hub.Remove(name)
			}
		}
	}()
	newChans := map[string]*chanTasks{}
	for _, name := range res.Added {
		c := byName[name]
		cc, err := channelConfig(c, a.slates, a.log)
		if err != nil {
			return err
		}
		if _, ok := a.hub.Add(cc); !ok {
			return fmt.Errorf("channel %s: still being removed", name)
		}
		added = append(added, name)
		ct, err := a.set.prepare(c)
		if err != nil {
			return err
		}
		newChans[name] = ct
	}
	// For changed channels: the new ingest and destinations, prepared.
	type prepared struct {
		ingest ingestTask
		dests  map[string]*task
		rec    *task
	}
	// Slates of the channels kept: their image file is checked again (it
	// may have been replaced; a new file is rendered again).
	slates := map[string]relay.SlateSource{}
	for _, c := range cur.Channels {
		if slices.Contains(res.Added, c.Name) {
			continue
		}
		if c.Slate.Image == "" && c.Slate == a.oldSlate(c.Name) {
			continue
		}
		cc, err := channelConfig(c, a.slates, a.log)
		if err != nil {
			return err
		}
		slates[c.Name] = cc.Slate
	}
	preps := map[string]*prepared{}
	for _, chg := range res.Changed {
		c := byName[chg.Channel]
		ch, err := a.hub.Channel(c.Name)
		if err != nil {
			return fmt.Errorf("channel %s: %w", c.Name, err)
		}
		p := &prepared{dests: map[string]*task{}}
		if chg.source {
			in, err := a.set.prepareIngest(c, ch)
			if err != nil {
				return err
			}
			p.ingest = in
		}
		for _, d := range c.Destinations {
			if slices.Contains(chg.destsAdded, d.Name) {
				t, err := a.set.prepareDest(c.Name, d, ch)
				if err != nil {
					return err
				}
				p.dests[d.Name] = t
			}
		}
		if chg.record {
			if p.rec, err = a.set.prepareRecord(c, ch); err != nil {
				return err
			}
		}
		preps[c.Name] = p
	}

	return a.set.do(ctx, func(rctx context.Context) {
		s := a.set
		for _, name := range res.Removed {
			ct := s.chans[name]
			if ct != nil && ct.ingest != nil {
				stopTask(ct.ingest)
			}
			// The channel ends: viewers' sessions end, destinations
			// send the end of stream and the recording's file is
			// finished, then they are stopped.
			a.hub.Remove(name)
			if ct != nil {
				for _, t := range ct.dests {
					stopTask(t)
				}
				if ct.rec != nil {
					stopTask(ct.rec)
				}
			}
			delete(s.chans, name)
		}
		for _, chg := range res.Changed {
			c := byName[chg.Channel]
			ct := s.chans[c.Name]
			ch, _ := a.hub.Channel(c.Name)
			p := preps[c.Name]
			if chg.title {
				ch.SetTitle(c.Title)
			}
			if chg.grace {
				ch.SetGrace(time.Duration(c.Grace))
			}
			if chg.source {
				if ct.ingest != nil {
					stopTask(ct.ingest)
				}
				ct.ingest, ct.pull, ct.meeting = p.ingest.task, p.ingest.pull, p.ingest.meeting
				if ct.ingest != nil {
					s.startTask(rctx, c.Name, ct.ingest)
				}
			}
			if chg.record {
				// The file being written is finished; the new recorder
				// starts its own at the next keyframe.
				if ct.rec != nil {
					stopTask(ct.rec)
				}
				ct.rec = p.rec
				if ct.rec != nil {
					s.startTask(rctx, c.Name, ct.rec)
				}
			}
			if chg.limits {
				if rec := ct.recorder(); rec != nil {
					rec.SetLimits(time.Duration(c.Record.MaxAge), int64(c.Record.MaxSize))
				}
			}
			ct.replay = c.Replay == configs.ReplayPublic
			for _, name := range chg.destsRemoved {
				if t := ct.byDest[name]; t != nil {
					stopTask(t)
					delete(ct.byDest, name)
				}
			}
			ct.dests = ct.dests[:0:0]
			for _, d := range c.Destinations {
				if t := p.dests[d.Name]; t != nil {
					ct.byDest[d.Name] = t
					s.startTask(rctx, c.Name, t)
				}
				ct.dests = append(ct.dests, ct.byDest[d.Name])
			}
		}
		for _, name := range res.Added {
			s.chans[name] = newChans[name]
			s.startChannel(rctx, name, newChans[name])
		}
		for name, src := range slates {
			if ch, err := a.hub.Channel(name); err == nil {
				ch.SetSlate(src)
			}
		}
		keys := ingestKeys(cur)
		if a.rtmp != nil {
			a.rtmp.SetKeys(keys)
		}
		a.whip.SetKeys(keys)
		a.admin.SetSinks(s.sinks())
		a.admin.SetMeetings(s.meetings())
		recs, replays := s.recorders()
		a.admin.SetRecorders(recs)
		a.public.SetRecorders(replays)
	})
}

// oldSlate is the slate config in force for a channel (before a reload).
func (a *app) oldSlate(name string) configs.Slate {
	for _, c := range a.cfg.Channels {
		if c.Name == name {
			return c.Slate
		}
	}
	return configs.Slate{}
}

// ingestKeys maps each channel that takes pushes to its key.
func ingestKeys(cfg *configs.Config) map[string]configs.Secret {
	keys := map[string]configs.Secret{}
	for _, c := range cfg.Channels {
		if c.Ingest.Key.IsSet() {
			keys[c.Name] = c.Ingest.Key
		}
	}
	return keys
}
