package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"log/slog"
	"net/http"
	"runtime/debug"
	"sync"
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

// writer is the group-commit writer of the resource database: a single
// connection and the goroutine that runs every write transaction on it.
// (The audit database needs none: see Store.AuditTx.)
type writer struct {
	name     string // "resources" or "audit", for logs and errors
	conn     *sql.Conn
	log      *slog.Logger
	maxBatch int

	mu     sync.RWMutex // guards sending on jobs against closing it
	closed bool
	jobs   chan *job
	done   chan struct{}

	batches atomic.Int64
	txs     atomic.Int64
}

func newWriter(name string, conn *sql.Conn, log *slog.Logger, maxBatch int) *writer {
	return &writer{name: name, conn: conn, log: log, maxBatch: maxBatch,
		jobs: make(chan *job, maxBatch), done: make(chan struct{})}
}

// job is one transaction function waiting for the writer.
type job struct {
	ctx   context.Context
	fn    func() error
	state atomic.Int32
	done  chan result // buffered 1
}

type result struct {
	err      error
	panicked any // non-nil: fn panicked; re-raised in the caller
	stack    []byte
}

// do queues fn for the writer and waits for its result: fn runs inside
// the group's transaction and its own savepoint, and do returns nil only
// once the group committed. If ctx ends while fn is still queued, fn never
// runs and do returns ctx's error; once fn has started, do waits for the
// outcome (statements return ctx's error as soon as ctx is done, so that
// is short).
//
// fn must not call do on the same writer (it would wait for itself).
func (w *writer) do(ctx context.Context, fn func() error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	j := &job{ctx: ctx, fn: fn, done: make(chan result, 1)}
	w.mu.RLock()
	if w.closed {
		w.mu.RUnlock()
		return store.ErrClosed
	}
	select {
	case w.jobs <- j:
		w.mu.RUnlock()
	case <-ctx.Done():
		w.mu.RUnlock()
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

// stop lets queued and running jobs finish, then stops the goroutine;
// later do calls return store.ErrClosed.
func (w *writer) stop() {
	w.mu.Lock()
	if w.closed {
		w.mu.Unlock()
		return
	}
	w.closed = true
	close(w.jobs)
	w.mu.Unlock()
	<-w.done
}

// loop is the writer goroutine: it takes one queued job, then everything
// else already queued (up to maxBatch), and runs them as one group commit.
// While it commits (fsync), new jobs queue up for the next group, so the
// group size adapts to the load.
func (w *writer) loop() {
	defer close(w.done)
	batch := make([]*job, 0, w.maxBatch)
	for {
		j, ok := <-w.jobs
		if !ok {
			return
		}
		batch = append(batch[:0], j)
	fill:
		for len(batch) < w.maxBatch {
			select {
			case j, ok := <-w.jobs:
				if !ok {
					break fill
				}
				batch = append(batch, j)
			default:
				break fill
			}
		}
		w.runGroup(batch)
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

func (w *writer) exec(stmt string) error {
	_, err := w.conn.ExecContext(context.Background(), stmt)
	return err
}

// runGroup runs the jobs in one transaction and delivers each its result.
func (w *writer) runGroup(batch []*job) {
	jobs := make([]*job, 0, len(batch))
	for _, j := range batch {
		if j.state.CompareAndSwap(jobQueued, jobTaken) {
			jobs = append(jobs, j)
		}
	}
	if len(jobs) == 0 {
		return
	}
	results, groupErr := w.attempt(jobs)
	if groupErr != nil && len(jobs) > 1 {
		// The transaction as a whole failed (commit error, or a statement
		// error that made SQLite roll everything back): nothing of it was
		// committed. Run each job alone so one bad job cannot fail the
		// others; fn may run more than once by contract.
		w.log.Warn("group commit failed, retrying each transaction alone", "db", w.name, "txs", len(jobs), "err", groupErr)
		for _, j := range jobs {
			rs, err := w.attempt([]*job{j})
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
func (w *writer) attempt(jobs []*job) ([]result, error) {
	w.batches.Add(1)
	w.txs.Add(int64(len(jobs)))
	results := make([]result, len(jobs))
	if err := w.exec("BEGIN IMMEDIATE"); err != nil {
		return results, busyErr(fmt.Errorf("store: begin %s write transaction: %w", w.name, err))
	}
	if len(jobs) == 1 {
		// Alone in its transaction: no savepoint needed (a failure rolls
		// back the whole, which is only this job's).
		j := jobs[0]
		if results[0].err = j.ctx.Err(); results[0].err == nil {
			results[0] = runFn(j)
		}
		if results[0].err != nil || results[0].panicked != nil {
			w.rollback()
			return results, nil
		}
		if err := w.exec("COMMIT"); err != nil {
			w.rollback()
			return results, busyErr(fmt.Errorf("store: commit %s: %w", w.name, err))
		}
		return results, nil
	}
	for i, j := range jobs {
		if err := j.ctx.Err(); err != nil {
			results[i].err = err
			continue
		}
		if err := w.exec("SAVEPOINT tx"); err != nil {
			w.rollback()
			return results, fmt.Errorf("store: savepoint: %w", err)
		}
		results[i] = runFn(j)
		if results[i].err != nil || results[i].panicked != nil {
			if err := w.exec("ROLLBACK TO tx"); err != nil {
				w.rollback()
				return results, fmt.Errorf("store: roll back failed transaction: %w", err)
			}
		}
		if err := w.exec("RELEASE tx"); err != nil {
			w.rollback()
			return results, fmt.Errorf("store: release savepoint: %w", err)
		}
	}
	if err := w.exec("COMMIT"); err != nil {
		w.rollback()
		return results, busyErr(fmt.Errorf("store: commit %s: %w", w.name, err))
	}
	return results, nil
}

func runFn(j *job) (r result) {
	defer func() {
		if p := recover(); p != nil {
			r = result{panicked: p, stack: debug.Stack()}
		}
	}()
	return result{err: j.fn()}
}

// rollback ends a failed transaction; SQLite may already have rolled it
// back, so an error here is expected and only logged at debug level.
func (w *writer) rollback() {
	if err := w.exec("ROLLBACK"); err != nil {
		w.log.Debug("rollback", "db", w.name, "err", err)
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
