package web

import (
	"cmp"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"time"

	"github.com/seance-relay/seance/publish/record"
)

// Public replays: a channel with replay: public lists its finished
// recordings at GET /api/public/channels/{channel}/recordings, serves them
// at GET /replay/{channel}/{file} with range requests, and its watch page
// offers them. Other channels answer 404 and show nothing.

// replayMaxAge is how long browsers and CDNs may keep a replay file. A
// finished recording never changes, but it may be deleted (retention, an
// administrator): an hour bounds how long a deleted one stays reachable
// through a cache.
const replayMaxAge = time.Hour

// replaySession is one live session offered for replay: its files, in
// order.
type replaySession struct {
	Session  string       `json:"session"`
	Start    time.Time    `json:"start"`
	Duration float64      `json:"duration_seconds"`
	Parts    []replayPart `json:"parts"`
}

// replayPart is one file of a session.
type replayPart struct {
	Name     string    `json:"name"`
	URL      string    `json:"url"`
	Start    time.Time `json:"start"`
	Duration float64   `json:"duration_seconds"`
	Size     int64     `json:"size_bytes"`
}

// replayer returns the recorder of a channel whose replays are public.
func (p *public) replayer(channel string) (Recorder, bool) {
	m := p.replays.Load()
	if m == nil {
		return nil, false
	}
	rec, ok := (*m)[channel]
	return rec, ok
}

// sessions returns a channel's finished recordings grouped by session,
// newest first. Files being written or not finished yet are left out.
func (p *public) sessions(channel string, rec Recorder) []replaySession {
	list, err := rec.Recordings()
	if err != nil {
		p.log.Warn().Err(err).Str("channel", channel).Msg("listing the replays failed")
		return nil
	}
	var out []replaySession
	idx := map[string]int{}
	for _, r := range list {
		if !replayRecording(r) {
			continue
		}
		i, ok := idx[r.Session]
		if !ok {
			i = len(out)
			idx[r.Session] = i
			out = append(out, replaySession{Session: r.Session, Start: r.Start})
		}
		s := &out[i]
		s.Parts = append(s.Parts, replayPart{
			Name: r.Name, Start: r.Start, Duration: r.Duration, Size: r.Size,
			URL: "/replay/" + url.PathEscape(channel) + "/" + url.PathEscape(r.Name),
		})
		s.Duration += r.Duration
		if r.Start.Before(s.Start) {
			s.Start = r.Start
		}
	}
	slices.SortStableFunc(out, func(a, b replaySession) int { return -cmp.Compare(a.Session, b.Session) })
	return out
}

func (p *public) recordings(w http.ResponseWriter, r *http.Request) {
	c, err := p.hub.Channel(r.PathValue("channel"))
	if err != nil {
		writeError(w, http.StatusNotFound, "channel_not_found", "no such channel")
		return
	}
	rec, ok := p.replayer(c.Name())
	if !ok {
		writeError(w, http.StatusNotFound, "not_found", "this channel offers no replay")
		return
	}
	w.Header().Set("Access-Control-Allow-Origin", "*")
	sessions := p.sessions(c.Name(), rec)
	if sessions == nil {
		sessions = []replaySession{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"channel": c.Name(), "title": c.Title(), "sessions": sessions})
}

// replay serves one finished recording: range requests (seeking), and
// cache headers that let a CDN keep it.
func (p *public) replay(w http.ResponseWriter, r *http.Request) {
	c, err := p.hub.Channel(r.PathValue("channel"))
	if err != nil {
		http.NotFound(w, r)
		return
	}
	rec, ok := p.replayer(c.Name())
	if !ok {
		http.NotFound(w, r)
		return
	}
	f, info, err := rec.Open(r.PathValue("file"))
	if err != nil {
		http.NotFound(w, r)
		return
	}
	defer f.Close()
	if !replayRecording(info) {
		http.NotFound(w, r)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "video/mp4")
	h.Set("Content-Disposition", fmt.Sprintf("inline; filename=%q", info.Name))
	h.Set("Cache-Control", "public, max-age="+strconv.Itoa(int(replayMaxAge/time.Second))+", immutable")
	h.Set("ETag", recordingETag(info))
	http.ServeContent(w, r, "", info.Modified, f)
}

// replayView is the replay list of the watch page.
type replayView struct {
	Heading    string
	VideoLabel string
	Playing    string
	Sessions   []replaySessionView
}

// replaySessionView is one session on the watch page.
type replaySessionView struct {
	ID    string
	Title string // "Revoir la séance du 12 mars à 18 h 30"
	Meta  string // its duration, and its number of parts
	Parts []replayPartView
}

