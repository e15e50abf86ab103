package postgres_test

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/fhirguard/fhirguard/internal/audit"
	"github.com/fhirguard/fhirguard/internal/clock"
	"github.com/fhirguard/fhirguard/internal/store"
	"github.com/fhirguard/fhirguard/internal/store/postgres/pgtest"
	"github.com/fhirguard/fhirguard/internal/store/sqlstore"
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

func exec(t *testing.T, db *sql.DB, stmts ...string) {
	t.Helper()
	for _, s := range stmts {
		if _, err := db.Exec(s); err != nil {
			t.Fatalf("%s: %v", s, err)
		}
	}
}

// tamper unpacks the stored blocks into one row per record (audit_events,
// as an attacker with a SQL shell would unpack them), lets fn alter them
// with plain SQL, and opens the log again, which packs the rows back.
func tamper(t *testing.T, dsn string, fn func(db *sql.DB)) store.AuditLog {
	t.Helper()
	db := pgtest.DB(t, dsn)
	ctx := context.Background()
	if err := sqlstore.UnpackAuditBlocksTx(ctx, db); err != nil {
		t.Fatal(err)
	}
	fn(db)
	return open(t, dsn)
}

// recompute rewrites the chain hashes from seq from on (and the head), as
// an attacker who knows the hash function but not the checkpoint key would.
func recompute(t *testing.T, db *sql.DB, from int64) {
	t.Helper()
	var prev []byte
	if err := db.QueryRow(`SELECT hash FROM audit_events WHERE seq = $1`, from-1).Scan(&prev); err != nil {
		t.Fatal(err)
	}
	rows, err := db.Query(`SELECT seq, recorded, body FROM audit_events WHERE seq >= $1 ORDER BY seq`, from)
	if err != nil {
		t.Fatal(err)
	}
	type row struct {
		seq, ms int64
		body    []byte
	}
	var rs []row
	for rows.Next() {
		var r row
		if err := rows.Scan(&r.seq, &r.ms, &r.body); err != nil {
			t.Fatal(err)
		}
		rs = append(rs, r)
	}
	rows.Close()
	for _, r := range rs {
		h := audit.Hash(r.seq, time.UnixMilli(r.ms), prev, r.body)
		if _, err := db.Exec(`UPDATE audit_events SET prev = $1, hash = $2 WHERE seq = $3`, prev, h, r.seq); err != nil {
			t.Fatal(err)
		}
		if _, err := db.Exec(`UPDATE audit_head SET seq = $1, hash = $2`, r.seq, h); err != nil {
			t.Fatal(err)
		}
		prev = h
	}
}

// editBody changes one byte of the first "drA" in record seq's stored
// body (the compact form is bytes, not always text).
func editBody(seq int) string {
	return fmt.Sprintf(`UPDATE audit_events SET body = overlay(body placing '\x58'::bytea from position('drA'::bytea in body) + 2 for 1) WHERE seq = %d`, seq)
}

