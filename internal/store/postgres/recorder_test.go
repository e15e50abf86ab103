package postgres_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/fhirguard/fhirguard/internal/audit"
	"github.com/fhirguard/fhirguard/internal/clock"
	"github.com/fhirguard/fhirguard/internal/store"
	"github.com/fhirguard/fhirguard/internal/store/postgres"
	"github.com/fhirguard/fhirguard/internal/store/postgres/pgtest"
)

var t0 = time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)

// readEvent is a small REST read event (as internal/audit's tests make).
func readEvent(user, patient string) audit.Event {
	return audit.Event{
		Type:     audit.TypeRESTful,
		Subtypes: []audit.Coding{{System: audit.SystemRESTful, Code: "read"}},
		Action:   audit.ActionRead,
		Outcome:  audit.OutcomeSuccess,
		Agents: []audit.Agent{
			{Type: audit.AgentRecipient, Who: user, Requestor: true, Policy: []string{"jti-1"}},
			{Type: audit.AgentDestRole, WhoID: "app1", Network: "10.0.0.9", NetworkType: "2"},
		},
		Entities: []audit.Entity{
			{What: "Patient/" + patient, Type: audit.EntityPerson, Role: audit.RolePatient},
			{What: "Patient/" + patient + "/_history/1", Type: audit.EntitySystemObj, Role: audit.RoleDomainRes},
		},
	}
}

func newRecorder(t testing.TB, be audit.Backend, clk clock.Clock, mod func(*audit.Options)) *audit.Recorder {
	t.Helper()
	opts := audit.Options{Backend: be, Clock: clk, Source: audit.Source{Observer: "http://fhir.test/fhir"}}
	if mod != nil {
		mod(&opts)
	}
	r, err := audit.NewRecorder(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = r.Close() })
	return r
}

// writeTx is a resource write transaction as far as the recorder's
// AppendInTx looks at it: only the outbox.
type writeTx struct {
	store.Tx // nil: AppendInTx uses only the outbox
	store.AuditOutboxTx
}

// outboxWrite commits events in the outbox through a write transaction,
// as a write of the (future) PostgreSQL resource store would.
func outboxWrite(ctx context.Context, l *postgres.AuditLog, r *audit.Recorder, evs ...audit.Event) error {
	return l.OutboxTx(ctx, func(tx store.AuditOutboxTx) error { return r.AppendInTx(ctx, writeTx{AuditOutboxTx: tx}, evs) })
}

// patientSeqs returns the seqs of the records naming the patient.
func patientSeqs(t *testing.T, st store.AuditStore, patient string) []int64 {
	t.Helper()
	page, err := st.AuditSearch(context.Background(), store.AuditQuery{Refs: []store.AuditRef{{Param: audit.KeyPatient, Value: "Patient/" + patient}}, Ascending: true, Count: 100})
	if err != nil {
		t.Fatal(err)
	}
	var out []int64
	for _, r := range page.Records {
		out = append(out, r.Seq)
	}
	return out
}

