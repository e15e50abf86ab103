package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"net/http"
	"runtime/debug"
	"sync/atomic"

	"github.com/fhirguard/fhirguard/internal/fhir"
	"github.com/fhirguard/fhirguard/internal/store"
	"github.com/fhirguard/fhirguard/internal/store/sqlstore"

	sqlite3 "modernc.org/sqlite/lib"
)

// Job states.
const (
	jobQueued int32 = iota
	jobTaken
	jobAbandoned
)

// job is one Store.Tx call waiting for the writer.
type job struct {
	ctx   context.Context
	fn    func(tx store.Tx) error
	state atomic.Int32
	done  chan result // buffered 1
}

type result struct {
	err      error
	panicked any // non-nil: fn panicked; re-raised in the caller
	stack    []byte
}

// Tx queues fn for the group-commit writer and waits for its result. If ctx
// ends while fn is still queued, fn never runs and Tx returns ctx's error;
// once fn has started, Tx waits for the outcome (Put, Read and Delete
// return ctx's error as soon as ctx is done, so that is short).
//
// fn must not call s.Tx (the writer would wait for itself).
func (s *Store) Tx(ctx context.Context, fn func(tx store.Tx) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	j := &job{ctx: ctx, fn: fn, done: make(chan result, 1)}
	s.mu.RLock()
	if s.closed.Load() {
		s.mu.RUnlock()
		return store.ErrClosed
	}
	select {
	case s.jobs <- j:
		s.mu.RUnlock()
	case <-ctx.Done():
		s.mu.RUnlock()
		return ctx.Err()
	}
	var r result
	select {
	case r = <-j.done:
	case <-ctx.Done():
		if j.state.CompareAndSwap(jobQueued, jobAbandoned) {
			return ctx.Err()
		}
		r = <-j.done
	}
	if r.panicked != nil {
		panic(fmt.Sprintf("store transaction function panicked: %v\n%s", r.panicked, r.stack))
	}
	return r.err
}

// writeLoop is the single writer goroutine: it takes one queued job, then
// everything else already queued (up to maxBatch), and runs them as one
// group commit. While it commits (fsync), new jobs queue up for the next
// group, so the group size adapts to the load.
func (s *Store) writeLoop() {
	defer close(s.writerDone)
	batch := make([]*job, 0, s.maxBatch)
	for {
		j, ok := <-s.jobs
		if !ok {
			return
		}
		batch = append(batch[:0], j)
	fill:
		for len(batch) < s.maxBatch {
			select {
			case j, ok := <-s.jobs:
				if !ok {
					break fill
				}
				batch = append(batch, j)
			default:
				break fill
			}
		}
		s.runGroup(batch)
		clear(batch)
	}
}

// wctx is the context of writer statements. A caller's cancellation must
// not interrupt a statement (SQLite would roll back the whole group's
// transaction); Tx methods check the caller's ctx between statements.
func wctx(ctx context.Context) context.Context { return context.WithoutCancel(ctx) }

// writerRunner runs the writer's prepared statements (and, through dyn,
// the statements built at run time) without caller cancellation.
type writerRunner struct {
	p   *sqlstore.Prepared
	dyn sqlstore.DynConn
}

func (w writerRunner) ExecSQL(ctx context.Context, query string, args ...any) (sql.Result, error) {
	return w.dyn.ExecSQL(wctx(ctx), query, args...)
}

func (w writerRunner) QuerySQL(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	return w.dyn.QuerySQL(wctx(ctx), query, args...)
}

func (w writerRunner) Exec(ctx context.Context, q sqlstore.Query, args ...any) (sql.Result, error) {
	return w.p.Exec(wctx(ctx), q, args...)
}

func (w writerRunner) QueryRow(ctx context.Context, q sqlstore.Query, args ...any) *sql.Row {
	return w.p.QueryRow(wctx(ctx), q, args...)
}

func (w writerRunner) Query(ctx context.Context, q sqlstore.Query, args ...any) (*sql.Rows, error) {
	return w.p.Query(wctx(ctx), q, args...)
}

func (s *Store) exec(stmt string) error {
	_, err := s.wconn.ExecContext(context.Background(), stmt)
	return err
}

