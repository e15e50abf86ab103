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

// TestAuditLogStorage covers the audit log's storage contract on
// PostgreSQL: append continuing the head, refusal of a stale head, reads,
// search keys, checkpoints, BTG reviews, cursors, keys and prune.
func TestAuditLogStorage(t *testing.T) {
	t.Parallel()
	st, _ := fresh(t)
	ctx := context.Background()
	head, err := st.AuditHeadRow(ctx)
	if err != nil || head.Seq != 0 || len(head.Hash) != 32 {
		t.Fatalf("empty head %+v, %v", head, err)
	}
	r1 := rec(1, head.Hash, store.AuditRef{Param: "patient", Value: "Patient/pA"})
	r2 := rec(2, r1.Hash, store.AuditRef{Param: "btg", Value: "1"}, store.AuditRef{Param: "patient", Value: "Patient/pB"})
	appendRecs := func(h store.AuditHead, recs ...store.AuditRecord) error {
		return st.AuditTx(ctx, func(tx store.AuditTx) error { return tx.AppendAudit(ctx, h, recs, h.Outbox) })
	}
	if err := appendRecs(head, r1, r2); err != nil {
		t.Fatal(err)
	}
	if err := appendRecs(head, rec(1, head.Hash)); !errors.Is(err, store.ErrAuditChainMoved) {
		t.Fatalf("append on a stale head: %v", err)
	}
	h, err := st.AuditHeadRow(ctx)
	if err != nil || h.Seq != 2 || !bytes.Equal(h.Hash, r2.Hash) || !h.Recorded.Equal(r2.Recorded) {
		t.Fatalf("head %+v %v", h, err)
	}
	got, err := st.AuditRead(ctx, 2)
	if err != nil || got.Subtype != "|read|" || !got.Recorded.Equal(r2.Recorded) || !bytes.Equal(got.Prev, r1.Hash) || len(got.Refs) != 2 {
		t.Fatalf("read %+v %v", got, err)
	}
	if _, err := st.AuditRead(ctx, 3); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("read past the head: %v", err)
	}
	page, err := st.AuditSearch(ctx, store.AuditQuery{Refs: []store.AuditRef{{Param: "patient", Value: "Patient/pB"}}, Subtypes: []string{"read"}, Count: 5})
	if err != nil || len(page.Records) != 1 || page.Records[0].Seq != 2 || page.More {
		t.Fatalf("search %+v %v", page, err)
	}
	page, err = st.AuditSearch(ctx, store.AuditQuery{Types: []string{"rest"}, Count: 1})
	if err != nil || len(page.Records) != 1 || !page.More || page.Records[0].Seq != 2 {
		t.Fatalf("paged search %+v %v", page, err)
	}
	page, err = st.AuditSearch(ctx, store.AuditQuery{Types: []string{"rest"}, Count: 1, Before: 2})
	if err != nil || len(page.Records) != 1 || page.More || page.Records[0].Seq != 1 {
		t.Fatalf("next page %+v %v", page, err)
	}
	scan, err := st.AuditScan(ctx, 0, 10)
	if err != nil || len(scan) != 2 || !bytes.Equal(scan[1].Hash, r2.Hash) || !bytes.Equal(scan[0].Body, r1.Body) {
		t.Fatalf("scan %+v %v", scan, err)
	}
	tx := func(fn func(store.AuditTx) error) error { return st.AuditTx(ctx, fn) }
	cp := store.AuditCheckpoint{Seq: 1, Hash: r1.Hash, Created: time.UnixMilli(1_700_000_001_000).UTC(), Signature: "x.y.z"}
	if err := tx(func(a store.AuditTx) error { return a.AddAuditCheckpoint(ctx, cp) }); err != nil {
		t.Fatal(err)
	}
	if err := tx(func(a store.AuditTx) error { return a.AddAuditCheckpoint(ctx, cp) }); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("second checkpoint at one seq: %v", err)
	}
	if cps, err := st.AuditCheckpoints(ctx); err != nil || len(cps) != 1 || cps[0].Signature != "x.y.z" || !cps[0].Created.Equal(cp.Created) {
		t.Fatalf("checkpoints %+v %v", cps, err)
	}
	if err := tx(func(a store.AuditTx) error { return a.ReviewBTG(ctx, store.BTGReview{Seq: 1, ReviewedAt: time.Now()}) }); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("review of a non-BTG record: %v", err)
	}
	if btg, err := st.AuditBTG(ctx, false); err != nil || len(btg) != 1 || btg[0].Seq != 2 {
		t.Fatalf("btg %+v %v", btg, err)
	}
	review := store.BTGReview{Seq: 2, ReviewedAt: time.UnixMilli(1_700_000_009_000).UTC(), Reviewer: "aud1", Note: "ok"}
	if err := tx(func(a store.AuditTx) error { return a.ReviewBTG(ctx, review) }); err != nil {
		t.Fatal(err)
	}
	if err := tx(func(a store.AuditTx) error { return a.ReviewBTG(ctx, review) }); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("second review: %v", err)
	}
	if btg, err := st.AuditBTG(ctx, false); err != nil || len(btg) != 0 {
		t.Fatalf("pending btg after review %+v %v", btg, err)
	}
	if btg, err := st.AuditBTG(ctx, true); err != nil || len(btg) != 1 || btg[0].Reviewer != "aud1" || !btg[0].ReviewedAt.Equal(review.ReviewedAt) {
		t.Fatalf("all btg %+v %v", btg, err)
	}
	for _, seq := range []int64{2, 1} {
		if err := tx(func(a store.AuditTx) error { return a.SetAuditCursor(ctx, "siem", seq) }); err != nil {
			t.Fatal(err)
		}
	}
	if c, err := st.AuditCursor(ctx, "siem"); err != nil || c != 1 {
		t.Fatalf("cursor %d %v", c, err)
	}
	if c, err := st.AuditCursor(ctx, "other"); err != nil || c != 0 {
		t.Fatalf("unset cursor %d %v", c, err)
	}
	k1, err := st.AuditKey(ctx, "k", func() ([]byte, error) { return []byte("secret-1"), nil })
	if err != nil {
		t.Fatal(err)
	}
	k2, err := st.AuditKey(ctx, "k", func() ([]byte, error) { return []byte("secret-2"), nil })
	if err != nil || !bytes.Equal(k1, k2) || string(k1) != "secret-1" {
		t.Fatalf("key not kept: %q %q %v", k1, k2, err)
	}
	var n int64
	if err := tx(func(a store.AuditTx) error {
		var err error
		n, err = a.PruneAudit(ctx, store.AuditAnchor{Seq: 1, Hash: r1.Hash})
		return err
	}); err != nil || n != 1 {
		t.Fatalf("prune %d %v", n, err)
	}
	if an, err := st.AuditAnchor(ctx); err != nil || an.Seq != 1 || !bytes.Equal(an.Hash, r1.Hash) {
		t.Fatalf("anchor %+v %v", an, err)
	}
	if _, err := st.AuditRead(ctx, 1); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("pruned record still readable: %v", err)
	}
	if scan, err := st.AuditScan(ctx, 0, 10); err != nil || len(scan) != 1 || scan[0].Seq != 2 {
		t.Fatalf("scan after prune %+v %v", scan, err)
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := st.AuditHeadRow(ctx); !errors.Is(err, store.ErrClosed) {
		t.Fatalf("read after close: %v", err)
	}
	if err := tx(func(store.AuditTx) error { return nil }); !errors.Is(err, store.ErrClosed) {
		t.Fatalf("transaction after close: %v", err)
	}
}

