package sqlite

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fhirguard/fhirguard/internal/store"
	"github.com/fhirguard/fhirguard/internal/store/storetest"
)

func openTest(t *testing.T) *Store {
	t.Helper()
	s, err := Open(t.Context(), Options{
		Path:    filepath.Join(t.TempDir(), "fhirguard.db"),
		Indexer: storetest.Indexer(),
		Logger:  slog.New(slog.DiscardHandler),
	})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func patientData(name string) map[string]any {
	return map[string]any{"resourceType": "Patient", "name": []any{map[string]any{"family": name}}}
}

// holdWriter queues a Tx whose fn blocks until the returned release is
// called, and waits until the writer is running it; Tx calls made meanwhile
// all queue up for the next group.
func holdWriter(t *testing.T, s *Store) (release func()) {
	t.Helper()
	running, gate := make(chan struct{}), make(chan struct{})
	done := make(chan error, 1)
	go func() {
		done <- s.Tx(t.Context(), func(tx store.Tx) error {
			close(running)
			<-gate
			return nil
		})
	}()
	<-running
	return func() {
		close(gate)
		if err := <-done; err != nil {
			t.Errorf("holding Tx: %v", err)
		}
	}
}

func waitQueued(t *testing.T, s *Store, n int) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for len(s.w.jobs) < n {
		if time.Now().After(deadline) {
			t.Fatalf("only %d of %d Tx calls queued", len(s.w.jobs), n)
		}
		time.Sleep(time.Millisecond)
	}
}

// putAsync starts n Tx calls; fn(i) is the body of the i-th.
func putAsync(t *testing.T, s *Store, n int, fn func(i int, tx store.Tx) error) (wait func() []error) {
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { errs[i] = s.Tx(t.Context(), func(tx store.Tx) error { return fn(i, tx) }) })
	}
	return func() []error { wg.Wait(); return errs }
}

