// Package sqlite is fhirguard's embedded storage backend: a store.Store on
// a SQLite database file (pure Go, modernc.org/sqlite, no cgo), with the
// SQL and store logic of internal/store/sqlstore, and the audit log
// (store.AuditLog) in a second file next to it (see audit.go: audited
// reads commit there, so the resource readers keep their page caches).
//
// Concurrency, for each file: one writer connection and a pool of reader
// connections, each a separate *sql.DB, on a WAL database (the audit
// file's writes take turns on its connection: Store.AuditTx). Readers never block the writer or
// each other. Store.Tx calls from many goroutines are funnelled to a single
// writer goroutine that GROUP-COMMITS them: it takes every queued
// transaction, runs them in one SQLite transaction, each inside its own
// SAVEPOINT (a function that fails rolls back only its savepoint and gets
// its own error), commits once, and then wakes each caller with its result.
// One fsync thus covers many writes.
//
// Durability: synchronous=FULL by default, so a Tx that returned nil is in
// the fsynced WAL and survives kill -9 and power loss. NORMAL (survives a
// process crash, may lose the last commits on power loss) is available as an
// option; group commit makes FULL fast enough that it is not the default.
//
// Other processes (fhirguard import, user add, …) may open the same file at
// the same time: busy_timeout makes their writers wait for the lock instead
// of failing.
package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/fhirguard/fhirguard/internal/clock"
	"github.com/fhirguard/fhirguard/internal/fhir"
	"github.com/fhirguard/fhirguard/internal/store"
	"github.com/fhirguard/fhirguard/internal/store/sqlstore"

	_ "modernc.org/sqlite" // registers the "sqlite" database/sql driver
)

// Options configures Open.
type Options struct {
	// Path is the database file, e.g. DATA/fhirguard.db. Its directory is
	// created (0700) if missing.
	Path string
	// Indexer computes compartment and label rows on every write.
	// Required.
	Indexer store.Indexer
	// Clock stamps meta.lastUpdated. Default clock.System{}.
	Clock clock.Clock
	// Logger receives operational logs (never resource bodies). Default
	// slog.Default().
	Logger *slog.Logger
	// Synchronous is "FULL" (default) or "NORMAL"; see the package doc.
	Synchronous string
	// BusyTimeout is how long a write waits for another process holding
	// the database lock. Default 10s.
	BusyTimeout time.Duration
	// ReadConns is the size of the reader pool. Default max(4,
	// 2*GOMAXPROCS).
	ReadConns int
	// MaxBatch caps how many Tx calls one group commit takes. Default 512.
	MaxBatch int
	// AuditPath is the audit log's database file. Default AuditPath(Path).
	AuditPath string
}

// Store is the SQLite store.Store. Create it with Open.
type Store struct {
	core   sqlstore.Core
	log    *slog.Logger
	closed atomic.Bool

	// ckpt copies the resource database's WAL into the database file off
	// the writer (checkpoint.go).
	ckpt *checkpointer
	// The resource database: its writer and its reader pool.
	wdb    *sql.DB
	wconn  *sql.Conn
	w      *writer
	wstmts *sqlstore.Prepared
	wdyn   *sqlstore.StmtCache // statements built at run time, on the writer
	runner writerRunner
	wout   *sqlstore.OutboxDB // the audit outbox's inserts and removals
	rdb    *sql.DB
	rstmts *sqlstore.Prepared
	rdyn   *sqlstore.StmtCache // statements built at run time, on the readers
	rout   *sqlstore.OutboxDB  // the audit outbox's reads

	// The audit database (audit.go): its writer and readers.
	auditPath string
	adb       *sql.DB
	aconn     *sql.Conn
	amu       sync.Mutex // one audit transaction at a time (AuditTx)
	ardb      *sql.DB
	waudit    *sqlstore.AuditDB
	raudit    *sqlstore.AuditDB
	// chained is the last outbox id a committed audit transaction chained;
	// dropped the last one removed from the outbox.
	chained atomic.Int64
	dropped atomic.Int64

	// path is the resource database; lock its data lock (bulk.go).
	path string
	lock *dataLock
}

