// Package record records a channel's live sessions to fragmented MP4 files
// (ISO/IEC 14496-12, written with mediacommon's fmp4), keeps them within
// their retention limits, and finds, lists and serves them for the admin
// API and public replays.
package record

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"

	"github.com/seance-relay/seance/relay"
)

// Config configures one channel's recorder.
type Config struct {
	// Dir is the recordings directory of the config (record.dir). The
	// channel's files go to Dir/<channel>/. Required.
	Dir string
	// Segment is the longest a file runs before the next one starts, at
	// a keyframe. Zero means 1 h.
	Segment time.Duration
	// MaxAge deletes the channel's files last written longer ago than
	// this. Zero keeps them.
	MaxAge time.Duration
	// MaxSize deletes the channel's oldest files while they total more
	// than this many bytes. Zero: no limit.
	MaxSize int64

	// Test knobs; zero means the default.
	maintainEvery time.Duration                       // repair and retention: 1 min
	queue         int                                 // frames queued: 1024
	create        func(path string) (*os.File, error) // creates a file
	backoff       time.Duration                       // first retry after an error: 1 s
}

// Backoff bounds of the retries after a write error.
const (
	minBackoff = time.Second
	maxBackoff = 30 * time.Second
)

// State is a recorder's state as shown to IT staff.
type State int

// Recorder states.
const (
	// StateIdle: the channel is not live; nothing is being written.
	StateIdle State = iota
	// StateRecording: a file is being written.
	StateRecording
	// StateFailed: the last write or file creation failed; the recorder
	// retries at the next keyframe after a backoff (see LastError).
	StateFailed
)

// String returns idle, recording or failed.
func (s State) String() string {
	return [...]string{"idle", "recording", "failed"}[s]
}

// MarshalText makes a State print as its name in JSON.
func (s State) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// UnmarshalText reads a State's name.
func (s *State) UnmarshalText(b []byte) error {
	for i, name := range [...]string{"idle", "recording", "failed"} {
		if string(b) == name {
			*s = State(i)
			return nil
		}
	}
	return fmt.Errorf("unknown recording state %q", b)
}

// Status is what the admin API shows about a channel's recording.
type Status struct {
	// Enabled is false for a channel without recording.
	Enabled bool      `json:"enabled"`
	State   State     `json:"state"`
	Since   time.Time `json:"since,omitzero"`
	// Dir is where the channel's files are.
	Dir string `json:"dir,omitempty"`
	// Session identifies the live session being recorded.
	Session string `json:"session,omitempty"`
	// File is the name of the file being written.
	File string `json:"file,omitempty"`
	// Bytes is the size of the file being written.
	Bytes       int64     `json:"bytes"`
	Errors      uint64    `json:"errors"`
	LastError   string    `json:"last_error,omitempty"`
	LastErrorAt time.Time `json:"last_error_at,omitzero"`
	// Dropped counts frames the recorder skipped because it fell behind
	// (the disk was too slow); it resumes at the next keyframe.
	Dropped uint64 `json:"dropped_frames"`
}

// Recorder records one channel. Run drives it; the other methods are safe
// for concurrent use.
type Recorder struct {
	cfg  Config
	ch   *relay.Channel
	name string
	dir  string
	log  zerolog.Logger
	met  *chanMetrics

	mu      sync.Mutex
	status  Status
	current string // the file being written
	curDur  time.Duration
	curAt   time.Time
	maxAge  time.Duration
	maxSize int64

	cacheMu sync.Mutex
	cache   map[string]cached

	dropped atomic.Uint64
	ready   chan struct{} // closed once Run has subscribed
	readyMu sync.Once

	// Owned by Run.
	sess       *session
	w          *fileWriter
	lastVideo  time.Duration
	backoff    time.Duration
	retryAt    time.Time
	needRepair bool
	gen        uint64 // timeline restarts seen
}

// session is one live session of the channel: the files it spans share
// its id.
type session struct {
	id    string
	parts int
}

// New returns the recorder of ch. It touches no file: a directory that
// cannot be written is reported by Run, and retried, so that the live
// stream is never held back by the disk.
func New(cfg Config, ch *relay.Channel, log zerolog.Logger, m *Metrics) (*Recorder, error) {
	if cfg.Dir == "" {
		return nil, errors.New("record: no directory")
	}
	if cfg.Segment <= 0 {
		cfg.Segment = time.Hour
	}
	if cfg.maintainEvery == 0 {
		cfg.maintainEvery = time.Minute
	}
	if cfg.queue == 0 {
		cfg.queue = 1024
	}
	if cfg.backoff == 0 {
		cfg.backoff = minBackoff
	}
	if cfg.create == nil {
		cfg.create = func(path string) (*os.File, error) {
			return os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o644)
		}
	}
	dir := filepath.Join(cfg.Dir, ch.Name())
	r := &Recorder{
		cfg: cfg, ch: ch, name: ch.Name(), dir: dir,
		log:     log.With().Str("component", "publish.record").Str("channel", ch.Name()).Logger(),
		met:     m.forChannel(ch.Name()),
		maxAge:  cfg.MaxAge,
		maxSize: cfg.MaxSize,
		cache:   map[string]cached{},
		ready:   make(chan struct{}),
	}
	r.status = Status{Enabled: true, State: StateIdle, Since: time.Now(), Dir: dir}
	return r, nil
}

