package importer

import (
	"context"
	"fmt"
	"time"

	"github.com/fhirguard/fhirguard/internal/store"
)

// committer restores input order and writes batches. One batch is written
// in the background while the next one fills: the workers keep parsing,
// validating and preparing during the store's transaction instead of
// waiting for it (the store's single writer and the preparation run on
// different cores). Batches are written one at a time, in input order.
type committer struct {
	opts  Options
	ctx   context.Context
	start time.Time
	stats Stats

	next     int
	pending  map[int]*item
	batch    []*item
	lastTick time.Time
	// held are the rejected items read since the batch in flight was
	// handed off: reported after its outcome, so the error lines keep
	// input order.
	held []failure
	// inflight delivers the outcome of the batch being written (nil: none).
	inflight chan batchResult
}

// failure is one rejected item and why.
type failure struct {
	it  *item
	err error
}

// batchResult is the outcome of writing one batch.
type batchResult struct {
	imported int
	failed   []failure
	err      error // stops the import
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
	if err := c.wait(); err != nil {
		return err
	}
	c.progress(true)
	return nil
}

func (c *committer) accept(it *item) error {
	c.stats.Read++
	if it.err != nil {
		if c.inflight == nil {
			c.fail(it, it.err)
		} else {
			c.held = append(c.held, failure{it, it.err})
		}
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

// flush waits for the batch in flight, then starts writing the current
// one in the background.
func (c *committer) flush() error {
	if len(c.batch) == 0 {
		return nil
	}
	if err := c.wait(); err != nil {
		return err
	}
	batch := c.batch
	c.batch = c.batch[:0:0]
	done := make(chan batchResult, 1)
	c.inflight = done
	go func() { done <- c.write(batch) }()
	return nil
}

// wait applies the outcome of the batch in flight (if any) and reports the
// rejections held meanwhile.
func (c *committer) wait() error {
	if c.inflight != nil {
		r := <-c.inflight
		c.inflight = nil
		c.stats.Imported += r.imported
		for _, f := range r.failed {
			c.fail(f.it, f.err)
		}
		if r.err != nil {
			return r.err
		}
	}
	for _, f := range c.held {
		c.fail(f.it, f.err)
	}
	clear(c.held)
	c.held = c.held[:0]
	c.progress(false)
	return nil
}

// write stores the batch in one transaction. If that fails for a reason
// other than the context, the batch is retried one resource per transaction
// so that only the offending resources are rejected. It runs on its own
// goroutine and touches no committer state but the options.
func (c *committer) write(batch []*item) batchResult {
	err := c.opts.Store.Tx(c.ctx, func(tx store.Tx) error {
		for _, it := range batch {
			if _, err := tx.Put(c.ctx, it.w); err != nil {
				return fmt.Errorf("%s: %w", it.where(), err)
			}
		}
		return nil
	})
	if err == nil {
		return batchResult{imported: len(batch)}
	}
	if c.ctx.Err() != nil {
		return batchResult{err: fmt.Errorf("importer: %w", c.ctx.Err())}
	}
	c.opts.Logger.Warn("import batch failed; retrying one by one", "err", err)
	var r batchResult
	for _, it := range batch {
		err := c.opts.Store.Tx(c.ctx, func(tx store.Tx) error {
			_, err := tx.Put(c.ctx, it.w)
			return err
		})
		if err != nil {
			if c.ctx.Err() != nil {
				r.err = fmt.Errorf("importer: %w", c.ctx.Err())
				return r
			}
			r.failed = append(r.failed, failure{it, fmt.Errorf("not stored: %w", err)})
			continue
		}
		r.imported++
	}
	return r
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