var (
	_ store.Store      = (*Store)(nil)
	_ store.BulkLoader = (*Store)(nil)
)

// Open opens (creating if needed) and migrates the database at opts.Path
// and the audit database next to it.
// Opening an up-to-date database again is a no-op migration.
func Open(ctx context.Context, opts Options) (_ *Store, err error) {
	if opts.Path == "" {
		return nil, errors.New("sqlite: Options.Path is required")
	}
	if opts.AuditPath == "" {
		opts.AuditPath = AuditPath(opts.Path)
	}
	for _, p := range []string{opts.Path, opts.AuditPath} {
		if strings.ContainsRune(p, '?') || strings.HasPrefix(p, ":memory:") || strings.HasPrefix(p, "file:") {
			return nil, fmt.Errorf("sqlite: database path %q: want a plain file path (the writer and the readers must share one file)", p)
		}
	}
	if filepath.Clean(opts.Path) == filepath.Clean(opts.AuditPath) {
		return nil, fmt.Errorf("sqlite: Options.AuditPath %q is the resource database", opts.AuditPath)
	}
	if opts.Indexer == nil {
		return nil, errors.New("sqlite: Options.Indexer is required")
	}
	if opts.Clock == nil {
		opts.Clock = clock.System{}
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	syncMode := strings.ToUpper(opts.Synchronous)
	switch syncMode {
	case "":
		syncMode = "FULL"
	case "FULL", "NORMAL":
	default:
		return nil, fmt.Errorf("sqlite: Options.Synchronous %q: want FULL or NORMAL", opts.Synchronous)
	}
	if opts.BusyTimeout <= 0 {
		opts.BusyTimeout = 10 * time.Second
	}
	if opts.ReadConns <= 0 {
		opts.ReadConns = max(4, 2*runtime.GOMAXPROCS(0))
	}
	if opts.MaxBatch <= 0 {
		opts.MaxBatch = 512
	}
	for _, p := range []string{opts.Path, opts.AuditPath} {
		if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
			return nil, fmt.Errorf("sqlite: create data directory: %w", err)
		}
	}

	s := &Store{
		core:      sqlstore.Core{Dialect: dialect{}, Indexer: opts.Indexer, Clock: opts.Clock},
		log:       opts.Logger.With("component", "store", "backend", "sqlite"),
		auditPath: opts.AuditPath,
		path:      opts.Path,
	}
	defer func() {
		if err != nil {
			s.closeHandles()
		}
	}()

	// Other processes may use the data too, but not during one's bulk load.
	if s.lock, err = lockData(ctx, opts.Path, s.log); err != nil {
		return nil, err
	}

	// A group of hundreds of writes fits in the writer's page cache
	// without spilling into the WAL mid-transaction (32 MiB).
	f := files{sync: syncMode, busy: strconv.FormatInt(opts.BusyTimeout.Milliseconds(), 10)}
	if s.wdb, s.wconn, err = f.openWriter(ctx, opts.Path, writerCacheKiB, "wal_autocheckpoint("+strconv.Itoa(writerCheckpoint)+")"); err != nil {
		return nil, err
	}
	version, err := migrate(ctx, s.wconn, Migrations(), s.core.Clock, func(ctx context.Context) error {
		return s.core.LoadSearchParams(ctx, s.wconn)
	})
	if err != nil {
		return nil, err
	}
	if s.wstmts, err = sqlstore.Prepare(ctx, s.wconn, dialect{}, sqlstore.WriteQueries); err != nil {
		return nil, fmt.Errorf("sqlite: writer: %w", err)
	}
	s.wdyn = sqlstore.NewStmtCache(s.wconn, dynStatements)
	s.runner = writerRunner{p: s.wstmts, dyn: sqlstore.DynConn{Conn: s.wconn, Cache: s.wdyn}}
	if s.wout, err = sqlstore.PrepareOutbox(ctx, s.wconn, true); err != nil {
		return nil, fmt.Errorf("sqlite: writer: %w", err)
	}

	// Searches visit many scattered rows (a name prefix: hundreds of
	// resources rows); a 64 MiB page cache per reader keeps the hot ones
	// instead of reading them from the OS again (SQLite's default: 2 MiB).
	// It stays valid while the resources do not change: the audit log's
	// commits go to the other file.
	if s.rdb, err = f.openReaders(opts.Path, opts.ReadConns, 64<<10); err != nil {
		return nil, err
	}
	if s.rstmts, err = sqlstore.Prepare(ctx, s.rdb, dialect{}, sqlstore.ReadQueries); err != nil {
		return nil, fmt.Errorf("sqlite: readers: %w", err)
	}
	s.rdyn = sqlstore.NewPoolStmtCache(s.rdb, dynStatements)
	if s.rout, err = sqlstore.PrepareOutbox(ctx, s.rdb, false); err != nil {
		return nil, fmt.Errorf("sqlite: readers: %w", err)
	}
	if err := s.openAudit(ctx, f, opts); err != nil {
		return nil, err
	}
	if s.ckpt, err = newCheckpointer(opts.Path, f, s.log); err != nil {
		return nil, err
	}

	s.w = newWriter("resources", s.wconn, s.log, opts.MaxBatch)
	go s.w.loop()
	// A bulk load that never ended left its indexes to this open.
	if n, err := s.pendingBulkIndexes(ctx); err != nil || n > 0 {
		if err == nil {
			s.log.Warn("a bulk load did not finish (its process ended): building the search indexes it dropped", "indexes", n)
			err = s.buildBulkIndexes(ctx)
		}
		if err != nil {
			s.w.stop()
			return nil, err
		}
	}
	s.log.Info("store opened", "path", opts.Path, "audit_path", opts.AuditPath, "schema_version", version,
		"synchronous", syncMode, "read_conns", opts.ReadConns)
	return s, nil
}

