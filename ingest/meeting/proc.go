package meeting

import (
	"bufio"
	"bytes"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/seance-relay/seance/procstat"
)

// procStat is what seance reads of one process in /proc/<pid>/stat.
type procStat struct {
	pid, ppid int
	cpu       time.Duration // user + system time
}

// parseStat parses /proc/<pid>/stat (see procstat.Parse).
func parseStat(b []byte, tick time.Duration) (procStat, error) {
	st, err := procstat.Parse(b, tick)
	if err != nil {
		return procStat{}, err
	}
	return procStat{pid: st.PID, ppid: st.PPID, cpu: st.CPU}, nil
}

// allProcs reads the stat of every process.
func allProcs() []procStat {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	tick := clockTick()
	out := make([]procStat, 0, len(ents))
	for _, e := range ents {
		if e.Name()[0] < '0' || e.Name()[0] > '9' {
			continue
		}
		b, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue // gone meanwhile
		}
		if st, err := parseStat(b, tick); err == nil {
			out = append(out, st)
		}
	}
	return out
}

// descendants returns root and every process below it, with their stats.
func descendants(root int) []procStat {
	procs := allProcs()
	children := map[int][]int{}
	byPID := map[int]procStat{}
	for _, p := range procs {
		children[p.ppid] = append(children[p.ppid], p.pid)
		byPID[p.pid] = p
	}
	var out []procStat
	queue := []int{root}
	seen := map[int]bool{}
	for len(queue) > 0 {
		pid := queue[0]
		queue = queue[1:]
		if seen[pid] {
			continue
		}
		seen[pid] = true
		if p, ok := byPID[pid]; ok {
			out = append(out, p)
		}
		queue = append(queue, children[pid]...)
	}
	return out
}

// parsePSS returns the Pss line of /proc/<pid>/smaps_rollup, in bytes.
func parsePSS(b []byte) (int64, bool) {
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		line := sc.Bytes()
		if rest, ok := bytes.CutPrefix(line, []byte("Pss:")); ok {
			f := strings.Fields(string(rest))
			if len(f) == 2 && f[1] == "kB" {
				kb, err := strconv.ParseInt(f[0], 10, 64)
				if err == nil && kb >= 0 {
					return kb << 10, true
				}
			}
			return 0, false
		}
	}
	return 0, false
}

// treeUsage is the resource use of a process tree at one moment.
type treeUsage struct {
	procs int
	cpu   map[int]time.Duration // by pid, since each process started
	pss   int64                 // bytes: proportional set size, summed
}

// readTree measures root and its descendants: PSS counts shared pages
// (the browser's code, shared memory between its processes) once across
// the tree, unlike RSS.
func readTree(root int) treeUsage {
	u := treeUsage{cpu: map[int]time.Duration{}}
	for _, p := range descendants(root) {
		u.procs++
		u.cpu[p.pid] = p.cpu
		if b, err := os.ReadFile("/proc/" + strconv.Itoa(p.pid) + "/smaps_rollup"); err == nil {
			if pss, ok := parsePSS(b); ok {
				u.pss += pss
			}
		}
	}
	return u
}

// cpuDelta returns the CPU time the tree used between two readings: each
// process's increase, and all of a process that appeared since.
func cpuDelta(prev, cur treeUsage) time.Duration {
	var d time.Duration
	for pid, t := range cur.cpu {
		if before, ok := prev.cpu[pid]; ok && t >= before {
			d += t - before
		} else if !ok {
			d += t
		}
	}
	return d
}

// killTree kills a process group and any descendant of root that left it.
func killTree(root int) {
	pids := descendants(root)
	_ = syscall.Kill(-root, syscall.SIGKILL)
	for _, p := range pids {
		_ = syscall.Kill(p.pid, syscall.SIGKILL)
	}
}

// clockTick is the unit of /proc CPU times (see procstat.ClockTick).
func clockTick() time.Duration { return procstat.ClockTick() }
