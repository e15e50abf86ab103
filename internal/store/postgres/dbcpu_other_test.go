//go:build !linux

package postgres_test

import "time"

// dbServerCPU is not measured off Linux.
func dbServerCPU() map[int]time.Duration { return nil }
