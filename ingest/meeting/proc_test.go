package meeting

import (
	"os"
	"os/exec"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestParseStat(t *testing.T) {
	for _, tc := range []struct {
		name, line string
		want       procStat
		err        bool
	}{
		{"chromium", "4242 (chromium) S 4200 4242 4242 0 -1 4194560 9000 0 0 0 150 50 0 0 20 0 30 0 12345 1000000 5000 18446744073709551615",
			procStat{pid: 4242, ppid: 4200, cpu: 2 * time.Second}, false},
		{"name with spaces and parens", "17 (Web Content (x)) R 1 17 17 0 -1 0 0 0 0 0 3 4 0 0 20 0 1 0 1 1 1",
			procStat{pid: 17, ppid: 1, cpu: 70 * time.Millisecond}, false},
		{"short", "1 (init) S 0 1", procStat{}, true},
		{"garbage", "hello", procStat{}, true},
		{"bad numbers", "1 (x) S a 1 1 0 -1 0 0 0 0 0 x y 0 0", procStat{}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseStat([]byte(tc.line), 10*time.Millisecond)
			if tc.err {
				require.Error(t, err)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tc.want, got)
		})
	}
}

func TestParsePSS(t *testing.T) {
	pss, ok := parsePSS([]byte("55d0c0000000-7ffd5a3c5000 ---p 00000000 00:00 0 [rollup]\nRss: 151220 kB\nPss: 43001 kB\nPss_Anon: 20000 kB\n"))
	require.True(t, ok)
	require.Equal(t, int64(43001<<10), pss)
	_, ok = parsePSS([]byte("Rss: 1 kB\n"))
	require.False(t, ok)
	_, ok = parsePSS([]byte("Pss: lots\n"))
	require.False(t, ok)
}

// TestProcessTree measures a real tree (sh and its sleep children) and
// kills it whole, the child that left the group included.
func TestProcessTree(t *testing.T) {
	require.Equal(t, 10*time.Millisecond, clockTick(), "Linux's USER_HZ")
	cmd := exec.Command("sh", "-c", "sleep 60 & setsid sleep 60 & i=0; while [ $i -lt 300000 ]; do i=$((i+1)); done; wait")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	require.NoError(t, cmd.Start())
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		killTree(cmd.Process.Pid)
		<-done
	})
	root := cmd.Process.Pid
	var u treeUsage
	require.Eventually(t, func() bool {
		u = readTree(root)
		return u.procs == 3
	}, 5*time.Second, 10*time.Millisecond, "sh and two sleeps")
	require.Positive(t, u.pss)
	require.Less(t, u.pss, int64(100<<20))
	time.Sleep(300 * time.Millisecond) // let the loop burn some CPU
	later := readTree(root)
	require.Positive(t, cpuDelta(u, later), "the shell's loop uses CPU")

	pids := descendants(root)
	killTree(root)
	<-done
	require.Eventually(t, func() bool {
		for _, p := range pids {
			if err := syscall.Kill(p.pid, 0); err == nil {
				if b, err := os.ReadFile("/proc/" + itoa(int64(p.pid)) + "/stat"); err == nil {
					if st, err := parseStat(b, clockTick()); err == nil && st.ppid != 1 && st.ppid != root {
						continue // the pid was reused
					}
					// A zombie waiting for its reaper is dead enough.
					if len(b) > 0 && containsState(b, 'Z') {
						continue
					}
				}
				return false
			}
		}
		return true
	}, 5*time.Second, 10*time.Millisecond, "every process of the tree is gone, the one in its own session too")
}

func containsState(stat []byte, state byte) bool {
	for i := len(stat) - 1; i > 0; i-- {
		if stat[i] == ')' {
			return i+2 < len(stat) && stat[i+2] == state
		}
	}
	return false
}