// writerCacheKiB is the page cache of the resource database's writer.
const writerCacheKiB = 32 << 10

// AuditPath is the audit database of the resource database at path:
// path without its ".db" suffix, then ".audit.db".
func AuditPath(path string) string { return strings.TrimSuffix(path, ".db") + ".audit.db" }

// files opens the connections of one database file.
type files struct {
	sync string // FULL or NORMAL
	busy string // busy_timeout in ms
}

// openWriter opens path's single writer connection (WAL, the durability
// of f.sync, a cacheKiB page cache).
func (f files) openWriter(ctx context.Context, path string, cacheKiB int, pragmas ...string) (*sql.DB, *sql.Conn, error) {
	// A new database file is readable by its owner only (SQLite would
	// create it, and its -wal and -shm files, with the umask's mode).
	if nf, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600); err == nil {
		if err := nf.Close(); err != nil {
			return nil, nil, fmt.Errorf("sqlite: create %s: %w", path, err)
		}
	} else if !errors.Is(err, fs.ErrExist) {
		return nil, nil, fmt.Errorf("sqlite: create %s: %w", path, err)
	}
	q := url.Values{"_pragma": {
		"busy_timeout(" + f.busy + ")",
		"journal_mode(WAL)",
		"synchronous(" + f.sync + ")",
		"foreign_keys(1)",
		// Savepoint sub-journals and sort spills in memory, not temp files.
		"temp_store(MEMORY)",
		"cache_size(-" + strconv.Itoa(cacheKiB) + ")",
		// Truncate the WAL file back to 64 MiB after a checkpoint.
		"journal_size_limit(67108864)",
	}}
	q["_pragma"] = append(q["_pragma"], pragmas...)
	db, err := sql.Open("sqlite", path+"?"+q.Encode())
	if err != nil {
		return nil, nil, fmt.Errorf("sqlite: open writer of %s: %w", path, err)
	}
	db.SetMaxOpenConns(1)
	db.SetMaxIdleConns(1)
	db.SetConnMaxLifetime(0)
	db.SetConnMaxIdleTime(0)
	conn, err := db.Conn(ctx)
	if err != nil {
		_ = db.Close()
		return nil, nil, fmt.Errorf("sqlite: connect writer %s: %w", path, err)
	}
	var mode string
	if err := conn.QueryRowContext(ctx, "PRAGMA journal_mode").Scan(&mode); err != nil {
		_ = conn.Close()
		_ = db.Close()
		return nil, nil, fmt.Errorf("sqlite: check journal mode of %s: %w", path, err)
	}
	if !strings.EqualFold(mode, "wal") {
		_ = conn.Close()
		_ = db.Close()
		return nil, nil, fmt.Errorf("sqlite: journal mode of %s is %q, want wal", path, mode)
	}
	return db, conn, nil
}

