package audit

import (
	"bytes"
	"context"
	"errors"
	"testing"
	"time"

	"github.com/fhirguard/fhirguard/internal/clock"
	"github.com/fhirguard/fhirguard/internal/store"
)

// appendInTx commits evs through AppendInTx in a resource transaction
// (fail: the transaction then fails and rolls back).
func appendInTx(t *testing.T, st store.Store, r *Recorder, fail bool, evs ...Event) {
	t.Helper()
	err := st.Tx(context.Background(), func(tx store.Tx) error {
		if err := r.AppendInTx(context.Background(), tx, evs); err != nil {
			return err
		}
		if fail {
			return errors.New("the write failed")
		}
		return nil
	})
	if (err != nil) != fail {
		t.Fatal(err)
	}
}

// TestAppendInTxThenDrain: a write's events commit in its transaction's
// outbox (not those of a write that rolled back) and are in the chain,
// in commit order, once Drain returns.
func TestAppendInTxThenDrain(t *testing.T) {
	t.Parallel()
	clk := clock.NewFake(t0)
	st, _ := openStore(t, clk)
	r := newRecorder(t, st, clk, nil)
	ctx := context.Background()
	appendInTx(t, st, r, false, readEvent("Practitioner/drA", "pA"), readEvent("Practitioner/drA", "pB"))
	appendInTx(t, st, r, true, readEvent("Practitioner/drA", "pRolledBack"))
	appendInTx(t, st, r, false, readEvent("Practitioner/drA", "pC"))
	if err := r.Drain(ctx); err != nil {
		t.Fatal(err)
	}
	recs, err := st.AuditScan(ctx, 0, 10)
	if err != nil || len(recs) != 3 {
		t.Fatalf("chain after drain: %d records %v", len(recs), err)
	}
	for i, p := range []string{"pA", "pB", "pC"} {
		if !bytes.Contains(mustJSON(t, &recs[i]), []byte(`"Patient/`+p+`"`)) {
			t.Errorf("record %d is not the event of %s", i+1, p)
		}
	}
	if err := r.Record(ctx, readEvent("Practitioner/drA", "pD")); err != nil {
		t.Fatal(err)
	}
	if h, _ := st.AuditHeadRow(ctx); h.Seq != 4 {
		t.Fatalf("head %d after one more record, want 4 (no outbox entry chained twice)", h.Seq)
	}
	if rep, err := Verify(ctx, st, nil, clockNow{}); err != nil || rep.Problem != nil {
		t.Fatalf("verify: %+v %v", rep, err)
	}
}

// TestOutboxChainedAtStart: events a write committed whose chaining never
// happened (the process died in between) are chained by the next
// recorder when it starts.
func TestOutboxChainedAtStart(t *testing.T) {
	t.Parallel()
	clk := clock.NewFake(t0)
	st, _ := openStore(t, clk)
	dead := newRecorder(t, st, clk, nil)
	if err := dead.Close(); err != nil {
		t.Fatal(err)
	}
	appendInTx(t, st, dead, false, readEvent("Practitioner/drA", "pA"))
	ctx := context.Background()
	if h, _ := st.AuditHeadRow(ctx); h.Seq != 0 {
		t.Fatalf("head %d before any recorder chained", h.Seq)
	}
	newRecorder(t, st, clk, nil)
	deadline := time.Now().Add(5 * time.Second)
	for {
		h, err := st.AuditHeadRow(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if h.Seq == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the outbox entry was not chained at start (head %d)", h.Seq)
		}
		time.Sleep(10 * time.Millisecond)
	}
	recs, err := st.AuditScan(ctx, 0, 10)
	if err != nil || len(recs) != 1 || !bytes.Contains(mustJSON(t, &recs[0]), []byte(`"Patient/pA"`)) {
		t.Fatalf("chained at start: %+v %v", recs, err)
	}
}

// TestBadOutboxEntrySkipped: an entry that cannot be decoded (edited
// outside fhirguard) is skipped, and the ones after it are chained.
func TestBadOutboxEntrySkipped(t *testing.T) {
	t.Parallel()
	clk := clock.NewFake(t0)
	st, _ := openStore(t, clk)
	r := newRecorder(t, st, clk, nil)
	ctx := context.Background()
	err := st.Tx(ctx, func(tx store.Tx) error {
		return tx.(store.AuditOutboxTx).AddAuditOutbox(ctx, [][]byte{[]byte("not an event")})
	})
	if err != nil {
		t.Fatal(err)
	}
	appendInTx(t, st, r, false, readEvent("Practitioner/drA", "pA"))
	if err := r.Drain(ctx); err != nil {
		t.Fatal(err)
	}
	if h, _ := st.AuditHeadRow(ctx); h.Seq != 1 || h.Outbox != 2 {
		t.Fatalf("head %+v, want the one good entry chained and the position past both", h)
	}
}

func mustJSON(t *testing.T, rec *store.AuditRecord) []byte {
	t.Helper()
	b, err := EventJSON(rec)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
