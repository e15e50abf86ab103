package postgres_test

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/fhirguard/fhirguard/internal/clock"
	"github.com/fhirguard/fhirguard/internal/store/postgres"
	"github.com/fhirguard/fhirguard/internal/store/postgres/pgtest"
)

// TestClockSkew measures the database clock against the injected clock:
// near zero against the system clock (the database runs on this
// machine), and the fake clock's offset, sign included, against a fake
// set 90 s behind or ahead.
func TestClockSkew(t *testing.T) {
	t.Parallel()
	dsn := pgtest.Schema(t)
	ctx := context.Background()
	tests := []struct {
		name   string
		offset time.Duration // of the injected clock from the system clock
	}{
		{name: "ok/system-clock"},
		{name: "ok/clock-behind", offset: -90 * time.Second},
		{name: "ok/clock-ahead", offset: 90 * time.Second},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var clk clock.Clock = clock.System{}
			if tc.offset != 0 {
				clk = offsetClock(tc.offset)
			}
			l, err := postgres.OpenAudit(ctx, dsn, postgres.Options{Clock: clk, Logger: slog.New(slog.DiscardHandler)})
			if err != nil {
				t.Fatal(err)
			}
			defer l.Close()
			skew, err := l.ClockSkew(ctx)
			if err != nil {
				t.Fatal(err)
			}
			// The database is ahead of a clock set behind.
			if d := skew + tc.offset; d < -500*time.Millisecond || d > 500*time.Millisecond {
				t.Fatalf("skew %v with the clock offset by %v", skew, tc.offset)
			}
			if err := l.Close(); err != nil {
				t.Fatal(err)
			}
			if _, err := l.ClockSkew(ctx); err == nil {
				t.Fatal("ClockSkew after Close")
			}
		})
	}
}

// offsetClock is the system clock moved by a fixed offset.
type offsetClock time.Duration

func (o offsetClock) Now() time.Time { return time.Now().UTC().Add(time.Duration(o)) }
