package postgres

import (
	"context"
	"database/sql"
	"errors"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"

	"github.com/fhirguard/fhirguard/internal/clock"
	"github.com/fhirguard/fhirguard/internal/fhir"
	"github.com/fhirguard/fhirguard/internal/index"
	"github.com/fhirguard/fhirguard/internal/search"
	"github.com/fhirguard/fhirguard/internal/store"
	"github.com/fhirguard/fhirguard/internal/store/postgres/pgtest"
	"github.com/fhirguard/fhirguard/internal/store/sqlstore"
	"github.com/fhirguard/fhirguard/internal/store/storetest"
)

// The resources are not on PostgreSQL yet (this backend holds the audit
// log), but their SQL is sqlstore's, written once for both engines. So
// that the search SQL is proven on PostgreSQL too, resourceStore runs
// sqlstore.Core on a test schema — one writer at a time, every search in
// a read-only transaction — and TestSearchConformance runs the whole
// search conformance suite (storetest.RunSearch) on it.

// resourceStore is a test-only store.Store and store.Searcher of
// resources on PostgreSQL.
type resourceStore struct {
	db    *sql.DB
	core  *sqlstore.Core
	stmts *sqlstore.Prepared
	dyn   *sqlstore.StmtCache
	mu    sync.Mutex // one writer at a time
}

var (
	_ store.Store    = (*resourceStore)(nil)
	_ store.Searcher = (*resourceStore)(nil)
)

func openResources(t *testing.T, ix *index.Indexer) *resourceStore {
	t.Helper()
	dsn := pgtest.Schema(t)
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		t.Fatal(err)
	}
	db := stdlib.OpenDB(*cfg)
	db.SetMaxOpenConns(8)
	s := &resourceStore{db: db, core: &sqlstore.Core{Dialect: dialect{}, Indexer: ix, Clock: clock.System{}}}
	t.Cleanup(func() { _ = s.Close() })
	ctx := context.Background()
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := sqlstore.Migrate(ctx, tx, sqlstore.Migrations(dialect{}), 0); err != nil {
		t.Fatalf("migrate: %v", err)
	}
	if err := s.core.LoadSearchParams(ctx, tx); err != nil {
		t.Fatalf("load search parameters: %v", err)
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	qs := append(append([]sqlstore.Query{}, sqlstore.WriteQueries...), sqlstore.ReadQueries...)
	if s.stmts, err = sqlstore.Prepare(ctx, db, dialect{}, dedup(qs)); err != nil {
		t.Fatal(err)
	}
	s.dyn = sqlstore.NewPoolStmtCache(db, 256)
	return s
}

func dedup(qs []sqlstore.Query) []sqlstore.Query {
	seen := map[sqlstore.Query]bool{}
	var out []sqlstore.Query
	for _, q := range qs {
		if !seen[q] {
			seen[q] = true
			out = append(out, q)
		}
	}
	return out
}

// txRunner runs both the named and the dynamic statements in one
// transaction.
type txRunner struct {
	sqlstore.TxRunner
	sqlstore.DynTx
}

func (s *resourceStore) Tx(ctx context.Context, fn func(tx store.Tx) error) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer func() { _ = tx.Rollback() }()
	t := s.core.NewTx(txRunner{sqlstore.TxRunner{Tx: tx, P: s.stmts}, sqlstore.DynTx{Tx: tx, Cache: s.dyn}})
	if err := fn(t); err != nil {
		return err
	}
	if err := t.FlushSearch(ctx); err != nil {
		return err
	}
	return tx.Commit()
}

func (s *resourceStore) Search(ctx context.Context, q *search.Query, at *search.Cursor) (*store.SearchResult, error) {
	tx, err := s.db.BeginTx(ctx, &sql.TxOptions{ReadOnly: true, Isolation: sql.LevelRepeatableRead})
	if err != nil {
		return nil, err
	}
	defer func() { _ = tx.Rollback() }()
	return s.core.Search(ctx, sqlstore.DynTx{Tx: tx, Cache: s.dyn}, q, at)
}

func (s *resourceStore) CursorKey() []byte { return s.core.CursorKey() }

func (s *resourceStore) Read(ctx context.Context, typ, id string) (*fhir.Resource, error) {
	return s.core.Read(ctx, s.stmts, typ, id)
}

func (s *resourceStore) VRead(ctx context.Context, typ, id string, version int64) (*fhir.Resource, error) {
	return s.core.VRead(ctx, s.stmts, typ, id, version)
}

func (s *resourceStore) History(ctx context.Context, q store.HistoryQuery) (*store.HistoryPage, error) {
	return s.core.History(ctx, s.stmts, q)
}

func (s *resourceStore) IndexFacts(ctx context.Context, typ, id string) (*store.IndexEntries, error) {
	return s.core.IndexFacts(ctx, s.stmts, typ, id)
}

func (s *resourceStore) Prepare(w *store.Write) error { return s.core.Prepare(w) }

func (s *resourceStore) Close() error {
	var errs []error
	if s.dyn != nil {
		errs = append(errs, s.dyn.Close())
	}
	if s.stmts != nil {
		errs = append(errs, s.stmts.Close())
	}
	return errors.Join(append(errs, s.db.Close())...)
}

// TestSearchConformance runs the search conformance suite on PostgreSQL.
func TestSearchConformance(t *testing.T) {
	ix, err := index.New()
	if err != nil {
		t.Fatal(err)
	}
	storetest.RunSearch(t, func(t *testing.T) store.Store { return openResources(t, ix) })
}
