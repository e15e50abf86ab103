package audit

import (
	"context"
	"database/sql"
	"strings"
	"testing"
	"time"

	"github.com/fhirguard/fhirguard/internal/clock"
)

// chainFixture records n events with a checkpoint every 10 (and a final
// one) and returns the store's path and a verifier.
func chainFixture(t *testing.T, n int) (Backend, string, Verifier) {
	t.Helper()
	clk := clock.NewFake(t0)
	st, path := openStore(t, clk)
	ctx := context.Background()
	signer, err := NewLocalSigner(ctx, st)
	if err != nil {
		t.Fatal(err)
	}
	r := newRecorder(t, st, clk, func(o *Options) { o.Signer, o.CheckpointEvery = signer, 10 })
	for i := 0; i < n; i++ {
		ev := readEvent("Practitioner/drA", "pA")
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
	db, err := sql.Open("sqlite", path+"?_pragma=busy_timeout(5000)")
	if err != nil {
		t.Fatal(err)
	}
	db.SetMaxOpenConns(1)
	t.Cleanup(func() { _ = db.Close() })
	return db
}

func exec(t *testing.T, db *sql.DB, stmts ...string) {
	t.Helper()
	for _, s := range stmts {
		if _, err := db.Exec(s); err != nil {
			t.Fatalf("%s: %v", s, err)
		}
	}
}

// recompute rewrites the chain hashes from seq from on (and the head), as
// an attacker who knows the hash function but not the checkpoint key would.
func recompute(t *testing.T, db *sql.DB, from int64) {
	t.Helper()
	var prev []byte
	if err := db.QueryRow(`SELECT hash FROM audit_events WHERE seq = ?`, from-1).Scan(&prev); err != nil {
		t.Fatal(err)
	}
	rows, err := db.Query(`SELECT seq, recorded, body FROM audit_events WHERE seq >= ? ORDER BY seq`, from)
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
		h := Hash(r.seq, time.UnixMilli(r.ms), prev, r.body)
		if _, err := db.Exec(`UPDATE audit_events SET prev = ?, hash = ? WHERE seq = ?`, prev, h, r.seq); err != nil {
			t.Fatal(err)
		}
		if _, err := db.Exec(`UPDATE audit_head SET seq = ?, hash = ?`, r.seq, h); err != nil {
			t.Fatal(err)
		}
		prev = h
	}
}

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
			exec(t, db, `UPDATE audit_events SET body = CAST(replace(CAST(body AS TEXT), 'drA', 'drX') AS BLOB) WHERE seq = 7`)
		}},
		{name: "fail/edited-recorded-time", wantSeq: 8, reason: "edited", tamper: func(t *testing.T, db *sql.DB) {
			exec(t, db, `UPDATE audit_events SET recorded = recorded + 1000 WHERE seq = 8`)
		}},
		{name: "fail/deleted", wantSeq: 12, reason: "missing", tamper: func(t *testing.T, db *sql.DB) {
			exec(t, db, `DELETE FROM audit_events WHERE seq = 12`)
		}},
		{name: "fail/deleted-and-renumbered", wantSeq: 12, reason: "link", tamper: func(t *testing.T, db *sql.DB) {
			exec(t, db, `DELETE FROM audit_events WHERE seq = 12`,
				`UPDATE audit_events SET seq = seq - 1 WHERE seq > 12`,
				`UPDATE audit_head SET seq = seq - 1`)
		}},
		{name: "fail/inserted-in-the-middle", wantSeq: 15, reason: "link", tamper: func(t *testing.T, db *sql.DB) {
			exec(t, db, `UPDATE audit_events SET seq = -seq WHERE seq >= 15`,
				`UPDATE audit_events SET seq = 1 - seq WHERE seq < 0`,
				`INSERT INTO audit_events SELECT 15, recorded, outcome, action, type, subtype, address, body, prev, hash FROM audit_events WHERE seq = 3`)
		}},
		{name: "fail/appended", wantSeq: 36, reason: "", tamper: func(t *testing.T, db *sql.DB) {
			exec(t, db, `INSERT INTO audit_events SELECT 36, recorded, outcome, action, type, subtype, address, body, prev, hash FROM audit_events WHERE seq = 35`)
		}},
		{name: "fail/reordered", wantSeq: 17, reason: "", tamper: func(t *testing.T, db *sql.DB) {
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
			exec(t, db, `UPDATE audit_events SET body = CAST(replace(CAST(body AS TEXT), 'drA', 'drX') AS BLOB) WHERE seq = 22`)
			recompute(t, db, 22)
		}},
		{name: "fail/forged-checkpoint", wantSeq: 20, reason: "signed", tamper: func(t *testing.T, db *sql.DB) {
			exec(t, db, `UPDATE audit_checkpoints SET signature = (SELECT signature FROM audit_checkpoints WHERE seq = 10) WHERE seq = 20`)
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			st, path, v := chainFixture(t, 35)
			tc.tamper(t, rawDB(t, path))
			rep, err := Verify(context.Background(), st, v, clock.System{})
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
