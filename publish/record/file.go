package record

import (
	"fmt"
	"os"
	"time"

	"github.com/bluenviron/mediacommon/v2/pkg/formats/fmp4"
	"github.com/bluenviron/mediacommon/v2/pkg/formats/fmp4/seekablebuffer"

	"github.com/seance-relay/seance/relay"
)

// Fragment lengths. A fragment ends at a video keyframe once it holds at
// least minFragment of video, and never holds more than maxFragment of
// video: with Jibri's 2 s GOP every fragment is one GOP, starting with its
// keyframe. With longer GOPs a fragment is cut at 2 s mid-GOP, and the
// fragment after it ends at the next keyframe, so that keyframes start
// fragments again (seeking needs that, see buildSidx). If the video
// stalls, audio alone ends a fragment at maxAudioFragment.
const (
	minFragment      = time.Second
	maxFragment      = 2 * time.Second
	maxAudioFragment = maxFragment + 500*time.Millisecond
)

// Default sample durations for the last sample of a file, when no sample
// follows to tell its length: 1/30 s of video, one AAC frame.
const (
	defaultVideoDuration = videoTimescale / 30
	aacFrameSamples      = 1024
)

// fileWriter writes one recording file: its header, then one fragment at a
// time, each with a single write call, so that a crash loses at most the
// fragment being assembled.
type fileWriter struct {
	f     *os.File
	path  string
	name  string
	start time.Time // wall clock of the first frame
	// t0 is the channel-timeline DTS of the file's first video frame;
	// sample times in the file count from it.
	t0       time.Duration
	last     time.Duration // latest DTS written, relative to t0
	audioCfg string        // the audio config the file holds ("" none)
	// sameAudio caches whether a Tracks holds the file's audio config:
	// Tracks change rarely (a new publisher, a slate), frames are many.
	sameAudioTracks *relay.Tracks
	sameAudio       bool
	video           *trackBuf
	audio           *trackBuf // nil without audio
	seq             uint32
	buf             seekablebuffer.Buffer
	// idx is what finishing needs, kept as fragments are written.
	idx scanResult
	// broken is set when a write failed: the file's tail is unknown and
	// it is repaired from disk instead.
	broken bool
}

// trackBuf holds a track's samples until their fragment is written. A
// sample's duration is known when the next one arrives, so the latest
// sample waits in pending.
type trackBuf struct {
	id        uint32
	timescale uint32
	pending   *sample
	done      []sample
	lastDur   uint32
	defDur    uint32
}

type sample struct {
	dts     time.Duration // relative to the file's t0
	ticks   uint64        // dts in the track's timescale
	dur     uint32
	cts     int32
	sync    bool
	payload []byte
}

// ticks converts d ≥ 0 to a timescale, rounding to the nearest tick.
func ticks(d time.Duration, timescale uint32) uint64 {
	if d <= 0 {
		return 0
	}
	s, ns := uint64(d/time.Second), uint64(d%time.Second)
	return s*uint64(timescale) + (ns*uint64(timescale)+uint64(time.Second/2))/uint64(time.Second)
}

// audioKey identifies an audio configuration; "" is no audio.
func audioKey(t *relay.Tracks) string {
	if t == nil || t.Audio == nil || t.Audio.Config == nil {
		return ""
	}
	b, err := t.Audio.Config.Marshal()
	if err != nil {
		return "?"
	}
	return string(b)
}

