// Package postgres is fhirguard's PostgreSQL storage backend. Today it
// holds the audit log (OpenAudit: a store.AuditLog with its outbox in the
// same database); the resources come later, on the same connections and
// dialect. It runs the SQL of internal/store/sqlstore unchanged through
// pgx's database/sql driver and supplies only the Dialect, connections,
// transactions and the cross-process locking.
//
// Many fhirguard processes may share one database. Migrations run in a
// transaction holding an advisory lock (per schema), so only one process
// migrates. Every audit transaction locks the chain's head row
// (SELECT … FOR UPDATE), so one process appends at a time, and commits
// with synchronous_commit on: a nil error from AuditTx means durable.
package postgres

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"

	"github.com/fhirguard/fhirguard/internal/clock"
	"github.com/fhirguard/fhirguard/internal/store"
	"github.com/fhirguard/fhirguard/internal/store/sqlstore"
)

// Options configure OpenAudit.
type Options struct {
	// Clock stamps the migrations and is the clock ClockSkew compares with
	// the database's (default clock.System).
	Clock  clock.Clock
	Logger *slog.Logger
	// MaxConns bounds the connections of the pool the reads use (default
	// 8); the writer holds one more of its own.
	MaxConns int
	// Existing refuses a database (schema) that holds no audit log yet
	// instead of creating one: the admin commands read a log, they must
	// not start an empty one in a mistyped database.
	Existing bool
}

// AuditLog is the audit log in a PostgreSQL database: a store.AuditLog.
// It is safe for concurrent use; Close it when done.
type AuditLog struct {
	db    *sql.DB
	clock clock.Clock
	log   *slog.Logger
	where string // host:port/database, for errors (no secrets)
	// existing: Options.Existing.
	existing bool

	read   *sqlstore.AuditDB  // statements on the pool
	outbox *sqlstore.OutboxDB // the insert, for OutboxTx

	mu     sync.Mutex // one audit transaction at a time in this process
	w      *writer    // nil until needed, and after its connection broke
	closed atomic.Bool
}

var (
	_ store.AuditLog = (*AuditLog)(nil)
	_ store.AuditTx  = (*auditTx)(nil)
)

// OpenAudit connects to the database of dsn (a postgres:// URL or
// key=value string; search_path may be given as a parameter), migrates
// the audit schema and returns the audit log.
func OpenAudit(ctx context.Context, dsn string, opts Options) (*AuditLog, error) {
	if opts.Clock == nil {
		opts.Clock = clock.System{}
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.MaxConns <= 0 {
		opts.MaxConns = 8
	}
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		// pgx's message masks a password in the DSN.
		return nil, fmt.Errorf("postgres: %w", err)
	}
	db := stdlib.OpenDB(*cfg)
	db.SetMaxOpenConns(opts.MaxConns + 1)
	db.SetMaxIdleConns(opts.MaxConns + 1)
	db.SetConnMaxIdleTime(5 * time.Minute)
	l := &AuditLog{db: db, clock: opts.Clock, log: opts.Logger.With("component", "postgres"),
		where: fmt.Sprintf("%s:%d/%s", cfg.Host, cfg.Port, cfg.Database), existing: opts.Existing}
	if err := l.open(ctx); err != nil {
		_ = l.Close()
		return nil, err
	}
	return l, nil
}

func (l *AuditLog) open(ctx context.Context) error {
	if err := l.db.PingContext(ctx); err != nil {
		return fmt.Errorf("postgres: connect to %s: %w", l.where, err)
	}
	if l.existing {
		var found bool
		if err := l.db.QueryRowContext(ctx, `SELECT to_regclass('audit_head') IS NOT NULL`).Scan(&found); err != nil {
			return fmt.Errorf("postgres: look for the audit log in %s: %w", l.where, err)
		}
		if !found {
			return fmt.Errorf("postgres: %s holds no fhirguard audit log", l.where)
		}
	}
	if err := l.migrate(ctx); err != nil {
		return err
	}
	var err error
	if l.read, err = sqlstore.PrepareAudit(ctx, l.db, dialect{}, false); err != nil {
		return fmt.Errorf("postgres: audit readers: %w", err)
	}
	if l.outbox, err = sqlstore.PrepareOutbox(ctx, l.db, true); err != nil {
		return fmt.Errorf("postgres: audit outbox: %w", err)
	}
	return nil
}

