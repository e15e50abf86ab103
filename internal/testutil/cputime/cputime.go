// Package cputime measures the CPU time of the test process, for
// benchmarks and load tests that report CPU per operation. It is test
// support only: production code does not import it.
package cputime

import "time"

// Process returns the CPU time (user + system) the process has used so
// far. It is 0 where the platform gives no measure (see Available) or
// when the system call fails; callers report differences of two calls.
func Process() time.Duration { return process() }

// Available reports whether Process measures on this platform.
func Available() bool { return available }
