package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// lockedBuffer collects a child process's output safely.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestSignalShutdown runs the real binary, lets the demo channel go live,
// and checks that SIGTERM and SIGINT stop it cleanly within 5 s.
func TestSignalShutdown(t *testing.T) {
	dir := t.TempDir()
	bin := filepath.Join(dir, "seance")
	build := exec.Command("go", "build", "-o", bin, ".")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	out, err := build.CombinedOutput()
	require.NoError(t, err, string(out))

	for _, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGINT} {
		t.Run(sig.String(), func(t *testing.T) {
			admin := freePort(t)
			cfg := filepath.Join(dir, "seance.yaml")
			require.NoError(t, os.WriteFile(cfg, fmt.Appendf(nil, `
public: {listen: "127.0.0.1:0"}
admin: {listen: "127.0.0.1:%d"}
rtmp: {listen: "127.0.0.1:0"}
rtsp: {listen: ""}
webrtc: {udp_port: 0, announce_loopback: true}
channels:
  - {name: demo, ingest: {demo: true}}
`, admin), 0o600))
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			var logs lockedBuffer
			cmd := exec.CommandContext(ctx, bin, "-config", cfg)
			cmd.Stdout, cmd.Stderr = &logs, &logs
			require.NoError(t, cmd.Start())
			done := make(chan error, 1)
			go func() { done <- cmd.Wait() }()

			url := fmt.Sprintf("http://127.0.0.1:%d/api/v1/channels/demo", admin)
			require.Eventually(t, func() bool {
				resp, err := http.Get(url)
				if err != nil {
					return false
				}
				defer resp.Body.Close()
				var b bytes.Buffer
				_, _ = b.ReadFrom(resp.Body)
				return strings.Contains(b.String(), `"state": "live"`)
			}, 10*time.Second, 50*time.Millisecond, logs.String())

			start := time.Now()
			require.NoError(t, cmd.Process.Signal(sig))
			select {
			case err := <-done:
				require.NoError(t, err, "seance must exit 0 on %v\n%s", sig, logs.String())
			case <-time.After(5 * time.Second):
				t.Fatalf("seance did not stop within 5 s of %v\n%s", sig, logs.String())
			}
			t.Logf("stopped %v after %v", sig, time.Since(start).Round(time.Millisecond))
			sc := bufio.NewScanner(strings.NewReader(logs.String()))
			var last string
			for sc.Scan() {
				last = sc.Text()
			}
			require.Contains(t, last, `"message":"stopped"`)
		})
	}
}

// TestSignalReload runs the real binary and reloads its config with
// SIGHUP: a channel added to the file goes live, a bad file is refused
// and the process keeps running.
func TestSignalReload(t *testing.T) {
	dir := t.TempDir()
	bin := filepath.Join(dir, "seance")
	build := exec.Command("go", "build", "-o", bin, ".")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	out, err := build.CombinedOutput()
	require.NoError(t, err, string(out))

	admin := freePort(t)
	cfg := filepath.Join(dir, "seance.yaml")
	head := fmt.Sprintf(`
public: {listen: "127.0.0.1:0"}
admin: {listen: "127.0.0.1:%d"}
rtmp: {listen: "127.0.0.1:0"}
rtsp: {listen: ""}
webrtc: {udp_port: 0, announce_loopback: true}
channels:
  - {name: demo, ingest: {demo: true}}
`, admin)
	require.NoError(t, os.WriteFile(cfg, []byte(head), 0o600))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var logs lockedBuffer
	cmd := exec.CommandContext(ctx, bin, "-config", cfg)
	cmd.Stdout, cmd.Stderr = &logs, &logs
	require.NoError(t, cmd.Start())
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	live := func(channel string) func() bool {
		return func() bool {
			resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/api/v1/channels/%s", admin, channel))
			if err != nil {
				return false
			}
			defer resp.Body.Close()
			var b bytes.Buffer
			_, _ = b.ReadFrom(resp.Body)
			return strings.Contains(b.String(), `"state": "live"`)
		}
	}
	require.Eventually(t, live("demo"), 10*time.Second, 50*time.Millisecond, logs.String())

	require.NoError(t, os.WriteFile(cfg, []byte(head+"  - {name: added, ingest: {demo: true}}\n"), 0o600))
	require.NoError(t, cmd.Process.Signal(syscall.SIGHUP))
	require.Eventually(t, live("added"), 10*time.Second, 50*time.Millisecond, logs.String())
	// The channel may go live before the reload's outcome is logged.
	require.Eventually(t, func() bool { return strings.Contains(logs.String(), `"added":["added"]`) },
		5*time.Second, 50*time.Millisecond, logs.String())

	require.NoError(t, os.WriteFile(cfg, []byte(head+"  - {name: added, ingest: {demo: true}, max_viewers: lots}\n"), 0o600))
	require.NoError(t, cmd.Process.Signal(syscall.SIGHUP))
	require.Eventually(t, func() bool { return strings.Contains(logs.String(), "config not reloaded") }, 10*time.Second, 50*time.Millisecond)
	require.Contains(t, logs.String(), "max_viewers")
	require.True(t, live("added")(), "the running config stays")

	require.NoError(t, cmd.Process.Signal(syscall.SIGTERM))
	select {
	case err := <-done:
		require.NoError(t, err, logs.String())
	case <-time.After(5 * time.Second):
		t.Fatalf("seance did not stop within 5 s\n%s", logs.String())
	}
}
