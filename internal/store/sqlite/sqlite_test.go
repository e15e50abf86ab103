package sqlite_test

import (
	"bufio"
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fhirguard/fhirguard/internal/fhir"
	"github.com/fhirguard/fhirguard/internal/index"
	"github.com/fhirguard/fhirguard/internal/store"
	"github.com/fhirguard/fhirguard/internal/store/sqlite"
	"github.com/fhirguard/fhirguard/internal/store/sqlstore"
	"github.com/fhirguard/fhirguard/internal/store/storetest"
)

func openAt(t testing.TB, path string, ix store.Indexer) *sqlite.Store {
	t.Helper()
	s, err := sqlite.Open(context.Background(), sqlite.Options{
		Path:    path,
		Indexer: ix,
		Logger:  slog.New(slog.DiscardHandler),
	})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return s
}

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store {
		return openAt(t, filepath.Join(t.TempDir(), "fhirguard.db"), storetest.Indexer())
	})
}

// TestConformanceRealIndexer runs the suite with the production indexer.
func TestConformanceRealIndexer(t *testing.T) {
	ix, err := index.New()
	if err != nil {
		t.Fatalf("index.New: %v", err)
	}
	storetest.Run(t, func(t *testing.T) store.Store {
		return openAt(t, filepath.Join(t.TempDir(), "fhirguard.db"), ix)
	})
}

func patientData(name string) map[string]any {
	return map[string]any{"resourceType": "Patient", "name": []any{map[string]any{"family": name}}}
}

func putOne(ctx context.Context, s store.Store, typ, id string, data map[string]any) error {
	return s.Tx(ctx, func(tx store.Tx) error {
		_, err := tx.Put(ctx, store.Write{Type: typ, ID: id, Data: data})
		return err
	})
}

func TestOpen(t *testing.T) {
	t.Run("ok/reopen-keeps-data-and-schema", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "sub", "fhirguard.db")
		s := openAt(t, path, storetest.Indexer())
		if err := putOne(t.Context(), s, "Patient", "p1", patientData("One")); err != nil {
			t.Fatal(err)
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		for range 2 {
			s2 := openAt(t, path, storetest.Indexer())
			r, err := s2.Read(t.Context(), "Patient", "p1")
			if err != nil || r.VersionID != 1 {
				t.Fatalf("after reopen: %v %v", r, err)
			}
			if err := s2.Close(); err != nil {
				t.Fatal(err)
			}
		}
		db := rawDB(t, path)
		var n int
		if err := db.QueryRow(`SELECT COUNT(*) FROM schema_version`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n != len(sqlite.Migrations()) {
			t.Fatalf("schema_version has %d rows after three opens, want %d", n, len(sqlite.Migrations()))
		}
	})
	t.Run("fail/schema-too-new", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "fhirguard.db")
		s := openAt(t, path, storetest.Indexer())
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		if _, err := rawDB(t, path).Exec(`INSERT INTO schema_version (module, version, name, applied_at) VALUES ('future', 1, 'from a newer fhirguard', 0)`); err != nil {
			t.Fatal(err)
		}
		_, err := sqlite.Open(t.Context(), sqlite.Options{Path: path, Indexer: storetest.Indexer(), Logger: slog.New(slog.DiscardHandler)})
		if !errors.Is(err, sqlstore.ErrSchemaTooNew) {
			t.Fatalf("Open of a newer schema: %v", err)
		}
	})
	t.Run("fail/bad-options", func(t *testing.T) {
		for name, o := range map[string]sqlite.Options{
			"no path":     {Indexer: storetest.Indexer()},
			"no indexer":  {Path: filepath.Join(t.TempDir(), "x.db")},
			"memory":      {Path: ":memory:", Indexer: storetest.Indexer()},
			"query":       {Path: filepath.Join(t.TempDir(), "x.db?mode=ro"), Indexer: storetest.Indexer()},
			"bad sync":    {Path: filepath.Join(t.TempDir(), "x.db"), Indexer: storetest.Indexer(), Synchronous: "OFF"},
			"not a db":    {Path: notADatabase(t), Indexer: storetest.Indexer()},
			"dir is file": {Path: filepath.Join(notADatabase(t), "x.db"), Indexer: storetest.Indexer()},
		} {
			o.Logger = slog.New(slog.DiscardHandler)
			if s, err := sqlite.Open(t.Context(), o); err == nil {
				_ = s.Close()
				t.Errorf("%s: Open succeeded", name)
			}
		}
	})
	t.Run("ok/indexer-error-writes-nothing", func(t *testing.T) {
		s := openAt(t, filepath.Join(t.TempDir(), "fhirguard.db"), failingIndexer{})
		err := putOne(t.Context(), s, "Patient", "p1", patientData("One"))
		if err == nil || !strings.Contains(err.Error(), "indexer says no") {
			t.Fatalf("Put with failing indexer: %v", err)
		}
		if _, err := s.Read(t.Context(), "Patient", "p1"); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("read after indexer failure: %v", err)
		}
	})
}

type failingIndexer struct{}

func (failingIndexer) Index(string, map[string]any) (*store.IndexEntries, error) {
	return nil, errors.New("indexer says no")
}