// runGroup runs the jobs in one transaction and delivers each its result.
func (s *Store) runGroup(batch []*job) {
	jobs := make([]*job, 0, len(batch))
	for _, j := range batch {
		if j.state.CompareAndSwap(jobQueued, jobTaken) {
			jobs = append(jobs, j)
		}
	}
	if len(jobs) == 0 {
		return
	}
	results, groupErr := s.attempt(jobs)
	if groupErr != nil && len(jobs) > 1 {
		// The transaction as a whole failed (commit error, or a statement
		// error that made SQLite roll everything back): nothing of it was
		// committed. Run each job alone so one bad job cannot fail the
		// others; fn may run more than once by contract.
		s.log.Warn("group commit failed, retrying each transaction alone", "txs", len(jobs), "err", groupErr)
		for _, j := range jobs {
			rs, err := s.attempt([]*job{j})
			if err != nil && rs[0].err == nil {
				rs[0].err = err
			}
			j.done <- rs[0]
		}
		return
	}
	for i, j := range jobs {
		if groupErr != nil && results[i].err == nil {
			results[i].err = groupErr
		}
		j.done <- results[i]
	}
}

// attempt runs jobs in one transaction, each in its own savepoint. It
// returns each job's own result and a non-nil error if the transaction
// itself failed (then nothing was committed).
func (s *Store) attempt(jobs []*job) ([]result, error) {
	s.batches.Add(1)
	s.txs.Add(int64(len(jobs)))
	results := make([]result, len(jobs))
	if err := s.exec("BEGIN IMMEDIATE"); err != nil {
		return results, busyErr(fmt.Errorf("store: begin write transaction: %w", err))
	}
	runner := writerRunner{p: s.wstmts, dyn: sqlstore.DynConn{Conn: s.wconn, Cache: s.wdyn}}
	for i, j := range jobs {
		if err := j.ctx.Err(); err != nil {
			results[i].err = err
			continue
		}
		if err := s.exec("SAVEPOINT tx"); err != nil {
			s.rollback()
			return results, fmt.Errorf("store: savepoint: %w", err)
		}
		results[i] = runFn(j, s.newTx(runner))
		if results[i].err != nil || results[i].panicked != nil {
			if err := s.exec("ROLLBACK TO tx"); err != nil {
				s.rollback()
				return results, fmt.Errorf("store: roll back failed transaction: %w", err)
			}
		}
		if err := s.exec("RELEASE tx"); err != nil {
			s.rollback()
			return results, fmt.Errorf("store: release savepoint: %w", err)
		}
	}
	if err := s.exec("COMMIT"); err != nil {
		s.rollback()
		return results, busyErr(fmt.Errorf("store: commit: %w", err))
	}
	return results, nil
}

func runFn(j *job, tx store.Tx) (r result) {
	defer func() {
		if p := recover(); p != nil {
			r = result{panicked: p, stack: debug.Stack()}
		}
	}()
	err := j.fn(tx)
	if f, ok := tx.(searchFlusher); ok && err == nil {
		err = f.FlushSearch(j.ctx) // the search rows the Tx buffered
	}
	return result{err: err}
}

// searchFlusher is the write transaction's buffer of search rows
// (sqlstore.Tx.FlushSearch).
type searchFlusher interface {
	FlushSearch(ctx context.Context) error
}

// rollback ends a failed transaction; SQLite may already have rolled it
// back, so an error here is expected and only logged at debug level.
func (s *Store) rollback() {
	if err := s.exec("ROLLBACK"); err != nil {
		s.log.Debug("rollback", "err", err)
	}
}

// busyErr turns "database is locked for longer than busy_timeout" (another
// process, e.g. an import, holding the write lock) into a transient error
// the client may retry (503); other errors are returned unchanged.
func busyErr(err error) error {
	if errCode(err)&0xff != sqlite3.SQLITE_BUSY {
		return err
	}
	return &fhir.Error{
		Code:   fhir.IssueTransient,
		Diag:   "the database is busy; retry the request later",
		Cause:  err,
		Header: http.Header{"Retry-After": {"1"}},
	}
}
