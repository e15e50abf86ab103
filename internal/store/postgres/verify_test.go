package postgres_test

import (
	"context"
	"database/sql"
	"fmt"
	"testing"
	"time"

	"github.com/fhirguard/fhirguard/internal/audit"
	"github.com/fhirguard/fhirguard/internal/clock"
	"github.com/fhirguard/fhirguard/internal/store"
	"github.com/fhirguard/fhirguard/internal/store/postgres/pgtest"
	"github.com/fhirguard/fhirguard/internal/store/sqlstore/sqlstoretest"
)

// chainFixture records n events (one per group commit) with a checkpoint
// every 10 and a final one, closes the log and returns its DSN.
func chainFixture(t *testing.T, n int) string {
	t.Helper()
	st, dsn := fresh(t)
	clk := clock.NewFake(t0)
	ctx := context.Background()
	r := newRecorder(t, st, clk, func(o *audit.Options) { o.Signer, o.CheckpointEvery = newSigner(t, st), 10 })
	for i := range n {
		if err := r.Record(ctx, readEvent("Practitioner/drA", fmt.Sprintf("p%d", i))); err != nil {
			t.Fatal(err)
		}
		clk.Advance(time.Second)
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	return dsn
}

// tamper unpacks the stored blocks into one row per record (audit_events,
// as an attacker with a SQL shell would unpack them), lets fn alter them
// with plain SQL, and opens the log again, which packs the rows back.
func tamper(t *testing.T, dsn string, fn func(db *sql.DB)) store.AuditLog {
	t.Helper()
	db := pgtest.DB(t, dsn)
	sqlstoretest.Unpack(t, db)
	fn(db)
	return open(t, dsn)
}

// editBody changes one byte of the first "drA" in record seq's stored
// body (the compact form is bytes, not always text).
func editBody(seq int) string {
	return fmt.Sprintf(`UPDATE audit_events SET body = overlay(body placing '\x58'::bytea from position('drA'::bytea in body) + 2 for 1) WHERE seq = %d`, seq)
}

// result is what Verify reported, for sqlstoretest.Check.
func result(rep *audit.Report) sqlstoretest.Result {
	r := sqlstoretest.Result{Records: rep.Records, Checkpoints: int64(rep.Checkpoints)}
	if rep.Problem != nil {
		r.Problem, r.ProblemSeq = rep.Problem, rep.Problem.Seq
	}
	return r
}

// TestVerifyDetectsTampering: audit.Verify names the first bad record
// after each kind of tampering done with SQL on the PostgreSQL tables.
func TestVerifyDetectsTampering(t *testing.T) {
	t.Parallel()
	for _, tc := range sqlstoretest.TamperCases(sqlstoretest.Dialect{EditBody: editBody, Hash: audit.Hash}) {
		t.Run(tc.Name, func(t *testing.T) {
			t.Parallel()
			dsn := chainFixture(t, 35)
			st := tamper(t, dsn, func(db *sql.DB) { tc.Tamper(t, db) })
			// The public keys of the signatures are in the log itself.
			rep, err := audit.Verify(context.Background(), st, audit.LogVerifier{St: st}, clock.System{})
			if err != nil {
				t.Fatal(err)
			}
			sqlstoretest.Check(t, tc, result(rep))
		})
	}
}

// TestVerifyDetectsTamperingInsideABlock alters the stored block of one
// write's events (35 records) directly in audit_blocks.
func TestVerifyDetectsTamperingInsideABlock(t *testing.T) {
	t.Parallel()
	for _, tc := range sqlstoretest.BlockCases() {
		t.Run(tc.Name, func(t *testing.T) {
			t.Parallel()
			st, dsn := fresh(t)
			clk := clock.NewFake(t0)
			ctx := context.Background()
			signer := newSigner(t, st)
			r := newRecorder(t, st, clk, func(o *audit.Options) { o.Signer = signer })
			evs := make([]audit.Event, 35)
			for i := range evs {
				evs[i] = readEvent("Practitioner/drA", "pA")
			}
			// One write's events: one append, so one block.
			if err := outboxWrite(ctx, st, r, evs...); err != nil {
				t.Fatal(err)
			}
			if err := r.Close(); err != nil {
				t.Fatal(err)
			}
			tc.Tamper(t, pgtest.DB(t, dsn))
			rep, err := audit.Verify(ctx, st, signer, clock.System{})
			if err != nil {
				t.Fatal(err)
			}
			sqlstoretest.Check(t, tc, result(rep))
		})
	}
}
