package audit

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/fhirguard/fhirguard/internal/clock"
	"github.com/fhirguard/fhirguard/internal/store"
)

func TestRecordChainsAndStores(t *testing.T) {
	t.Parallel()
	clk := clock.NewFake(t0)
	st, _ := openStore(t, clk)
	r := newRecorder(t, st, clk, nil)
	ctx := context.Background()
	for i, p := range []string{"pA", "pB", "pA"} {
		if err := r.Record(ctx, readEvent("Practitioner/drA", p)); err != nil {
			t.Fatalf("record %d: %v", i, err)
		}
		clk.Advance(time.Second)
	}
	recs, err := st.AuditScan(ctx, 0, 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 3 {
		t.Fatalf("got %d records, want 3", len(recs))
	}
	prev := ZeroHash()
	for i, rec := range recs {
		if rec.Seq != int64(i+1) {
			t.Errorf("record %d: seq %d", i, rec.Seq)
		}
		if !bytes.Equal(rec.Prev, prev) {
			t.Errorf("record %d: prev does not link to the previous hash", i)
		}
		if got := Hash(rec.Seq, rec.Recorded, rec.Prev, rec.Body); !bytes.Equal(got, rec.Hash) {
			t.Errorf("record %d: stored hash is not the chain hash", i)
		}
		prev = rec.Hash
		var doc map[string]any
		event, err := EventJSON(&rec)
		if err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(event, &doc); err != nil {
			t.Fatalf("record %d: AuditEvent is not JSON: %v\n%s", i, err, event)
		}
		if doc["resourceType"] != "AuditEvent" || doc["id"] != json.Number("1").String() && doc["id"] != "1" && i == 0 {
			t.Errorf("record %d: resourceType/id %v/%v", i, doc["resourceType"], doc["id"])
		}
		if doc["recorded"] != rec.Recorded.Format("2006-01-02T15:04:05.000Z07:00") {
			t.Errorf("record %d: recorded %v, column %v", i, doc["recorded"], rec.Recorded)
		}
		full, err := st.AuditRead(ctx, rec.Seq)
		if err != nil {
			t.Fatal(err)
		}
		if full.Outcome != "0" || full.Action != "R" || full.Address != "10.0.0.9" || full.Subtype != "|read|" {
			t.Errorf("record %d: search keys %q %q %q %q", i, full.Outcome, full.Action, full.Address, full.Subtype)
		}
	}
	head, err := st.AuditHeadRow(ctx)
	if err != nil || head.Seq != 3 || !bytes.Equal(head.Hash, recs[2].Hash) {
		t.Fatalf("head %+v, %v", head, err)
	}
	page, err := st.AuditSearch(ctx, store.AuditQuery{Refs: []store.AuditRef{{Param: KeyPatient, Value: "Patient/pA"}}, Count: 10})
	if err != nil {
		t.Fatal(err)
	}
	if len(page.Records) != 2 || page.Records[0].Seq != 3 || page.Records[1].Seq != 1 {
		t.Fatalf("patient search: %d records", len(page.Records))
	}
}

func TestRecordGroupCommit(t *testing.T) {
	t.Parallel()
	clk := clock.System{}
	st, _ := openStore(t, clk)
	r := newRecorder(t, st, clk, nil)
	const n = 400
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs <- r.Record(context.Background(), readEvent("Practitioner/drA", "pA"))
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	s := r.Stats()
	if s.Records != n || s.Batches >= n {
		t.Fatalf("stats %+v: want %d records in fewer batches", s, n)
	}
	head, err := st.AuditHeadRow(context.Background())
	if err != nil || head.Seq != n {
		t.Fatalf("head %+v, %v", head, err)
	}
}

// failingBackend fails every write transaction.
type failingBackend struct {
	Backend
	block chan struct{} // when set, AuditTx waits for it first
}

var errDisk = errors.New("disk on fire")

func (f failingBackend) AuditTx(ctx context.Context, fn func(store.AuditTx) error) error {
	if f.block != nil {
		<-f.block
	}
	return errDisk
}

func TestRecordFailsClosed(t *testing.T) {
	t.Parallel()
	clk := clock.NewFake(t0)
	st, _ := openStore(t, clk)

	t.Run("fail/store-error", func(t *testing.T) {
		r := newRecorder(t, failingBackend{Backend: st}, clk, nil)
		if err := r.Record(context.Background(), readEvent("Practitioner/drA", "pA")); !errors.Is(err, errDisk) {
			t.Fatalf("err %v, want the store's error", err)
		}
		if s := r.Stats(); s.Failed != 1 || s.Records != 0 {
			t.Fatalf("stats %+v", s)
		}
	})
	t.Run("fail/timeout", func(t *testing.T) {
		block := make(chan struct{})
		defer close(block)
		r := newRecorder(t, failingBackend{Backend: st, block: block}, clk, func(o *Options) { o.Timeout = 50 * time.Millisecond })
		if err := r.Record(context.Background(), readEvent("Practitioner/drA", "pA")); !errors.Is(err, ErrTimeout) {
			t.Fatalf("err %v, want ErrTimeout", err)
		}
	})
	t.Run("fail/queue-full", func(t *testing.T) {
		block := make(chan struct{})
		defer close(block)
		r := newRecorder(t, failingBackend{Backend: st, block: block}, clk, func(o *Options) {
			o.QueueSize, o.MaxBatch, o.Timeout = 1, 1, 100*time.Millisecond
		})
		// The writer is blocked in its first transaction (chaining what
		// the outbox holds at start): the first record waits in the queue
		// and times out (it stays queued), the second finds the queue
		// full at once.
		for i, want := range []error{ErrTimeout, ErrQueueFull} {
			if err := r.Record(context.Background(), readEvent("Practitioner/drA", "pA")); !errors.Is(err, want) {
				t.Fatalf("record %d: err %v, want %v", i, err, want)
			}
		}
	})
	t.Run("fail/closed", func(t *testing.T) {
		r := newRecorder(t, st, clk, nil)
		if err := r.Close(); err != nil {
			t.Fatal(err)
		}
		if err := r.Record(context.Background(), readEvent("Practitioner/drA", "pA")); !errors.Is(err, ErrClosed) {
			t.Fatalf("err %v, want ErrClosed", err)
		}
	})
	t.Run("fail/invalid-event", func(t *testing.T) {
		r := newRecorder(t, st, clk, nil)
		if err := r.Record(context.Background(), Event{}); err == nil {
			t.Fatal("an event without type was recorded")
		}
	})
}

func TestCheckpoints(t *testing.T) {
	t.Parallel()
	clk := clock.NewFake(t0)
	st, _ := openStore(t, clk)
	ctx := context.Background()
	signer, err := newTestSigner(ctx, st)
	if err != nil {
		t.Fatal(err)
	}
	r := newRecorder(t, st, clk, func(o *Options) { o.Signer, o.CheckpointEvery = signer, 10 })
	for i := 0; i < 25; i++ {
		if err := r.Record(ctx, readEvent("Practitioner/drA", "pA")); err != nil {
			t.Fatal(err)
		}
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	cps, err := st.AuditCheckpoints(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(cps) != 3 || cps[0].Seq != 10 || cps[1].Seq != 20 || cps[2].Seq != 25 {
		t.Fatalf("checkpoints at %v, want 10, 20 and a final one at 25", cpSeqs(cps))
	}
	again, err := newTestSigner(ctx, st)
	if err != nil {
		t.Fatal(err)
	}
	for _, cp := range cps {
		payload, err := again.Verify(ctx, cp.Signature)
		if err != nil {
			t.Fatalf("checkpoint %d: %v", cp.Seq, err)
		}
		var p checkpointPayload
		if err := json.Unmarshal(payload, &p); err != nil || p.Seq != cp.Seq {
			t.Fatalf("checkpoint %d payload %s (%v)", cp.Seq, payload, err)
		}
	}
	bad := cps[0].Signature[:len(cps[0].Signature)-4] + "AAAA"
	if _, err := again.Verify(ctx, bad); !errors.Is(err, ErrBadSignature) {
		t.Fatalf("altered signature: %v", err)
	}
}

func cpSeqs(cps []store.AuditCheckpoint) []int64 {
	var out []int64
	for _, c := range cps {
		out = append(out, c.Seq)
	}
	return out
}

// TestRecordedNeverGoesBack: a clock that steps back, or a restart with
// an earlier clock, does not record an event earlier than the one before
// it (recorded grows with seq; date search relies on it).
func TestRecordedNeverGoesBack(t *testing.T) {
	t.Parallel()
	late := t0.Add(time.Hour)
	clk := clock.NewFake(late)
	st, _ := openStore(t, clk)
	ctx := context.Background()
	r := newRecorder(t, st, clk, nil)
	if err := r.Record(ctx, readEvent("Practitioner/drA", "pA")); err != nil {
		t.Fatal(err)
	}
	clk.Advance(-time.Minute)
	if err := r.Record(ctx, readEvent("Practitioner/drA", "pB")); err != nil {
		t.Fatal(err)
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	r = newRecorder(t, st, clock.NewFake(t0), nil)
	if err := r.Record(ctx, readEvent("Practitioner/drA", "pC")); err != nil {
		t.Fatal(err)
	}
	recs, err := st.AuditScan(ctx, 0, 10)
	if err != nil || len(recs) != 3 {
		t.Fatalf("scan: %d records %v", len(recs), err)
	}
	for _, rec := range recs {
		if !rec.Recorded.Equal(late) {
			t.Errorf("record %d recorded %v, want %v", rec.Seq, rec.Recorded, late)
		}
		if got := Hash(rec.Seq, rec.Recorded, rec.Prev, rec.Body); !bytes.Equal(got, rec.Hash) {
			t.Errorf("record %d: stored hash is not the chain hash", rec.Seq)
		}
	}
}
