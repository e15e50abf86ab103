package sqlite_test

import (
	"context"
	"database/sql"
	"path/filepath"
	"testing"

	"github.com/fhirguard/fhirguard/internal/store"
	"github.com/fhirguard/fhirguard/internal/store/sqlite"
	"github.com/fhirguard/fhirguard/internal/store/storetest"
)

// TestAuditConformance runs the audit log conformance suite on SQLite
// (the log in its own database file next to the resources).
func TestAuditConformance(t *testing.T) {
	storetest.RunAudit(t, func(t *testing.T) storetest.AuditFixture {
		path := filepath.Join(t.TempDir(), "a.db")
		st := openAt(t, path, storetest.Indexer())
		return storetest.AuditFixture{
			Log: st,
			Outbox: func(ctx context.Context, fn func(tx store.AuditOutboxTx) error) error {
				return st.Tx(ctx, func(tx store.Tx) error { return fn(tx.(store.AuditOutboxTx)) })
			},
			Reopen: func(t *testing.T, dropPostings bool) storetest.AuditLog {
				if err := st.Close(); err != nil {
					t.Fatal(err)
				}
				if dropPostings {
					db := rawOpen(t, sqlite.AuditPath(path))
					if _, err := db.Exec(`DELETE FROM audit_postings; UPDATE audit_head SET indexed = 0`); err != nil {
						t.Fatal(err)
					}
					_ = db.Close()
				}
				st = openAt(t, path, storetest.Indexer())
				if dropPostings {
					checkPostings(t, rawOpen(t, sqlite.AuditPath(path)))
				}
				return st
			},
		}
	})
}

// checkPostings fails unless the audit database holds postings again.
func checkPostings(t *testing.T, db *sql.DB) {
	t.Helper()
	if n := count(t, db, `SELECT COUNT(*) FROM audit_postings`); n == 0 {
		t.Fatal("no postings after reopening")
	}
}
