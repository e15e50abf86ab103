package postgres_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/fhirguard/fhirguard/internal/clock"
	"github.com/fhirguard/fhirguard/internal/store"
	"github.com/fhirguard/fhirguard/internal/store/postgres"
	"github.com/fhirguard/fhirguard/internal/store/postgres/pgtest"
	"github.com/fhirguard/fhirguard/internal/store/storetest"
)

// open opens the audit log on dsn (closed at cleanup).
func open(t testing.TB, dsn string) *postgres.AuditLog {
	t.Helper()
	l, err := postgres.OpenAudit(context.Background(), dsn, postgres.Options{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = l.Close() })
	return l
}

// fresh opens the audit log in a new schema and returns it with its DSN.
func fresh(t testing.TB) (*postgres.AuditLog, string) {
	t.Helper()
	dsn := pgtest.Schema(t)
	return open(t, dsn), dsn
}

// rec is a small record chained after prev.
func rec(seq int64, prev []byte, refs ...store.AuditRef) store.AuditRecord {
	return store.AuditRecord{Seq: seq, Recorded: time.UnixMilli(1_700_000_000_000 + seq*1000).UTC(),
		Body: []byte(`{"resourceType":"AuditEvent"}`), Prev: prev, Hash: bytes.Repeat([]byte{byte(seq)}, 32),
		Outcome: "0", Action: "R", Type: "s|rest", Subtype: "|read|", Refs: refs}
}

// TestAuditConformance runs the audit log conformance suite on
// PostgreSQL, each log in a schema of its own.
func TestAuditConformance(t *testing.T) {
	t.Parallel()
	storetest.RunAudit(t, func(t *testing.T) storetest.AuditFixture {
		st, dsn := fresh(t)
		return storetest.AuditFixture{
			Log:    st,
			Outbox: st.OutboxTx,
			Reopen: func(t *testing.T, dropPostings bool) storetest.AuditLog {
				if err := st.Close(); err != nil {
					t.Fatal(err)
				}
				db := pgtest.DB(t, dsn)
				if dropPostings {
					for _, q := range []string{`DELETE FROM audit_postings`, `UPDATE audit_head SET indexed = 0`} {
						if _, err := db.Exec(q); err != nil {
							t.Fatal(err)
						}
					}
				}
				st = open(t, dsn)
				var postings int
				if err := db.QueryRow(`SELECT COUNT(*) FROM audit_postings`).Scan(&postings); err != nil || (dropPostings && postings == 0) {
					t.Fatalf("postings after reopening: %d %v", postings, err)
				}
				return st
			},
		}
	})
}

// TestAuditTxAbortedStatement: a failed statement aborts a PostgreSQL
// transaction; a function that ignores the error must not get a nil
// AuditTx (COMMIT would answer ROLLBACK), and nothing of it stays.
func TestAuditTxAbortedStatement(t *testing.T) {
	t.Parallel()
	st, _ := fresh(t)
	ctx := context.Background()
	head, _ := st.AuditHeadRow(ctx)
	if err := st.AuditTx(ctx, func(tx store.AuditTx) error {
		return tx.AppendAudit(ctx, head, []store.AuditRecord{rec(1, head.Hash)}, 0)
	}); err != nil {
		t.Fatal(err)
	}
	err := st.AuditTx(ctx, func(tx store.AuditTx) error {
		_ = tx.AddAuditCheckpoint(ctx, store.AuditCheckpoint{Seq: 1, Hash: make([]byte, 32), Created: time.Now(), Signature: "a"})
		_ = tx.AddAuditCheckpoint(ctx, store.AuditCheckpoint{Seq: 1, Hash: make([]byte, 32), Created: time.Now(), Signature: "b"})
		return nil
	})
	if err == nil {
		t.Fatal("a transaction with a failed statement reported committed")
	}
	if cps, err := st.AuditCheckpoints(ctx); err != nil || len(cps) != 0 {
		t.Fatalf("checkpoints of the aborted transaction: %+v %v", cps, err)
	}
	if h, err := st.AuditHeadRow(ctx); err != nil || h.Seq != 1 {
		t.Fatalf("head %+v %v", h, err)
	}
}

