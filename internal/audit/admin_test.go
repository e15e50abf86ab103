package audit

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/fhirguard/fhirguard/internal/clock"
)

func TestBTGQueueAndReview(t *testing.T) {
	t.Parallel()
	clk := clock.NewFake(t0)
	st, _ := openStore(t, clk)
	r := newRecorder(t, st, clk, nil)
	ctx := context.Background()
	btg := readEvent("Practitioner/erdoc", "pA")
	btg.Purpose, btg.PurposeText = []Coding{PurposeBTG}, "patient unconscious in ER"
	for _, ev := range []Event{readEvent("Practitioner/drA", "pA"), btg, readEvent("Practitioner/drA", "pB")} {
		if err := r.Record(ctx, ev); err != nil {
			t.Fatal(err)
		}
	}
	q, err := BTGQueue(ctx, st, false)
	if err != nil {
		t.Fatal(err)
	}
	if len(q) != 1 || q[0].ID != 2 || q[0].User != "Practitioner/erdoc" || q[0].Reason != "patient unconscious in ER" ||
		len(q[0].Patients) != 1 || q[0].Patients[0] != "Patient/pA" {
		t.Fatalf("queue %+v", q)
	}
	if err := ReviewBTG(ctx, st, r, clk, 1, "privacy-officer", "ok"); err == nil || !strings.Contains(err.Error(), "not a break-the-glass") {
		t.Fatalf("review of a normal record: %v", err)
	}
	if err := ReviewBTG(ctx, st, r, clk, 2, "privacy-officer", "justified"); err != nil {
		t.Fatal(err)
	}
	if err := ReviewBTG(ctx, st, r, clk, 2, "privacy-officer", "again"); err == nil || !strings.Contains(err.Error(), "already reviewed") {
		t.Fatalf("second review: %v", err)
	}
	if q, err = BTGQueue(ctx, st, false); err != nil || len(q) != 0 {
		t.Fatalf("queue after review %+v, %v", q, err)
	}
	all, err := BTGQueue(ctx, st, true)
	if err != nil || len(all) != 1 || all[0].Reviewer != "privacy-officer" || all[0].Note != "justified" {
		t.Fatalf("all %+v, %v", all, err)
	}
	// The review itself is recorded.
	head, err := st.AuditHeadRow(ctx)
	if err != nil || head.Seq != 4 {
		t.Fatalf("head %+v %v", head, err)
	}
	rec, err := st.AuditRead(ctx, 4)
	if err != nil {
		t.Fatal(err)
	}
	event, err := EventJSON(rec)
	if err != nil || !strings.Contains(string(event), `"btg-review"`) || !strings.Contains(string(event), `"AuditEvent/2"`) {
		t.Fatalf("review event %s, %v", event, err)
	}
}

func TestPruneKeepsChainVerifiable(t *testing.T) {
	t.Parallel()
	clk := clock.NewFake(t0)
	st, _ := openStore(t, clk)
	ctx := context.Background()
	signer, err := newTestSigner(ctx, st)
	if err != nil {
		t.Fatal(err)
	}
	r := newRecorder(t, st, clk, func(o *Options) {
		o.Signer, o.CheckpointEvery, o.CheckpointInterval = signer, 10, 1000*time.Hour
	})
	for i := 0; i < 45; i++ { // one per hour: t0 … t0+44h
		if err := r.Record(ctx, readEvent("Practitioner/drA", "pA")); err != nil {
			t.Fatal(err)
		}
		clk.Advance(time.Hour)
	}
	// Records 1..25 are older than t0+25h; the newest checkpoint among
	// them is at 20.
	res, err := Prune(ctx, st, r, t0.Add(25*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if res.Removed != 20 || res.Anchor != 20 {
		t.Fatalf("prune %+v, want 20 removed up to 20", res)
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	rep, err := Verify(ctx, st, signer, clk)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Problem != nil || rep.First != 21 || rep.Last != 46 || rep.Anchor != 20 {
		t.Fatalf("after prune: %+v (%v)", rep, rep.Problem)
	}
	last, err := st.AuditRead(ctx, 46)
	if err != nil || !strings.Contains(string(last.Body), "audit-prune") {
		t.Fatalf("the newest event must record the prune: %v", err)
	}
	if _, err := st.AuditRead(ctx, 20); err == nil {
		t.Fatal("record 20 still stored")
	}
	// Tampering with the first kept record is still caught.
	rep2, err := Verify(ctx, st, nil, clk)
	if err != nil || rep2.Problem == nil {
		t.Fatalf("without a verifier the anchor is unproven and must be reported: %+v %v", rep2, err)
	}
}

func TestDisclosures(t *testing.T) {
	t.Parallel()
	clk := clock.NewFake(t0)
	st, _ := openStore(t, clk)
	r := newRecorder(t, st, clk, nil)
	ctx := context.Background()
	failed := readEvent("Practitioner/drA", "pC")
	failed.Outcome = OutcomeMinor
	for _, ev := range []Event{readEvent("Practitioner/drA", "pA"), readEvent("Practitioner/drB", "pB"), readEvent("Practitioner/drA", "pB"), failed, readEvent("Practitioner/drA", "pA")} {
		if err := r.Record(ctx, ev); err != nil {
			t.Fatal(err)
		}
		clk.Advance(time.Minute)
	}
	got, err := Disclosures(ctx, st, DisclosureQuery{Agents: []string{"Practitioner/drA"}, From: t0, To: t0.Add(time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0].Patient != "Patient/pA" || got[0].Events != 2 || got[1].Patient != "Patient/pB" || got[1].Events != 1 ||
		len(got[0].Resources) != 1 || got[0].Resources[0] != "Patient/pA/_history/1" {
		t.Fatalf("disclosures %+v", got)
	}
	got, err = Disclosures(ctx, st, DisclosureQuery{Agents: []string{"Practitioner/drA"}, From: t0.Add(3 * time.Minute)})
	if err != nil || len(got) != 1 || got[0].Patient != "Patient/pA" || got[0].Events != 1 {
		t.Fatalf("window: %+v %v", got, err)
	}
}
