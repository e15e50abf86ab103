package postgres

import (
	"context"
	"testing"

	"github.com/fhirguard/fhirguard/internal/store"
	"github.com/fhirguard/fhirguard/internal/store/postgres/pgtest"
)

// TestWriterCommitsDurably: on a server (here: a connection parameter)
// with synchronous_commit off, the audit writer's session turns it on, so
// a nil AuditTx means the commit is flushed; other connections keep the
// setting they were given.
func TestWriterCommitsDurably(t *testing.T) {
	t.Parallel()
	dsn := pgtest.WithParam(pgtest.Schema(t), "synchronous_commit", "off")
	ctx := context.Background()
	l, err := OpenAudit(ctx, dsn, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if err := l.AuditTx(ctx, func(store.AuditTx) error { return nil }); err != nil {
		t.Fatal(err)
	}
	var writer, pool string
	l.mu.Lock()
	err = l.w.conn.QueryRowContext(ctx, `SHOW synchronous_commit`).Scan(&writer)
	l.mu.Unlock()
	if err != nil {
		t.Fatal(err)
	}
	if err := l.db.QueryRowContext(ctx, `SHOW synchronous_commit`).Scan(&pool); err != nil {
		t.Fatal(err)
	}
	if pool != "off" || writer != "on" {
		t.Fatalf("synchronous_commit: writer %q (want on), other connections %q (want off, as the DSN asks)", writer, pool)
	}
}
