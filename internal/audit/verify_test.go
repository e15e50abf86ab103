package audit

import (
	"context"
	"database/sql"
	"fmt"
	"log/slog"
	"testing"
	"time"

	"github.com/fhirguard/fhirguard/internal/clock"
	"github.com/fhirguard/fhirguard/internal/index"
	"github.com/fhirguard/fhirguard/internal/store"
	"github.com/fhirguard/fhirguard/internal/store/sqlite"
	"github.com/fhirguard/fhirguard/internal/store/sqlstore/sqlstoretest"
)

// chainFixture records n events with a checkpoint every 10 (and a final
// one) and returns the store's path and a verifier.
func chainFixture(t *testing.T, n int) (Backend, string, Verifier) {
	t.Helper()
	clk := clock.NewFake(t0)
	st, path := openStore(t, clk)
	ctx := context.Background()
	signer, err := newTestSigner(ctx, st)
	if err != nil {
		t.Fatal(err)
	}
	r := newRecorder(t, st, clk, func(o *Options) { o.Signer, o.CheckpointEvery = signer, 10 })
	for i := 0; i < n; i++ {
		ev := readEvent("Practitioner/drA", fmt.Sprintf("p%d", i))
		if err := r.Record(ctx, ev); err != nil {
			t.Fatal(err)
		}
		clk.Advance(time.Second)
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	return st, path, signer
}

func rawDB(t *testing.T, path string) *sql.DB {
	t.Helper()
	db, err := sql.Open("sqlite", sqlite.AuditPath(path)+"?_pragma=busy_timeout(5000)")
	if err != nil {
		t.Fatal(err)
	}
	db.SetMaxOpenConns(1)
	t.Cleanup(func() { _ = db.Close() })
	return db
}

// tamper lets fn alter the stored records with plain SQL: the blocks are
// unpacked into one row per record (the version 1 table audit_events, as
// an attacker with a SQL shell would see them after unpacking), fn runs,
// and the store is reopened on path, which packs the rows back byte for
// byte. The reopened store is returned.
func tamper(t *testing.T, path string, fn func(db *sql.DB)) *sqlite.Store {
	t.Helper()
	db := rawDB(t, path)
	sqlstoretest.Unpack(t, db)
	fn(db)
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	return reopen(t, path)
}

// reopen opens another store on path.
func reopen(t *testing.T, path string) *sqlite.Store {
	t.Helper()
	idx, err := index.New()
	if err != nil {
		t.Fatal(err)
	}
	st, err := sqlite.Open(context.Background(), sqlite.Options{Path: path, Indexer: idx, Synchronous: "NORMAL", Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	return st
}

// editBody is the SQLite statement that edits record seq's body.
func editBody(seq int) string {
	return fmt.Sprintf(`UPDATE audit_events SET body = CAST(replace(CAST(body AS TEXT), 'drA', 'drX') AS BLOB) WHERE seq = %d`, seq)
}

// result is what Verify reported, for sqlstoretest.Check.
func result(rep *Report) sqlstoretest.Result {
	r := sqlstoretest.Result{Records: rep.Records, Checkpoints: int64(rep.Checkpoints)}
	if rep.Problem != nil {
		r.Problem, r.ProblemSeq = rep.Problem, rep.Problem.Seq
	}
	return r
}

// TestVerifyDetectsTampering: Verify names the first bad record after
// each kind of tampering done with SQL on the SQLite tables (the same
// cases run on PostgreSQL), checking the signatures with the signer and
// with the public keys kept in the log.
func TestVerifyDetectsTampering(t *testing.T) {
	t.Parallel()
	for _, tc := range sqlstoretest.TamperCases(sqlstoretest.Dialect{EditBody: editBody, Hash: Hash}) {
		t.Run(tc.Name, func(t *testing.T) {
			t.Parallel()
			_, path, signer := chainFixture(t, 35)
			st := tamper(t, path, func(db *sql.DB) { tc.Tamper(t, db) })
			for _, v := range []Verifier{signer, LogVerifier{St: st}} {
				rep, err := Verify(context.Background(), st, v, clock.System{})
				if err != nil {
					t.Fatal(err)
				}
				sqlstoretest.Check(t, tc, result(rep))
			}
		})
	}
}

// TestVerifyDetectsTamperingInsideABlock alters one stored block (the 35
// records of one write) directly: a record edited, two records swapped,
// one removed, the block's bytes damaged.
func TestVerifyDetectsTamperingInsideABlock(t *testing.T) {
	t.Parallel()
	for _, tc := range sqlstoretest.BlockCases() {
		t.Run(tc.Name, func(t *testing.T) {
			t.Parallel()
			clk := clock.NewFake(t0)
			st, path := openStore(t, clk)
			ctx := context.Background()
			signer, err := newTestSigner(ctx, st)
			if err != nil {
				t.Fatal(err)
			}
			r := newRecorder(t, st, clk, func(o *Options) { o.Signer = signer })
			evs := make([]Event, 35)
			for i := range evs {
				evs[i] = readEvent("Practitioner/drA", "pA")
			}
			// One append (so one block, whatever the group commit does).
			if err := st.Tx(ctx, func(tx store.Tx) error { return r.AppendInTx(ctx, tx, evs) }); err != nil {
				t.Fatal(err)
			}
			if err := r.Close(); err != nil {
				t.Fatal(err)
			}
			tc.Tamper(t, rawDB(t, path))
			rep, err := Verify(ctx, st, signer, clock.System{})
			if err != nil {
				t.Fatal(err)
			}
			sqlstoretest.Check(t, tc, result(rep))
		})
	}
}