// TestConcurrentAppendersOneChain: two audit logs (as two processes) on
// one database append from the same stale head at once: exactly one
// wins, the other gets ErrAuditChainMoved; appenders that read the head
// inside their transaction all succeed, one at a time, into one chain.
func TestConcurrentAppendersOneChain(t *testing.T) {
	t.Parallel()
	a, dsn := fresh(t)
	b := open(t, dsn)
	ctx := context.Background()
	logs := []*postgres.AuditLog{a, b}
	for round := range 5 {
		head, err := a.AuditHeadRow(ctx)
		if err != nil {
			t.Fatal(err)
		}
		errs := make([]error, 2)
		var wg sync.WaitGroup
		for i, l := range logs {
			wg.Go(func() {
				r := rec(head.Seq+1, head.Hash)
				r.Body = fmt.Appendf(nil, `{"from":%d}`, i)
				errs[i] = l.AuditTx(ctx, func(tx store.AuditTx) error { return tx.AppendAudit(ctx, head, []store.AuditRecord{r}, head.Outbox) })
			})
		}
		wg.Wait()
		moved := 0
		for _, err := range errs {
			switch {
			case errors.Is(err, store.ErrAuditChainMoved):
				moved++
			case err != nil:
				t.Fatalf("round %d: %v", round, err)
			}
		}
		if moved != 1 {
			t.Fatalf("round %d: %d appenders saw the chain move, want 1 (%v)", round, moved, errs)
		}
	}
	const perWriter = 20
	var wg sync.WaitGroup
	errs := make(chan error, 4*perWriter)
	for w := range 4 {
		l := logs[w%2]
		wg.Go(func() {
			for range perWriter {
				errs <- l.AuditTx(ctx, func(tx store.AuditTx) error {
					h, err := tx.AuditHead(ctx)
					if err != nil {
						return err
					}
					time.Sleep(100 * time.Microsecond) // widen the window
					r := rec(h.Seq+1, h.Hash)
					r.Hash = fmt.Appendf(nil, "%032d", h.Seq+1)
					return tx.AppendAudit(ctx, h, []store.AuditRecord{r}, h.Outbox)
				})
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	recs, err := b.AuditScan(ctx, 0, 1000)
	if err != nil || len(recs) != 5+4*perWriter {
		t.Fatalf("scan: %d records, %v", len(recs), err)
	}
	for i, r := range recs {
		if r.Seq != int64(i+1) || (i > 0 && !bytes.Equal(r.Prev, recs[i-1].Hash)) {
			t.Fatalf("record %d: seq %d, prev %x after %x", i, r.Seq, r.Prev, recs[max(i-1, 0)].Hash)
		}
	}
}

// TestMigrateOnceConcurrently: processes starting together on an empty
// schema migrate it once (advisory lock) and all open.
func TestMigrateOnceConcurrently(t *testing.T) {
	t.Parallel()
	dsn := pgtest.Schema(t)
	var wg sync.WaitGroup
	errs := make([]error, 4)
	for i := range errs {
		wg.Go(func() {
			l, err := postgres.OpenAudit(context.Background(), dsn, postgres.Options{Clock: clock.System{}})
			if err == nil {
				err = l.Close()
			}
			errs[i] = err
		})
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	db := pgtest.DB(t, dsn)
	var n int
	if err := db.QueryRow(`SELECT COUNT(*) FROM schema_version`).Scan(&n); err != nil || n != 5 {
		t.Fatalf("schema_version rows %d %v, want 5 (audit 1–4, outbox 1)", n, err)
	}
}

// TestOpenErrors: a DSN that cannot be parsed, and a search_path naming
// no existing schema, are errors that say so.
func TestOpenErrors(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	_, err := postgres.OpenAudit(ctx, "postgres://u:pw@[::1", postgres.Options{})
	if err == nil || bytes.Contains([]byte(err.Error()), []byte("pw")) {
		t.Fatalf("bad DSN: %v", err)
	}
	dsn := pgtest.Schema(t)
	other, err := pgtest.WithSearchPath(dsn, "fg_test_no_such_schema")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := postgres.OpenAudit(ctx, other, postgres.Options{}); err == nil || !bytes.Contains([]byte(err.Error()), []byte("search_path")) {
		t.Fatalf("missing schema: %v", err)
	}
}