// migrateLockClass keys the advisory lock of migrations (with the schema).
const migrateLockClass = "fhirguard.migrate."

// migrate applies the audit schema (and the outbox) in one transaction
// that holds an advisory lock on the current schema, so that processes
// starting together migrate once; version 1 records left by
// sqlstore.UnpackAuditBlocks are packed back and missing postings
// written in the same transaction.
func (l *AuditLog) migrate(ctx context.Context) error {
	tx, err := l.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("postgres: migrate: begin: %w", err)
	}
	defer func() { _ = tx.Rollback() }()
	var schema sql.NullString
	if err := tx.QueryRowContext(ctx, `SELECT current_schema()`).Scan(&schema); err != nil {
		return fmt.Errorf("postgres: migrate: %w", err)
	}
	if !schema.Valid {
		return errors.New("postgres: migrate: no schema of the search_path exists (create it, or fix search_path in the DSN)")
	}
	if _, err := tx.ExecContext(ctx, `SELECT pg_advisory_xact_lock(hashtextextended($1, 0))`, migrateLockClass+schema.String); err != nil {
		return fmt.Errorf("postgres: migrate: lock: %w", err)
	}
	if _, err := sqlstore.Migrate(ctx, tx, sqlstore.SharedAuditMigrations(dialect{}), sqlstore.Millis(l.clock.Now())); err != nil {
		return fmt.Errorf("postgres: schema %s: %w", schema.String, err)
	}
	if err := sqlstore.InitAuditHead(ctx, tx); err != nil {
		return fmt.Errorf("postgres: %w", err)
	}
	if err := l.prepareRecords(ctx, tx); err != nil {
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("postgres: migrate: commit: %w", err)
	}
	return nil
}

// prepareRecords packs records stored one row each (schema audit v1, or
// unpacked for inspection) into blocks and writes the postings of
// complete buckets that lack them, inside the migration transaction.
func (l *AuditLog) prepareRecords(ctx context.Context, tx *sql.Tx) error {
	a, err := sqlstore.PrepareAudit(ctx, tx, dialect{}, true)
	if err != nil {
		return fmt.Errorf("postgres: %w", err)
	}
	defer a.Close()
	legacy, err := a.HasLegacy(ctx)
	if err != nil {
		return fmt.Errorf("postgres: %w", err)
	}
	var packed, indexed int64
	if legacy {
		if packed, err = a.ConvertLegacy(ctx); err != nil {
			return fmt.Errorf("postgres: pack audit records: %w", err)
		}
	}
	if indexed, err = a.Reindex(ctx); err != nil {
		return fmt.Errorf("postgres: index audit records: %w", err)
	}
	if packed > 0 || indexed > 0 {
		l.log.Info("audit records prepared", "packed", packed, "indexed", indexed)
	}
	return nil
}

// Ping checks that the database answers.
func (l *AuditLog) Ping(ctx context.Context) error {
	if l.closed.Load() {
		return store.ErrClosed
	}
	return l.db.PingContext(ctx)
}

// Close releases the statements and connections. Transactions running
// finish first.
func (l *AuditLog) Close() error {
	if l.closed.Swap(true) {
		return nil
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	var errs []error
	if l.w != nil {
		errs = append(errs, l.w.close())
		l.w = nil
	}
	if l.read != nil {
		errs = append(errs, l.read.Close())
	}
	if l.outbox != nil {
		errs = append(errs, l.outbox.Close())
	}
	errs = append(errs, l.db.Close())
	return errors.Join(errs...)
}