// openReaders opens a pool of n query-only connections to path.
func (f files) openReaders(path string, n, cacheKiB int) (*sql.DB, error) {
	q := url.Values{"_pragma": {"busy_timeout(" + f.busy + ")", "query_only(1)", "cache_size(-" + strconv.Itoa(cacheKiB) + ")"}}
	db, err := sql.Open("sqlite", path+"?"+q.Encode())
	if err != nil {
		return nil, fmt.Errorf("sqlite: open readers of %s: %w", path, err)
	}
	db.SetMaxOpenConns(n)
	db.SetMaxIdleConns(n)
	db.SetConnMaxLifetime(0)
	db.SetConnMaxIdleTime(0)
	return db, nil
}

// migrate runs the schema migrations ms (and then after, when set) in one
// BEGIN IMMEDIATE transaction on conn, so two processes opening a new
// database at once do not both migrate.
func migrate(ctx context.Context, conn *sql.Conn, ms []sqlstore.Migration, clk clock.Clock, after func(context.Context) error) (int, error) {
	if _, err := conn.ExecContext(ctx, "BEGIN IMMEDIATE"); err != nil {
		return 0, fmt.Errorf("sqlite: migrate: begin: %w", err)
	}
	v, err := sqlstore.Migrate(ctx, conn, ms, sqlstore.Millis(clk.Now()))
	if err == nil && after != nil {
		err = after(ctx)
	}
	if err != nil {
		_, _ = conn.ExecContext(context.WithoutCancel(ctx), "ROLLBACK")
		return 0, fmt.Errorf("sqlite: %w", err)
	}
	if _, err := conn.ExecContext(ctx, "COMMIT"); err != nil {
		_, _ = conn.ExecContext(context.WithoutCancel(ctx), "ROLLBACK")
		return 0, fmt.Errorf("sqlite: migrate: commit: %w", err)
	}
	return v, nil
}

// Tx runs fn in a write transaction of the resource database (group
// commit: see the package doc). If ctx ends while fn is still queued, fn
// never runs and Tx returns ctx's error; once fn has started, Tx waits for
// the outcome (Put, Read and Delete return ctx's error as soon as ctx is
// done, so that is short).
//
// fn must not call s.Tx (the writer would wait for itself).
func (s *Store) Tx(ctx context.Context, fn func(tx store.Tx) error) error {
	if s.closed.Load() {
		return store.ErrClosed
	}
	return s.w.do(ctx, func() error {
		tx := s.newTx()
		if err := fn(tx); err != nil {
			return err
		}
		return tx.FlushSearch(ctx) // the search rows the Tx buffered
	})
}

// Read returns the current version of typ/id.
func (s *Store) Read(ctx context.Context, typ, id string) (*fhir.Resource, error) {
	if s.closed.Load() {
		return nil, store.ErrClosed
	}
	res, err := s.core.Read(ctx, s.rstmts, typ, id)
	return res, s.readErr(err)
}

