package postgres_test

import (
	"context"
	"log/slog"
	"path/filepath"
	"testing"

	"github.com/fhirguard/fhirguard/internal/audit"
	"github.com/fhirguard/fhirguard/internal/clock"
	"github.com/fhirguard/fhirguard/internal/index"
	"github.com/fhirguard/fhirguard/internal/keys"
	"github.com/fhirguard/fhirguard/internal/store"
	"github.com/fhirguard/fhirguard/internal/store/sqlite"
)

// newSigner signs checkpoints with a key service, as the server does, and
// keeps the public keys in st's audit log. The server keeps its signing
// keys with the resources, which are not on PostgreSQL yet, so the key
// service's table is in a SQLite store of the test's own.
func newSigner(t testing.TB, st store.AuditStore) *audit.KeySigner {
	t.Helper()
	ctx := context.Background()
	idx, err := index.New()
	if err != nil {
		t.Fatal(err)
	}
	ks, err := sqlite.Open(ctx, sqlite.Options{Path: filepath.Join(t.TempDir(), "keys.db"), Indexer: idx, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ks.Close() })
	svc, err := keys.New(ctx, keys.Options{Store: ks.Auth(), Clock: clock.System{}})
	if err != nil {
		t.Fatal(err)
	}
	return audit.NewKeySigner(svc, st)
}
