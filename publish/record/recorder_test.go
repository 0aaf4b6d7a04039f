package record

import (
	"encoding/binary"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/seance-relay/seance/relay"
)

// TestRecordSession: a live session becomes one finished file that plays
// from start to end, with fragments of at most 2 s, each starting with its
// keyframe, and an index.
func TestRecordSession(t *testing.T) {
	m := clip(t, 6, 60, 44100)
	tr := startRecorder(t, Config{}, 0)
	sess, err := tr.ch.Publish(relay.PublisherInfo{Protocol: "rtmp"}, m.tracks())
	require.NoError(t, err)
	feed(sess, m, 0, 0)
	sess.Close()
	rec := tr.waitFiles(t, 1)[0]
	require.True(t, rec.Complete)
	require.False(t, rec.InProgress)
	require.Equal(t, 1, rec.Part)
	require.Regexp(t, `^bourg_\d{4}-\d\d-\d\dT\d\d-\d\d-\d\dZ\.mp4$`, rec.Name)
	require.InDelta(t, 6.0, rec.Duration, 0.05)
	require.WithinDuration(t, time.Now(), rec.Start, 10*time.Second)

	path := filepath.Join(tr.dir, rec.Name)
	require.InDelta(t, 6.0, requirePlayable(t, path), 0.1)

	f, err := os.Open(path)
	require.NoError(t, err)
	defer f.Close()
	st, err := f.Stat()
	require.NoError(t, err)
	s, err := scanFile(f, st.Size())
	require.NoError(t, err)
	require.True(t, s.finished)
	require.Len(t, s.frags, 3, "6 s of 2 s GOPs")
	for i, fr := range s.frags {
		v := fr.track(videoTrackID)
		require.NotNil(t, v, "fragment %d has video", i)
		require.LessOrEqual(t, v.duration, uint64(2*videoTimescale), "fragment %d lasts at most 2 s", i)
		require.True(t, v.sync, "fragment %d starts with a keyframe", i)
	}
	// The reserved room holds free space, then one sidx per track ending
	// where the first fragment starts.
	room := make([]byte, s.firstMoofAt-s.layout.reserveStart)
	_, err = f.ReadAt(room, s.layout.reserveStart)
	require.NoError(t, err)
	var boxes []string
	require.NoError(t, children(room, 0, int64(len(room)), func(typ string, body, _ int64) error {
		if typ == "sidx" {
			typ += strconv.Itoa(int(binary.BigEndian.Uint32(room[body+4:])))
		}
		boxes = append(boxes, typ)
		return nil
	}))
	require.Equal(t, []string{"free", "sidx1", "sidx2"}, boxes)
}

// TestRecordSegments: a session longer than record.segment is cut into
// parts at keyframes, all of one session, each playable, together as long
// as the session.
func TestRecordSegments(t *testing.T) {
	m := clip(t, 7, 30, 48000)
	tr := startRecorder(t, Config{Segment: 2 * time.Second}, 0)
	sess, err := tr.ch.Publish(relay.PublisherInfo{Protocol: "rtmp"}, m.tracks())
	require.NoError(t, err)
	feed(sess, m, 0, 0)
	sess.Close()
	list := tr.waitFiles(t, 4) // 7 s in 2 s parts
	total := 0.0
	for i, rec := range list {
		require.Equal(t, list[0].Session, rec.Session)
		require.Equal(t, i+1, rec.Part)
		require.True(t, rec.Complete)
		if i > 0 {
			require.Equal(t, "bourg_"+rec.Session+"_"+strconv.Itoa(i+1)+".mp4", rec.Name)
		}
		d := requirePlayable(t, filepath.Join(tr.dir, rec.Name))
		if i < 3 {
			require.InDelta(t, 2.0, d, 0.1, rec.Name)
		}
		total += rec.Duration
	}
	require.InDelta(t, 7.0, total, 0.1)
	requireMetric(t, tr.reg, "seance_recording_files_total", 4)
}

// TestRecordSessionsAndAudioChange: a publisher that comes back within the
// grace period continues the session in the same file, unless its audio
// format differs (a new file of the same session); a new session gets
// a new id.
func TestRecordSessionsAndAudioChange(t *testing.T) {
	a := clip(t, 3, 30, 44100)
	b := clip(t, 3, 30, 48000)
	tr := startRecorder(t, Config{}, time.Minute)
	info := relay.PublisherInfo{Protocol: "rtmp"}

	sess, err := tr.ch.Publish(info, a.tracks())
	require.NoError(t, err)
	feed(sess, a, 0, 0)
	sess.Close() // interrupted: the grace period runs
	sess, err = tr.ch.Publish(info, a.tracks())
	require.NoError(t, err)
	feed(sess, a, 0, 0)
	sess.Close()
	sess, err = tr.ch.Publish(info, b.tracks()) // 48 kHz now
	require.NoError(t, err)
	feed(sess, b, 0, 0)
	require.Eventually(t, func() bool {
		list, err := tr.Recordings()
		return err == nil && len(list) == 2 && list[1].InProgress
	}, 5*time.Second, 10*time.Millisecond)
	tr.ch.Kick() // interrupted, then gone for good:
	tr.ch.SetGrace(0)
	sess, err = tr.ch.Publish(info, a.tracks())
	require.NoError(t, err)
	sess.Close() // session ended: no frame, no file
	tr.waitFiles(t, 2)
	sess, err = tr.ch.Publish(info, a.tracks())
	require.NoError(t, err)
	feed(sess, a, 0, 0)
	sess.Close()
	list := tr.waitFiles(t, 3)
	second, first := list[0], list[1:]
	require.NotEqual(t, first[0].Session, second.Session, "a new session has a new id")
	require.Equal(t, first[0].Session, first[1].Session)
	require.Equal(t, []int{1, 2}, []int{first[0].Part, first[1].Part})
	require.InDelta(t, 6.0, first[0].Duration, 0.1, "the interruption continued the file")
	require.InDelta(t, 3.0, first[1].Duration, 0.1, "48 kHz audio starts a new file")
	require.InDelta(t, 3.0, second.Duration, 0.1)
	for _, rec := range list {
		requirePlayable(t, filepath.Join(tr.dir, rec.Name))
	}
	out, err := exec.Command("ffprobe", "-v", "error", "-select_streams", "a", "-show_entries", "stream=sample_rate",
		"-of", "csv=p=0", filepath.Join(tr.dir, first[1].Name)).Output()
	require.NoError(t, err)
	require.Equal(t, "48000", strings.TrimSpace(string(out)))
}
