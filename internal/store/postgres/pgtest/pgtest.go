// Package pgtest gives tests a PostgreSQL schema of their own, so that
// tests of any package can run against PostgreSQL in parallel. The server
// comes from FHIRGUARD_TEST_POSTGRES (default DefaultDSN: the database
// `test` every development and CI machine runs). When it cannot be
// reached, tests skip saying what to start — unless CI=true, where they
// fail.
package pgtest

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"fmt"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"
)

// EnvDSN names the environment variable holding the test server's DSN.
const EnvDSN = "FHIRGUARD_TEST_POSTGRES"

// DefaultDSN is the test server when EnvDSN is unset.
const DefaultDSN = "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"

// Schema creates a schema named fg_test_<random> in the test database,
// drops it (with everything in it) when the test ends, and returns a DSN
// whose search_path is that schema. Call it before opening anything on
// the DSN, so that the drop runs after those are closed.
func Schema(t testing.TB) string {
	t.Helper()
	base := os.Getenv(EnvDSN)
	if base == "" {
		base = DefaultDSN
	}
	db := open(t, base)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := db.PingContext(ctx); err != nil {
		_ = db.Close()
		unavailable(t, err)
	}
	var b [6]byte
	if _, err := rand.Read(b[:]); err != nil {
		t.Fatal(err)
	}
	name := "fg_test_" + hex.EncodeToString(b[:])
	if _, err := db.ExecContext(ctx, `CREATE SCHEMA `+name); err != nil {
		_ = db.Close()
		t.Fatalf("pgtest: create schema: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if _, err := db.ExecContext(ctx, `DROP SCHEMA `+name+` CASCADE`); err != nil {
			t.Errorf("pgtest: drop schema %s: %v", name, err)
		}
		_ = db.Close()
	})
	dsn, err := WithSearchPath(base, name)
	if err != nil {
		t.Fatal(err)
	}
	return WithParam(dsn, "application_name", name)
}

// Terminate ends every server connection opened with dsn (a DSN from
// Schema: they carry its schema as application_name), as a database
// restart would, except the one it uses itself.
func Terminate(t testing.TB, dsn string) int {
	t.Helper()
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		t.Fatal(err)
	}
	app := cfg.RuntimeParams["application_name"]
	if app == "" {
		t.Fatal("pgtest: Terminate needs a DSN from Schema")
	}
	db := open(t, dsn)
	defer db.Close()
	var n int
	if err := db.QueryRow(`SELECT COUNT(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE application_name = $1 AND pid <> pg_backend_pid()`, app).Scan(&n); err != nil {
		t.Fatalf("pgtest: terminate: %v", err)
	}
	return n
}

// WithSearchPath returns dsn (a URL or key=value string) with its
// search_path set to schema.
func WithSearchPath(dsn, schema string) (string, error) {
	if strings.Contains(dsn, "://") {
		if _, err := url.Parse(dsn); err != nil {
			return "", fmt.Errorf("pgtest: %s: not a URL", EnvDSN)
		}
	}
	return WithParam(dsn, "search_path", schema), nil
}

// WithParam returns dsn (a URL or key=value string) with a connection
// parameter set (a server setting such as synchronous_commit, or one of
// libpq's).
func WithParam(dsn, key, value string) string {
	if !strings.Contains(dsn, "://") {
		return dsn + " " + key + "=" + value
	}
	u, err := url.Parse(dsn)
	if err != nil {
		return dsn
	}
	q := u.Query()
	q.Set(key, value)
	u.RawQuery = q.Encode()
	return u.String()
}

// DB opens dsn for a test's own SQL (closed at cleanup).
func DB(t testing.TB, dsn string) *sql.DB {
	t.Helper()
	db := open(t, dsn)
	t.Cleanup(func() { _ = db.Close() })
	return db
}

func open(t testing.TB, dsn string) *sql.DB {
	t.Helper()
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		t.Fatalf("pgtest: %s: %v", EnvDSN, err)
	}
	return stdlib.OpenDB(*cfg)
}

// unavailable skips the test, or fails it under CI=true.
func unavailable(t testing.TB, err error) {
	t.Helper()
	// pgx's error text leaves out a password of the DSN.
	msg := fmt.Sprintf("PostgreSQL is not reachable (%v): start PostgreSQL on 127.0.0.1:5432 with a database `test` "+
		"that user postgres may use without a password (e.g. `apt-get install postgresql`, then `createdb test`), "+
		"or set %s to another server's URL", err, EnvDSN)
	if os.Getenv("CI") == "true" {
		t.Fatal(msg + " [CI=true: failing instead of skipping]")
	}
	t.Skip(msg)
}
