package sqlite_test

import (
	"bytes"
	"context"
	"database/sql"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/fhirguard/fhirguard/internal/index"
	"github.com/fhirguard/fhirguard/internal/store"
	"github.com/fhirguard/fhirguard/internal/store/sqlite"
	"github.com/fhirguard/fhirguard/internal/store/sqlstore"
)

// storeVersion1 stores n chained records (keys fills in each one's body
// and search keys) on a store at path, then unpacks them into what schema
// audit v1 would have stored: one row per record and key. It returns the
// records.
func storeVersion1(t *testing.T, path string, ix store.Indexer, n int64, keys func(r *store.AuditRecord)) []store.AuditRecord {
	t.Helper()
	st := openAt(t, path, ix)
	ctx := context.Background()
	head, _ := st.AuditHeadRow(ctx)
	recs := make([]store.AuditRecord, 0, n)
	prev := head.Hash
	for seq := int64(1); seq <= n; seq++ {
		r := store.AuditRecord{Seq: seq, Recorded: time.UnixMilli(1_700_000_000_000 + seq).UTC(), Prev: prev, Hash: bytes.Repeat([]byte{byte(seq)}, 32)}
		keys(&r)
		recs = append(recs, r)
		prev = r.Hash
	}
	if err := st.AuditTx(ctx, func(tx store.AuditTx) error { return tx.AppendAudit(ctx, head, recs, head.Outbox) }); err != nil {
		t.Fatal(err)
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	db, err := sql.Open("sqlite", sqlite.AuditPath(path))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := sqlstore.UnpackAuditBlocksTx(ctx, db); err != nil {
		t.Fatal(err)
	}
	var rows int64
	if err := db.QueryRow(`SELECT COUNT(*) FROM audit_events`).Scan(&rows); err != nil || rows != n {
		t.Fatalf("v1 rows %d %v", rows, err)
	}
	return recs
}

// TestAuditVersion1RecordsArePacked: records stored one row each (schema
// audit v1) are packed into blocks when the store opens, byte for byte,
// with their search keys.
func TestAuditVersion1RecordsArePacked(t *testing.T) {
	ix, err := index.New()
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "a.db")
	ctx := context.Background()
	recs := storeVersion1(t, path, ix, 5000, func(r *store.AuditRecord) {
		r.Body = []byte(fmt.Sprintf(`{"n":%d}`, r.Seq))
		r.Outcome, r.Action, r.Type, r.Subtype = "0", "R", "s|rest", "|read|"
		r.Refs = []store.AuditRef{{Param: "patient", Value: fmt.Sprintf("Patient/p%d", r.Seq%10)}}
	})

	st := openAt(t, path, ix)
	page, err := st.AuditSearch(ctx, store.AuditQuery{Refs: []store.AuditRef{{Param: "patient", Value: "Patient/p3"}}, Count: 1000})
	if err != nil || len(page.Records) != 500 || page.Records[0].Seq != 4993 {
		t.Fatalf("search after packing: %d records %v", len(page.Records), err)
	}
	got, err := st.AuditRead(ctx, 4097)
	if err != nil || !bytes.Equal(got.Body, recs[4096].Body) || !bytes.Equal(got.Prev, recs[4096].Prev) || !got.Recorded.Equal(recs[4096].Recorded) {
		t.Fatalf("read after packing: %+v %v", got, err)
	}
	db, err := sql.Open("sqlite", sqlite.AuditPath(path))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var rows int
	if err := db.QueryRow(`SELECT COUNT(*) FROM audit_events`).Scan(&rows); err != nil || rows != 0 {
		t.Fatalf("v1 rows left: %d %v", rows, err)
	}
}

// TestAuditVersion1RecordsAreIndexed: version 1 records that fill a whole
// bucket get their postings when they are packed.
func TestAuditVersion1RecordsAreIndexed(t *testing.T) {
	ix, err := index.New()
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "a.db")
	const n = 16384 + 10
	storeVersion1(t, path, ix, n, func(r *store.AuditRecord) {
		r.Body, r.Outcome, r.Action, r.Type = []byte(`{}`), "0", "R", "s|rest"
		r.Refs = []store.AuditRef{{Param: "patient", Value: fmt.Sprintf("Patient/p%d", r.Seq%2)}}
	})
	ctx := context.Background()
	db, err := sql.Open("sqlite", sqlite.AuditPath(path))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	st := openAt(t, path, ix)
	var indexed, postings int64
	if err := db.QueryRow(`SELECT indexed FROM audit_head`).Scan(&indexed); err != nil || indexed != 16384 {
		t.Fatalf("indexed %d %v", indexed, err)
	}
	if err := db.QueryRow(`SELECT COUNT(*) FROM audit_postings`).Scan(&postings); err != nil || postings != 2 {
		t.Fatalf("postings rows %d %v", postings, err)
	}
	page, err := st.AuditSearch(ctx, store.AuditQuery{Refs: []store.AuditRef{{Param: "patient", Value: "Patient/p1"}}, Count: n})
	if err != nil || len(page.Records) != n/2 {
		t.Fatalf("search after packing: %d records %v", len(page.Records), err)
	}
}
