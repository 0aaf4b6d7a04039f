package web

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"time"

	"github.com/seance-relay/seance/publish/record"
	"github.com/seance-relay/seance/relay"
)

// Recorder is a channel's recorder as the web servers use it; a
// *record.Recorder implements it.
type Recorder interface {
	Status() record.Status
	// Recordings lists the channel's files, newest session first.
	Recordings() ([]record.Recording, error)
	// Open opens one of the listed files; the caller closes it.
	Open(name string) (*os.File, record.Recording, error)
	// Delete removes one of the listed files, except the one being
	// written (record.ErrInProgress).
	Delete(name string) error
}

// SetRecorders replaces the channels' recorders: on the admin server every
// recording channel's, on the public server those of the channels whose
// replays are public. The map must not be modified afterwards. Safe for
// concurrent use.
func (s *Server) SetRecorders(recs map[string]Recorder) {
	if s.admin != nil {
		s.admin.recs.Store(&recs)
	}
	if s.public != nil {
		s.public.replays.Store(&recs)
	}
}

// recordingView is a recording as the admin API shows it.
type recordingView struct {
	record.Recording
	// URL downloads the file from the admin API.
	URL string `json:"url"`
}

func (a *admin) recorders() map[string]Recorder {
	if p := a.recs.Load(); p != nil {
		return *p
	}
	return nil
}

// recordingStatus is what the channel status says about recording.
func (a *admin) recordingStatus(channel string) record.Status {
	if rec, ok := a.recorders()[channel]; ok {
		return rec.Status()
	}
	return record.Status{State: record.StateIdle}
}

// recorder returns the recorder of the path's channel, or answers 404.
func (a *admin) recorder(w http.ResponseWriter, r *http.Request) (*relay.Channel, Recorder) {
	c := a.channel(w, r)
	if c == nil {
		return nil, nil
	}
	rec, ok := a.recorders()[c.Name()]
	if !ok {
		a.fail(w, r, http.StatusNotFound, "recording_disabled", "this channel does not record: set its record.enabled", nil)
		return nil, nil
	}
	return c, rec
}

func (a *admin) views(channel string, rec Recorder) ([]recordingView, error) {
	list, err := rec.Recordings()
	if err != nil {
		return nil, err
	}
	out := make([]recordingView, 0, len(list))
	for _, r := range list {
		out = append(out, recordingView{Recording: r,
			URL: "/api/v1/channels/" + url.PathEscape(channel) + "/recordings/" + url.PathEscape(r.Name)})
	}
	return out, nil
}

// listAllRecordings lists the recordings of every recording channel.
func (a *admin) listAllRecordings(w http.ResponseWriter, r *http.Request) {
	out := []recordingView{}
	for _, c := range a.hub.Channels() {
		rec, ok := a.recorders()[c.Name()]
		if !ok {
			continue
		}
		list, err := a.views(c.Name(), rec)
		if err != nil {
			a.fail(w, r, http.StatusInternalServerError, "recording_error", "cannot list the recordings directory", err)
			return
		}
		out = append(out, list...)
	}
	writeJSON(w, http.StatusOK, map[string]any{"recordings": out})
}

func (a *admin) listRecordings(w http.ResponseWriter, r *http.Request) {
	c, rec := a.recorder(w, r)
	if rec == nil {
		return
	}
	list, err := a.views(c.Name(), rec)
	if err != nil {
		a.fail(w, r, http.StatusInternalServerError, "recording_error", "cannot list the recordings directory", err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"recording": rec.Status(), "recordings": list})
}

// downloadRecording serves a file with range requests (RFC 9110 14), as
// an attachment. The file being written can be downloaded too: what was
// written so far.
func (a *admin) downloadRecording(w http.ResponseWriter, r *http.Request) {
	_, rec := a.recorder(w, r)
	if rec == nil {
		return
	}
	f, info, err := rec.Open(r.PathValue("file"))
	if err != nil {
		a.recordingError(w, r, err)
		return
	}
	defer f.Close()
	h := w.Header()
	h.Set("Content-Type", "video/mp4")
	h.Set("Content-Disposition", fmt.Sprintf("attachment; filename=%q", info.Name))
	h.Set("Cache-Control", "no-store")
	var mod time.Time
	if !info.InProgress {
		mod = info.Modified
		h.Set("ETag", recordingETag(info))
	}
	http.ServeContent(w, r, "", mod, f)
}

func (a *admin) deleteRecording(w http.ResponseWriter, r *http.Request) {
	c, rec := a.recorder(w, r)
	if rec == nil {
		return
	}
	name := r.PathValue("file")
	if err := rec.Delete(name); err != nil {
		a.recordingError(w, r, err)
		return
	}
	a.log.Info().Str("channel", c.Name()).Str("file", name).Msg("recording deleted from the admin API")
	w.WriteHeader(http.StatusNoContent)
}

func (a *admin) recordingError(w http.ResponseWriter, r *http.Request, err error) {
	switch {
	case errors.Is(err, record.ErrNotFound):
		a.fail(w, r, http.StatusNotFound, "recording_not_found", "no such recording on this channel: see GET …/recordings", nil)
	case errors.Is(err, record.ErrInProgress):
		a.fail(w, r, http.StatusConflict, "recording_in_progress", "this file is being written: it can be deleted once the session or the segment ends", nil)
	default:
		a.fail(w, r, http.StatusInternalServerError, "recording_error", "cannot read the recordings directory", err)
	}
}

// recordingETag identifies a finished file's version (RFC 9110 8.8.3).
func recordingETag(rec record.Recording) string {
	return fmt.Sprintf(`"%x-%x"`, rec.Size, rec.Modified.UnixNano())
}