// TestAuditTxRollsBack: fn's error leaves nothing behind, and the writer
// goes on working.
func TestAuditTxRollsBack(t *testing.T) {
	t.Parallel()
	st, _ := fresh(t)
	ctx := context.Background()
	head, _ := st.AuditHeadRow(ctx)
	boom := errors.New("boom")
	err := st.AuditTx(ctx, func(tx store.AuditTx) error {
		if err := tx.AppendAudit(ctx, head, []store.AuditRecord{rec(1, head.Hash)}, 0); err != nil {
			return err
		}
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatalf("AuditTx: %v", err)
	}
	if h, err := st.AuditHeadRow(ctx); err != nil || h.Seq != 0 {
		t.Fatalf("head after rollback %+v %v", h, err)
	}
	if err := st.AuditTx(ctx, func(tx store.AuditTx) error {
		return tx.AppendAudit(ctx, head, []store.AuditRecord{rec(1, head.Hash)}, 0)
	}); err != nil {
		t.Fatal(err)
	}
	// A failed statement aborts the transaction; a function that ignores
	// the error must not get a nil AuditTx (COMMIT would answer ROLLBACK).
	err = st.AuditTx(ctx, func(tx store.AuditTx) error {
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
	// A panicking function: nothing of it commits, not even with the
	// next transaction on the same log.
	h1, _ := st.AuditHeadRow(ctx)
	func() {
		defer func() { _ = recover() }()
		_ = st.AuditTx(ctx, func(tx store.AuditTx) error {
			if err := tx.AppendAudit(ctx, h1, []store.AuditRecord{rec(2, h1.Hash)}, 0); err != nil {
				return err
			}
			panic("boom")
		})
	}()
	if err := st.AuditTx(ctx, func(tx store.AuditTx) error { return tx.SetAuditCursor(ctx, "c", 1) }); err != nil {
		t.Fatal(err)
	}
	if h, err := st.AuditHeadRow(ctx); err != nil || h.Seq != 1 {
		t.Fatalf("head after a panic %+v %v", h, err)
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
