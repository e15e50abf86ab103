package sqlite_test

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/fhirguard/fhirguard/internal/fhir"
	"github.com/fhirguard/fhirguard/internal/search"

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

// FuzzSearch compiles and runs arbitrary searches on a small store: a
// search either answers or fails with a client error (*fhir.Error, 4xx);
// never with a SQL or driver error.
func FuzzSearch(f *testing.F) {
	for _, s := range []string{
		"Patient?name=smith&_sort=-birthdate", "Observation?code=http://loinc.org|2345-7&value-quantity=gt5",
		"Observation?subject:Patient.name=x&_include=Observation:*", "Patient?_has:Observation:patient:code=1&_revinclude=Observation:subject",
		"Observation?code-value-quantity=1$lt5&date=ap2020", "Patient?identifier:of-type=a|b|c&_count=0",
		"Observation?combo-code-value-quantity=8480-6$120&_sort=date,-_id", "ValueSet?url:above=http://x/y/z",
		"Observation?status:not=final&category:missing=true", "Patient?family:contains=%25_'&_total=none",
	} {
		f.Add(s)
	}
	ix, err := index.New()
	if err != nil {
		f.Fatal(err)
	}
	st := openAt(f, filepath.Join(f.TempDir(), "fuzz.db"), ix)
	ctx := context.Background()
	if err := st.Tx(ctx, func(tx store.Tx) error {
		for _, w := range []store.Write{
			{Type: "Patient", ID: "p1", Data: map[string]any{"resourceType": "Patient", "name": []any{map[string]any{"family": "Smith"}}, "birthDate": "1970"}},
			{Type: "Observation", ID: "o1", Data: map[string]any{"resourceType": "Observation", "status": "final",
				"code":    map[string]any{"coding": []any{map[string]any{"system": "http://loinc.org", "code": "2345-7"}}},
				"subject": map[string]any{"reference": "Patient/p1"}, "effectiveDateTime": "2020-01-01",
				"valueQuantity": map[string]any{"value": json.Number("5.5")}}},
		} {
			if _, err := tx.Put(ctx, w); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, spec string) {
		typ, raw, _ := strings.Cut(spec, "?")
		params, err := url.ParseQuery(raw)
		if err != nil || !fhir.IsResourceType(typ) {
			return
		}
		q, _, err := search.Parse(typ, params, search.Options{})
		if err != nil {
			return
		}
		if _, err := st.Search(ctx, q, nil); err != nil {
			if fe, ok := fhir.AsError(err); !ok || fe.HTTPStatus() >= 500 {
				t.Fatalf("%q: %v", spec, err)
			}
		}
	})
}
