package record

import (
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/seance-relay/seance/relay"
)

// TestRecordWriteErrors: a full disk and a write failing mid-file are
// reported in the status and the metrics, the live stream does not wait,
// and recording resumes in a new file at a keyframe; the file cut by the
// error is finished later and plays.
func TestRecordWriteErrors(t *testing.T) {
	m := clip(t, 12, 30, 44100)
	var mu sync.Mutex
	calls := 0
	var second *os.File
	var atSecond Status
	var tr *testRecorder
	cfg := Config{
		backoff: 20 * time.Millisecond,
		create: func(path string) (*os.File, error) {
			mu.Lock()
			defer mu.Unlock()
			calls++
			switch calls {
			case 1:
				// A real ENOSPC from the kernel: every write to
				// /dev/full fails with "no space left on device".
				return os.OpenFile("/dev/full", os.O_WRONLY, 0)
			case 2:
				atSecond = tr.Status()
				f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o644)
				second = f
				return f, err
			}
			return os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o644)
		},
	}
	tr = startRecorder(t, cfg, 0)
	sess, err := tr.ch.Publish(relay.PublisherInfo{Protocol: "rtmp"}, m.tracks())
	require.NoError(t, err)
	fed := make(chan struct{})
	go func() {
		defer close(fed)
		feed(sess, m, 0, time.Millisecond)
	}()
	// Once the second file holds a fragment, its descriptor goes away
	// under the writer: the next write fails.
	require.Eventually(t, func() bool {
		mu.Lock()
		defer mu.Unlock()
		st := tr.Status()
		return calls == 2 && st.State == StateRecording && st.Bytes > 200<<10/2
	}, 10*time.Second, time.Millisecond)
	mu.Lock()
	require.NoError(t, second.Close())
	mu.Unlock()
	<-fed
	sess.Close()
	list := tr.waitFiles(t, 2) // the file cut by the error and the one after it

	require.Equal(t, StateFailed, atSecond.State, "after the full disk")
	require.Contains(t, atSecond.LastError, "no space left on device")
	require.EqualValues(t, 1, atSecond.Errors)
	st := tr.Status()
	require.EqualValues(t, 2, st.Errors)
	require.Contains(t, st.LastError, "file already closed")
	require.False(t, st.LastErrorAt.IsZero())
	requireMetric(t, tr.reg, "seance_recording_errors_total", 2)
	requireMetric(t, tr.reg, "seance_recording_up", 0)
	mu.Lock()
	require.GreaterOrEqual(t, calls, 3, "a new file after the write error")
	mu.Unlock()

	total := 0.0
	for _, rec := range list {
		require.True(t, rec.Complete, rec.Name)
		require.Equal(t, list[0].Session, rec.Session)
		requirePlayable(t, filepath.Join(tr.dir, rec.Name))
		total += rec.Duration
	}
	require.Greater(t, total, 6.0, "most of the 12 s are recorded")
	requireMetric(t, tr.reg, "seance_recording_files_repaired_total", 1)
}
