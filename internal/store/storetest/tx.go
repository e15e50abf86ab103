package storetest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fhirguard/fhirguard/internal/store"
)

var errBoom = errors.New("storetest: boom")

var txCases = []testCase{
	{"fail/tx-atomicity", func(t *testing.T, s store.Store) {
		ctx := ctxT(t)
		err := s.Tx(ctx, func(tx store.Tx) error {
			for i := range 3 {
				if _, err := tx.Put(ctx, store.Write{Type: "Patient", ID: fmt.Sprint("p", i), Data: patient("x")}); err != nil {
					return err
				}
			}
			return errBoom
		})
		wantErr(t, "Tx returning an error", err, errBoom)
		for i := range 3 {
			_, err := s.Read(ctx, "Patient", fmt.Sprint("p", i))
			wantErr(t, "read after failed Tx", err, store.ErrNotFound)
		}
		p, err := s.History(ctx, store.HistoryQuery{Count: 10})
		if err != nil || p.Total != 0 {
			t.Fatalf("history after failed Tx: %+v %v", p, err)
		}
	}},
	{"fail/tx-rolls-back-update-and-index", func(t *testing.T, s store.Store) {
		ctx := ctxT(t)
		mustPut(t, s, store.Write{Type: "Observation", ID: "o1", Data: observation("a", "1")})
		err := s.Tx(ctx, func(tx store.Tx) error {
			if _, err := tx.Put(ctx, store.Write{Type: "Observation", ID: "o1", Data: observation("b", "2")}); err != nil {
				return err
			}
			if _, err := tx.Delete(ctx, "Observation", "o1", 0); err != nil {
				return err
			}
			return errBoom
		})
		wantErr(t, "failed Tx", err, errBoom)
		checkResource(t, "after rollback", mustRead(t, s, "Observation", "o1"), "Observation", "o1", 1, false)
		f, err := s.IndexFacts(ctx, "Observation", "o1")
		if err != nil || len(f.Patients) != 1 || f.Patients[0] != "a" {
			t.Fatalf("index after rollback = %+v, %v; want patient a", f, err)
		}
	}},
	{"ok/tx-reads-own-writes", func(t *testing.T, s store.Store) {
		ctx := ctxT(t)
		err := s.Tx(ctx, func(tx store.Tx) error {
			if _, err := tx.Read(ctx, "Patient", "p1"); !errors.Is(err, store.ErrNotFound) {
				return fmt.Errorf("read before put: %w", err)
			}
			for v := int64(1); v <= 2; v++ {
				if _, err := tx.Put(ctx, store.Write{Type: "Patient", ID: "p1", Data: patient(fmt.Sprint("v", v))}); err != nil {
					return err
				}
				r, err := tx.Read(ctx, "Patient", "p1")
				if err != nil {
					return fmt.Errorf("read own write: %w", err)
				}
				if r.VersionID != v {
					return fmt.Errorf("read own write: version %d, want %d", r.VersionID, v)
				}
			}
			if _, err := tx.Delete(ctx, "Patient", "p1", 2); err != nil {
				return err
			}
			if r, err := tx.Read(ctx, "Patient", "p1"); !errors.Is(err, store.ErrGone) || r == nil || r.VersionID != 3 {
				return fmt.Errorf("read own delete: %v %v", r, err)
			}
			return nil
		})
		if err != nil {
			t.Fatalf("Tx: %v", err)
		}
		r, err := s.Read(ctx, "Patient", "p1")
		wantErr(t, "read after Tx", err, store.ErrGone)
		checkResource(t, "after Tx", r, "Patient", "p1", 3, true)
	}},
	{"ok/concurrent-if-match", func(t *testing.T, s store.Store) {
		mustPut(t, s, store.Write{Type: "Patient", ID: "p1", Data: patient("base")})
		const n = 16
		var ok, conflicts atomic.Int32
		var wg sync.WaitGroup
		errs := make(chan error, n)
		for i := range n {
			wg.Go(func() {
				_, err := put(ctxT(t), s, store.Write{Type: "Patient", ID: "p1", Data: patient(fmt.Sprint("w", i)), IfMatch: 1})
				switch {
				case err == nil:
					ok.Add(1)
				case errors.Is(err, store.ErrConflict):
					conflicts.Add(1)
				default:
					errs <- err
				}
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Errorf("unexpected error: %v", err)
		}
		if ok.Load() != 1 || conflicts.Load() != n-1 {
			t.Fatalf("%d succeeded, %d conflicted; want 1 and %d", ok.Load(), conflicts.Load(), n-1)
		}
		checkResource(t, "after race", mustRead(t, s, "Patient", "p1"), "Patient", "p1", 2, false)
	}},
	{"ok/concurrent-tx-isolation", func(t *testing.T, s store.Store) {
		// Many concurrent transactions, every other one failing: each gets
		// its own result and only the successful ones are stored.
		const n = 40
		var wg sync.WaitGroup
		results := make([]error, n)
		for i := range n {
			wg.Go(func() {
				ctx := ctxT(t)
				results[i] = s.Tx(ctx, func(tx store.Tx) error {
					for k := range 2 {
						id := fmt.Sprintf("t%d-%d", i, k)
						if _, err := tx.Put(ctx, store.Write{Type: "Patient", ID: id, Data: patient(id)}); err != nil {
							return err
						}
					}
					if i%2 == 1 {
						return fmt.Errorf("tx %d: %w", i, errBoom)
					}
					return nil
				})
			})
		}
		wg.Wait()
		for i, err := range results {
			wantOK := i%2 == 0
			if wantOK != (err == nil) || (!wantOK && (!errors.Is(err, errBoom) || err.Error() != fmt.Sprintf("tx %d: %v", i, errBoom))) {
				t.Fatalf("tx %d: err = %v", i, err)
			}
			for k := range 2 {
				_, rerr := s.Read(ctxT(t), "Patient", fmt.Sprintf("t%d-%d", i, k))
				if wantOK && rerr != nil || !wantOK && !errors.Is(rerr, store.ErrNotFound) {
					t.Fatalf("tx %d resource %d: read err %v (tx ok %t)", i, k, rerr, wantOK)
				}
			}
		}
		p, err := s.History(ctxT(t), store.HistoryQuery{Count: 1})
		if err != nil || p.Total != n {
			t.Fatalf("history total %+v %v, want %d", p, err, n)
		}
	}},
	{"ok/concurrent-creates", func(t *testing.T, s store.Store) {
		const n = 64
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() {
				if _, err := put(ctxT(t), s, store.Write{Type: "Observation", ID: fmt.Sprint("o", i), Data: observation("p", "1"), CreateOnly: true}); err != nil {
					t.Errorf("create %d: %v", i, err)
				}
			})
		}
		wg.Wait()
		got, total := allPages(t, s, store.HistoryQuery{Type: "Observation", Count: 10})
		if total != n || len(got) != n {
			t.Fatalf("history after concurrent creates: %d entries, total %d; want %d", len(got), total, n)
		}
	}},
	{"fail/context-canceled", func(t *testing.T, s store.Store) {
		mustPut(t, s, store.Write{Type: "Patient", ID: "p1", Data: patient("One")})
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		done := make(chan struct{})
		go func() {
			defer close(done)
			if _, err := s.Read(ctx, "Patient", "p1"); !errors.Is(err, context.Canceled) {
				t.Errorf("Read: err = %v, want context.Canceled", err)
			}
			if _, err := s.VRead(ctx, "Patient", "p1", 1); !errors.Is(err, context.Canceled) {
				t.Errorf("VRead: err = %v, want context.Canceled", err)
			}
			if _, err := s.History(ctx, store.HistoryQuery{Count: 5}); !errors.Is(err, context.Canceled) {
				t.Errorf("History: err = %v, want context.Canceled", err)
			}
			if _, err := s.IndexFacts(ctx, "Patient", "p1"); !errors.Is(err, context.Canceled) {
				t.Errorf("IndexFacts: err = %v, want context.Canceled", err)
			}
			ran := false
			err := s.Tx(ctx, func(tx store.Tx) error {
				ran = true
				_, err := tx.Put(ctx, store.Write{Type: "Patient", ID: "p2", Data: patient("Two")})
				return err
			})
			if !errors.Is(err, context.Canceled) {
				t.Errorf("Tx: err = %v (fn ran %t), want context.Canceled", err, ran)
			}
		}()
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			t.Fatal("operations with a canceled context hang")
		}
		_, err := s.Read(ctxT(t), "Patient", "p2")
		wantErr(t, "write with canceled context", err, store.ErrNotFound)
	}},
	{"fail/context-canceled-inside-tx", func(t *testing.T, s store.Store) {
		ctx, cancel := context.WithCancel(ctxT(t))
		defer cancel()
		err := s.Tx(ctx, func(tx store.Tx) error {
			if _, err := tx.Put(ctx, store.Write{Type: "Patient", ID: "p1", Data: patient("One")}); err != nil {
				return err
			}
			cancel()
			_, err := tx.Put(ctx, store.Write{Type: "Patient", ID: "p2", Data: patient("Two")})
			return err
		})
		wantErr(t, "Tx whose context ends inside", err, context.Canceled)
		for _, id := range []string{"p1", "p2"} {
			_, err := s.Read(ctxT(t), "Patient", id)
			wantErr(t, "read "+id, err, store.ErrNotFound)
		}
		// The store keeps working.
		mustPut(t, s, store.Write{Type: "Patient", ID: "p3", Data: patient("Three")})
	}},
}