type replayPartView struct {
	Label string
	URL   string
	Meta  string
}

// replayView builds the watch page's replay list; nil when the channel
// offers no replay or has none yet.
func (p *public) replayView(channel string, t *texts) *replayView {
	rec, ok := p.replayer(channel)
	if !ok {
		return nil
	}
	sessions := p.sessions(channel, rec)
	if len(sessions) == 0 {
		return nil
	}
	rt := replayTextsFor(t)
	v := &replayView{Heading: rt.heading, VideoLabel: rt.video, Playing: rt.playing}
	now := time.Now()
	for _, s := range sessions {
		sv := replaySessionView{ID: s.Session, Title: rt.session(s.Start.In(time.Local), now), Meta: rt.duration(s.Duration)}
		if len(s.Parts) > 1 {
			sv.Meta += rt.parts(len(s.Parts))
		}
		for i, part := range s.Parts {
			sv.Parts = append(sv.Parts, replayPartView{
				Label: rt.part(i+1, len(s.Parts)), URL: part.URL, Meta: rt.duration(part.Duration),
			})
		}
		v.Sessions = append(v.Sessions, sv)
	}
	return v
}

// replayTexts are the replay list's words in one language.
type replayTexts struct {
	heading, video, playing string
	session                 func(start, now time.Time) string
	duration                func(seconds float64) string
	parts                   func(n int) string
	part                    func(i, n int) string
}

var frenchMonths = [...]string{"janvier", "février", "mars", "avril", "mai", "juin", "juillet",
	"août", "septembre", "octobre", "novembre", "décembre"}

var replayFrench = replayTexts{
	heading: "Revoir les séances",
	video:   "Séance enregistrée",
	playing: "Lecture : ",
	session: func(s, now time.Time) string {
		day := strconv.Itoa(s.Day())
		if s.Day() == 1 {
			day = "1er"
		}
		date := day + " " + frenchMonths[s.Month()-1]
		if s.Year() != now.Year() {
			date += " " + strconv.Itoa(s.Year())
		}
		return fmt.Sprintf("Revoir la séance du %s à %d h %02d", date, s.Hour(), s.Minute())
	},
	duration: func(sec float64) string { return "durée " + frenchDuration(sec) },
	parts:    func(n int) string { return ", en " + strconv.Itoa(n) + " parties" },
	part:     func(i, n int) string { return fmt.Sprintf("Partie %d sur %d", i, n) },
}

var replayEnglish = replayTexts{
	heading: "Replay past sessions",
	video:   "Recorded session",
	playing: "Playing: ",
	session: func(s, now time.Time) string {
		date := strconv.Itoa(s.Day()) + " " + s.Month().String()
		if s.Year() != now.Year() {
			date += " " + strconv.Itoa(s.Year())
		}
		return fmt.Sprintf("Replay the session of %s at %02d:%02d", date, s.Hour(), s.Minute())
	},
	duration: func(sec float64) string { return englishDuration(sec) + " long" },
	parts:    func(n int) string { return ", in " + strconv.Itoa(n) + " parts" },
	part:     func(i, n int) string { return fmt.Sprintf("Part %d of %d", i, n) },
}

func replayTextsFor(t *texts) *replayTexts {
	if t.Lang == "en" {
		return &replayEnglish
	}
	return &replayFrench
}

// frenchDuration writes "1 h 05 min", "12 min" or "40 s".
func frenchDuration(sec float64) string {
	d := time.Duration(sec * float64(time.Second)).Round(time.Second)
	h, m, s := int(d/time.Hour), int(d%time.Hour/time.Minute), int(d%time.Minute/time.Second)
	switch {
	case h > 0:
		return fmt.Sprintf("%d h %02d min", h, m)
	case m > 0:
		return fmt.Sprintf("%d min", m)
	}
	return fmt.Sprintf("%d s", s)
}

// englishDuration writes "1 h 5 min", "12 min" or "40 s".
func englishDuration(sec float64) string {
	d := time.Duration(sec * float64(time.Second)).Round(time.Second)
	h, m, s := int(d/time.Hour), int(d%time.Hour/time.Minute), int(d%time.Minute/time.Second)
	switch {
	case h > 0:
		return fmt.Sprintf("%d h %d min", h, m)
	case m > 0:
		return fmt.Sprintf("%d min", m)
	}
	return fmt.Sprintf("%d s", s)
}

// replayRecording reports whether rec may be replayed publicly.
func replayRecording(rec record.Recording) bool { return rec.Complete && !rec.InProgress }
