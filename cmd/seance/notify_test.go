package main

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestSystemdNotify runs the real binary as systemd runs a Type=notify
// unit: NOTIFY_SOCKET names a datagram socket the test listens on. seance
// must say READY=1 once its listeners answer, RELOADING=1 then READY=1
// around a SIGHUP reload, and STOPPING=1 on SIGTERM.
func TestSystemdNotify(t *testing.T) {
	dir := t.TempDir()
	bin := filepath.Join(dir, "seance")
	build := exec.Command("go", "build", "-o", bin, ".")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	out, err := build.CombinedOutput()
	require.NoError(t, err, string(out))

	for _, tc := range []struct {
		name   string
		socket string
	}{
		{"path", filepath.Join(dir, "notify.sock")},
		// systemd gives an abstract socket to services in some set-ups.
		{"abstract", fmt.Sprintf("@seance-notify-test-%d", os.Getpid())},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sock, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: tc.socket, Net: "unixgram"})
			require.NoError(t, err)
			defer sock.Close()
			msgs := make(chan string, 16)
			go func() {
				defer close(msgs)
				buf := make([]byte, 4096)
				for {
					n, err := sock.Read(buf)
					if err != nil {
						return
					}
					msgs <- string(buf[:n])
				}
			}()
			next := func() string {
				t.Helper()
				select {
				case m := <-msgs:
					return m
				case <-time.After(15 * time.Second):
					t.Fatal("no message from seance on NOTIFY_SOCKET within 15 s")
					return ""
				}
			}

			admin := freePort(t)
			cfg := filepath.Join(dir, "seance.yaml")
			require.NoError(t, os.WriteFile(cfg, fmt.Appendf(nil, `
public: {listen: "127.0.0.1:0"}
admin: {listen: "127.0.0.1:%d"}
rtmp: {listen: "127.0.0.1:0"}
rtsp: {listen: ""}
webrtc: {udp_port: 0}
channels:
  - {name: demo, ingest: {demo: true}}
`, admin), 0o600))
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			var logs lockedBuffer
			cmd := exec.CommandContext(ctx, bin, "-config", cfg)
			cmd.Env = append(os.Environ(), "NOTIFY_SOCKET="+tc.socket)
			cmd.Stdout, cmd.Stderr = &logs, &logs
			require.NoError(t, cmd.Start())
			done := make(chan error, 1)
			go func() { done <- cmd.Wait() }()

			require.Equal(t, "READY=1", next(), logs.String())
			// READY=1 means the listeners are bound: the admin server
			// answers at once, without retrying.
			resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/healthz", admin))
			require.NoError(t, err, "READY=1 was sent before the admin listener was up")
			resp.Body.Close()
			require.Equal(t, http.StatusOK, resp.StatusCode)

			require.NoError(t, cmd.Process.Signal(syscall.SIGHUP))
			require.Equal(t, "RELOADING=1", next(), logs.String())
			require.Equal(t, "READY=1", next(), logs.String())

			require.NoError(t, cmd.Process.Signal(syscall.SIGTERM))
			require.Equal(t, "STOPPING=1", next(), logs.String())
			select {
			case err := <-done:
				require.NoError(t, err, logs.String())
			case <-time.After(10 * time.Second):
				t.Fatalf("seance did not stop within 10 s\n%s", logs.String())
			}
			require.NotContains(t, logs.String(), "could not tell systemd")
		})
	}
}

// TestSystemdNotifierFromEnv checks what NOTIFY_SOCKET values mean and
// that the variable is not left for the processes seance starts.
func TestSystemdNotifierFromEnv(t *testing.T) {
	for _, tc := range []struct {
		name, env string
		want      string // "" : no notifier
	}{
		{"unset", "", ""},
		{"path", "/run/systemd/notify", "/run/systemd/notify"},
		{"abstract", "@/org/freedesktop/systemd1/notify/123", "@/org/freedesktop/systemd1/notify/123"},
		{"vsock", "vsock:2:1234", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv("NOTIFY_SOCKET", tc.env)
			n := sdNotifierFromEnv()
			_, still := os.LookupEnv("NOTIFY_SOCKET")
			require.False(t, still, "NOTIFY_SOCKET must be removed from the environment")
			if tc.want == "" {
				require.Nil(t, n)
				require.NoError(t, n.notify(sdReady), "a nil notifier does nothing")
				return
			}
			require.NotNil(t, n)
			require.Equal(t, tc.want, n.addr.Name)
		})
	}
}
