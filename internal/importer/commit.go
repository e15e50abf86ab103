package importer

import (
	"context"
	"fmt"
	"time"

	"github.com/fhirguard/fhirguard/internal/store"
)

// committer restores input order and writes batches.
type committer struct {
	opts  Options
	ctx   context.Context
	start time.Time
	stats Stats

	next     int
	pending  map[int]*item
	batch    []*item
	lastTick time.Time
}

func (c *committer) run(in <-chan *item) error {
	c.pending = make(map[int]*item)
	c.lastTick = time.Now()
	for it := range in {
		c.pending[it.seq] = it
		for {
			it, ok := c.pending[c.next]
			if !ok {
				break
			}
			delete(c.pending, c.next)
			c.next++
			if err := c.accept(it); err != nil {
				return err
			}
		}
	}
	if err := c.flush(); err != nil {
		return err
	}
	c.progress(true)
	return nil
}

func (c *committer) accept(it *item) error {
	c.stats.Read++
	if it.err != nil {
		c.fail(it, it.err)
		return nil
	}
	c.batch = append(c.batch, it)
	if len(c.batch) >= c.opts.BatchSize {
		return c.flush()
	}
	return nil
}

func (c *committer) fail(it *item, err error) {
	c.stats.Failed++
	fmt.Fprintf(c.opts.Errors, "%s: %s\n", it.where(), message(err))
}

// flush writes the batch in one transaction. If that fails for a reason
// other than the context, the batch is retried one resource per transaction
// so that only the offending resources are rejected.
func (c *committer) flush() error {
	if len(c.batch) == 0 {
		return nil
	}
	batch := c.batch
	c.batch = c.batch[:0:0]
	err := c.opts.Store.Tx(c.ctx, func(tx store.Tx) error {
		for _, it := range batch {
			if _, err := tx.Put(c.ctx, it.w); err != nil {
				return fmt.Errorf("%s: %w", it.where(), err)
			}
		}
		return nil
	})
	if err == nil {
		c.stats.Imported += len(batch)
		c.progress(false)
		return nil
	}
	if c.ctx.Err() != nil {
		return fmt.Errorf("importer: %w", c.ctx.Err())
	}
	c.opts.Logger.Warn("import batch failed; retrying one by one", "err", err)
	for _, it := range batch {
		err := c.opts.Store.Tx(c.ctx, func(tx store.Tx) error {
			_, err := tx.Put(c.ctx, it.w)
			return err
		})
		if err != nil {
			if c.ctx.Err() != nil {
				return fmt.Errorf("importer: %w", c.ctx.Err())
			}
			c.fail(it, fmt.Errorf("not stored: %w", err))
			continue
		}
		c.stats.Imported++
	}
	c.progress(false)
	return nil
}

func (c *committer) progress(final bool) {
	if c.opts.Progress == nil {
		return
	}
	every := c.opts.ProgressEvery
	if every <= 0 {
		every = 2 * time.Second
	}
	now := time.Now()
	if !final && now.Sub(c.lastTick) < every {
		return
	}
	c.lastTick = now
	el := now.Sub(c.start)
	rate := float64(c.stats.Imported) / max(el.Seconds(), 1e-9)
	state := "importing"
	if final {
		state = "done"
	}
	fmt.Fprintf(c.opts.Progress, "import: %s: %d read, %d imported, %d failed, %.0f resources/s, %s\n",
		state, c.stats.Read, c.stats.Imported, c.stats.Failed, rate, el.Round(time.Millisecond))
}
