package harness

import (
	"os"
	"strconv"
	"strings"
	"time"
)

// PostgresCPU returns the CPU time (user and system) the shared throwaway
// cluster of PostgresURL has used so far: the postmaster, the backends and
// other children it has reaped, and its live children, read from /proc. It
// returns false when it cannot tell: no cluster started yet, DATABASE_URL
// in use, or no /proc. Differences of two readings give the server's CPU
// over a measured phase, at the kernel's tick resolution (10 ms).
func PostgresCPU() (time.Duration, bool) {
	p := shared.pg
	if p == nil {
		return 0, false
	}
	p.mu.Lock()
	var pid int
	if p.cmd != nil && p.cmd.Process != nil {
		pid = p.cmd.Process.Pid
	}
	p.mu.Unlock()
	if pid == 0 {
		return 0, false
	}
	f, ok := procStat(strconv.Itoa(pid))
	if !ok {
		return 0, false
	}
	// utime, stime, cutime, cstime: the postmaster and its reaped children.
	ticks := f[11] + f[12] + f[13] + f[14]
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return 0, false
	}
	for _, e := range entries {
		name := e.Name()
		if name[0] < '0' || name[0] > '9' || name == strconv.Itoa(pid) {
			continue
		}
		if c, ok := procStat(name); ok && c[1] == int64(pid) {
			ticks += c[11] + c[12]
		}
	}
	return time.Duration(ticks) * 10 * time.Millisecond, true // USER_HZ is 100 on Linux
}

// procStat returns the numeric fields of /proc/<pid>/stat after the command
// name, from the state (index 0; not a number, left 0) on: index 1 is the
// parent's pid, 11–14 utime, stime, cutime and cstime in ticks.
func procStat(pid string) ([]int64, bool) {
	b, err := os.ReadFile("/proc/" + pid + "/stat")
	if err != nil {
		return nil, false
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return nil, false
	}
	fields := strings.Fields(s[i+1:])
	if len(fields) < 15 {
		return nil, false
	}
	out := make([]int64, 15)
	for j := 1; j < 15; j++ {
		out[j], _ = strconv.ParseInt(fields[j], 10, 64)
	}
	return out, true
}
