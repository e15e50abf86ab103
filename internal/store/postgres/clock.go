package postgres

import (
	"context"
	"fmt"
	"time"
)

// skewSamples is how many round trips ClockSkew measures; the shortest
// one bounds the error best.
const skewSamples = 3

// ClockSkew returns how far the database's clock is ahead of the injected
// clock (negative: behind): clock_timestamp() against the midpoint of the
// round trip that read it, from the shortest of a few round trips on one
// connection. The error of the estimate is at most half that round trip.
func (l *AuditLog) ClockSkew(ctx context.Context) (time.Duration, error) {
	if err := l.ready(); err != nil {
		return 0, err
	}
	conn, err := l.db.Conn(ctx)
	if err != nil {
		return 0, fmt.Errorf("postgres: clock skew: %w", err)
	}
	defer conn.Close()
	best := time.Duration(-1)
	var skew time.Duration
	for range skewSamples {
		var db time.Time
		t0 := l.clock.Now()
		if err := conn.QueryRowContext(ctx, `SELECT clock_timestamp()`).Scan(&db); err != nil {
			return 0, fmt.Errorf("postgres: clock skew: %w", err)
		}
		t1 := l.clock.Now()
		rtt := t1.Sub(t0)
		if best < 0 || rtt < best {
			best, skew = rtt, db.Sub(t0.Add(rtt/2))
		}
	}
	return skew, nil
}
