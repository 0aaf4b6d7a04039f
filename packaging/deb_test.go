//go:build debtest

// The package's tests build the .deb (nfpm: minutes when cold) and run
// Chromium (30 s to show it cannot run under memory-deny-write-execute),
// so they run in `make test-deb` (part of `make test`), not `make unit`.

package packaging

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/seance-relay/seance/ingest/meeting/meetingtest"
)

func TestMain(m *testing.M) {
	if os.Getenv(mdweHelper) != "" {
		execWithMDWE()
	}
	goleak.VerifyTestMain(m)
}

// mdweHelper makes the test binary a wrapper: it turns on
// memory-deny-write-execute (PR_SET_MDWE, what systemd's
// MemoryDenyWriteExecute=yes sets on kernels ≥ 6.3) and execs its
// arguments (os.Args[1:], read before the testing flags).
const mdweHelper = "SEANCE_TEST_MDWE_EXEC"

func execWithMDWE() {
	const prSetMDWE, mdweRefuseExecGain = 65, 1
	if _, _, errno := syscall.RawSyscall6(syscall.SYS_PRCTL, prSetMDWE, mdweRefuseExecGain, 0, 0, 0, 0); errno != 0 {
		fmt.Fprintln(os.Stderr, "prctl(PR_SET_MDWE):", errno)
		os.Exit(3)
	}
	args := os.Args[1:]
	err := syscall.Exec(args[0], args, os.Environ())
	fmt.Fprintln(os.Stderr, "exec:", err)
	os.Exit(3)
}

// TestChromiumNeedsWriteExecute shows why seance.service keeps
// MemoryDenyWriteExecute=no: Chromium runs a page's JavaScript without it
// and fails with it.
func TestChromiumNeedsWriteExecute(t *testing.T) {
	unit, err := os.ReadFile("seance.service")
	require.NoError(t, err)
	require.Regexp(t, `(?m)^MemoryDenyWriteExecute=no$`, string(unit))
	page := "data:text/html,<script>let s=0;for(let i=0;i<1e6;i++)s+=i;document.title='sum'+s</script>"
	// Under MDWE the renderer dies at each start and the browser never
	// answers: a page it could not render in 30 s (it renders this one in
	// about 2 s otherwise) is a failure.
	chromium := func(t *testing.T, mdwe bool) (string, error) {
		args := []string{"/usr/bin/chromium", "--headless=new", "--no-sandbox", "--disable-gpu",
			"--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-first-run",
			"--user-data-dir=" + t.TempDir(), "--dump-dom", page}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		var cmd *exec.Cmd
		if mdwe {
			self, err := os.Executable()
			require.NoError(t, err)
			cmd = exec.CommandContext(ctx, self, args...)
			cmd.Env = append(os.Environ(), mdweHelper+"=1")
		} else {
			cmd = exec.CommandContext(ctx, args[0], args[1:]...)
		}
		out, err := cmd.Output()
		return string(out), err
	}
	out, err := chromium(t, false)
	require.NoError(t, err)
	require.Contains(t, out, "<title>sum499999500000</title>")
	out, err = chromium(t, true)
	var ee *exec.ExitError
	require.ErrorAs(t, err, &ee, "Chromium must fail under memory-deny-write-execute: %s", out)
	require.NotEqual(t, 3, ee.ExitCode(), "the wrapper could not set PR_SET_MDWE: %s", ee.Stderr)
	require.NotContains(t, out, "sum499999500000")
	stderr := string(ee.Stderr)
	require.Contains(t, stderr, "Failed to reserve virtual memory for CodeRange", "V8 is what fails")
	t.Logf("with PR_SET_MDWE Chromium fails (%v): …%s", err, stderr[max(0, len(stderr)-600):])
}

// throwawayRoot is a Debian root the package is installed into: the
// host's /usr seen through an overlay (so Chromium, ffmpeg and the shell
// are there and nothing lands in the host's /usr), copies of the /etc files
// a Debian system with Chromium has, an empty dpkg database. Commands run
// in a mount namespace of their own, gone with them.
type throwawayRoot struct {
	dir, root, upper, work string
}

