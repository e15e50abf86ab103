// Package sqlite is fhirguard's embedded storage backend: a store.Store on
// one SQLite database file (pure Go, modernc.org/sqlite, no cgo), with the
// SQL and store logic of internal/store/sqlstore.
//
// Concurrency: one writer connection and a pool of reader connections, each
// a separate *sql.DB, on a WAL database. Readers never block the writer or
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
}

// Store is the SQLite store.Store. Create it with Open.
type Store struct {
	core sqlstore.Core
	log  *slog.Logger

	wdb    *sql.DB
	wconn  *sql.Conn
	wstmts *sqlstore.Prepared
	wdyn   *sqlstore.StmtCache // statements built at run time, on the writer
	rdb    *sql.DB
	rstmts *sqlstore.Prepared
	// waudit and raudit run the audit log's statements (audit.go).
	waudit *sqlstore.AuditDB
	raudit *sqlstore.AuditDB
	rdyn   *sqlstore.StmtCache // statements built at run time, on the readers

	maxBatch   int
	mu         sync.RWMutex // guards sending on jobs against closing it
	jobs       chan *job
	writerDone chan struct{}
	closed     atomic.Bool

	batches atomic.Int64
	txs     atomic.Int64
}

var _ store.Store = (*Store)(nil)

// Open opens (creating if needed) and migrates the database at opts.Path.
// Opening an up-to-date database again is a no-op migration.
func Open(ctx context.Context, opts Options) (_ *Store, err error) {
	if opts.Path == "" {
		return nil, errors.New("sqlite: Options.Path is required")
	}
	if strings.ContainsRune(opts.Path, '?') || strings.HasPrefix(opts.Path, ":memory:") || strings.HasPrefix(opts.Path, "file:") {
		return nil, fmt.Errorf("sqlite: Options.Path %q: want a plain file path (the writer and the readers must share one file)", opts.Path)
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
	if err := os.MkdirAll(filepath.Dir(opts.Path), 0o700); err != nil {
		return nil, fmt.Errorf("sqlite: create data directory: %w", err)
	}

	s := &Store{
		core:       sqlstore.Core{Dialect: dialect{}, Indexer: opts.Indexer, Clock: opts.Clock},
		log:        opts.Logger.With("component", "store", "backend", "sqlite"),
		maxBatch:   opts.MaxBatch,
		jobs:       make(chan *job, opts.MaxBatch),
		writerDone: make(chan struct{}),
	}
	defer func() {
		if err != nil {
			s.closeHandles()
		}
	}()

	busy := strconv.FormatInt(opts.BusyTimeout.Milliseconds(), 10)
	wq := url.Values{"_pragma": {
		"busy_timeout(" + busy + ")",
		"journal_mode(WAL)",
		"synchronous(" + syncMode + ")",
		"foreign_keys(1)",
		// Savepoint sub-journals and sort spills in memory, not temp files.
		"temp_store(MEMORY)",
		// A group of hundreds of writes fits in the page cache without
		// spilling into the WAL mid-transaction (32 MiB, writer only).
		"cache_size(-32768)",
		// Truncate the WAL file back to 64 MiB after a checkpoint.
		"journal_size_limit(67108864)",
	}}
	if s.wdb, err = sql.Open("sqlite", opts.Path+"?"+wq.Encode()); err != nil {
		return nil, fmt.Errorf("sqlite: open writer: %w", err)
	}
	s.wdb.SetMaxOpenConns(1)
	s.wdb.SetMaxIdleConns(1)
	s.wdb.SetConnMaxLifetime(0)
	s.wdb.SetConnMaxIdleTime(0)
	if s.wconn, err = s.wdb.Conn(ctx); err != nil {
		return nil, fmt.Errorf("sqlite: connect writer %s: %w", opts.Path, err)
	}
	var mode string
	if err := s.wconn.QueryRowContext(ctx, "PRAGMA journal_mode").Scan(&mode); err != nil {
		return nil, fmt.Errorf("sqlite: check journal mode: %w", err)
	}
	if !strings.EqualFold(mode, "wal") {
		return nil, fmt.Errorf("sqlite: journal mode is %q, want wal", mode)
	}
	version, err := s.migrate(ctx)
	if err != nil {
		return nil, err
	}
	if s.wstmts, err = sqlstore.Prepare(ctx, s.wconn, dialect{}, sqlstore.WriteQueries); err != nil {
		return nil, fmt.Errorf("sqlite: writer: %w", err)
	}
	s.wdyn = sqlstore.NewStmtCache(s.wconn, dynStatements)

	// Searches visit many scattered rows (a name prefix: hundreds of
	// resources rows); a 64 MiB page cache per reader keeps the hot ones
	// instead of reading them from the OS again (SQLite's default: 2 MiB).
	rq := url.Values{"_pragma": {"busy_timeout(" + busy + ")", "query_only(1)", "cache_size(-65536)"}}
	if s.rdb, err = sql.Open("sqlite", opts.Path+"?"+rq.Encode()); err != nil {
		return nil, fmt.Errorf("sqlite: open readers: %w", err)
	}
	s.rdb.SetMaxOpenConns(opts.ReadConns)
	s.rdb.SetMaxIdleConns(opts.ReadConns)
	s.rdb.SetConnMaxLifetime(0)
	s.rdb.SetConnMaxIdleTime(0)
	if s.rstmts, err = sqlstore.Prepare(ctx, s.rdb, dialect{}, sqlstore.ReadQueries); err != nil {
		return nil, fmt.Errorf("sqlite: readers: %w", err)
	}
	s.rdyn = sqlstore.NewPoolStmtCache(s.rdb, dynStatements)
	if err := s.openAudit(ctx); err != nil {
		return nil, err
	}

	go s.writeLoop()
	s.log.Info("store opened", "path", opts.Path, "schema_version", version,
		"synchronous", syncMode, "read_conns", opts.ReadConns)
	return s, nil
}

// migrate runs the schema migrations in one BEGIN IMMEDIATE transaction, so
// two processes opening a new database at once do not both migrate.
func (s *Store) migrate(ctx context.Context) (int, error) {
	if _, err := s.wconn.ExecContext(ctx, "BEGIN IMMEDIATE"); err != nil {
		return 0, fmt.Errorf("sqlite: migrate: begin: %w", err)
	}
	v, err := sqlstore.Migrate(ctx, s.wconn, dialect{}, sqlstore.Millis(s.core.Clock.Now()))
	if err == nil {
		err = s.core.LoadSearchParams(ctx, s.wconn)
	}
	if err != nil {
		_, _ = s.wconn.ExecContext(context.WithoutCancel(ctx), "ROLLBACK")
		return 0, fmt.Errorf("sqlite: %w", err)
	}
	if _, err := s.wconn.ExecContext(ctx, "COMMIT"); err != nil {
		_, _ = s.wconn.ExecContext(context.WithoutCancel(ctx), "ROLLBACK")
		return 0, fmt.Errorf("sqlite: migrate: commit: %w", err)
	}
	return v, nil
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
	return Stats{Batches: s.batches.Load(), Txs: s.txs.Load()}
}

// Close waits for queued and running transactions, stops the writer and
// closes the database. Later calls return ErrClosed (Close itself: nil).
func (s *Store) Close() error {
	s.mu.Lock()
	if s.closed.Load() {
		s.mu.Unlock()
		return nil
	}
	s.closed.Store(true)
	close(s.jobs)
	s.mu.Unlock()
	<-s.writerDone
	if err := s.closeHandles(); err != nil {
		return fmt.Errorf("sqlite: close: %w", err)
	}
	s.log.Info("store closed")
	return nil
}

func (s *Store) closeHandles() error {
	errs := []error{s.closeAudit()}
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
	return errors.Join(errs...)
}

// Prepare indexes and serializes w in the caller's goroutine (see
// store.Store.Prepare).
func (s *Store) Prepare(w *store.Write) error { return s.core.Prepare(w) }