// TestRecorderChainsOnPostgres: the recorder's group commit, checkpoints
// and Verify on PostgreSQL, including a restart that continues the chain.
func TestRecorderChainsOnPostgres(t *testing.T) {
	t.Parallel()
	st, dsn := fresh(t)
	ctx := context.Background()
	clk := clock.NewFake(t0)
	signer := newSigner(t, st)
	r := newRecorder(t, st, clk, func(o *audit.Options) { o.Signer, o.CheckpointEvery = signer, 25 })
	var wg sync.WaitGroup
	errs := make(chan error, 100)
	for i := range 100 {
		wg.Go(func() { errs <- r.Record(ctx, readEvent("Practitioner/drA", fmt.Sprintf("p%d", i%7))) })
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	st2 := open(t, dsn)
	r2 := newRecorder(t, st2, clk, func(o *audit.Options) { o.Signer = signer })
	if err := r2.Record(ctx, readEvent("Practitioner/drB", "p1")); err != nil {
		t.Fatal(err)
	}
	if err := r2.Close(); err != nil {
		t.Fatal(err)
	}
	rep, err := audit.Verify(ctx, st2, signer, clock.System{})
	if err != nil || rep.Problem != nil || rep.Records != 101 || rep.Checkpoints < 2 {
		t.Fatalf("verify: %+v %v", rep, err)
	}
	if got := patientSeqs(t, st2, "p1"); len(got) != 16 || got[15] != 101 {
		t.Fatalf("records of p1: %v", got)
	}
}

// TestOutboxLateCommit: a write that took an outbox id first but commits
// after a later write's entry was chained is still chained, once. (With
// position-only skipping, as on SQLite, its entry would be lost: a
// sequence hands out ids at insert, not at commit.)
func TestOutboxLateCommit(t *testing.T) {
	t.Parallel()
	st, _ := fresh(t)
	ctx := context.Background()
	clk := clock.NewFake(t0)
	r := newRecorder(t, st, clk, nil)

	inserted, release := make(chan struct{}), make(chan struct{})
	slow := make(chan error, 1)
	go func() {
		slow <- st.OutboxTx(ctx, func(tx store.AuditOutboxTx) error {
			if err := r.AppendInTx(ctx, writeTx{AuditOutboxTx: tx}, []audit.Event{readEvent("Practitioner/drA", "slow")}); err != nil {
				return err
			}
			close(inserted)
			<-release
			return nil
		})
	}()
	<-inserted
	if err := outboxWrite(ctx, st, r, readEvent("Practitioner/drA", "fast"), readEvent("Practitioner/drA", "fast")); err != nil {
		t.Fatal(err)
	}
	if err := r.Drain(ctx); err != nil {
		t.Fatal(err)
	}
	if got := patientSeqs(t, st, "fast"); len(got) != 2 {
		t.Fatalf("fast write's records: %v", got)
	}
	h, err := st.AuditHeadRow(ctx)
	if err != nil || h.Outbox < 3 {
		t.Fatalf("head after the fast write %+v %v (want its outbox ids 2 and 3 chained)", h, err)
	}
	close(release)
	if err := <-slow; err != nil {
		t.Fatal(err)
	}
	if err := r.Drain(ctx); err != nil {
		t.Fatal(err)
	}
	if got := patientSeqs(t, st, "slow"); len(got) != 1 || got[0] != 3 {
		t.Fatalf("slow write's records: %v (want one, seq 3)", got)
	}
	if err := r.Drain(ctx); err != nil {
		t.Fatal(err)
	}
	if got := patientSeqs(t, st, "slow"); len(got) != 1 {
		t.Fatalf("slow write chained again: %v", got)
	}
	rep, err := audit.Verify(ctx, st, nil, clock.System{})
	if err != nil || rep.Problem != nil || rep.Records != 3 {
		t.Fatalf("verify %+v %v", rep, err)
	}
}

// TestOutboxTwoProcesses: two processes (audit logs with their own
// recorders) write through the outbox and record reads at once; every
// event is in the one chain exactly once and it verifies.
func TestOutboxTwoProcesses(t *testing.T) {
	t.Parallel()
	a, dsn := fresh(t)
	b := open(t, dsn)
	ctx := context.Background()
	clk := clock.System{}
	logs := []*postgres.AuditLog{a, b}
	recs := []*audit.Recorder{newRecorder(t, a, clk, nil), newRecorder(t, b, clk, nil)}
	const n = 40
	var wg sync.WaitGroup
	errs := make(chan error, 4*n)
	for p := range 2 {
		wg.Go(func() {
			for i := range n {
				errs <- outboxWrite(ctx, logs[p], recs[p], readEvent("Practitioner/w", fmt.Sprintf("w%d-%d", p, i)))
			}
		})
		wg.Go(func() {
			for i := range n {
				errs <- recs[p].Record(ctx, readEvent("Practitioner/r", fmt.Sprintf("r%d-%d", p, i)))
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
	for _, r := range recs {
		if err := r.Drain(ctx); err != nil {
			t.Fatal(err)
		}
	}
	for p := range 2 {
		for i := range n {
			for _, kind := range []string{"w", "r"} {
				if got := patientSeqs(t, a, fmt.Sprintf("%s%d-%d", kind, p, i)); len(got) != 1 {
					t.Fatalf("%s%d-%d: %v, want one record", kind, p, i, got)
				}
			}
		}
	}
	rep, err := audit.Verify(ctx, b, nil, clock.System{})
	if err != nil || rep.Problem != nil || rep.Records != 4*n {
		t.Fatalf("verify %+v %v", rep, err)
	}
	db := pgtest.DB(t, dsn)
	var left int
	if err := db.QueryRow(`SELECT COUNT(*) FROM audit_outbox`).Scan(&left); err != nil || left != 0 {
		t.Fatalf("outbox entries left: %d %v", left, err)
	}
}
