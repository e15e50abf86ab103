//go:build !unix

package cputime

import "time"

const available = false

// process is not measured on this platform.
func process() time.Duration { return 0 }
