//go:build unix

package sqlite_test

import (
	"context"
	"database/sql"
	"fmt"
	"log/slog"
	"net/url"
	"path/filepath"
	"testing"
	"time"

	"github.com/fhirguard/fhirguard/internal/index"
	"github.com/fhirguard/fhirguard/internal/search"
	"github.com/fhirguard/fhirguard/internal/store"
	"github.com/fhirguard/fhirguard/internal/store/sqlite"
)

func newIndexer(t *testing.T) *index.Indexer {
	t.Helper()
	ix, err := index.New()
	if err != nil {
		t.Fatal(err)
	}
	return ix
}

// searchIndexes counts the indexes of the search value tables.
func searchIndexes(t *testing.T, db *sql.DB) int {
	t.Helper()
	return count(t, db, `SELECT count(*) FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL AND tbl_name LIKE 'sp\_%' ESCAPE '\'`)
}

func putObservations(t *testing.T, st *sqlite.Store, from, n int) {
	t.Helper()
	err := st.Tx(context.Background(), func(tx store.Tx) error {
		for i := from; i < from+n; i++ {
			data := map[string]any{"resourceType": "Observation", "id": fmt.Sprintf("o%d", i), "status": "final",
				"code":              map[string]any{"coding": []any{map[string]any{"system": "http://loinc.org", "code": fmt.Sprintf("c%d", i%7)}}},
				"subject":           map[string]any{"reference": fmt.Sprintf("Patient/p%d", i%5)},
				"effectiveDateTime": fmt.Sprintf("2024-01-%02dT10:00:00Z", 1+i%28)}
			if _, err := tx.Put(context.Background(), store.Write{Type: "Observation", ID: data["id"].(string), Data: data}); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func searchTotal(t *testing.T, st *sqlite.Store, params url.Values) int {
	t.Helper()
	params.Set("_total", "accurate")
	q, _, err := search.Parse("Observation", params, search.Options{})
	if err != nil {
		t.Fatal(err)
	}
	res, err := st.Search(context.Background(), q, nil)
	if err != nil {
		t.Fatal(err)
	}
	return res.Total
}

// TestBulkLoad: a bulk load drops the search value indexes, searches stay
// right without them, and its end builds them again.
func TestBulkLoad(t *testing.T) {
	path := filepath.Join(t.TempDir(), "fhirguard.db")
	st := openAt(t, path, newIndexer(t))
	raw := rawOpen(t, path)
	want := searchIndexes(t, raw)
	if want == 0 {
		t.Fatal("no search indexes to begin with")
	}
	putObservations(t, st, 0, 50)
	if _, ok, err := st.BeginBulk(context.Background(), 1<<20); err != nil || ok {
		t.Fatalf("BeginBulk of a small input = %v, %v; want not worth it", ok, err)
	}
	end, ok, err := st.BeginBulk(context.Background(), 1<<30)
	if err != nil || !ok {
		t.Fatalf("BeginBulk = %v, %v", ok, err)
	}
	if n := searchIndexes(t, raw); n != 0 {
		t.Errorf("%d search indexes during the bulk load, want 0", n)
	}
	if n := count(t, raw, `SELECT count(*) FROM bulk_indexes`); n != want {
		t.Errorf("bulk_indexes lists %d, want %d", n, want)
	}
	putObservations(t, st, 50, 300)
	code := url.Values{"code": {"http://loinc.org|c3"}}
	subject := url.Values{"subject": {"Patient/p2"}, "date": {"ge2024-01-10"}}
	during := []int{searchTotal(t, st, code), searchTotal(t, st, subject)}
	if err := end(context.Background()); err != nil {
		t.Fatal(err)
	}
	if n := searchIndexes(t, raw); n != want {
		t.Errorf("%d search indexes after the load, want %d", n, want)
	}
	if n := count(t, raw, `SELECT count(*) FROM bulk_indexes`); n != 0 {
		t.Errorf("bulk_indexes still lists %d", n)
	}
	after := []int{searchTotal(t, st, code), searchTotal(t, st, subject)}
	if during[0] != 50 || during[0] != after[0] || during[1] != after[1] || after[1] == 0 {
		t.Errorf("totals during the load %v, after %v; want 50 for the code and equal", during, after)
	}
}

// TestBulkLoadNeedsTheDataAlone: while another process (here another
// Store) has the data open, a bulk load does not start.
func TestBulkLoadNeedsTheDataAlone(t *testing.T) {
	path := filepath.Join(t.TempDir(), "fhirguard.db")
	a := openAt(t, path, newIndexer(t))
	b := openAt(t, path, newIndexer(t))
	if _, ok, err := a.BeginBulk(context.Background(), 1<<30); err != nil || ok {
		t.Fatalf("BeginBulk with the data open elsewhere = %v, %v; want false", ok, err)
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	end, ok, err := a.BeginBulk(context.Background(), 1<<30)
	if err != nil || !ok {
		t.Fatalf("BeginBulk alone = %v, %v", ok, err)
	}
	if err := end(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// TestOpenWaitsForABulkLoad: another Open waits until the load ends; one
// that gives up says why.
func TestOpenWaitsForABulkLoad(t *testing.T) {
	path := filepath.Join(t.TempDir(), "fhirguard.db")
	a := openAt(t, path, newIndexer(t))
	end, ok, err := a.BeginBulk(context.Background(), 1<<30)
	if err != nil || !ok {
		t.Fatalf("BeginBulk = %v, %v", ok, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	if _, err := sqlite.Open(ctx, sqlite.Options{Path: path, Indexer: newIndexer(t), Logger: slog.New(slog.DiscardHandler)}); err == nil {
		t.Fatal("Open during a bulk load did not wait")
	}
	opened := make(chan error, 1)
	go func() {
		s, err := sqlite.Open(context.Background(), sqlite.Options{Path: path, Indexer: newIndexer(t), Logger: slog.New(slog.DiscardHandler)})
		if err == nil {
			err = s.Close()
		}
		opened <- err
	}()
	select {
	case err := <-opened:
		t.Fatalf("Open returned during the bulk load: %v", err)
	case <-time.After(300 * time.Millisecond):
	}
	if err := end(context.Background()); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-opened:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Open still waits after the bulk load ended")
	}
}

// TestBulkLoadInterrupted: a load that never ended (its process died)
// leaves the indexes to the next Open.
func TestBulkLoadInterrupted(t *testing.T) {
	path := filepath.Join(t.TempDir(), "fhirguard.db")
	st, err := sqlite.Open(context.Background(), sqlite.Options{Path: path, Indexer: newIndexer(t), Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	raw := rawOpen(t, path)
	want := searchIndexes(t, raw)
	if _, ok, err := st.BeginBulk(context.Background(), 1<<30); err != nil || !ok {
		t.Fatalf("BeginBulk = %v, %v", ok, err)
	}
	putObservations(t, st, 0, 20)
	if err := st.Close(); err != nil { // as a crash would: end never runs
		t.Fatal(err)
	}
	if n := searchIndexes(t, raw); n != 0 {
		t.Fatalf("%d indexes before the reopen", n)
	}
	openAt(t, path, newIndexer(t))
	if n := searchIndexes(t, raw); n != want {
		t.Errorf("%d search indexes after the reopen, want %d", n, want)
	}
	if n := count(t, raw, `SELECT count(*) FROM bulk_indexes`); n != 0 {
		t.Errorf("bulk_indexes still lists %d", n)
	}
}