// VRead returns one version of typ/id.
func (s *Store) VRead(ctx context.Context, typ, id string, version int64) (*fhir.Resource, error) {
	if s.closed.Load() {
		return nil, store.ErrClosed
	}
	res, err := s.core.VRead(ctx, s.rstmts, typ, id, version)
	return res, s.readErr(err)
}

// IndexFacts returns the compartment patients and labels of the current
// version of typ/id.
func (s *Store) IndexFacts(ctx context.Context, typ, id string) (*store.IndexEntries, error) {
	if s.closed.Load() {
		return nil, store.ErrClosed
	}
	res, err := s.core.IndexFacts(ctx, s.rstmts, typ, id)
	return res, s.readErr(err)
}

// History lists versions newest first; the page and Total come from one
// read snapshot.
func (s *Store) History(ctx context.Context, q store.HistoryQuery) (_ *store.HistoryPage, err error) {
	if s.closed.Load() {
		return nil, store.ErrClosed
	}
	tx, err := s.rdb.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return nil, s.readErr(fmt.Errorf("store: history: begin: %w", err))
	}
	defer func() { _ = tx.Rollback() }() // read-only: nothing to commit
	page, err := s.core.History(ctx, sqlstore.TxRunner{Tx: tx, P: s.rstmts}, q)
	return page, s.readErr(err)
}

// readErr turns errors caused by a concurrent Close into ErrClosed.
func (s *Store) readErr(err error) error {
	if err == nil || errors.Is(err, store.ErrNotFound) || errors.Is(err, store.ErrGone) {
		return err
	}
	if s.closed.Load() {
		return fmt.Errorf("%w (%v)", store.ErrClosed, err)
	}
	return err
}

// Stats are counters of the group-commit writer.
type Stats struct {
	Batches int64 // SQLite transactions committed or attempted
	Txs     int64 // Store.Tx calls run
}

// Stats returns the writer counters; Txs/Batches is the mean group size.
func (s *Store) Stats() Stats {
	return Stats{Batches: s.w.batches.Load(), Txs: s.w.txs.Load()}
}

// Close waits for queued and running transactions, stops the writer and
// closes the database. Later calls return ErrClosed (Close itself: nil).
func (s *Store) Close() error {
	if s.closed.Swap(true) {
		return nil
	}
	s.w.stop()
	s.ckpt.stop()
	s.amu.Lock() // no audit transaction in flight from here on
	s.amu.Unlock()
	s.dropChained()
	if err := s.closeHandles(); err != nil {
		return fmt.Errorf("sqlite: close: %w", err)
	}
	s.log.Info("store closed")
	return nil
}

func (s *Store) closeHandles() error {
	errs := []error{s.closeAudit()}
	if s.rout != nil {
		errs = append(errs, s.rout.Close())
	}
	if s.wout != nil {
		errs = append(errs, s.wout.Close())
	}
	if s.rstmts != nil {
		errs = append(errs, s.rstmts.Close())
	}
	if s.rdyn != nil {
		errs = append(errs, s.rdyn.Close())
	}
	if s.wstmts != nil {
		errs = append(errs, s.wstmts.Close())
	}
	if s.wdyn != nil {
		errs = append(errs, s.wdyn.Close())
	}
	if s.rdb != nil {
		errs = append(errs, s.rdb.Close())
	}
	if s.wconn != nil {
		errs = append(errs, s.wconn.Close())
	}
	if s.wdb != nil {
		errs = append(errs, s.wdb.Close())
	}
	errs = append(errs, s.lock.close())
	return errors.Join(errs...)
}

// Prepare indexes and serializes w in the caller's goroutine (see
// store.Store.Prepare).
func (s *Store) Prepare(w *store.Write) error { return s.core.Prepare(w) }
