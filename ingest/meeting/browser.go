package meeting

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// windowChrome is the height headless Chromium's window takes beyond the
// page's viewport: a 1280x807 window shows a 1280x720 page.
const windowChrome = 87

// browserNames are the executables looked up in PATH, Debian's first.
var browserNames = []string{"chromium", "chromium-browser", "google-chrome-stable", "google-chrome"}

// findBrowser returns the Chromium executable: path when set, else the
// first of browserNames in PATH.
func findBrowser(path string) (string, error) {
	if path != "" {
		p, err := exec.LookPath(path)
		if err != nil {
			return "", fmt.Errorf("%w (%s: %w)", ErrBrowserNotFound, path, errors.Unwrap(err))
		}
		return p, nil
	}
	for _, name := range browserNames {
		if p, err := exec.LookPath(name); err == nil {
			return p, nil
		}
	}
	return "", ErrBrowserNotFound
}

// browserArgs are Chromium's flags for a capture. The meeting's address
// is not among them (a command line is visible to every local user): it
// is opened over the DevTools pipe.
func browserArgs(profile, ext string, width, height int, sandbox bool) []string {
	args := []string{
		"--headless=new",
		"--disable-gpu",
		"--disable-background-networking",
		"--disable-component-update",
		"--disable-sync",
		"--disable-default-apps",
		"--disable-features=Translate,MediaRouter,OptimizationHints",
		"--no-first-run",
		"--no-default-browser-check",
		"--disable-infobars",
		"--hide-scrollbars",
		"--force-device-scale-factor=1",
		"--lang=fr-FR",
		"--user-data-dir=" + profile,
		// The capture extension, and nothing else. Without the allowlist,
		// chrome.tabCapture refuses to capture a tab the user never
		// clicked the extension on.
		"--load-extension=" + ext,
		"--disable-extensions-except=" + ext,
		"--allowlisted-extension-id=" + extensionID,
		// Meetings play remote audio without a click; never --mute-audio,
		// which silences the capture too.
		"--autoplay-policy=no-user-gesture-required",
		// Join screens that ask for a microphone or camera get fake ones
		// (permissions are granted over DevTools); the bot joins muted
		// with its camera off, so nothing is ever sent. Not
		// --use-fake-ui-for-media-stream: it breaks tab capture.
		"--use-fake-device-for-media-stream",
		// The capture publishes to seance on this machine: offer loopback
		// candidates too, so that it connects even when seance's own
		// candidates are public addresses (webrtc.nat_ips).
		"--allow-loopback-in-peer-connection",
		"--window-size=" + strconv.Itoa(width) + "," + strconv.Itoa(height+windowChrome),
		"--remote-debugging-pipe",
	}
	if !sandbox {
		args = append(args, "--no-sandbox")
	}
	return append(args, "about:blank")
}

// tailBuffer keeps the last bytes written to it (Chromium's stderr, shown
// when it fails).
type tailBuffer struct {
	mu  sync.Mutex
	buf []byte
	max int
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.buf = append(t.buf, p...)
	if len(t.buf) > t.max {
		t.buf = append(t.buf[:0], t.buf[len(t.buf)-t.max:]...)
	}
	return len(p), nil
}

func (t *tailBuffer) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return string(t.buf)
}

// browser is one Chromium process tree, driven over its DevTools pipe.
type browser struct {
	cmd     *exec.Cmd
	cdp     *cdp
	profile string
	stderr  *tailBuffer
	exited  chan struct{} // closed once the process is reaped
	exitErr error         // valid once exited is closed
	closeMu sync.Once
}

// launchBrowser starts Chromium with a fresh profile under dir, in its own
// process group. If the browser's DevTools pipe closes (seance exits, even
// killed), Chromium exits with its whole tree.
func launchBrowser(path, dir, ext string, width, height int, sandbox bool) (*browser, error) {
	profile, err := os.MkdirTemp(dir, "profile-")
	if err != nil {
		return nil, fmt.Errorf("browser profile: %w", err)
	}
	// fd 3 carries commands to Chromium, fd 4 its answers.
	cmdR, cmdW, err := os.Pipe()
	if err != nil {
		os.RemoveAll(profile)
		return nil, err
	}
	resR, resW, err := os.Pipe()
	if err != nil {
		cmdR.Close()
		cmdW.Close()
		os.RemoveAll(profile)
		return nil, err
	}
	b := &browser{profile: profile, stderr: &tailBuffer{max: 8 << 10}, exited: make(chan struct{})}
	b.cmd = exec.Command(path, browserArgs(profile, ext, width, height, sandbox)...)
	b.cmd.ExtraFiles = []*os.File{cmdR, resW}
	b.cmd.Stderr = b.stderr
	b.cmd.Dir = profile
	b.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	b.cmd.Env = append(os.Environ(), "HOME="+profile) // nothing written to seance's home
	err = b.cmd.Start()
	cmdR.Close()
	resW.Close()
	if err != nil {
		cmdW.Close()
		resR.Close()
		os.RemoveAll(profile)
		return nil, fmt.Errorf("starting %s: %w", filepath.Base(path), err)
	}
	go func() {
		b.exitErr = b.cmd.Wait()
		close(b.exited)
	}()
	b.cdp = newCDP(resR, cmdW)
	return b, nil
}

// pid is the browser's main process.
func (b *browser) pid() int { return b.cmd.Process.Pid }

// close kills the whole process tree, waits for it, and deletes the
// profile. It is idempotent.
func (b *browser) close() {
	b.closeMu.Do(func() {
		killTree(b.pid())
		select {
		case <-b.exited:
		case <-time.After(5 * time.Second):
		}
		b.cdp.Close()
		// Children reparented to init may hold the profile a moment more;
		// they were killed above, so a retry is enough.
		for range 3 {
			if os.RemoveAll(b.profile) == nil {
				break
			}
			time.Sleep(50 * time.Millisecond)
		}
	})
}

// exitReason describes why the browser exited, once it did.
func (b *browser) exitReason() string {
	select {
	case <-b.exited:
	default:
		return "still running"
	}
	var ee *exec.ExitError
	if errors.As(b.exitErr, &ee) {
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			return "killed by signal " + ws.Signal().String()
		}
		return "exit status " + strconv.Itoa(ee.ExitCode())
	}
	if b.exitErr != nil {
		return b.exitErr.Error()
	}
	return "exit status 0"
}

// noSandbox reports whether Chromium's output says it could not start its
// sandbox (no user namespaces in a container, running as root).
func noSandbox(stderr string) bool {
	return strings.Contains(stderr, "No usable sandbox") ||
		strings.Contains(stderr, "Running as root without --no-sandbox")
}

// waitContext waits for d or ctx.
func waitContext(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