// createFile creates path and writes the header for key, a video
// keyframe, which will be the file's first sample. open creates the file
// (os.OpenFile in production).
func createFile(path, name string, key *relay.Frame, now time.Time, reserve int,
	open func(string) (*os.File, error)) (*fileWriter, error) {
	hdr, layout, err := buildInit(key.Tracks, now, reserve)
	if err != nil {
		return nil, err
	}
	f, err := open(path)
	if err != nil {
		return nil, err
	}
	w := &fileWriter{
		f: f, path: path, name: name, start: now, t0: key.DTS,
		audioCfg: audioKey(key.Tracks),
		video:    &trackBuf{id: videoTrackID, timescale: videoTimescale, defDur: defaultVideoDuration},
	}
	w.idx = scanResult{
		moov: true, created: now, layout: layout, firstMoofAt: -1,
		tracks: map[uint32]*trackInfo{videoTrackID: {timescale: videoTimescale, video: true}},
	}
	if a := key.Tracks.Audio; a != nil && a.Config != nil {
		w.audio = &trackBuf{id: audioTrackID, timescale: uint32(a.Config.SampleRate), defDur: aacFrameSamples}
		w.idx.tracks[audioTrackID] = &trackInfo{timescale: w.audio.timescale}
	}
	n, err := f.Write(hdr)
	w.idx.end = int64(n)
	if err != nil {
		w.broken = true
		return w, fmt.Errorf("writing %s: %w", name, err)
	}
	return w, nil
}

// size is the number of bytes in the file.
func (w *fileWriter) size() int64 { return w.idx.end }

// duration is the span of media written or waiting to be.
func (w *fileWriter) duration() time.Duration { return w.last }

// add takes one frame of the channel. It writes a fragment when one is
// complete and returns the bytes written.
func (w *fileWriter) add(f *relay.Frame) (int64, error) {
	if f.DTS < w.t0 {
		// Audio from just before the file's first keyframe.
		return 0, nil
	}
	rel := f.DTS - w.t0
	w.last = max(w.last, rel)
	var written int64
	if f.Kind == relay.KindVideo {
		tb := w.video
		if p := tb.pending; p != nil {
			complete(tb, p, rel)
			if w.trackSpan(tb)+time.Duration(p.dur)*time.Second/time.Duration(tb.timescale) > maxFragment && len(tb.done) > 0 {
				n, err := w.flush(p.dts)
				written += n
				if err != nil {
					return written, err
				}
			}
			tb.done = append(tb.done, *p)
			tb.pending = nil
		}
		// A fragment cut mid-GOP ends at the next keyframe, however
		// short, so that the fragments after it start with theirs.
		if f.Key && len(tb.done) > 0 && (w.trackSpan(tb) >= minFragment || !tb.done[0].sync) {
			n, err := w.flush(rel)
			written += n
			if err != nil {
				return written, err
			}
		}
		tb.pending = &sample{
			dts: rel, ticks: ticks(rel, tb.timescale), cts: int32(ticks(f.PTS-f.DTS, tb.timescale)),
			sync: f.Key, payload: f.AVCC,
		}
		return written, nil
	}
	tb := w.audio
	if f.Tracks != w.sameAudioTracks {
		w.sameAudioTracks, w.sameAudio = f.Tracks, audioKey(f.Tracks) == w.audioCfg
	}
	if tb == nil || !w.sameAudio {
		// Audio in another format waits for the next file.
		return 0, nil
	}
	if p := tb.pending; p != nil {
		complete(tb, p, rel)
		tb.done = append(tb.done, *p)
	}
	tb.pending = &sample{dts: rel, ticks: ticks(rel, tb.timescale), sync: true, payload: f.AU}
	if w.trackSpan(tb) >= maxAudioFragment {
		return w.flush(1<<62 - 1)
	}
	return 0, nil
}

// complete sets p's duration from the next sample's time.
func complete(tb *trackBuf, p *sample, next time.Duration) {
	t := ticks(next, tb.timescale)
	d := uint32(0)
	if t > p.ticks {
		d = uint32(min(t-p.ticks, 1<<31))
	}
	p.dur = d
	if d > 0 {
		tb.lastDur = d
	}
}

// trackSpan is the duration of a track's completed samples.
func (w *fileWriter) trackSpan(tb *trackBuf) time.Duration {
	if len(tb.done) == 0 {
		return 0
	}
	var sum uint64
	for i := range tb.done {
		sum += uint64(tb.done[i].dur)
	}
	return time.Duration(sum * uint64(time.Second) / uint64(tb.timescale))
}

