package record

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
	"github.com/stretchr/testify/require"

	"github.com/seance-relay/seance/relay"
)

// frames publishes m on a channel of its own and returns the frames a sink
// receives.
func frames(t *testing.T, m *media) []*relay.Frame {
	t.Helper()
	hub := relay.NewHub([]relay.ChannelConfig{{Name: "x"}}, zerolog.Nop(), relay.NewMetrics(prometheus.NewRegistry()))
	ch, err := hub.Channel("x")
	require.NoError(t, err)
	sub := ch.Subscribe("test", 1<<16)
	defer sub.Close()
	sess, err := ch.Publish(relay.PublisherInfo{Protocol: "rtmp"}, m.tracks())
	require.NoError(t, err)
	feed(sess, m, 0, 0)
	sess.Close()
	var out []*relay.Frame
	for {
		select {
		case f := <-sub.Frames():
			out = append(out, f)
		default:
			return out
		}
	}
}

// crashed writes frames to path as a recording that seance was killed
// while writing: its header and complete fragments, then the first half of
// one more fragment. It returns the size of the complete part and its
// duration.
func crashed(t *testing.T, path string, fs []*relay.Frame) (int64, time.Duration) {
	t.Helper()
	w, err := createFile(path, filepath.Base(path), fs[0], time.Now(), reserveFor(time.Hour),
		func(p string) (*os.File, error) { return os.OpenFile(p, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o644) })
	require.NoError(t, err)
	for _, f := range fs {
		_, err := w.add(f)
		require.NoError(t, err)
	}
	good, dur := w.size(), w.idx.duration()
	last := w.idx.frags[len(w.idx.frags)-1]
	b := make([]byte, last.size)
	_, err = w.f.ReadAt(b, last.offset)
	require.NoError(t, err)
	_, err = w.f.Write(b[:len(b)/2])
	require.NoError(t, err)
	require.NoError(t, w.f.Close())
	return good, dur
}

// TestRepair: a file cut by a crash is cut back to its last complete
// fragment and finished: it then probes and decodes without an error.
// Cut anywhere, a file either repairs to something playable or holds
// nothing and says so.
func TestRepair(t *testing.T) {
	m := clip(t, 6, 30, 44100)
	fs := frames(t, m)
	dir := t.TempDir()
	path := filepath.Join(dir, "bourg_2026-03-12T18-30-05Z.mp4")
	good, dur := crashed(t, path, fs)
	require.Greater(t, dur, 4*time.Second)
	st, err := os.Stat(path)
	require.NoError(t, err)
	require.Greater(t, st.Size(), good)

	res, err := repairFile(path)
	require.NoError(t, err)
	require.True(t, res.finished)
	require.Equal(t, st.Size()-good, res.cut)
	require.True(t, isFinished(path))
	require.InDelta(t, dur.Seconds(), requirePlayable(t, path), 0.1)
	again, err := repairFile(path)
	require.NoError(t, err)
	require.Equal(t, repairResult{}, again, "a finished file is left alone")

	// Cut at every kind of place.
	whole, err := os.ReadFile(path)
	require.NoError(t, err)
	f, err := os.Open(path)
	require.NoError(t, err)
	s, err := scanFile(f, int64(len(whole)))
	f.Close()
	require.NoError(t, err)
	fr := s.frags[1]
	for _, c := range []struct {
		name  string
		at    int64
		empty bool
	}{
		{"empty file", 0, true},
		{"in the ftyp", 10, true},
		{"in the moov", 200, true},
		{"in the reserved room", s.layout.reserveStart + 100, true},
		{"before the first fragment", s.firstMoofAt, true},
		{"in the first moof", s.firstMoofAt + 100, true},
		{"at a fragment boundary", fr.offset, false},
		{"in a moof", fr.offset + 50, false},
		{"in an mdat", fr.offset + fr.size - 100, false},
		{"in the mfra", s.end + 10, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), "cut.mp4")
			require.NoError(t, os.WriteFile(p, whole[:c.at], 0o644))
			res, err := repairFile(p)
			require.NoError(t, err)
			require.Equal(t, c.empty, res.empty)
			if !c.empty {
				require.True(t, res.finished)
				requirePlayable(t, p)
			}
		})
	}
}

// TestRepairAtStart: the recorder finishes, at start, a file left by a
// crash, and lists it complete; a file with nothing playable is removed.
func TestRepairAtStart(t *testing.T) {
	m := clip(t, 6, 30, 44100)
	root := t.TempDir()
	dir := filepath.Join(root, "bourg")
	require.NoError(t, os.MkdirAll(dir, 0o755))
	_, dur := crashed(t, filepath.Join(dir, "bourg_2026-03-12T18-30-05Z.mp4"), frames(t, m))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "bourg_2026-03-12T19-00-00Z.mp4"), []byte("\x00\x00\x00\x20ftyp"), 0o644))

	tr := startRecorder(t, Config{Dir: root}, 0)
	list, err := tr.Recordings()
	require.NoError(t, err)
	require.Len(t, list, 1)
	require.True(t, list[0].Complete)
	require.InDelta(t, dur.Seconds(), list[0].Duration, 0.05)
	require.WithinDuration(t, time.Now(), list[0].Start, time.Minute, "the start is read from the file (mvhd)")
	requirePlayable(t, filepath.Join(dir, list[0].Name))
	requireMetric(t, tr.reg, "seance_recording_files_repaired_total", 1)
	requireMetric(t, tr.reg, "seance_recording_files_deleted_total", 1)
}

