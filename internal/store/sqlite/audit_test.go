package sqlite_test

import (
	"bytes"
	"context"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/fhirguard/fhirguard/internal/index"
	"github.com/fhirguard/fhirguard/internal/store"
)

// TestAuditLogStorage covers the audit log's storage contract on SQLite:
// append continuing the head, refusal of a stale head, reads, search keys,
// checkpoints, BTG reviews, cursors, keys and prune.
func TestAuditLogStorage(t *testing.T) {
	ix, err := index.New()
	if err != nil {
		t.Fatal(err)
	}
	st := openAt(t, filepath.Join(t.TempDir(), "a.db"), ix)
	ctx := context.Background()
	head, err := st.AuditHeadRow(ctx)
	if err != nil || head.Seq != 0 || len(head.Hash) != 32 {
		t.Fatalf("empty head %+v, %v", head, err)
	}
	rec := func(seq int64, prev []byte, refs ...store.AuditRef) store.AuditRecord {
		return store.AuditRecord{Seq: seq, Recorded: time.UnixMilli(1_700_000_000_000 + seq*1000).UTC(),
			Body: []byte(`{"resourceType":"AuditEvent"}`), Prev: prev, Hash: bytes.Repeat([]byte{byte(seq)}, 32),
			Outcome: "0", Action: "R", Type: "s|rest", Subtype: "|read|", Refs: refs}
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
	if h, err := st.AuditHeadRow(ctx); err != nil || h.Seq != 2 || !bytes.Equal(h.Hash, r2.Hash) {
		t.Fatalf("head %+v %v", h, err)
	}
	got, err := st.AuditRead(ctx, 2)
	if err != nil || got.Subtype != "|read|" || !got.Recorded.Equal(r2.Recorded) {
		t.Fatalf("read %+v %v", got, err)
	}
	page, err := st.AuditSearch(ctx, store.AuditQuery{Refs: []store.AuditRef{{Param: "patient", Value: "Patient/pB"}}, Subtypes: []string{"read"}, Count: 5})
	if err != nil || len(page.Records) != 1 || page.Records[0].Seq != 2 || page.More {
		t.Fatalf("search %+v %v", page, err)
	}
	page, err = st.AuditSearch(ctx, store.AuditQuery{Types: []string{"rest"}, Count: 1})
	if err != nil || len(page.Records) != 1 || !page.More {
		t.Fatalf("paged search %+v %v", page, err)
	}
	tx := func(fn func(store.AuditTx) error) error {
		return st.AuditTx(ctx, fn)
	}
	if err := tx(func(a store.AuditTx) error {
		return a.AddAuditCheckpoint(ctx, store.AuditCheckpoint{Seq: 1, Hash: r1.Hash, Created: time.Now(), Signature: "x.y.z"})
	}); err != nil {
		t.Fatal(err)
	}
	if err := tx(func(a store.AuditTx) error { return a.ReviewBTG(ctx, store.BTGReview{Seq: 1, ReviewedAt: time.Now()}) }); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("review of a non-BTG record: %v", err)
	}
	if btg, err := st.AuditBTG(ctx, false); err != nil || len(btg) != 1 || btg[0].Seq != 2 {
		t.Fatalf("btg %+v %v", btg, err)
	}
	if err := tx(func(a store.AuditTx) error { return a.SetAuditCursor(ctx, "siem", 2) }); err != nil {
		t.Fatal(err)
	}
	if c, err := st.AuditCursor(ctx, "siem"); err != nil || c != 2 {
		t.Fatalf("cursor %d %v", c, err)
	}
	k1, err := st.AuditKey(ctx, "k", func() ([]byte, error) { return []byte("secret-1"), nil })
	if err != nil {
		t.Fatal(err)
	}
	k2, err := st.AuditKey(ctx, "k", func() ([]byte, error) { return []byte("secret-2"), nil })
	if err != nil || !bytes.Equal(k1, k2) {
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
}
