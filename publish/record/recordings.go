package record

import (
	"cmp"
	"encoding/binary"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"time"
)

// Recording is one recording file, as the admin API and replays show it.
type Recording struct {
	// Name is the file's name in the channel's directory.
	Name    string `json:"name"`
	Channel string `json:"channel"`
	// Session identifies the live session (its UTC start time); the files
	// of one session share it and are numbered by Part from 1.
	Session string    `json:"session"`
	Part    int       `json:"part"`
	Start   time.Time `json:"start"`
	// Duration is read from the file's fragments.
	Duration float64 `json:"duration_seconds"`
	Size     int64   `json:"size_bytes"`
	// InProgress is true for the file being written.
	InProgress bool `json:"in_progress"`
	// Complete is true once the file is finished (indexed for seeking).
	Complete bool      `json:"complete"`
	Modified time.Time `json:"-"`
}

// cached is what scanning a file found, valid while its size and
// modification time stay the same.
type cached struct {
	size     int64
	mod      time.Time
	start    time.Time
	duration time.Duration
	complete bool
}

// entry is a file of the channel's directory whose name seance gave it.
type entry struct {
	name    string
	session string
	part    int
	size    int64
	mod     time.Time
}

// namePattern matches the channel's file names.
func (r *Recorder) namePattern() *regexp.Regexp {
	return regexp.MustCompile(`^` + regexp.QuoteMeta(r.name) + `_(\d{4}-\d\d-\d\dT\d\d-\d\d-\d\dZ)(?:_([1-9]\d{0,5}))?\.mp4$`)
}

// entries lists the channel's files, oldest session first, parts in
// order. A missing directory is an empty list.
func (r *Recorder) entries() ([]entry, error) {
	des, err := os.ReadDir(r.dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	re := r.namePattern()
	var out []entry
	for _, de := range des {
		m := re.FindStringSubmatch(de.Name())
		if m == nil || !de.Type().IsRegular() {
			continue
		}
		info, err := de.Info()
		if err != nil {
			continue // removed meanwhile
		}
		part := 1
		if m[2] != "" {
			part, _ = strconv.Atoi(m[2])
		}
		out = append(out, entry{name: de.Name(), session: m[1], part: part, size: info.Size(), mod: info.ModTime()})
	}
	slices.SortFunc(out, func(a, b entry) int {
		return cmp.Or(cmp.Compare(a.session, b.session), cmp.Compare(a.part, b.part))
	})
	return out, nil
}

// Recordings lists the channel's recordings, newest session first, the
// parts of a session in order.
func (r *Recorder) Recordings() ([]Recording, error) {
	es, err := r.entries()
	if err != nil {
		return nil, err
	}
	r.mu.Lock()
	current, curDur, curAt := r.current, r.curDur, r.curAt
	r.mu.Unlock()
	out := make([]Recording, 0, len(es))
	keep := map[string]bool{}
	for _, e := range es {
		rec := Recording{
			Name: e.name, Channel: r.name, Session: e.session, Part: e.part,
			Size: e.size, Modified: e.mod,
		}
		if e.name == current {
			rec.InProgress = true
			rec.Start = curAt.UTC().Truncate(time.Second)
			rec.Duration = curDur.Seconds()
		} else {
			keep[e.name] = true
			c := r.scanCached(e)
			rec.Start, rec.Duration, rec.Complete = c.start, c.duration.Seconds(), c.complete
		}
		if rec.Start.IsZero() && e.part == 1 {
			rec.Start, _ = time.Parse(sessionLayout, e.session)
		}
		out = append(out, rec)
	}
	r.cacheMu.Lock()
	for name := range r.cache {
		if !keep[name] {
			delete(r.cache, name)
		}
	}
	r.cacheMu.Unlock()
	slices.SortStableFunc(out, func(a, b Recording) int { return -cmp.Compare(a.Session, b.Session) })
	return out, nil
}

// scanCached reads a file's start, duration and state, once per version
// of the file.
func (r *Recorder) scanCached(e entry) cached {
	r.cacheMu.Lock()
	c, ok := r.cache[e.name]
	r.cacheMu.Unlock()
	if ok && c.size == e.size && c.mod.Equal(e.mod) {
		return c
	}
	c = cached{size: e.size, mod: e.mod}
	if f, err := os.Open(filepath.Join(r.dir, e.name)); err == nil {
		if s, err := scanFile(f, e.size); err == nil {
			c.duration, c.complete = s.duration(), s.finished
			if s.created.After(mp4Epoch) {
				c.start = s.created.UTC()
			}
		}
		f.Close()
	}
	r.cacheMu.Lock()
	r.cache[e.name] = c
	r.cacheMu.Unlock()
	return c
}

// lookup finds a recording by name among the listed ones: a name that is
// not a file of the channel (a path, "..") is simply not found.
func (r *Recorder) lookup(name string) (Recording, error) {
	list, err := r.Recordings()
	if err != nil {
		return Recording{}, err
	}
	for _, rec := range list {
		if rec.Name == name {
			return rec, nil
		}
	}
	return Recording{}, ErrNotFound
}

// Open opens a recording for reading. The caller closes the file. The
// file being written can be opened (it grows while it is read).
func (r *Recorder) Open(name string) (*os.File, Recording, error) {
	rec, err := r.lookup(name)
	if err != nil {
		return nil, Recording{}, err
	}
	f, err := os.Open(filepath.Join(r.dir, rec.Name))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, Recording{}, ErrNotFound
	}
	if err != nil {
		return nil, Recording{}, err
	}
	return f, rec, nil
}

