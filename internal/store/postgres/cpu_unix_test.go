//go:build unix

package postgres_test

import (
	"syscall"
	"time"
)

// processCPU is the CPU time (user + system) this process used so far
// (as internal/audit's benchmarks measure it; the database server's own
// CPU is not included).
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
