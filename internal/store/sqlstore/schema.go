package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
)

// Migration is one schema step. Versions start at 1 and increase by one;
// a released migration is never edited, a change is a new migration.
type Migration struct {
	Version int
	Name    string
	Stmts   []string
}

// Migrations returns the schema steps for d, oldest first.
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
func Migrations(d Dialect) []Migration {
	r := strings.NewReplacer("{serial}", d.SerialKey(), "{rowkey}", d.RowKey(), "{blob}", d.Blob())
	return []Migration{{
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
	}}
}

// Execer is what Migrate needs: a connection or transaction.
type Execer interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// ErrSchemaTooNew is returned by Migrate when the database was written by a
// newer fhirguard than this one.
var ErrSchemaTooNew = errors.New("sqlstore: database schema is newer than this program")

// Migrate brings the schema up to date. The caller runs it inside a write
// transaction that excludes concurrent migrators (SQLite: BEGIN IMMEDIATE;
// PostgreSQL: a transaction holding an advisory lock) and commits it. It is
// idempotent: an up-to-date schema is left untouched. nowMillis is recorded
// as the time each migration was applied. It returns the resulting version.
func Migrate(ctx context.Context, ex Execer, d Dialect, nowMillis int64) (int, error) {
	if _, err := ex.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_version (
	version INTEGER PRIMARY KEY,
	name TEXT NOT NULL,
	applied_at BIGINT NOT NULL
)`); err != nil {
		return 0, fmt.Errorf("sqlstore: create schema_version: %w", err)
	}
	var cur int
	if err := ex.QueryRowContext(ctx, `SELECT COALESCE(MAX(version), 0) FROM schema_version`).Scan(&cur); err != nil {
		return 0, fmt.Errorf("sqlstore: read schema version: %w", err)
	}
	ms := Migrations(d)
	if cur > len(ms) {
		return cur, fmt.Errorf("%w: database has version %d, this program knows %d", ErrSchemaTooNew, cur, len(ms))
	}
	for _, m := range ms[cur:] {
		for i, s := range m.Stmts {
			if _, err := ex.ExecContext(ctx, s); err != nil {
				return cur, fmt.Errorf("sqlstore: migration %d (%s) statement %d: %w", m.Version, m.Name, i+1, err)
			}
		}
		if _, err := ex.ExecContext(ctx, `INSERT INTO schema_version (version, name, applied_at) VALUES ($1, $2, $3)`,
			m.Version, m.Name, nowMillis); err != nil {
			return cur, fmt.Errorf("sqlstore: record migration %d: %w", m.Version, err)
		}
		cur = m.Version
	}
	return cur, nil
}