// Delete removes a recording. The file being written is refused with
// ErrInProgress.
func (r *Recorder) Delete(name string) error {
	rec, err := r.lookup(name)
	if err != nil {
		return err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if rec.Name == r.current {
		return ErrInProgress
	}
	if err := os.Remove(filepath.Join(r.dir, rec.Name)); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return ErrNotFound
		}
		return err
	}
	r.met.deleted[deletedAPI].Inc()
	r.log.Info().Str("file", rec.Name).Msg("recording deleted through the admin API")
	return nil
}

// isFinished reports whether the file ends with an mfra (seance wrote it
// last when it finished the file).
func isFinished(path string) bool {
	f, err := os.Open(path)
	if err != nil {
		return false
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil || st.Size() < mfroSize+8 {
		return false
	}
	var tail [mfroSize]byte
	if _, err := f.ReadAt(tail[:], st.Size()-mfroSize); err != nil || string(tail[4:8]) != "mfro" {
		return false
	}
	size := int64(binary.BigEndian.Uint32(tail[12:]))
	if size < 8+mfroSize || size > st.Size() {
		return false
	}
	var hdr [8]byte
	if _, err := f.ReadAt(hdr[:], st.Size()-size); err != nil {
		return false
	}
	return string(hdr[4:8]) == "mfra" && int64(binary.BigEndian.Uint32(hdr[:4])) == size
}

// maintain finishes the files left unfinished (crash, write error) and
// applies the retention limits.
func (r *Recorder) maintain() {
	es, err := r.entries()
	if err != nil {
		r.log.Warn().Err(err).Str("dir", r.dir).Msg("cannot list the recordings directory")
		return
	}
	r.mu.Lock()
	current := r.current
	r.mu.Unlock()
	for _, e := range es {
		path := filepath.Join(r.dir, e.name)
		if e.name == current || isFinished(path) {
			continue
		}
		res, err := repairFile(path)
		switch {
		case err != nil:
			r.log.Warn().Err(err).Str("file", e.name).Msg("an unfinished recording could not be repaired")
		case res.empty:
			if err := os.Remove(path); err == nil {
				r.met.deleted[deletedEmpty].Inc()
				r.log.Warn().Str("file", e.name).Msg("removed a recording with nothing playable (cut before its first fragment)")
			}
		case res.finished:
			r.met.repaired.Inc()
			r.log.Warn().Str("file", e.name).Int64("cut_bytes", res.cut).
				Msg("finished a recording left unfinished (seance stopped abruptly or a write failed)")
		}
	}
	r.retention()
}

// retention deletes files past the age and size limits, oldest first,
// never the file being written.
func (r *Recorder) retention() {
	r.mu.Lock()
	maxAge, maxSize, current := r.maxAge, r.maxSize, r.current
	r.mu.Unlock()
	if maxAge <= 0 && maxSize <= 0 {
		return
	}
	es, err := r.entries()
	if err != nil {
		return
	}
	now := time.Now()
	var total int64
	kept := es[:0]
	for _, e := range es {
		if maxAge > 0 && e.name != current && now.Sub(e.mod) > maxAge {
			r.remove(e, deletedMaxAge)
			continue
		}
		total += e.size
		kept = append(kept, e)
	}
	for _, e := range kept {
		if maxSize <= 0 || total <= maxSize {
			break
		}
		if e.name == current {
			continue
		}
		if r.remove(e, deletedMaxSize) {
			total -= e.size
		}
	}
}

func (r *Recorder) remove(e entry, reason string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if e.name == r.current {
		return false
	}
	if err := os.Remove(filepath.Join(r.dir, e.name)); err != nil {
		if !errors.Is(err, fs.ErrNotExist) {
			r.log.Warn().Err(err).Str("file", e.name).Msg("retention: deleting a recording failed")
		}
		return false
	}
	r.met.deleted[reason].Inc()
	r.log.Info().Str("file", e.name).Str("reason", reason).Int64("bytes", e.size).
		Msg("retention: recording deleted")
	return true
}