// fuzzSPS and fuzzPPS are a 320x180 H.264 stream's parameter sets.
var (
	fuzzSPS = []byte{0x67, 0x64, 0x00, 0x0d, 0xac, 0xb2, 0x02, 0x83, 0x3f, 0x3e, 0x02, 0x20, 0x00, 0x00, 0x03, 0x00, 0x20, 0x00, 0x00, 0x07, 0x81, 0xe2, 0x85, 0x49}
	fuzzPPS = []byte{0x68, 0xeb, 0xc3, 0xcb, 0x22, 0xc0}
)

// fuzzRecording returns a small recording made of synthetic frames (the
// scanner never decodes them): seconds of 10 fps video with a keyframe
// every gop frames, and 44.1 kHz audio; finished or cut mid-fragment.
func fuzzRecording(t testing.TB, seconds, gop int, finish bool) []byte {
	cfg := clipAudioConfig()
	tracks := &relay.Tracks{Video: &relay.VideoTrack{SPS: fuzzSPS, PPS: fuzzPPS}, Audio: &relay.AudioTrack{Config: cfg}}
	var fs []*relay.Frame
	vi, ai := 0, 0
	for vi < seconds*10 {
		vts := time.Duration(vi) * 100 * time.Millisecond
		ats := time.Duration(ai) * 1024 * time.Second / 44100
		if ats < vts {
			fs = append(fs, &relay.Frame{Kind: relay.KindAudio, DTS: ats, PTS: ats, AU: []byte{1, 2, 3, byte(ai)}, Tracks: tracks})
			ai++
			continue
		}
		fs = append(fs, &relay.Frame{Kind: relay.KindVideo, DTS: vts, PTS: vts, Key: vi%gop == 0,
			AVCC: []byte{0, 0, 0, 2, 0x65, byte(vi)}, Tracks: tracks})
		vi++
	}
	p := filepath.Join(t.TempDir(), "f.mp4")
	w, err := createFile(p, "f.mp4", fs[0], time.Unix(1700000000, 0), reserveFor(time.Minute),
		func(p string) (*os.File, error) { return os.OpenFile(p, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o644) })
	require.NoError(t, err)
	for _, f := range fs {
		_, err := w.add(f)
		require.NoError(t, err)
	}
	if finish {
		_, _, err = w.close(nil)
		require.NoError(t, err)
	} else {
		_, err = w.f.Write([]byte{0, 0, 1, 0, 'm', 'o', 'o', 'f', 0, 0})
		require.NoError(t, err)
		require.NoError(t, w.f.Close())
	}
	b, err := os.ReadFile(p)
	require.NoError(t, err)
	return b
}

// FuzzRepair feeds the scanner and the repair whatever a crash or a disk
// could leave: it never panics, never reads past the data, and a repaired
// file scans as finished with the fragments found before.
func FuzzRepair(f *testing.F) {
	f.Add(fuzzRecording(f, 4, 10, true))
	f.Add(fuzzRecording(f, 3, 25, false)) // 2.5 s GOPs: fragments cut mid-GOP
	f.Add([]byte{})
	f.Add([]byte("\x00\x00\x00\x08ftyp"))
	f.Add([]byte("\x00\x00\x00\x01ftyp\xff\xff\xff\xff\xff\xff\xff\xff"))
	f.Fuzz(func(t *testing.T, data []byte) {
		s, err := scanFile(bytes.NewReader(data), int64(len(data)))
		if err != nil {
			return
		}
		require.LessOrEqual(t, s.end, int64(len(data)))
		for _, fr := range s.frags {
			require.LessOrEqual(t, fr.offset+fr.size, s.end)
		}
		_ = s.duration()
		p := filepath.Join(t.TempDir(), "f.mp4")
		require.NoError(t, os.WriteFile(p, data, 0o644))
		res, err := repairFile(p)
		if err != nil || res.empty || !res.finished {
			return
		}
		out, err := os.ReadFile(p)
		require.NoError(t, err)
		s2, err := scanFile(bytes.NewReader(out), int64(len(out)))
		require.NoError(t, err)
		require.True(t, s2.finished, "repaired file is finished")
		require.Len(t, s2.frags, len(s.frags))
		require.Equal(t, s.duration(), s2.duration())
		require.True(t, isFinished(p))
	})
}