func TestGroupCommit(t *testing.T) {
	t.Run("ok/one-transaction-for-queued-calls", func(t *testing.T) {
		s := openTest(t)
		release := holdWriter(t, s)
		const n = 50
		wait := putAsync(t, s, n, func(i int, tx store.Tx) error {
			_, err := tx.Put(t.Context(), store.Write{Type: "Patient", ID: fmt.Sprint("p", i), Data: patientData("x")})
			return err
		})
		waitQueued(t, s, n)
		before := s.Stats()
		release()
		for i, err := range wait() {
			if err != nil {
				t.Fatalf("Tx %d: %v", i, err)
			}
		}
		st := s.Stats()
		// The holding Tx was its own group; the n queued calls are one more.
		if got := st.Batches - before.Batches; got != 1 || st.Txs-before.Txs != n {
			t.Fatalf("%d queued Tx calls took %d groups (%d txs), want 1 group", n, got, st.Txs-before.Txs)
		}
		p, err := s.History(t.Context(), store.HistoryQuery{Count: 1})
		if err != nil || p.Total != n {
			t.Fatalf("history total %+v %v, want %d", p, err, n)
		}
	})

	t.Run("fail/savepoint-isolates-failing-member", func(t *testing.T) {
		s := openTest(t)
		release := holdWriter(t, s)
		const n = 20
		wait := putAsync(t, s, n, func(i int, tx store.Tx) error {
			if _, err := tx.Put(t.Context(), store.Write{Type: "Patient", ID: fmt.Sprint("p", i), Data: patientData("x")}); err != nil {
				return err
			}
			if i%3 == 0 {
				return fmt.Errorf("member %d: %w", i, errTest)
			}
			return nil
		})
		waitQueued(t, s, n)
		release()
		for i, err := range wait() {
			if (i%3 == 0) != errors.Is(err, errTest) || i%3 != 0 && err != nil {
				t.Fatalf("Tx %d: err %v", i, err)
			}
			_, rerr := s.Read(t.Context(), "Patient", fmt.Sprint("p", i))
			if i%3 == 0 && !errors.Is(rerr, store.ErrNotFound) || i%3 != 0 && rerr != nil {
				t.Fatalf("Patient p%d: read err %v", i, rerr)
			}
		}
	})

	t.Run("fail/broken-transaction-retries-members-alone", func(t *testing.T) {
		// A member that makes SQLite abandon the whole transaction must
		// not take the others down: they are retried one by one.
		s := openTest(t)
		release := holdWriter(t, s)
		const n = 10
		wait := putAsync(t, s, n, func(i int, tx store.Tx) error {
			if _, err := tx.Put(t.Context(), store.Write{Type: "Patient", ID: fmt.Sprint("p", i), Data: patientData("x")}); err != nil {
				return err
			}
			if i == 4 {
				if err := s.w.exec("ROLLBACK"); err != nil {
					t.Errorf("test rollback: %v", err)
				}
				return errTest
			}
			return nil
		})
		waitQueued(t, s, n)
		release()
		for i, err := range wait() {
			if i == 4 {
				if err == nil {
					t.Fatal("breaking member succeeded")
				}
				continue
			}
			if err != nil {
				t.Fatalf("Tx %d: %v", i, err)
			}
			if _, err := s.Read(t.Context(), "Patient", fmt.Sprint("p", i)); err != nil {
				t.Fatalf("p%d not stored: %v", i, err)
			}
		}
		if _, err := s.Read(t.Context(), "Patient", "p4"); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("breaking member's write: %v", err)
		}
	})

	t.Run("fail/panic-reaches-caller-only", func(t *testing.T) {
		s := openTest(t)
		release := holdWriter(t, s)
		wait := putAsync(t, s, 5, func(i int, tx store.Tx) error {
			_, err := tx.Put(t.Context(), store.Write{Type: "Patient", ID: fmt.Sprint("p", i), Data: patientData("x")})
			return err
		})
		panicked := make(chan any, 1)
		go func() {
			defer func() { panicked <- recover() }()
			_ = s.Tx(t.Context(), func(tx store.Tx) error {
				if _, err := tx.Put(t.Context(), store.Write{Type: "Patient", ID: "boom", Data: patientData("x")}); err != nil {
					return err
				}
				panic("kaboom")
			})
		}()
		waitQueued(t, s, 6)
		release()
		for i, err := range wait() {
			if err != nil {
				t.Fatalf("Tx %d next to a panicking one: %v", i, err)
			}
		}
		if p := <-panicked; p == nil || !strings.Contains(fmt.Sprint(p), "kaboom") {
			t.Fatalf("caller recovered %v, want the panic", p)
		}
		if _, err := s.Read(t.Context(), "Patient", "boom"); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("panicking Tx's write: %v", err)
		}
	})

	t.Run("fail/abandoned-while-queued-never-runs", func(t *testing.T) {
		s := openTest(t)
		release := holdWriter(t, s)
		ctx, cancel := context.WithCancel(t.Context())
		ran := make(chan struct{}, 1)
		errc := make(chan error, 1)
		go func() {
			errc <- s.Tx(ctx, func(tx store.Tx) error {
				ran <- struct{}{}
				_, err := tx.Put(context.Background(), store.Write{Type: "Patient", ID: "p1", Data: patientData("x")})
				return err
			})
		}()
		waitQueued(t, s, 1)
		cancel()
		if err := <-errc; !errors.Is(err, context.Canceled) {
			t.Fatalf("Tx canceled while queued: %v", err)
		}
		release()
		// A later Tx goes through the same writer after the abandoned one.
		if err := s.Tx(t.Context(), func(tx store.Tx) error { return nil }); err != nil {
			t.Fatal(err)
		}
		select {
		case <-ran:
			t.Fatal("abandoned Tx ran")
		default:
		}
		if _, err := s.Read(t.Context(), "Patient", "p1"); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("abandoned Tx wrote: %v", err)
		}
	})

	t.Run("ok/readers-see-only-committed", func(t *testing.T) {
		s := openTest(t)
		err := s.Tx(t.Context(), func(tx store.Tx) error {
			if _, err := tx.Put(t.Context(), store.Write{Type: "Patient", ID: "p1", Data: patientData("x")}); err != nil {
				return err
			}
			if _, err := s.Read(t.Context(), "Patient", "p1"); !errors.Is(err, store.ErrNotFound) {
				return fmt.Errorf("reader saw an uncommitted write: %v", err)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.Read(t.Context(), "Patient", "p1"); err != nil {
			t.Fatalf("committed write not visible: %v", err)
		}
	})

	t.Run("ok/close-waits-for-queued", func(t *testing.T) {
		s := openTest(t)
		release := holdWriter(t, s)
		wait := putAsync(t, s, 10, func(i int, tx store.Tx) error {
			_, err := tx.Put(t.Context(), store.Write{Type: "Patient", ID: fmt.Sprint("p", i), Data: patientData("x")})
			return err
		})
		waitQueued(t, s, 10)
		closed := make(chan error, 1)
		go func() { closed <- s.Close() }()
		release()
		if err := <-closed; err != nil {
			t.Fatalf("Close: %v", err)
		}
		for i, err := range wait() {
			if err != nil {
				t.Fatalf("queued Tx %d at Close: %v", i, err)
			}
		}
	})
}

var errTest = errors.New("test failure")

// TestWALStaysBounded: a steady stream of writes with the checkpointer off
// the writer does not let the WAL file grow without bound.
func TestWALStaysBounded(t *testing.T) {
	if testing.Short() {
		t.Skip("writes about 150 MB")
	}
	path := filepath.Join(t.TempDir(), "fhirguard.db")
	s, err := Open(t.Context(), Options{Path: path, Indexer: storetest.Indexer(), Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx := t.Context()
	big := strings.Repeat("x", 4000)
	for i := range 10000 {
		err := s.Tx(ctx, func(tx store.Tx) error {
			_, err := tx.Put(ctx, store.Write{Type: "Patient", ID: fmt.Sprintf("p%d", i%5000),
				Data: map[string]any{"resourceType": "Patient", "name": []any{map[string]any{"family": big}}}})
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	fi, err := os.Stat(path + "-wal")
	if err != nil {
		t.Fatal(err)
	}
	if fi.Size() > 100<<20 {
		t.Fatalf("WAL is %d MiB after steady writes", fi.Size()>>20)
	}
}
