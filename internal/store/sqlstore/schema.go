package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strings"
)

// Migration is one schema step of one module. Each area of fhirguard owns a
// module (core, search, auth, audit) with its own file and its own version
// sequence starting at 1, so areas add tables independently. A released
// migration is never edited; a change is a new migration.
type Migration struct {
	Module  string
	Version int
	Name    string
	Stmts   []string
}

// Migrations returns the schema steps of the resource database for d, in
// the order they are applied: core first, then each module's steps oldest
// first. The audit module's first three steps stay in it: databases from
// before the audit log moved into a database of its own hold their records
// there until the backend moves them (see AuditMigrations).
func Migrations(d Dialect) []Migration {
	return slices.Concat(coreMigrations(d), searchMigrations(d), authMigrations(d), auditMigrations(d)[:3], outboxMigrations(d))
}

// AuditMigrations returns the schema steps of the audit database: the
// audit module's.
func AuditMigrations(d Dialect) []Migration { return auditMigrations(d) }

// OutboxMigrations returns the schema steps of the audit outbox (module
// "outbox"), which Migrations includes for the resource database. A
// backend that keeps the audit log and the outbox in one database
// (PostgreSQL) applies AuditMigrations and these.
func OutboxMigrations(d Dialect) []Migration { return outboxMigrations(d) }

// coreMigrations returns the core module's schema steps for d, oldest first.
//
// Layout (version 1):
//
//   - resources: one row per (type, id) with its current version number,
//     deleted flag and lastUpdated; rid is the compact surrogate key every
//     derived table refers to.
//   - versions: every version ever written, body included (NULL for a
//     tombstone). seq is global and monotonically increasing: it orders
//     history and is the paging cursor (HistoryPage.Next).
//   - compartment: resource → patient ids of the current version
//     (patient_id → resources through compartment_patient).
//   - labels: meta.security codings of the current version (system+code →
//     resources through labels_code).
//
// Search-parameter index tables (token, string, reference, date, number,
// quantity, uri) are added by later migrations in the same shape as
// compartment and labels: keyed by rid, carrying type for type-restricted
// lookups, replaced on every write of the resource and emptied by a delete
// (see replaceIndex).
//
// Times are stored as integer milliseconds since the Unix epoch (UTC), the
// precision of meta.lastUpdated.
func coreMigrations(d Dialect) []Migration {
	r := strings.NewReplacer("{serial}", d.SerialKey(), "{rowkey}", d.RowKey(), "{blob}", d.Blob())
	return []Migration{{
		Module:  "core",
		Version: 1,
		Name:    "resources, versions, compartment, labels",
		Stmts: []string{
			r.Replace(`CREATE TABLE resources (
	rid {rowkey},
	type TEXT NOT NULL,
	id TEXT NOT NULL,
	version BIGINT NOT NULL,
	deleted SMALLINT NOT NULL,
	last_updated BIGINT NOT NULL,
	UNIQUE (type, id)
)`),
			r.Replace(`CREATE TABLE versions (
	seq {serial},
	rid BIGINT NOT NULL REFERENCES resources (rid),
	type TEXT NOT NULL,
	id TEXT NOT NULL,
	version BIGINT NOT NULL,
	last_updated BIGINT NOT NULL,
	deleted SMALLINT NOT NULL,
	body {blob},
	UNIQUE (rid, version)
)`),
			`CREATE INDEX versions_type_seq ON versions (type, seq)`,
			`CREATE TABLE compartment (
	rid BIGINT NOT NULL REFERENCES resources (rid),
	type TEXT NOT NULL,
	patient_id TEXT NOT NULL,
	PRIMARY KEY (rid, patient_id)
)`,
			`CREATE INDEX compartment_patient ON compartment (patient_id, type, rid)`,
			`CREATE TABLE labels (
	rid BIGINT NOT NULL REFERENCES resources (rid),
	type TEXT NOT NULL,
	system TEXT NOT NULL,
	code TEXT NOT NULL,
	PRIMARY KEY (rid, system, code)
)`,
			`CREATE INDEX labels_code ON labels (system, code, type, rid)`,
		},
	}, {
		Module:  "core",
		Version: 2,
		Name:    "versions by last_updated (history _since)",
		Stmts:   []string{`CREATE INDEX versions_last_updated ON versions (last_updated)`},
	}}
}

// Execer is what Migrate needs: a connection or transaction.
type Execer interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}

// ErrSchemaTooNew is returned by Migrate when the database was written by a
// newer fhirguard than this one.
var ErrSchemaTooNew = errors.New("sqlstore: database schema is newer than this program")

// Migrate brings the schema up to date with ms (Migrations or
// AuditMigrations). The caller runs it inside a write
// transaction that excludes concurrent migrators (SQLite: BEGIN IMMEDIATE;
// PostgreSQL: a transaction holding an advisory lock) and commits it. It is
// idempotent: an up-to-date schema is left untouched. nowMillis is recorded
// as the time each migration was applied. It returns the number of applied migrations.
func Migrate(ctx context.Context, ex Execer, ms []Migration, nowMillis int64) (int, error) {
	if _, err := ex.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_version (
	module TEXT NOT NULL,
	version INTEGER NOT NULL,
	name TEXT NOT NULL,
	applied_at BIGINT NOT NULL,
	PRIMARY KEY (module, version)
)`); err != nil {
		return 0, fmt.Errorf("sqlstore: create schema_version: %w", err)
	}
	applied, err := appliedMigrations(ctx, ex)
	if err != nil {
		return 0, err
	}
	known := make(map[string]bool, len(ms))
	for _, m := range ms {
		known[migrationKey(m.Module, m.Version)] = true
	}
	for k := range applied {
		if !known[k] {
			return len(applied), fmt.Errorf("%w: database has migration %s, unknown to this program", ErrSchemaTooNew, k)
		}
	}
	for _, m := range ms {
		if applied[migrationKey(m.Module, m.Version)] {
			continue
		}
		for i, s := range m.Stmts {
			if _, err := ex.ExecContext(ctx, s); err != nil {
				return len(applied), fmt.Errorf("sqlstore: migration %s/%d (%s) statement %d: %w", m.Module, m.Version, m.Name, i+1, err)
			}
		}
		if _, err := ex.ExecContext(ctx, `INSERT INTO schema_version (module, version, name, applied_at) VALUES ($1, $2, $3, $4)`,
			m.Module, m.Version, m.Name, nowMillis); err != nil {
			return len(applied), fmt.Errorf("sqlstore: record migration %s/%d: %w", m.Module, m.Version, err)
		}
		applied[migrationKey(m.Module, m.Version)] = true
	}
	return len(applied), nil
}

func migrationKey(module string, version int) string { return fmt.Sprintf("%s/%d", module, version) }

// appliedMigrations reads the set of applied migration keys.
func appliedMigrations(ctx context.Context, ex Execer) (map[string]bool, error) {
	rows, err := ex.QueryContext(ctx, `SELECT module, version FROM schema_version`)
	if err != nil {
		return nil, fmt.Errorf("sqlstore: read schema version: %w", err)
	}
	defer rows.Close()
	applied := map[string]bool{}
	for rows.Next() {
		var mod string
		var v int
		if err := rows.Scan(&mod, &v); err != nil {
			return nil, fmt.Errorf("sqlstore: read schema version: %w", err)
		}
		applied[migrationKey(mod, v)] = true
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlstore: read schema version: %w", err)
	}
	return applied, nil
}