func newThrowawayRoot(t *testing.T) *throwawayRoot {
	t.Helper()
	dir := t.TempDir()
	r := &throwawayRoot{dir: dir, root: filepath.Join(dir, "root"), upper: filepath.Join(dir, "upper"), work: filepath.Join(dir, "work")}
	for _, d := range []string{r.upper, r.work, "usr", "etc", "var/lib/dpkg/info", "var/lib/dpkg/updates", "tmp", "run", "dev", "proc", "home"} {
		if !filepath.IsAbs(d) {
			d = filepath.Join(r.root, d)
		}
		require.NoError(t, os.MkdirAll(d, 0o755))
	}
	require.NoError(t, os.Chmod(filepath.Join(r.root, "tmp"), 0o1777))
	for _, f := range []string{"var/lib/dpkg/status", "var/lib/dpkg/available"} {
		require.NoError(t, os.WriteFile(filepath.Join(r.root, f), nil, 0o644))
	}
	for _, d := range []string{"bin", "lib", "lib64", "sbin"} {
		if fi, err := os.Lstat("/" + d); err == nil && fi.Mode()&os.ModeSymlink != 0 {
			require.NoError(t, os.Symlink("usr/"+d, filepath.Join(r.root, d)))
		} else {
			t.Fatalf("/%s is not a symlink into /usr: the throwaway root needs a merged-/usr host (Debian ≥ 12)", d)
		}
	}
	out, err := exec.Command("cp", "-a", "/etc/passwd", "/etc/group", "/etc/shadow", "/etc/gshadow", "/etc/login.defs",
		"/etc/nsswitch.conf", "/etc/ld.so.cache", "/etc/fonts", "/etc/chromium.d", "/etc/hosts",
		filepath.Join(r.root, "etc")+"/").CombinedOutput()
	require.NoError(t, err, string(out))
	if _, err := os.Stat("/etc/chromium"); err == nil {
		out, err := exec.Command("cp", "-a", "/etc/chromium", filepath.Join(r.root, "etc")+"/").CombinedOutput()
		require.NoError(t, err, string(out))
	}
	return r
}

// command returns sh running script in a new mount namespace where the
// root is ready ($R names it), with the host's /dev and a /proc for
// chroot (not for systemd-nspawn, which makes its own).
func (r *throwawayRoot) command(ctx context.Context, script string) *exec.Cmd {
	return r.commandDev(ctx, script, true)
}

func (r *throwawayRoot) commandDev(ctx context.Context, script string, dev bool) *exec.Cmd {
	setup := fmt.Sprintf(`set -e
mount -t overlay overlay -o lowerdir=/usr,upperdir=%[2]s,workdir=%[3]s %[1]s/usr
`, r.root, r.upper, r.work)
	if dev {
		setup += fmt.Sprintf("mount --bind /dev %[1]s/dev\nmount -t proc proc %[1]s/proc\n", r.root)
	}
	cmd := exec.CommandContext(ctx, "unshare", "--mount", "--propagation", "private", "sh", "-c", setup+script)
	cmd.Env = append(os.Environ(), "R="+r.root)
	return cmd
}

// run runs script in the root's namespace and returns its output.
func (r *throwawayRoot) run(t *testing.T, script string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	out, err := r.command(ctx, script).CombinedOutput()
	require.NoError(t, err, "%s\n%s", script, out)
	return string(out)
}

// buildDeb builds the amd64 package as `make deb` does.
func buildDeb(t *testing.T) string {
	t.Helper()
	out, err := exec.Command("./build-deb.sh", "-o", t.TempDir(), "amd64").Output()
	var stderr string
	if ee, ok := err.(*exec.ExitError); ok {
		stderr = string(ee.Stderr)
	}
	require.NoError(t, err, stderr)
	deb := strings.TrimSpace(string(out))
	require.Regexp(t, `/seance_[0-9][^_]*_amd64\.deb$`, deb)
	return deb
}

func dpkgDeb(t *testing.T, args ...string) string {
	t.Helper()
	out, err := exec.Command("dpkg-deb", args...).CombinedOutput()
	require.NoError(t, err, string(out))
	return string(out)
}