// Ready is closed once Run has finished its start-up pass over the
// directory and subscribed to the channel: frames published from then on
// are recorded.
func (r *Recorder) Ready() <-chan struct{} { return r.ready }

// SetLimits changes the retention limits from now on (config reload).
func (r *Recorder) SetLimits(maxAge time.Duration, maxSize int64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.maxAge, r.maxSize = maxAge, maxSize
}

// Status returns a snapshot of the recorder's state.
func (r *Recorder) Status() Status {
	r.mu.Lock()
	defer r.mu.Unlock()
	s := r.status
	s.Dropped = r.dropped.Load()
	return s
}

// Run records until ctx is cancelled. At start, and every minute, it
// finishes files a crash left unfinished and applies the retention
// limits. It returns once the file being written is finished.
func (r *Recorder) Run(ctx context.Context) error {
	r.maintain()
	sub := r.ch.Subscribe("record", r.cfg.queue)
	defer sub.Close()
	r.readyMu.Do(func() { close(r.ready) })
	t := time.NewTicker(r.cfg.maintainEvery)
	defer t.Stop()
	_, changed := r.ch.State()
	for {
		select {
		case <-ctx.Done():
			// What is queued was published before the stop: it goes
			// into the file before it is finished.
			r.drain(sub)
			r.endSession()
			return nil
		case <-changed:
			var st relay.State
			st, changed = r.ch.State()
			if st == relay.StateIdle {
				// Every frame of the session that ended is queued by
				// now: they go to its file first. A new session that
				// started meanwhile shows as a timeline restart in the
				// queue, and is kept.
				gen := r.gen
				r.drain(sub)
				if r.gen == gen {
					r.endSession()
				}
			}
		case f := <-sub.Frames():
			r.dropped.Store(sub.Dropped())
			r.onFrame(f)
		case <-t.C:
			r.maintain()
		}
	}
}

// drain writes the frames queued now (not those queued meanwhile, so that
// a busy publisher cannot keep it going).
func (r *Recorder) drain(sub *relay.Subscription) {
	for n := len(sub.Frames()); n > 0; n-- {
		r.onFrame(<-sub.Frames())
	}
}

// onFrame writes one frame, starting sessions and files at keyframes.
func (r *Recorder) onFrame(f *relay.Frame) {
	video := f.Kind == relay.KindVideo
	key := video && f.Key
	if video {
		// The channel's timeline never goes back within a session: a
		// frame earlier than the last one starts a new session.
		if r.sess != nil && f.DTS < r.lastVideo {
			r.endSession()
			r.gen++
		}
		r.lastVideo = f.DTS
	}
	if r.sess == nil {
		if !key {
			return
		}
		r.startSession()
	}
	if r.w != nil && key {
		switch {
		case f.DTS-r.w.t0 >= r.cfg.Segment:
			r.closeFile(f, "the file reached record.segment")
		case f.Tracks.Audio != nil && audioKey(f.Tracks) != r.w.audioCfg:
			r.closeFile(f, "the audio format changed")
		}
	}
	if r.w == nil {
		if !key || time.Now().Before(r.retryAt) {
			return
		}
		if !r.openFile(f) {
			return
		}
	}
	n, err := r.w.add(f)
	r.wrote(n)
	if err != nil {
		r.fail(err)
		return
	}
	if n > 0 && r.backoff > 0 {
		r.backoff = 0
	}
}

// sessionLayout formats session ids: the UTC start time, safe in file
// names on every system.
const sessionLayout = "2006-01-02T15-04-05Z"

func (r *Recorder) startSession() {
	now := time.Now().UTC().Truncate(time.Second)
	id := now.Format(sessionLayout)
	// Two sessions starting within the same second (a publisher that
	// leaves with no grace period and comes straight back) get distinct
	// ids.
	for i := 0; i < 100; i++ {
		if !r.sessionExists(id) {
			break
		}
		now = now.Add(time.Second)
		id = now.Format(sessionLayout)
	}
	r.sess = &session{id: id}
	r.backoff, r.retryAt = 0, time.Time{}
	r.mu.Lock()
	r.status.Session = id
	r.mu.Unlock()
}

// sessionExists reports whether a file of session id is on disk.
func (r *Recorder) sessionExists(id string) bool {
	es, _ := r.entries()
	for _, e := range es {
		if e.session == id {
			return true
		}
	}
	return false
}