func notADatabase(t *testing.T) string {
	p := filepath.Join(t.TempDir(), "junk")
	if err := os.WriteFile(p, bytes.Repeat([]byte("not sqlite "), 1000), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func rawDB(t *testing.T, path string) *sql.DB {
	t.Helper()
	db, err := sql.Open("sqlite", path+"?_pragma=busy_timeout(10000)")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	return db
}

// TestTwoWriters opens the same file twice, as the server and a concurrent
// "fhirguard import" process do: both write at once and both succeed.
func TestTwoWriters(t *testing.T) {
	path := filepath.Join(t.TempDir(), "fhirguard.db")
	a := openAt(t, path, storetest.Indexer())
	b := openAt(t, path, storetest.Indexer())
	const n = 100
	var wg sync.WaitGroup
	for w, s := range []*sqlite.Store{a, b} {
		for g := range 4 {
			wg.Go(func() {
				for i := range n / 4 {
					id := fmt.Sprintf("w%d-%d-%d", w, g, i)
					if err := putOne(t.Context(), s, "Patient", id, patientData(id)); err != nil {
						t.Errorf("writer %d: %v", w, err)
						return
					}
				}
			})
		}
	}
	wg.Wait()
	for _, s := range []*sqlite.Store{a, b} {
		p, err := s.History(t.Context(), store.HistoryQuery{Count: 1})
		if err != nil || p.Total != 2*n {
			t.Fatalf("history total %+v %v, want %d", p, err, 2*n)
		}
	}
}

// TestDurabilityKill9 writes from a child process, SIGKILLs it mid-stream
// and checks that every write the child saw acknowledged is in the database.
func TestDurabilityKill9(t *testing.T) {
	if path := os.Getenv("FHIRGUARD_SQLITE_CHILD"); path != "" {
		childWriter(path)
		return
	}
	if testing.Short() {
		t.Skip("spawns a child process")
	}
	path := filepath.Join(t.TempDir(), "fhirguard.db")
	cmd := exec.Command(os.Args[0], "-test.run=^TestDurabilityKill9$")
	cmd.Env = append(os.Environ(), "FHIRGUARD_SQLITE_CHILD="+path)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var acked []string
	sc := bufio.NewScanner(out)
	for sc.Scan() && len(acked) < 300 {
		if id, ok := strings.CutPrefix(sc.Text(), "ok "); ok {
			acked = append(acked, id)
		}
	}
	if err := cmd.Process.Kill(); err != nil { // SIGKILL
		t.Fatal(err)
	}
	_ = cmd.Wait()
	if len(acked) < 300 {
		t.Fatalf("child acknowledged only %d writes", len(acked))
	}
	s := openAt(t, path, storetest.Indexer())
	for _, id := range acked {
		if _, err := s.Read(t.Context(), "Patient", id); err != nil {
			t.Fatalf("acknowledged write %s lost after kill -9: %v", id, err)
		}
	}
	var check string
	if err := rawDB(t, path).QueryRow("PRAGMA integrity_check").Scan(&check); err != nil || check != "ok" {
		t.Fatalf("integrity_check: %q %v", check, err)
	}
}

func childWriter(path string) {
	s, err := sqlite.Open(context.Background(), sqlite.Options{Path: path, Indexer: storetest.Indexer(), Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		fmt.Fprintln(os.Stderr, "child open:", err)
		os.Exit(2)
	}
	var mu sync.Mutex
	for g := range 8 {
		go func() {
			for i := 0; ; i++ {
				id := fmt.Sprintf("g%d-%d", g, i)
				if err := putOne(context.Background(), s, "Patient", id, patientData(id)); err != nil {
					fmt.Fprintln(os.Stderr, "child write:", err)
					os.Exit(3)
				}
				mu.Lock()
				fmt.Println("ok " + id)
				mu.Unlock()
			}
		}()
	}
	select {} // until killed
}

// TestBusy: another process holding the write lock longer than BusyTimeout
// gives a retryable transient error, and the store recovers afterwards.
func TestBusy(t *testing.T) {
	path := filepath.Join(t.TempDir(), "fhirguard.db")
	s, err := sqlite.Open(t.Context(), sqlite.Options{
		Path: path, Indexer: storetest.Indexer(), Logger: slog.New(slog.DiscardHandler),
		BusyTimeout: 50 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	conn, err := rawDB(t, path).Conn(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.ExecContext(t.Context(), "BEGIN IMMEDIATE"); err != nil {
		t.Fatal(err)
	}
	err = putOne(t.Context(), s, "Patient", "p1", patientData("x"))
	fe, ok := fhir.AsError(err)
	if !ok || fe.Code != fhir.IssueTransient || fe.HTTPStatus() != 503 || strings.Contains(fe.Diag, "sqlite") {
		t.Fatalf("write while locked: %v", err)
	}
	if _, err := conn.ExecContext(t.Context(), "ROLLBACK"); err != nil {
		t.Fatal(err)
	}
	if err := putOne(t.Context(), s, "Patient", "p1", patientData("x")); err != nil {
		t.Fatalf("write after the lock is released: %v", err)
	}
}