// TestDeb builds the package, inspects it, installs it into a throwaway
// root, checks the unit with systemd-analyze, runs seance init and
// check-config there, and runs seance from that root under the unit's
// restrictions with a meeting capture (Chromium) going live.
func TestDeb(t *testing.T) {
	deb := buildDeb(t)
	fi, err := os.Stat(deb)
	require.NoError(t, err)
	t.Logf("%s: %d bytes", filepath.Base(deb), fi.Size())

	t.Run("control", func(t *testing.T) {
		fields := map[string]string{}
		for _, f := range []string{"Package", "Version", "Architecture", "Recommends", "Depends", "Pre-Depends"} {
			out, _ := exec.Command("dpkg-deb", "-f", deb, f).Output()
			fields[f] = strings.TrimSpace(string(out))
		}
		require.Equal(t, "seance", fields["Package"])
		require.Equal(t, "amd64", fields["Architecture"])
		require.Regexp(t, `^[0-9]`, fields["Version"], "a Debian version starts with a digit")
		require.Equal(t, "chromium, ffmpeg, fonts-dejavu-core", fields["Recommends"])
		require.Empty(t, fields["Depends"], "the binary is static: nothing is required")
		require.Empty(t, fields["Pre-Depends"])
		info := dpkgDeb(t, "-I", deb)
		for _, script := range []string{"postinst", "prerm", "postrm"} {
			require.Contains(t, info, script)
		}
		tmp := t.TempDir()
		dpkgDeb(t, "-e", deb, tmp)
		conffiles, err := os.ReadFile(filepath.Join(tmp, "conffiles"))
		require.NoError(t, err)
		require.ElementsMatch(t, []string{"/etc/seance/seance.yaml", "/etc/seance/seance.env"}, strings.Fields(string(conffiles)))
	})

	t.Run("contents", func(t *testing.T) {
		// dpkg-deb -c: "-rw-r----- root/seance 373 2026-12-08 01:39 ./etc/seance/seance.env"
		got := map[string][2]string{} // path → mode, owner/group
		sc := bufio.NewScanner(strings.NewReader(dpkgDeb(t, "-c", deb)))
		for sc.Scan() {
			f := strings.Fields(sc.Text())
			require.GreaterOrEqual(t, len(f), 6, sc.Text())
			got[strings.TrimPrefix(strings.TrimSuffix(f[5], "/"), ".")] = [2]string{f[0], f[1]}
		}
		for path, want := range map[string][2]string{
			"/usr/bin/seance":                        {"-rwxr-xr-x", "root/root"},
			"/etc/seance/seance.yaml":                {"-rw-r--r--", "root/root"},
			"/etc/seance/seance.env":                 {"-rw-r-----", "root/seance"},
			"/var/lib/seance":                        {"drwxr-x---", "seance/seance"},
			"/usr/lib/systemd/system/seance.service": {"-rw-r--r--", "root/root"},
			"/usr/lib/sysusers.d/seance.conf":        {"-rw-r--r--", "root/root"},
			"/usr/share/doc/seance/guide.md":         {"-rw-r--r--", "root/root"},
			"/usr/share/doc/seance/low-ports.conf":   {"-rw-r--r--", "root/root"},
		} {
			require.Equal(t, want, got[path], path)
		}
		// The binary is static: nothing for the dynamic loader.
		tmp := t.TempDir()
		dpkgDeb(t, "-x", deb, tmp)
		out, _ := exec.Command("file", "-b", filepath.Join(tmp, "usr/bin/seance")).Output()
		if len(out) > 0 { // file(1) is optional: ldd below decides
			require.Contains(t, string(out), "statically linked", string(out))
		}
		ldd, _ := exec.Command("ldd", filepath.Join(tmp, "usr/bin/seance")).CombinedOutput()
		require.Contains(t, string(ldd), "not a dynamic executable")
	})

	r := newThrowawayRoot(t)
	out := r.run(t, `dpkg --root="$R" --force-not-root --log=/dev/null -i `+deb)
	require.Contains(t, out, "Setting up seance")
	require.Contains(t, out, "seance init", "postinst says what to do next")
	passwd, err := os.ReadFile(filepath.Join(r.root, "etc/passwd"))
	require.NoError(t, err)
	m := regexp.MustCompile(`(?m)^seance:x:(\d+):(\d+):[^:]*:/var/lib/seance:/usr/sbin/nologin$`).FindStringSubmatch(string(passwd))
	require.NotNil(t, m, "postinst creates the seance system user:\n%s", passwd)
	uid, _ := strconv.Atoi(m[1])
	gid, _ := strconv.Atoi(m[2])
	require.Less(t, uid, 1000, "a system user")
	owner := func(path string) (int, int, os.FileMode) {
		fi, err := os.Stat(filepath.Join(r.root, path))
		require.NoError(t, err)
		st := fi.Sys().(*syscall.Stat_t)
		return int(st.Uid), int(st.Gid), fi.Mode().Perm()
	}
	u, g, mode := owner("etc/seance/seance.env")
	require.Equal(t, []int{0, gid}, []int{u, g}, "seance.env is root:seance")
	require.Equal(t, os.FileMode(0o640), mode)
	u, g, mode = owner("var/lib/seance")
	require.Equal(t, []int{uid, gid}, []int{u, g}, "/var/lib/seance belongs to seance")
	require.Equal(t, os.FileMode(0o750), mode)
	_, err = os.Stat(filepath.Join(r.upper, "bin/seance"))
	require.NoError(t, err, "the binary went to the root's /usr, not the host's")

	t.Run("systemd-analyze", func(t *testing.T) {
		out := r.run(t, `systemd-analyze verify --root="$R" seance.service 2>&1`)
		require.Empty(t, strings.TrimSpace(out), "systemd-analyze verify complains")
		// The check catches a broken unit (so that an empty answer means something).
		bad := r.command(context.Background(), `sed 's/^ProtectHome=yes/ProtectHome=maybe/; s/^Type=notify/Type=notfy/' "$R/usr/lib/systemd/system/seance.service" >"$R/etc/systemd-bad.service"
mkdir -p "$R/etc/systemd/system" && mv "$R/etc/systemd-bad.service" "$R/etc/systemd/system/seance-bad.service"
systemd-analyze verify --root="$R" seance-bad.service 2>&1`)
		badOut, _ := bad.CombinedOutput()
		require.Contains(t, string(badOut), "maybe", "verify must report the broken unit: %s", badOut)
		require.NoError(t, os.Remove(filepath.Join(r.root, "etc/systemd/system/seance-bad.service")))

		sec := r.run(t, `systemd-analyze security --offline=yes --root="$R" seance.service 2>&1`)
		m := regexp.MustCompile(`Overall exposure level for seance\.service: ([0-9.]+)`).FindStringSubmatch(sec)
		require.NotNil(t, m, sec)
		score, err := strconv.ParseFloat(m[1], 64)
		require.NoError(t, err)
		t.Logf("systemd-analyze security --offline=yes: exposure %.1f", score)
		require.LessOrEqual(t, score, 2.5, "the unit's exposure grew: %s", sec)
	})

	t.Run("init and check-config", func(t *testing.T) {
		out := r.run(t, `chroot "$R" seance init -channel bourg -title "Conseil municipal de Bourg" </dev/null
chroot "$R" seance check-config -config /etc/seance/seance.yaml -env-file /etc/seance/seance.env`)
		require.Contains(t, out, "rtmp://")
		require.Contains(t, out, "/etc/seance/seance.yaml: OK (1 channel(s))")
		require.Contains(t, out, "mode 0640 root:seance")
		u, g, mode := owner("etc/seance/seance.env")
		require.Equal(t, []int{0, gid, 0o640}, []int{u, g, int(mode)})
		env, err := os.ReadFile(filepath.Join(r.root, "etc/seance/seance.env"))
		require.NoError(t, err)
		for _, line := range strings.Split(string(env), "\n") {
			if k, v, ok := strings.Cut(line, "="); ok && !strings.HasPrefix(k, "#") {
				require.NotContains(t, out, v, "%s printed", k)
			}
		}
		// A second init without -force leaves the operator's files alone.
		second := r.command(context.Background(), `chroot "$R" seance init -channel other </dev/null`)
		secondOut, err := second.CombinedOutput()
		require.Error(t, err)
		require.Contains(t, string(secondOut), "already exists")
	})

	t.Run("runs under the unit's restrictions with a meeting capture", func(t *testing.T) {
		runHardened(t, r, uid, gid)
	})
}