// fileName is the name of part n (from 1) of session id.
func (r *Recorder) fileName(id string, part int) string {
	if part <= 1 {
		return r.name + "_" + id + ".mp4"
	}
	return fmt.Sprintf("%s_%s_%d.mp4", r.name, id, part)
}

// openFile starts the session's next file with key, a keyframe. It
// reports whether the file is open.
func (r *Recorder) openFile(key *relay.Frame) bool {
	if r.needRepair {
		r.needRepair = false
		r.maintain()
	}
	if err := os.MkdirAll(r.dir, 0o755); err != nil {
		r.fail(fmt.Errorf("creating the recordings directory: %w", err))
		return false
	}
	part := r.sess.parts + 1
	name := r.fileName(r.sess.id, part)
	r.mu.Lock()
	r.current = name
	r.curDur, r.curAt = 0, time.Now()
	r.mu.Unlock()
	w, err := createFile(filepath.Join(r.dir, name), name, key, time.Now(), reserveFor(r.cfg.Segment), r.cfg.create)
	if w != nil {
		r.sess.parts = part
		r.w = w
		r.wrote(w.size())
	}
	if err != nil {
		r.fail(err)
		return false
	}
	r.met.files.Inc()
	r.met.up.Set(1)
	r.setState(StateRecording)
	r.log.Info().Str("file", name).Str("session", r.sess.id).Int("part", part).Msg("recording to a new file")
	return true
}

// wrote accounts for n bytes written to the current file.
func (r *Recorder) wrote(n int64) {
	if n > 0 {
		r.met.bytes.Add(float64(n))
	}
	if r.w == nil {
		return
	}
	r.mu.Lock()
	r.status.Bytes = r.w.size()
	r.curDur = r.w.duration()
	r.mu.Unlock()
}

// closeFile finishes the current file; next is the frame that follows it
// in the next file, if any.
func (r *Recorder) closeFile(next *relay.Frame, why string) {
	w := r.w
	r.w = nil
	n, kept, err := w.close(next)
	r.met.bytes.Add(float64(n))
	r.mu.Lock()
	r.current = ""
	r.status.File, r.status.Bytes = "", 0
	r.mu.Unlock()
	r.met.up.Set(0)
	if !kept {
		if err := os.Remove(w.path); err != nil && !errors.Is(err, os.ErrNotExist) {
			r.log.Warn().Err(err).Str("file", w.name).Msg("removing an empty recording failed")
		}
	}
	if err != nil {
		r.needRepair = true
		r.recordError(err)
		r.log.Error().Err(err).Str("file", w.name).Msg("recording file not finished: seance will finish it later")
	} else if kept {
		r.log.Info().Str("file", w.name).Str("reason", why).Dur("duration", w.duration().Round(time.Millisecond)).
			Int64("bytes", w.size()).Msg("recording file finished")
	}
	if next == nil {
		r.setState(StateIdle)
	}
	r.retention()
}

// endSession finishes the session's file.
func (r *Recorder) endSession() {
	if r.sess == nil {
		return
	}
	if r.w != nil {
		r.closeFile(nil, "the live session ended")
	}
	r.sess = nil
	r.lastVideo = 0
	r.retryAt = time.Time{}
	r.mu.Lock()
	r.status.Session = ""
	r.mu.Unlock()
	r.setState(StateIdle)
}

// fail handles a failed create or write: the file is closed as it is (it
// is repaired later), and a new one is tried at the first keyframe after
// a backoff. The live stream is not affected.
func (r *Recorder) fail(err error) {
	if w := r.w; w != nil {
		r.w = nil
		_, _, _ = w.close(nil)
		r.needRepair = true
	}
	r.mu.Lock()
	r.current = ""
	r.status.File, r.status.Bytes = "", 0
	r.mu.Unlock()
	r.met.up.Set(0)
	r.backoff = min(max(r.backoff*2, r.cfg.backoff), maxBackoff)
	wait := r.backoff + time.Duration((rand.Float64()*0.4-0.2)*float64(r.backoff))
	r.retryAt = time.Now().Add(wait)
	r.recordError(err)
	r.setState(StateFailed)
	r.log.Error().Err(err).Dur("retry_in", wait.Round(time.Millisecond)).
		Msg("recording failed: the live stream goes on; retrying at a keyframe")
}

func (r *Recorder) recordError(err error) {
	r.met.errors.Inc()
	now := time.Now()
	r.mu.Lock()
	r.status.Errors++
	r.status.LastError = err.Error()
	r.status.LastErrorAt = now
	r.mu.Unlock()
}

func (r *Recorder) setState(s State) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.status.State != s {
		r.status.State, r.status.Since = s, time.Now()
	}
	if s == StateRecording {
		r.status.File = r.current
	}
}
