// Package procstat reads what seance measures of its helper processes
// (Chromium for meeting captures, ffmpeg for renditions) in /proc: their
// parent and CPU time (proc(5)).
package procstat

import (
	"bytes"
	"encoding/binary"
	"errors"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Stat is what seance reads of one process in /proc/<pid>/stat.
type Stat struct {
	PID, PPID int
	// CPU is the process's user + system time since it started.
	CPU time.Duration
}

// Parse parses /proc/<pid>/stat (proc(5)); tick is the unit of its CPU
// times (ClockTick). The command name, field 2, is in parentheses and may
// itself hold spaces and parentheses: the fields after it start after the
// last ')'.
func Parse(b []byte, tick time.Duration) (Stat, error) {
	open, end := bytes.IndexByte(b, '('), bytes.LastIndexByte(b, ')')
	if open < 1 || end < open {
		return Stat{}, errors.New("bad /proc stat line")
	}
	pid, err := strconv.Atoi(string(bytes.TrimSpace(b[:open])))
	if err != nil {
		return Stat{}, errors.New("bad /proc stat pid")
	}
	f := strings.Fields(string(b[end+1:]))
	// f[0] is field 3 (state): ppid is field 4, utime 14, stime 15.
	if len(f) < 13 {
		return Stat{}, errors.New("short /proc stat line")
	}
	ppid, err1 := strconv.Atoi(f[1])
	utime, err2 := strconv.ParseUint(f[11], 10, 63)
	stime, err3 := strconv.ParseUint(f[12], 10, 63)
	if err1 != nil || err2 != nil || err3 != nil {
		return Stat{}, errors.New("bad /proc stat numbers")
	}
	return Stat{PID: pid, PPID: ppid, CPU: time.Duration(utime+stime) * tick}, nil
}

// Read reads the stat of one process.
func Read(pid int) (Stat, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return Stat{}, err
	}
	return Parse(b, ClockTick())
}

var (
	tickOnce sync.Once
	tick     time.Duration
)

// ClockTick is the unit of /proc CPU times: 1/AT_CLKTCK (from the aux
// vector the kernel gave this process), 10 ms when it cannot be read.
func ClockTick() time.Duration {
	tickOnce.Do(func() {
		tick = 10 * time.Millisecond
		b, err := os.ReadFile("/proc/self/auxv")
		if err != nil {
			return
		}
		const atClkTck = 17
		for i := 0; i+16 <= len(b); i += 16 {
			key, val := binary.NativeEndian.Uint64(b[i:]), binary.NativeEndian.Uint64(b[i+8:])
			if key == atClkTck && val > 0 && val <= 10000 {
				tick = time.Second / time.Duration(val)
				return
			}
		}
	})
	return tick
}