// TestVerifyDetectsTampering: audit.Verify names the first bad record
// after each kind of tampering done with SQL on the PostgreSQL tables.
func TestVerifyDetectsTampering(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		tamper  func(t *testing.T, db *sql.DB)
		wantSeq int64 // 0 = intact
		reason  string
	}{
		{name: "ok/intact", tamper: func(*testing.T, *sql.DB) {}},
		{name: "fail/edited-body", wantSeq: 7, reason: "edited", tamper: func(t *testing.T, db *sql.DB) {
			exec(t, db, editBody(7))
		}},
		{name: "fail/edited-recorded-time", wantSeq: 8, reason: "edited", tamper: func(t *testing.T, db *sql.DB) {
			exec(t, db, `UPDATE audit_events SET recorded = recorded + 1000 WHERE seq = 8`)
		}},
		{name: "fail/deleted", wantSeq: 12, reason: "missing", tamper: func(t *testing.T, db *sql.DB) {
			exec(t, db, `DELETE FROM audit_events WHERE seq = 12`)
		}},
		{name: "fail/deleted-and-renumbered", wantSeq: 12, reason: "link", tamper: func(t *testing.T, db *sql.DB) {
			exec(t, db, `DELETE FROM audit_events WHERE seq = 12`,
				`UPDATE audit_events SET seq = 1 - seq WHERE seq > 12`,
				`UPDATE audit_events SET seq = -seq WHERE seq < 0`,
				`UPDATE audit_head SET seq = seq - 1`)
		}},
		{name: "fail/inserted-in-the-middle", wantSeq: 15, reason: "link", tamper: func(t *testing.T, db *sql.DB) {
			exec(t, db, `UPDATE audit_events SET seq = -seq WHERE seq >= 15`,
				`UPDATE audit_events SET seq = 1 - seq WHERE seq < 0`,
				`INSERT INTO audit_events SELECT 15, recorded, outcome, action, type, subtype, address, body, prev, hash FROM audit_events WHERE seq = 3`)
		}},
		{name: "fail/appended", wantSeq: 36, tamper: func(t *testing.T, db *sql.DB) {
			exec(t, db, `INSERT INTO audit_events SELECT 36, recorded, outcome, action, type, subtype, address, body, prev, hash FROM audit_events WHERE seq = 35`)
		}},
		{name: "fail/reordered", wantSeq: 17, tamper: func(t *testing.T, db *sql.DB) {
			exec(t, db, `UPDATE audit_events SET seq = -1 WHERE seq = 17`,
				`UPDATE audit_events SET seq = 17 WHERE seq = 18`,
				`UPDATE audit_events SET seq = 18 WHERE seq = -1`)
		}},
		{name: "fail/swapped-bodies", wantSeq: 17, reason: "edited", tamper: func(t *testing.T, db *sql.DB) {
			exec(t, db, `UPDATE audit_events SET body = (SELECT body FROM audit_events b WHERE b.seq = 35 - audit_events.seq) WHERE seq IN (17, 18)`)
		}},
		{name: "fail/truncated-after-last-checkpoint", wantSeq: 33, reason: "truncated", tamper: func(t *testing.T, db *sql.DB) {
			exec(t, db, `DELETE FROM audit_events WHERE seq > 32`, `DELETE FROM audit_checkpoints WHERE seq > 30`)
		}},
		{name: "fail/truncated-head-rewritten", wantSeq: 26, reason: "truncated", tamper: func(t *testing.T, db *sql.DB) {
			exec(t, db, `DELETE FROM audit_events WHERE seq > 25`,
				`UPDATE audit_head SET seq = 25, hash = (SELECT hash FROM audit_events WHERE seq = 25)`)
		}},
		{name: "fail/chain-recomputed", wantSeq: 30, reason: "checkpoint", tamper: func(t *testing.T, db *sql.DB) {
			exec(t, db, editBody(22))
			recompute(t, db, 22)
		}},
		{name: "fail/forged-checkpoint", wantSeq: 20, reason: "signed", tamper: func(t *testing.T, db *sql.DB) {
			exec(t, db, `UPDATE audit_checkpoints SET signature = (SELECT signature FROM audit_checkpoints WHERE seq = 10) WHERE seq = 20`)
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			dsn := chainFixture(t, 35)
			st := tamper(t, dsn, func(db *sql.DB) { tc.tamper(t, db) })
			ctx := context.Background()
			// The public keys of the signatures are in the log itself.
			rep, err := audit.Verify(ctx, st, audit.LogVerifier{St: st}, clock.System{})
			if err != nil {
				t.Fatal(err)
			}
			switch {
			case tc.wantSeq == 0 && rep.Problem != nil:
				t.Fatalf("intact chain reported: %v", rep.Problem)
			case tc.wantSeq == 0:
				if rep.Records != 35 || rep.Checkpoints != 4 {
					t.Fatalf("report %+v: want 35 records and 4 checkpoints", rep)
				}
			case rep.Problem == nil:
				t.Fatalf("tampering not detected (report %+v)", rep)
			case rep.Problem.Seq != tc.wantSeq || !strings.Contains(rep.Problem.Error(), tc.reason):
				t.Fatalf("problem %q, want record %d (%s)", rep.Problem, tc.wantSeq, tc.reason)
			}
		})
	}
}

// TestVerifyDetectsTamperingInsideABlock alters the stored block of one
// group commit (35 records) directly in audit_blocks.
func TestVerifyDetectsTamperingInsideABlock(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		alter   func(recs []store.AuditRecord) []store.AuditRecord
		damage  bool
		wantSeq int64
		reason  string
	}{
		{name: "fail/edited", wantSeq: 7, reason: "edited", alter: func(recs []store.AuditRecord) []store.AuditRecord {
			recs[6].Body = []byte(strings.Replace(string(recs[6].Body), "drA", "drX", 1))
			return recs
		}},
		{name: "fail/swapped", wantSeq: 17, alter: func(recs []store.AuditRecord) []store.AuditRecord {
			recs[16], recs[17] = recs[17], recs[16]
			return recs
		}},
		{name: "fail/removed", wantSeq: 20, reason: "missing", alter: func(recs []store.AuditRecord) []store.AuditRecord {
			return append(recs[:19:19], recs[20:]...)
		}},
		{name: "fail/damaged", wantSeq: 1, reason: "cannot be decoded", damage: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
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
			db := pgtest.DB(t, dsn)
			var data, keys []byte
			if err := db.QueryRow(`SELECT data, keys FROM audit_blocks`).Scan(&data, &keys); err != nil {
				t.Fatal(err)
			}
			if tc.damage {
				data = data[:len(data)-5]
			} else {
				recs, err := sqlstore.DecodeAuditBlock(data, keys)
				if err != nil || len(recs) != 35 {
					t.Fatalf("one block of 35 records expected: %d %v", len(recs), err)
				}
				data, keys = sqlstore.EncodeAuditBlock(tc.alter(recs))
			}
			if _, err := db.Exec(`UPDATE audit_blocks SET data = $1, keys = $2`, data, keys); err != nil {
				t.Fatal(err)
			}
			rep, err := audit.Verify(ctx, st, signer, clock.System{})
			if err != nil {
				t.Fatal(err)
			}
			if rep.Problem == nil || rep.Problem.Seq != tc.wantSeq || !strings.Contains(rep.Problem.Error(), tc.reason) {
				t.Fatalf("problem %v, want record %d (%s)", rep.Problem, tc.wantSeq, tc.reason)
			}
		})
	}
}
