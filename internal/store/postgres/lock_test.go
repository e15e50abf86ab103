package postgres_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/fhirguard/fhirguard/internal/store"
	"github.com/fhirguard/fhirguard/internal/store/postgres/pgtest"
)

// holdHead runs an audit transaction on l that locks the head and keeps
// it until release is called (at the latest when the test ends); it
// returns once the lock is held, with release and a channel with the
// transaction's result.
func holdHead(t *testing.T, l store.AuditLog) (release func(), done <-chan error) {
	t.Helper()
	rel := make(chan struct{})
	var once sync.Once
	release = func() { once.Do(func() { close(rel) }) }
	t.Cleanup(release)
	held := make(chan struct{})
	res := make(chan error, 1)
	go func() {
		res <- l.AuditTx(context.Background(), func(tx store.AuditTx) error {
			if _, err := tx.AuditHead(context.Background()); err != nil {
				return err
			}
			close(held)
			<-rel
			return nil
		})
	}()
	select {
	case <-held:
	case err := <-res:
		t.Fatalf("holding the head: %v", err)
	}
	return release, res
}

// TestReadersDoNotWaitForTheWriter: while one process's audit transaction
// holds the head row, another's reads (head, anchor, search, scan) answer
// at once — only audit transactions take the row lock.
func TestReadersDoNotWaitForTheWriter(t *testing.T) {
	t.Parallel()
	a, dsn := fresh(t)
	b := open(t, dsn)
	ctx := context.Background()
	head, _ := a.AuditHeadRow(ctx)
	if err := a.AuditTx(ctx, func(tx store.AuditTx) error {
		return tx.AppendAudit(ctx, head, []store.AuditRecord{rec(1, head.Hash, store.AuditRef{Param: "patient", Value: "Patient/pA"})}, 0)
	}); err != nil {
		t.Fatal(err)
	}
	release, done := holdHead(t, b)
	rctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	if h, err := a.AuditHeadRow(rctx); err != nil || h.Seq != 1 {
		t.Fatalf("head while another process holds it: %+v %v", h, err)
	}
	if _, err := a.AuditAnchor(rctx); err != nil {
		t.Fatalf("anchor: %v", err)
	}
	if p, err := a.AuditSearch(rctx, store.AuditQuery{Refs: []store.AuditRef{{Param: "patient", Value: "Patient/pA"}}, Count: 5}); err != nil || len(p.Records) != 1 {
		t.Fatalf("search: %+v %v", p, err)
	}
	if rs, err := a.AuditScan(rctx, 0, 5); err != nil || len(rs) != 1 {
		t.Fatalf("scan: %+v %v", rs, err)
	}
	release()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// TestAuditTxCanceledWhileWaiting: an audit transaction waiting for
// another process's head lock gives up when its context ends, and the
// log's next transaction works (the writer connection is replaced when
// the cancellation broke it).
func TestAuditTxCanceledWhileWaiting(t *testing.T) {
	t.Parallel()
	a, dsn := fresh(t)
	b := open(t, dsn)
	release, done := holdHead(t, b)
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	err := a.AuditTx(ctx, func(tx store.AuditTx) error {
		_, err := tx.AuditHead(ctx)
		return err
	})
	if err == nil || time.Since(start) > 5*time.Second {
		t.Fatalf("waiting transaction: %v after %v", err, time.Since(start))
	}
	release()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	bg := context.Background()
	head, err := a.AuditHeadRow(bg)
	if err != nil {
		t.Fatal(err)
	}
	if err := a.AuditTx(bg, func(tx store.AuditTx) error {
		return tx.AppendAudit(bg, head, []store.AuditRecord{rec(1, head.Hash)}, 0)
	}); err != nil {
		t.Fatalf("transaction after the cancellation: %v", err)
	}
	if err := a.AuditTx(bg, func(tx store.AuditTx) error { return errors.New("x") }); err == nil {
		t.Fatal("fn's error lost")
	}
}

// TestRecoversFromLostConnections: after the server ends every connection
// (as a restart does), audit transactions and reads fail closed at worst
// once and then work again on new connections, continuing the chain.
func TestRecoversFromLostConnections(t *testing.T) {
	t.Parallel()
	st, dsn := fresh(t)
	ctx := context.Background()
	appendOne := func() error {
		return st.AuditTx(ctx, func(tx store.AuditTx) error {
			h, err := tx.AuditHead(ctx)
			if err != nil {
				return err
			}
			return tx.AppendAudit(ctx, h, []store.AuditRecord{rec(h.Seq+1, h.Hash)}, h.Outbox)
		})
	}
	if err := appendOne(); err != nil {
		t.Fatal(err)
	}
	if _, err := st.AuditScan(ctx, 0, 10); err != nil {
		t.Fatal(err)
	}
	if n := pgtest.Terminate(t, dsn); n < 2 {
		t.Fatalf("%d connections ended, want the writer's and a reader's", n)
	}
	var failures int
	for try := 0; ; try++ {
		err := appendOne()
		if err == nil {
			break
		}
		t.Logf("append after the connections were lost: %v", err)
		if failures++; failures > 1 {
			t.Fatalf("append %d after the connections were lost: %v", try, err)
		}
	}
	var recs []store.AuditRecord
	for try := 0; ; try++ {
		var err error
		if recs, err = st.AuditScan(ctx, 0, 10); err == nil {
			break
		}
		if try > 2 {
			t.Fatalf("scan after the connections were lost: %v", err)
		}
	}
	if len(recs) != 2 || recs[1].Seq != 2 {
		t.Fatalf("records %+v", recs)
	}
}
