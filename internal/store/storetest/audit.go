package storetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/fhirguard/fhirguard/internal/store"
)

// AuditLog is an audit log under test: a store.AuditLog that can be
// closed. After Close every read and transaction fails with
// store.ErrClosed, and a second Close returns nil.
type AuditLog interface {
	store.AuditLog
	Close() error
}

// AuditFixture is one new, empty audit log for RunAudit.
type AuditFixture struct {
	// Log is the audit log; the backend closes it at cleanup.
	Log AuditLog
	// Outbox runs fn in a resource write transaction of the same backend
	// (its outbox side): fn's events commit unless fn fails.
	Outbox func(ctx context.Context, fn func(tx store.AuditOutboxTx) error) error
	// Reopen closes Log and opens the same log again (closed at cleanup).
	// With dropPostings it first deletes the search postings with SQL
	// and marks nothing indexed (as schema audit v3 does), so the log
	// rebuilds them when it opens; the backend checks that it did.
	Reopen func(t *testing.T, dropPostings bool) AuditLog
}

// RunAudit runs the audit log conformance suite: append continuing the
// head and refusal of a stale one, reads, scans, search keys and paging,
// checkpoints, break-the-glass reviews, cursors, keys, prune, close,
// rollback of a failed or panicking transaction, the outbox's order and
// position, and searches compared with a brute-force model across
// postings buckets (as appended, reindexed on open, pruned). open must
// return a new, empty log each time; it may be called concurrently.
func RunAudit(t *testing.T, open func(t *testing.T) AuditFixture) {
	cases := []struct {
		name string
		run  func(t *testing.T, f AuditFixture)
	}{
		{"storage", auditStorage},
		{"rollback", auditRollback},
		{"outbox", auditOutbox},
		{"search-model", auditSearchModel},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			c.run(t, open(t))
		})
	}
}

// auditRec is a small record chained after prev.
func auditRec(seq int64, prev []byte, refs ...store.AuditRef) store.AuditRecord {
	return store.AuditRecord{Seq: seq, Recorded: time.UnixMilli(1_700_000_000_000 + seq*1000).UTC(),
		Body: []byte(`{"resourceType":"AuditEvent"}`), Prev: prev, Hash: bytes.Repeat([]byte{byte(seq)}, 32),
		Outcome: "0", Action: "R", Type: "s|rest", Subtype: "|read|", Refs: refs}
}

