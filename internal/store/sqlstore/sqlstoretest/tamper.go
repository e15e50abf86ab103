// Package sqlstoretest is test support for the backends built on sqlstore
// (SQLite and PostgreSQL): the ways an attacker with a SQL shell alters a
// stored audit chain, written once for both, and the check that
// audit.Verify names the first bad record. It does not import
// internal/audit (whose own tests use it): the callers pass the chain
// hash and the verification's result.
package sqlstoretest

import (
	"context"
	"database/sql"
	"strings"
	"testing"
	"time"

	"github.com/fhirguard/fhirguard/internal/store"
	"github.com/fhirguard/fhirguard/internal/store/sqlstore"
)

// HashFunc is the chain hash (audit.Hash).
type HashFunc func(seq int64, recorded time.Time, prev, body []byte) []byte

// Dialect is what differs between the backends' SQL.
type Dialect struct {
	// EditBody returns a statement that changes one byte of the first
	// "drA" in record seq's stored body (in audit_events).
	EditBody func(seq int) string
	// Hash is the chain hash (audit.Hash).
	Hash HashFunc
}

// TamperCase is one kind of tampering with a chain of 35 records (one
// event a second, a checkpoint every 10 and a final one at 35), done on
// the unpacked rows (sqlstore.UnpackAuditBlocks).
type TamperCase struct {
	Name    string
	Tamper  func(t *testing.T, db *sql.DB)
	WantSeq int64  // the first bad record Verify must name; 0 = intact
	Reason  string // a word its problem must say
}

// TamperCases lists the tampering Verify must detect, and the intact
// chain it must not report.
func TamperCases(d Dialect) []TamperCase {
	return []TamperCase{
		{Name: "ok/intact", Tamper: func(*testing.T, *sql.DB) {}},
		{Name: "fail/edited-body", WantSeq: 7, Reason: "edited", Tamper: func(t *testing.T, db *sql.DB) {
			Exec(t, db, d.EditBody(7))
		}},
		{Name: "fail/edited-recorded-time", WantSeq: 8, Reason: "edited", Tamper: func(t *testing.T, db *sql.DB) {
			Exec(t, db, `UPDATE audit_events SET recorded = recorded + 1000 WHERE seq = 8`)
		}},
		{Name: "fail/deleted", WantSeq: 12, Reason: "missing", Tamper: func(t *testing.T, db *sql.DB) {
			Exec(t, db, `DELETE FROM audit_events WHERE seq = 12`)
		}},
		{Name: "fail/deleted-and-renumbered", WantSeq: 12, Reason: "link", Tamper: func(t *testing.T, db *sql.DB) {
			Exec(t, db, `DELETE FROM audit_events WHERE seq = 12`,
				`UPDATE audit_events SET seq = 1 - seq WHERE seq > 12`,
				`UPDATE audit_events SET seq = -seq WHERE seq < 0`,
				`UPDATE audit_head SET seq = seq - 1`)
		}},
		{Name: "fail/inserted-in-the-middle", WantSeq: 15, Reason: "link", Tamper: func(t *testing.T, db *sql.DB) {
			Exec(t, db, `UPDATE audit_events SET seq = -seq WHERE seq >= 15`,
				`UPDATE audit_events SET seq = 1 - seq WHERE seq < 0`,
				`INSERT INTO audit_events SELECT 15, recorded, outcome, action, type, subtype, address, body, prev, hash FROM audit_events WHERE seq = 3`)
		}},
		{Name: "fail/appended", WantSeq: 36, Tamper: func(t *testing.T, db *sql.DB) {
			Exec(t, db, `INSERT INTO audit_events SELECT 36, recorded, outcome, action, type, subtype, address, body, prev, hash FROM audit_events WHERE seq = 35`)
		}},
		{Name: "fail/reordered", WantSeq: 17, Tamper: func(t *testing.T, db *sql.DB) {
			Exec(t, db, `UPDATE audit_events SET seq = -1 WHERE seq = 17`,
				`UPDATE audit_events SET seq = 17 WHERE seq = 18`,
				`UPDATE audit_events SET seq = 18 WHERE seq = -1`)
		}},
		{Name: "fail/swapped-bodies", WantSeq: 17, Reason: "edited", Tamper: func(t *testing.T, db *sql.DB) {
			Exec(t, db, `UPDATE audit_events SET body = (SELECT body FROM audit_events b WHERE b.seq = 35 - audit_events.seq) WHERE seq IN (17, 18)`)
		}},
		{Name: "fail/truncated-after-last-checkpoint", WantSeq: 33, Reason: "truncated", Tamper: func(t *testing.T, db *sql.DB) {
			Exec(t, db, `DELETE FROM audit_events WHERE seq > 32`, `DELETE FROM audit_checkpoints WHERE seq > 30`)
		}},
		{Name: "fail/truncated-head-rewritten", WantSeq: 26, Reason: "truncated", Tamper: func(t *testing.T, db *sql.DB) {
			Exec(t, db, `DELETE FROM audit_events WHERE seq > 25`,
				`UPDATE audit_head SET seq = 25, hash = (SELECT hash FROM audit_events WHERE seq = 25)`)
		}},
		{Name: "fail/chain-recomputed", WantSeq: 30, Reason: "checkpoint", Tamper: func(t *testing.T, db *sql.DB) {
			Exec(t, db, d.EditBody(22))
			Recompute(t, db, 22, d.Hash)
		}},
		{Name: "fail/forged-checkpoint", WantSeq: 20, Reason: "signed", Tamper: func(t *testing.T, db *sql.DB) {
			Exec(t, db, `UPDATE audit_checkpoints SET signature = (SELECT signature FROM audit_checkpoints WHERE seq = 10) WHERE seq = 20`)
		}},
	}
}