// flush writes the completed video samples and the completed audio
// samples before cut as one fragment.
func (w *fileWriter) flush(cut time.Duration) (int64, error) {
	part := fmp4.Part{SequenceNumber: w.seq + 1}
	fr := fragment{offset: w.idx.end}
	for _, tb := range []*trackBuf{w.video, w.audio} {
		if tb == nil || len(tb.done) == 0 {
			continue
		}
		n := len(tb.done)
		if tb != w.video {
			n = 0
			for n < len(tb.done) && tb.done[n].dts < cut {
				n++
			}
			if n == 0 {
				continue
			}
		}
		pt := &fmp4.PartTrack{ID: int(tb.id), BaseTime: tb.done[0].ticks, Samples: make([]*fmp4.Sample, n)}
		var dur uint64
		for i, s := range tb.done[:n] {
			pt.Samples[i] = &fmp4.Sample{Duration: s.dur, PTSOffset: s.cts, IsNonSyncSample: !s.sync, Payload: s.payload}
			dur += uint64(s.dur)
		}
		part.Tracks = append(part.Tracks, pt)
		fr.tracks = append(fr.tracks, fragTrack{
			id: tb.id, traf: len(part.Tracks), base: tb.done[0].ticks, duration: dur,
			sync: tb.done[0].sync, ctsFirst: int64(tb.done[0].cts),
		})
		rest := copy(tb.done, tb.done[n:])
		clear(tb.done[rest:])
		tb.done = tb.done[:rest]
	}
	if len(part.Tracks) == 0 {
		return 0, nil
	}
	w.buf.Reset()
	if _, err := w.buf.Seek(0, 0); err != nil {
		return 0, err
	}
	if err := part.Marshal(&w.buf); err != nil {
		return 0, fmt.Errorf("assembling a fragment of %s: %w", w.name, err)
	}
	b := w.buf.Bytes()
	n, err := w.f.Write(b)
	w.idx.end += int64(n)
	if err != nil {
		w.broken = true
		return int64(n), fmt.Errorf("writing %s: %w", w.name, err)
	}
	w.seq++
	fr.size = int64(n)
	if w.idx.firstMoofAt < 0 {
		w.idx.firstMoofAt = fr.offset
	}
	w.idx.frags = append(w.idx.frags, fr)
	return int64(n), nil
}

// close writes what is pending and finishes the file. next, when set, is
// the frame that follows (the next file's first keyframe) and gives the
// last video sample its exact duration. It returns the bytes written and
// whether the file holds anything (a file without a fragment is removed).
func (w *fileWriter) close(next *relay.Frame) (int64, bool, error) {
	var written int64
	defer w.f.Close()
	if w.broken {
		return 0, true, fmt.Errorf("%s was not finished after a write error: it will be repaired", w.name)
	}
	for _, tb := range []*trackBuf{w.video, w.audio} {
		if tb == nil || tb.pending == nil {
			continue
		}
		p := tb.pending
		if tb == w.video && next != nil && next.DTS > w.t0 {
			complete(tb, p, next.DTS-w.t0)
		}
		if p.dur == 0 {
			p.dur = tb.lastDur
			if p.dur == 0 {
				p.dur = tb.defDur
			}
		}
		tb.done = append(tb.done, *p)
		tb.pending = nil
	}
	n, err := w.flush(1<<62 - 1)
	written += n
	if err != nil {
		return written, true, err
	}
	if len(w.idx.frags) == 0 {
		return written, false, nil
	}
	before := w.idx.end
	end, err := finishFile(w.f, &w.idx)
	if err != nil {
		w.broken = true
		return written, true, fmt.Errorf("finishing %s: %w", w.name, err)
	}
	written += end - before
	w.idx.end = end
	if err := w.f.Close(); err != nil {
		return written, true, fmt.Errorf("closing %s: %w", w.name, err)
	}
	return written, true, nil
}
