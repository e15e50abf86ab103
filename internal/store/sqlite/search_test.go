package sqlite_test

import (
	"bytes"
	"context"
	"database/sql"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/fhirguard/fhirguard/internal/index"
	"github.com/fhirguard/fhirguard/internal/store"
	"github.com/fhirguard/fhirguard/internal/store/sqlstore"
	"github.com/fhirguard/fhirguard/internal/store/storetest"
)

// TestSearchConformance runs the search suite (it needs the production
// indexer for the search-parameter rows).
func TestSearchConformance(t *testing.T) {
	ix, err := index.New()
	if err != nil {
		t.Fatalf("index.New: %v", err)
	}
	storetest.RunSearch(t, func(t *testing.T) store.Store {
		return openAt(t, filepath.Join(t.TempDir(), "fhirguard.db"), ix)
	})
}

func TestCursorKey(t *testing.T) {
	ix, err := index.New()
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "fhirguard.db")
	s := openAt(t, path, ix)
	k1 := s.CursorKey()
	if len(k1) < 32 || bytes.Equal(k1, make([]byte, len(k1))) {
		t.Fatalf("cursor key %x: want 32 random bytes", k1)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if k2 := openAt(t, path, ix).CursorKey(); !bytes.Equal(k1, k2) {
		t.Fatal("reopening the database changed the cursor key")
	}
	if k3 := openAt(t, filepath.Join(t.TempDir(), "other.db"), ix).CursorKey(); bytes.Equal(k1, k3) {
		t.Fatal("two databases have the same cursor key")
	}
}

// TestPoolStmtCacheNeverWaitsForAConnection: a statement first seen inside
// a transaction that holds the pool's only connection must still run.
func TestPoolStmtCacheNeverWaitsForAConnection(t *testing.T) {
	db, err := sql.Open("sqlite", filepath.Join(t.TempDir(), "c.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	db.SetMaxOpenConns(1)
	cache := sqlstore.NewPoolStmtCache(db, 8)
	defer cache.Close()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	for i := range 3 {
		tx, err := db.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
		if err != nil {
			t.Fatal(err)
		}
		var n int
		if err := queryOne(ctx, sqlstore.DynTx{Tx: tx, Cache: cache}, "SELECT 1 + $1", &n, i); err != nil || n != 1+i {
			t.Fatalf("run %d: %d %v", i, n, err)
		}
		if err := tx.Rollback(); err != nil {
			t.Fatal(err)
		}
	}
}

func queryOne(ctx context.Context, r sqlstore.DynRunner, q string, dest any, args ...any) error {
	rows, err := r.QuerySQL(ctx, q, args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	if !rows.Next() {
		return fmt.Errorf("no row: %v", rows.Err())
	}
	return rows.Scan(dest)
}