// Unpack moves the stored blocks of db's audit log into one row per
// record (audit_events), as an attacker would before editing them; the
// log packs them back when it next opens. No store may have db open.
func Unpack(t *testing.T, db *sql.DB) {
	t.Helper()
	if err := sqlstore.UnpackAuditBlocksTx(context.Background(), db); err != nil {
		t.Fatal(err)
	}
}

// Exec runs statements on db, failing the test at the first error.
func Exec(t *testing.T, db *sql.DB, stmts ...string) {
	t.Helper()
	for _, s := range stmts {
		if _, err := db.Exec(s); err != nil {
			t.Fatalf("%s: %v", s, err)
		}
	}
}

// Recompute rewrites the chain hashes of the unpacked rows from seq from
// on (and the head), as an attacker who knows the hash function but not
// the checkpoint key would.
func Recompute(t *testing.T, db *sql.DB, from int64, hash HashFunc) {
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
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	rows.Close()
	for _, r := range rs {
		h := hash(r.seq, time.UnixMilli(r.ms), prev, r.body)
		if _, err := db.Exec(`UPDATE audit_events SET prev = $1, hash = $2 WHERE seq = $3`, prev, h, r.seq); err != nil {
			t.Fatal(err)
		}
		if _, err := db.Exec(`UPDATE audit_head SET seq = $1, hash = $2`, r.seq, h); err != nil {
			t.Fatal(err)
		}
		prev = h
	}
}

// Result is what audit.Verify reported (the caller copies it from the
// audit.Report: Problem nil when the chain verified).
type Result struct {
	Problem     error
	ProblemSeq  int64
	Records     int64
	Checkpoints int64
}

// Check fails unless r is what c wants: an intact chain of 35 records
// and 4 checkpoints, or a problem at c.WantSeq that says c.Reason.
func Check(t *testing.T, c TamperCase, r Result) {
	t.Helper()
	switch {
	case c.WantSeq == 0 && r.Problem != nil:
		t.Fatalf("intact chain reported: %v", r.Problem)
	case c.WantSeq == 0:
		if r.Records != 35 || r.Checkpoints != 4 {
			t.Fatalf("report %+v: want 35 records and 4 checkpoints", r)
		}
	case r.Problem == nil:
		t.Fatalf("tampering not detected (report %+v)", r)
	case r.ProblemSeq != c.WantSeq || !strings.Contains(r.Problem.Error(), c.Reason):
		t.Fatalf("problem %q, want record %d (%s)", r.Problem, c.WantSeq, c.Reason)
	}
}

// BlockCases lists alterations of the one stored block of 35 records
// (one write's events), done directly in audit_blocks, not unpacked: a
// record's body edited, two records swapped, a record removed, the
// block's bytes damaged.
func BlockCases() []TamperCase {
	return []TamperCase{
		{Name: "fail/edited", WantSeq: 7, Reason: "edited", Tamper: alterBlock(func(recs []store.AuditRecord) []store.AuditRecord {
			recs[6].Body = []byte(strings.Replace(string(recs[6].Body), "drA", "drX", 1))
			return recs
		})},
		{Name: "fail/swapped", WantSeq: 17, Tamper: alterBlock(func(recs []store.AuditRecord) []store.AuditRecord {
			recs[16], recs[17] = recs[17], recs[16]
			return recs
		})},
		{Name: "fail/removed", WantSeq: 20, Reason: "missing", Tamper: alterBlock(func(recs []store.AuditRecord) []store.AuditRecord {
			return append(recs[:19:19], recs[20:]...)
		})},
		{Name: "fail/damaged", WantSeq: 1, Reason: "cannot be decoded", Tamper: func(t *testing.T, db *sql.DB) {
			data, keys := readBlock(t, db)
			writeBlock(t, db, data[:len(data)-5], keys)
		}},
	}
}

// alterBlock decodes the one stored block, lets alter change its
// records and stores them back.
func alterBlock(alter func([]store.AuditRecord) []store.AuditRecord) func(t *testing.T, db *sql.DB) {
	return func(t *testing.T, db *sql.DB) {
		t.Helper()
		recs, err := sqlstore.DecodeAuditBlock(readBlock(t, db))
		if err != nil || len(recs) != 35 {
			t.Fatalf("one block of 35 records expected: %d %v", len(recs), err)
		}
		data, keys := sqlstore.EncodeAuditBlock(alter(recs))
		writeBlock(t, db, data, keys)
	}
}

func readBlock(t *testing.T, db *sql.DB) (data, keys []byte) {
	t.Helper()
	if err := db.QueryRow(`SELECT data, keys FROM audit_blocks`).Scan(&data, &keys); err != nil {
		t.Fatal(err)
	}
	return data, keys
}

func writeBlock(t *testing.T, db *sql.DB, data, keys []byte) {
	t.Helper()
	if _, err := db.Exec(`UPDATE audit_blocks SET data = $1, keys = $2`, data, keys); err != nil {
		t.Fatal(err)
	}
}