// syscallGroups parses `systemd-analyze syscall-filter`: each group and
// what it lists (system calls and other groups).
func syscallGroups(t *testing.T) map[string][]string {
	t.Helper()
	out, err := exec.Command("systemd-analyze", "syscall-filter").Output()
	require.NoError(t, err)
	groups := map[string][]string{}
	var cur string
	for _, line := range strings.Split(string(out), "\n") {
		s := strings.TrimSpace(line)
		switch {
		case strings.HasPrefix(line, "@"):
			cur = s
		case s == "" || strings.HasPrefix(s, "#"):
		case cur != "":
			groups[cur] = append(groups[cur], s)
		}
	}
	return groups
}

func expandSyscalls(groups map[string][]string, name string, into map[string]bool) {
	for _, s := range groups[name] {
		if strings.HasPrefix(s, "@") {
			expandSyscalls(groups, s, into)
		} else {
			into[s] = true
		}
	}
}

// runHardened runs the installed seance from the throwaway root in
// systemd-nspawn with what of seance.service nspawn can apply — the seance
// user, NoNewPrivileges, no capabilities, a system call allow list no
// wider than the unit's SystemCallFilter= (nspawn's own list minus
// every call the unit's list leaves out), a read-only root with only
// /var/lib/seance writable (ProtectSystem=strict, StateDirectory), a
// private /tmp and /dev, no /home — and checks that a channel joining a
// (stand-in) Jitsi meeting in Chromium goes live.
func runHardened(t *testing.T, r *throwawayRoot, uid, gid int) {
	// The allow list is the unit's own SystemCallFilter= lines, expanded.
	unit, err := os.ReadFile("seance.service")
	require.NoError(t, err)
	groups := syscallGroups(t)
	allowed, known := map[string]bool{}, map[string]bool{}
	for _, m := range regexp.MustCompile(`(?m)^SystemCallFilter=(.*)$`).FindAllStringSubmatch(string(unit), -1) {
		for _, name := range strings.Fields(m[1]) {
			require.False(t, strings.HasPrefix(name, "~"), "the test expects allow lists only")
			if strings.HasPrefix(name, "@") {
				expandSyscalls(groups, name, allowed)
			} else {
				allowed[name] = true
			}
		}
	}
	expandSyscalls(groups, "@known", known)
	require.Greater(t, len(allowed), 300)
	var deny []string
	for s := range known {
		if !allowed[s] {
			deny = append(deny, s)
		}
	}
	slices.Sort(deny)
	require.Contains(t, deny, "mount", "@system-service leaves mount out")
	require.Contains(t, deny, "reboot")

	meet := meetingtest.New("unused-bbb-secret")
	t.Cleanup(meet.Close)
	admin := freePort(t)
	cfg := fmt.Sprintf(`
public: {listen: "127.0.0.1:0"}
admin: {listen: "127.0.0.1:%d", token: "${SEANCE_ADMIN_TOKEN}"}
rtmp: {listen: "127.0.0.1:0"}
rtsp: {listen: ""}
webrtc: {udp_port: 0}
channels:
  - name: conseil
    ingest:
      meeting:
        jitsi: {url: %q}
    record: {enabled: true, dir: /var/lib/seance/records}
`, admin, meet.JitsiURL("ConseilMunicipal"))
	require.NoError(t, os.WriteFile(filepath.Join(r.root, "etc/seance/hardened.yaml"), []byte(cfg), 0o644))
	token := "hardened-test-token"
	// The state directory, outside the root: nspawn's --read-only would
	// cover a bind from inside it too.
	state := filepath.Join(r.dir, "state")
	require.NoError(t, os.Mkdir(state, 0o750))
	require.NoError(t, os.Chown(state, uid, gid))

	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cmd := r.commandDev(ctx, fmt.Sprintf(`exec systemd-nspawn --register=no --keep-unit --quiet --as-pid2 --timezone=off --resolv-conf=off \
  --directory="$R" --read-only --bind=%s:/var/lib/seance --tmpfs=/tmp:mode=1777 --tmpfs=/home:mode=000 --tmpfs=/root:mode=000 \
  --user=seance --no-new-privileges=yes --drop-capability=all --system-call-filter=%q \
  --setenv=SEANCE_ADMIN_TOKEN=%s --setenv=HOME=/var/lib/seance --setenv=NOTIFY_SOCKET= \
  /usr/bin/seance -config /etc/seance/hardened.yaml`, state, "~"+strings.Join(deny, " "), token), false)
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
	cmd.WaitDelay = 15 * time.Second
	var logs lockedBuffer
	cmd.Stdout, cmd.Stderr = &logs, &logs
	require.NoError(t, cmd.Start())
	exited := make(chan struct{})
	var waitErr error
	go func() { waitErr = cmd.Wait(); close(exited) }()
	defer func() {
		cancel()
		<-exited
	}()

	type status struct {
		Health struct {
			State string `json:"state"`
		} `json:"health"`
		Meeting struct {
			State string `json:"state"`
		} `json:"meeting"`
		Recording struct {
			State     string `json:"state"`
			LastError string `json:"last_error"`
		} `json:"recording"`
	}
	var last status
	get := func() bool {
		req, _ := http.NewRequest(http.MethodGet, fmt.Sprintf("http://127.0.0.1:%d/api/v1/channels/conseil", admin), nil)
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		var s status
		if json.NewDecoder(resp.Body).Decode(&s) != nil {
			return false
		}
		last = s
		return s.Health.State == "live" && s.Meeting.State == "capturing"
	}
	// Polled like require.Eventually, but failing at once if seance exits.
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	deadline := time.After(60 * time.Second)
	for !get() {
		select {
		case <-exited:
			t.Fatalf("seance in nspawn exited: %v\n%s", waitErr, &logs)
		case <-deadline:
			t.Fatalf("the meeting capture must go live under the restrictions: %+v\n%s", &last, &logs)
		case <-tick.C:
		}
	}
	t.Logf("meeting capture live under nspawn: %+v", last)
	require.NotContains(t, logs.String(), "sandbox is not available", "Chromium keeps its sandbox under the unit's restrictions")
	t.Logf("Chromium ran with its sandbox as seance, NoNewPrivileges, no capabilities, %d system calls denied", len(deny))
	require.Eventually(t, func() bool {
		ents, err := os.ReadDir(filepath.Join(state, "records/conseil"))
		return err == nil && len(ents) > 0
	}, 20*time.Second, 200*time.Millisecond, "recording into /var/lib/seance, the one writable place: %+v", &last)

	// systemctl stop sends SIGTERM to seance (the main process), not to
	// a container manager.
	pid := descendant(t, cmd.Process.Pid, "seance")
	require.NoError(t, syscall.Kill(pid, syscall.SIGTERM))
	select {
	case <-exited:
		require.NoError(t, waitErr, logs.String())
		require.Contains(t, logs.String(), `"message":"stopped"`, "seance stopped cleanly")
	case <-time.After(20 * time.Second):
		t.Fatalf("seance in nspawn did not stop within 20 s\n%s", &logs)
	}
}

func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	port := ln.Addr().(*net.TCPAddr).Port
	require.NoError(t, ln.Close())
	return port
}

// lockedBuffer collects a child process's output safely.
type lockedBuffer struct {
	mu sync.Mutex
	b  strings.Builder
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

// descendant returns the PID of the process named comm among pid's
// descendants.
func descendant(t *testing.T, pid int, comm string) int {
	t.Helper()
	ents, err := os.ReadDir("/proc")
	require.NoError(t, err)
	parent, name := map[int]int{}, map[int]string{}
	for _, e := range ents {
		p, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		stat, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		open, end := strings.IndexByte(string(stat), '('), strings.LastIndexByte(string(stat), ')')
		f := strings.Fields(string(stat[end+1:]))
		if open < 0 || end < 0 || len(f) < 2 {
			continue
		}
		name[p] = string(stat[open+1 : end])
		parent[p], _ = strconv.Atoi(f[1])
	}
	for p, n := range name {
		if n != comm {
			continue
		}
		for a := parent[p]; a > 1; a = parent[a] {
			if a == pid {
				return p
			}
		}
	}
	t.Fatalf("no %s process under %d", comm, pid)
	return 0
}