// auditStorage covers the storage contract one step after the other on
// one log.
func auditStorage(t *testing.T, f AuditFixture) {
	st := f.Log
	ctx := ctxT(t)
	head, err := st.AuditHeadRow(ctx)
	if err != nil || head.Seq != 0 || len(head.Hash) != 32 {
		t.Fatalf("empty head %+v, %v", head, err)
	}
	r1 := auditRec(1, head.Hash, store.AuditRef{Param: "patient", Value: "Patient/pA"})
	r2 := auditRec(2, r1.Hash, store.AuditRef{Param: "btg", Value: "1"}, store.AuditRef{Param: "patient", Value: "Patient/pB"})
	appendRecs := func(h store.AuditHead, recs ...store.AuditRecord) error {
		return st.AuditTx(ctx, func(tx store.AuditTx) error { return tx.AppendAudit(ctx, h, recs, h.Outbox) })
	}
	if err := appendRecs(head, r1, r2); err != nil {
		t.Fatal(err)
	}
	if err := appendRecs(head, auditRec(1, head.Hash)); !errors.Is(err, store.ErrAuditChainMoved) {
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
	auditBTGAndCursors(t, st)
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

// auditBTGAndCursors reviews the break-the-glass record 2 of
// auditStorage's chain (record 1 is not one) and moves a cursor.
func auditBTGAndCursors(t *testing.T, st AuditLog) {
	t.Helper()
	ctx := ctxT(t)
	tx := func(fn func(store.AuditTx) error) error { return st.AuditTx(ctx, fn) }
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
	if btg, err := st.AuditBTG(ctx, true); err != nil || len(btg) != 1 || btg[0].Reviewer != "aud1" || btg[0].Note != "ok" || !btg[0].ReviewedAt.Equal(review.ReviewedAt) {
		t.Fatalf("all btg %+v %v", btg, err)
	}
	for _, seq := range []int64{2, 1} {
		if err := tx(func(a store.AuditTx) error { return a.SetAuditCursor(ctx, "siem", seq) }); err != nil {
			t.Fatal(err)
		}
		if c, err := st.AuditCursor(ctx, "siem"); err != nil || c != seq {
			t.Fatalf("cursor %d %v, want %d", c, err, seq)
		}
	}
	if c, err := st.AuditCursor(ctx, "other"); err != nil || c != 0 {
		t.Fatalf("unset cursor %d %v", c, err)
	}
}

// auditRollback: fn's error leaves nothing behind, and the log goes on
// working; a panicking fn commits nothing, not even with the next
// transaction on the same log.
func auditRollback(t *testing.T, f AuditFixture) {
	st := f.Log
	ctx := ctxT(t)
	head, err := st.AuditHeadRow(ctx)
	if err != nil {
		t.Fatal(err)
	}
	boom := errors.New("boom")
	err = st.AuditTx(ctx, func(tx store.AuditTx) error {
		if err := tx.AppendAudit(ctx, head, []store.AuditRecord{auditRec(1, head.Hash)}, 0); err != nil {
			return err
		}
		if err := tx.SetAuditCursor(ctx, "c", 1); err != nil {
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
	if c, err := st.AuditCursor(ctx, "c"); err != nil || c != 0 {
		t.Fatalf("cursor after rollback %d %v", c, err)
	}
	if err := st.AuditTx(ctx, func(tx store.AuditTx) error {
		return tx.AppendAudit(ctx, head, []store.AuditRecord{auditRec(1, head.Hash)}, 0)
	}); err != nil {
		t.Fatal(err)
	}
	h1, err := st.AuditHeadRow(ctx)
	if err != nil || h1.Seq != 1 {
		t.Fatalf("head %+v %v", h1, err)
	}
	func() {
		defer func() { _ = recover() }()
		_ = st.AuditTx(ctx, func(tx store.AuditTx) error {
			if err := tx.AppendAudit(ctx, h1, []store.AuditRecord{auditRec(2, h1.Hash)}, 0); err != nil {
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
	if c, err := st.AuditCursor(ctx, "c"); err != nil || c != 1 {
		t.Fatalf("cursor after a panic %d %v", c, err)
	}
}

// auditOutbox: events added in a resource transaction wait in the outbox
// in commit order (none of a rolled-back one); an audit transaction reads
// them and the head remembers, durably, the last one chained, after which
// only the later ones are pending.
func auditOutbox(t *testing.T, f AuditFixture) {
	st := f.Log
	ctx := ctxT(t)
	add := func(fail bool, evs ...string) {
		t.Helper()
		err := f.Outbox(ctx, func(tx store.AuditOutboxTx) error {
			data := make([][]byte, len(evs))
			for i, e := range evs {
				data[i] = []byte(e)
			}
			if err := tx.AddAuditOutbox(ctx, data); err != nil {
				return err
			}
			if fail {
				return errors.New("the write failed")
			}
			return nil
		})
		if (err != nil) != fail {
			t.Fatalf("add %v: %v", evs, err)
		}
	}
	// pending reads the head and the pending entries in one audit
	// transaction and, when chain > 0, chains its first chain entries
	// there (as the recorder does: entries are chained in the
	// transaction that read them).
	pending := func(chain int) ([]store.AuditOutboxEntry, store.AuditHead) {
		t.Helper()
		var ents []store.AuditOutboxEntry
		var head store.AuditHead
		err := st.AuditTx(ctx, func(tx store.AuditTx) error {
			var err error
			if head, err = tx.AuditHead(ctx); err != nil {
				return err
			}
			if ents, err = tx.PendingAuditOutbox(ctx, head.Outbox, 100); err != nil || chain == 0 {
				return err
			}
			if len(ents) < chain {
				return fmt.Errorf("%d entries pending, want at least %d", len(ents), chain)
			}
			recs := make([]store.AuditRecord, chain)
			prev := head.Hash
			for i := range recs {
				recs[i] = auditRec(head.Seq+int64(i)+1, prev)
				prev = recs[i].Hash
			}
			return tx.AppendAudit(ctx, head, recs, ents[chain-1].ID)
		})
		if err != nil {
			t.Fatal(err)
		}
		return ents, head
	}
	add(false, "a", "b")
	add(true, "rolled back")
	add(false, "c")
	ents, _ := pending(2) // a and b chained
	if len(ents) != 3 || string(ents[0].Data) != "a" || string(ents[1].Data) != "b" || string(ents[2].Data) != "c" || !(ents[0].ID < ents[1].ID && ents[1].ID < ents[2].ID) {
		t.Fatalf("pending %+v, want a, b, c in order", ents)
	}
	ents2, head := pending(0)
	if head.Outbox != ents[1].ID || head.Seq != 2 || len(ents2) != 1 || string(ents2[0].Data) != "c" {
		t.Fatalf("after chaining two: head %+v, pending %+v", head, ents2)
	}
	st = f.Reopen(t, false)
	if h, err := st.AuditHeadRow(ctx); err != nil || h.Outbox != ents[1].ID || h.Seq != 2 || !bytes.Equal(h.Hash, head.Hash) {
		t.Fatalf("head after reopening %+v %v", h, err)
	}
	if ents3, _ := pending(0); len(ents3) != 1 || ents3[0].ID != ents[2].ID {
		t.Fatalf("pending after reopening %+v, want c", ents3)
	}
}
