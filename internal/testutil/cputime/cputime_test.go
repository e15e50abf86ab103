package cputime

import (
	"crypto/sha256"
	"testing"
	"time"
)

// TestProcessCountsWork: burning CPU for a while advances Process by a
// comparable amount (never backwards).
func TestProcessCountsWork(t *testing.T) {
	if !Available() {
		if Process() != 0 {
			t.Fatal("Process measures on a platform said to have no measure")
		}
		t.Skip("no process CPU time on this platform")
	}
	before := Process()
	if before <= 0 {
		t.Fatalf("Process() = %v after the test binary started", before)
	}
	sum := sha256.Sum256(nil)
	for start := time.Now(); time.Since(start) < 200*time.Millisecond; {
		sum = sha256.Sum256(sum[:])
	}
	used := Process() - before
	// On a busy machine this goroutine gets less than the wall time, but
	// not nothing; getrusage has at most a few ms of granularity.
	if used < 10*time.Millisecond || used > 10*time.Second {
		t.Fatalf("200 ms of hashing used %v of CPU (%x)", used, sum[:2])
	}
}
