package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"log/slog"
	"net/url"
	"time"
)

// Checkpoints of the resource database run on a connection of their own,
// not on the writer: SQLite's automatic checkpoint runs inside the commit
// that fills the WAL past its threshold, so that commit — and every write
// queued behind the single writer — waits for the copy and its fsync. The
// checkpointer copies what the WAL holds (PASSIVE: alongside the writer
// and the readers) every checkpointPoll. The WAL only starts over from its
// beginning when a write transaction begins with everything in it copied,
// which a steady stream of writes may never give the checkpointer; so the
// writer keeps an automatic checkpoint too, at writerCheckpoint frames,
// which then finds nearly everything copied already (cheap) and lets the
// WAL start over.
const (
	checkpointPoll   = 50 * time.Millisecond
	writerCheckpoint = 16384 // frames (64 MiB of 4 KiB pages)
)

type checkpointer struct {
	db   *sql.DB
	log  *slog.Logger
	quit chan struct{}
	done chan struct{}
}

func newCheckpointer(path string, f files, log *slog.Logger) (*checkpointer, error) {
	q := url.Values{"_pragma": {"busy_timeout(" + f.busy + ")"}}
	db, err := sql.Open("sqlite", path+"?"+q.Encode())
	if err != nil {
		return nil, fmt.Errorf("sqlite: open the checkpointer of %s: %w", path, err)
	}
	db.SetMaxOpenConns(1)
	db.SetMaxIdleConns(1)
	db.SetConnMaxLifetime(0)
	db.SetConnMaxIdleTime(0)
	c := &checkpointer{db: db, log: log, quit: make(chan struct{}), done: make(chan struct{})}
	go c.loop()
	return c, nil
}

func (c *checkpointer) loop() {
	defer close(c.done)
	t := time.NewTicker(checkpointPoll)
	defer t.Stop()
	failing := false
	for {
		select {
		case <-c.quit:
			return
		case <-t.C:
		}
		// PASSIVE copies what no reader still needs; it answers with
		// the WAL's frames and how many are in the database file.
		var busy, frames, done int
		err := c.db.QueryRowContext(context.Background(), "PRAGMA wal_checkpoint(PASSIVE)").Scan(&busy, &frames, &done)
		switch {
		case err != nil && !failing:
			c.log.Warn("WAL checkpoints are failing (the writer's own checkpoint still bounds the WAL)", "err", err)
		case err == nil && failing:
			c.log.Info("WAL checkpoints work again")
		}
		failing = err != nil
	}
}

// stop ends the loop and closes the connection.
func (c *checkpointer) stop() {
	if c == nil {
		return
	}
	select {
	case <-c.quit:
		return
	default:
	}
	close(c.quit)
	<-c.done
	if err := c.db.Close(); err != nil {
		c.log.Debug("close the checkpointer", "err", err)
	}
}
