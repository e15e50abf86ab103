//go:build linux

package postgres_test

import (
	"bytes"
	"os"
	"path/filepath"
	"strconv"
	"time"
)

// clockTick is USER_HZ, the unit of /proc/PID/stat's CPU times (100 on
// every Linux architecture Go supports).
const clockTick = 10 * time.Millisecond

// dbServerCPU returns the CPU time (user + system) of each process named
// "postgres" on this machine, by pid: the database server's side of a
// benchmark when it runs here (nil when none does).
func dbServerCPU() map[int]time.Duration {
	dirs, _ := filepath.Glob("/proc/[0-9]*")
	out := map[int]time.Duration{}
	for _, d := range dirs {
		b, err := os.ReadFile(filepath.Join(d, "stat"))
		if err != nil {
			continue
		}
		// pid (comm) state ppid … utime stime (fields 14 and 15).
		open, end := bytes.IndexByte(b, '('), bytes.LastIndexByte(b, ')')
		if open < 0 || end < open || string(b[open+1:end]) != "postgres" {
			continue
		}
		f := bytes.Fields(b[end+1:])
		if len(f) < 13 {
			continue
		}
		ut, err1 := strconv.ParseInt(string(f[11]), 10, 64)
		st, err2 := strconv.ParseInt(string(f[12]), 10, 64)
		pid, err3 := strconv.Atoi(filepath.Base(d))
		if err1 != nil || err2 != nil || err3 != nil {
			continue
		}
		out[pid] = time.Duration(ut+st) * clockTick
	}
	if len(out) == 0 {
		return nil
	}
	return out
}
