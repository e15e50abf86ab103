package audit

import (
	"bytes"
	"context"
	"errors"
	"os"
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
// outside fhirguard) is replaced in the chain by a security alert naming
// it, and the ones after it are chained.
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
	if h, _ := st.AuditHeadRow(ctx); h.Seq != 2 || h.Outbox != 2 {
		t.Fatalf("head %+v, want the damage record and the good entry chained, the position past both", h)
	}
	recs, err := st.AuditScan(ctx, 0, 10)
	if err != nil || len(recs) != 2 || !bytes.Contains(mustJSON(t, &recs[0]), []byte(`"outbox-damaged"`)) ||
		!bytes.Contains(mustJSON(t, &recs[0]), []byte(`audit outbox entry 1`)) || !bytes.Contains(mustJSON(t, &recs[1]), []byte(`"Patient/pA"`)) {
		t.Fatalf("chain %+v %v", recs, err)
	}
}

// TestDrainChainsALongOutbox: Drain returns once every committed entry is
// chained, also when there are more than one commit takes.
func TestDrainChainsALongOutbox(t *testing.T) {
	t.Parallel()
	clk := clock.NewFake(t0)
	st, _ := openStore(t, clk)
	r := newRecorder(t, st, clk, nil)
	evs := make([]Event, 2*outboxChunk+10)
	for i := range evs {
		evs[i] = readEvent("Practitioner/drA", "pA")
	}
	appendInTx(t, st, r, false, evs...)
	if err := r.Drain(context.Background()); err != nil {
		t.Fatal(err)
	}
	if h, _ := st.AuditHeadRow(context.Background()); h.Seq != int64(len(evs)) {
		t.Fatalf("Drain returned with %d of %d entries chained", h.Seq, len(evs))
	}
}

// TestOutboxKeepsTimeAndSource: an event chained later, by another process
// (an admin CLI) or the next start, keeps the time of its write and the
// server that wrote it.
func TestOutboxKeepsTimeAndSource(t *testing.T) {
	t.Parallel()
	clk := clock.NewFake(t0)
	st, _ := openStore(t, clk)
	srv := newRecorder(t, st, clk, func(o *Options) { o.Source = Source{Observer: "https://srv.test/fhir", Name: "fhirguard"} })
	if err := srv.Close(); err != nil { // it dies before chaining
		t.Fatal(err)
	}
	appendInTx(t, st, srv, false, readEvent("Practitioner/drA", "pA"))
	clk.Advance(3 * time.Hour)
	cli := newRecorder(t, st, clk, func(o *Options) { o.Source = Source{Observer: "urn:fhirguard:admin-cli", Name: "fhirguard admin CLI"} })
	if err := cli.Drain(context.Background()); err != nil {
		t.Fatal(err)
	}
	recs, err := st.AuditScan(context.Background(), 0, 10)
	if err != nil || len(recs) != 1 {
		t.Fatalf("%d records %v", len(recs), err)
	}
	b := mustJSON(t, &recs[0])
	if bytes.Contains(b, []byte("admin-cli")) || !bytes.Contains(b, []byte("https://srv.test/fhir")) || !recs[0].Recorded.Equal(t0) {
		t.Fatalf("recorded %s, event %s: want the write's time and server", recs[0].Recorded, b)
	}
}

// TestOutboxAfterTheResourceDatabaseIsRestored: a resource database
// restored from a backup (its outbox ids behind the audit log's position)
// still has every later write's events chained.
func TestOutboxAfterTheResourceDatabaseIsRestored(t *testing.T) {
	t.Parallel()
	clk := clock.NewFake(t0)
	ctx := context.Background()
	st, path := openStore(t, clk)
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	backup, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	st = reopenAt(t, path, clk)
	r := newRecorder(t, st, clk, nil)
	appendInTx(t, st, r, false, readEvent("Practitioner/drA", "p1"), readEvent("Practitioner/drA", "p2"), readEvent("Practitioner/drA", "p3"))
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	for _, suffix := range []string{"-wal", "-shm"} {
		if err := os.Remove(path + suffix); err != nil && !os.IsNotExist(err) {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(path, backup, 0o600); err != nil {
		t.Fatal(err)
	}
	st = reopenAt(t, path, clk)
	r = newRecorder(t, st, clk, nil)
	for _, p := range []string{"p4", "p5"} {
		appendInTx(t, st, r, false, readEvent("Practitioner/drA", p))
		if err := r.Drain(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if recs, err := st.AuditScan(ctx, 0, 100); err != nil || len(recs) != 5 {
		t.Fatalf("%d records in the chain (%v), want 5", len(recs), err)
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
