package record

import (
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/seance-relay/seance/relay"
)

// finishedDummy writes a file that ends with an mfra, so that maintenance
// takes it for a finished recording, of size bytes, last written at mod.
func finishedDummy(t *testing.T, path string, size int, mod time.Time) {
	t.Helper()
	mfra := buildMfra(nil, nil)
	b := make([]byte, size-len(mfra))
	require.NoError(t, os.WriteFile(path, append(b, mfra...), 0o644))
	require.NoError(t, os.Chtimes(path, mod, mod))
}

func names(t *testing.T, dir string) []string {
	t.Helper()
	des, err := os.ReadDir(dir)
	require.NoError(t, err)
	var out []string
	for _, de := range des {
		out = append(out, de.Name())
	}
	slices.Sort(out)
	return out
}

// TestRetention: at start, files older than max_age go, then the oldest
// while the channel's files total more than max_size; other files in the
// directory are left alone.
func TestRetention(t *testing.T) {
	root := t.TempDir()
	dir := filepath.Join(root, "bourg")
	require.NoError(t, os.MkdirAll(dir, 0o755))
	now := time.Now()
	for _, f := range []struct {
		name string
		age  time.Duration
	}{
		{"bourg_2026-01-01T10-00-00Z.mp4", 10 * 24 * time.Hour},
		{"bourg_2026-01-02T10-00-00Z.mp4", 5 * 24 * time.Hour},
		{"bourg_2026-01-02T10-00-00Z_2.mp4", 5 * 24 * time.Hour},
		{"bourg_2026-01-03T10-00-00Z.mp4", time.Hour},
		{"bourg-old_2026-01-01T10-00-00Z.mp4", 30 * 24 * time.Hour}, // not this channel's
		{"notes.txt", 30 * 24 * time.Hour},
	} {
		finishedDummy(t, filepath.Join(dir, f.name), 1000, now.Add(-f.age))
	}
	tr := startRecorder(t, Config{Dir: root, MaxAge: 7 * 24 * time.Hour, MaxSize: 2500}, 0)
	require.Equal(t, []string{
		"bourg-old_2026-01-01T10-00-00Z.mp4",
		"bourg_2026-01-02T10-00-00Z_2.mp4",
		"bourg_2026-01-03T10-00-00Z.mp4",
		"notes.txt",
	}, names(t, dir))
	requireMetric(t, tr.reg, "seance_recording_files_deleted_total", 2)
	fams, err := tr.reg.Gather()
	require.NoError(t, err)
	for _, f := range fams {
		if f.GetName() == "seance_recording_files_deleted_total" {
			for _, m := range f.GetMetric() {
				for _, l := range m.GetLabel() {
					if l.GetName() == "reason" && (l.GetValue() == "max_age" || l.GetValue() == "max_size") {
						require.Equal(t, 1.0, m.GetCounter().GetValue(), l.GetValue())
					}
				}
			}
		}
	}
}

// TestRetentionSparesTheCurrentFile: with a limit smaller than the file
// being written, periodic retention deletes every other file of the
// channel but never that one; once finished, it goes too.
func TestRetentionSparesTheCurrentFile(t *testing.T) {
	m := clip(t, 4, 30, 44100)
	root := t.TempDir()
	dir := filepath.Join(root, "bourg")
	require.NoError(t, os.MkdirAll(dir, 0o755))
	finishedDummy(t, filepath.Join(dir, "bourg_2026-01-01T10-00-00Z.mp4"), 1000, time.Now())
	tr := startRecorder(t, Config{Dir: root, MaxSize: 1, maintainEvery: 10 * time.Millisecond}, 0)
	sess, err := tr.ch.Publish(relay.PublisherInfo{Protocol: "rtmp"}, m.tracks())
	require.NoError(t, err)
	fed := make(chan struct{})
	go func() {
		defer close(fed)
		feed(sess, m, 0, time.Millisecond)
	}()
	require.Eventually(t, func() bool {
		list, err := tr.Recordings()
		return err == nil && len(list) == 1 && list[0].InProgress && list[0].Size > 1
	}, 10*time.Second, 5*time.Millisecond, "only the file being written is left")
	<-fed
	list, err := tr.Recordings()
	require.NoError(t, err)
	require.Len(t, list, 1)
	require.True(t, list[0].InProgress, "the file being written stays, whatever its size")
	sess.Close()
	tr.waitFiles(t, 0) // finished, it is over the limit too
	require.Empty(t, names(t, dir))
}
