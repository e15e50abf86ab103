// Package sqlstore owns the SQL of fhirguard's relational storage backends:
// the schema and its versioned migrations, every statement the store runs,
// and the backend-independent logic of reads, writes (version numbering,
// If-Match and create-only checks, tombstones, derived index rows) and
// history paging. A backend (internal/store/sqlite, later
// internal/store/postgres) supplies only a Dialect, its connections and its
// transaction runner; it never writes SQL of its own.
//
// The SQL text is written once, with numbered placeholders ($1, $2, …) that
// both SQLite and PostgreSQL accept, and parameterized column types taken from
// the Dialect. No statement is ever built from request values.
package sqlstore

// Dialect is what differs between SQL engines. Implementations are small,
// immutable values.
type Dialect interface {
	// Name is a short engine name for logs ("sqlite", "postgres").
	Name() string
	// SerialKey is the column definition of a 64-bit, monotonically
	// increasing, never reused primary key (SQLite: INTEGER PRIMARY KEY
	// AUTOINCREMENT; PostgreSQL: BIGINT GENERATED ALWAYS AS IDENTITY
	// PRIMARY KEY).
	SerialKey() string
	// RowKey is the column definition of a 64-bit surrogate primary key
	// assigned by the engine that need not be monotonic (SQLite: INTEGER
	// PRIMARY KEY, the rowid).
	RowKey() string
	// Blob is the column type of raw bytes (BLOB, BYTEA).
	Blob() string
	// Clustered is appended to the CREATE TABLE of a table whose rows are
	// stored in primary-key order (SQLite: " WITHOUT ROWID"; "" where the
	// engine has no such option).
	Clustered() string
	// LockRow is appended to a single-row SELECT inside a write
	// transaction to lock that row ("" where the engine serializes writers,
	// " FOR UPDATE" in PostgreSQL).
	LockRow() string
	// IsUniqueViolation reports whether err is a unique/primary-key
	// constraint violation.
	IsUniqueViolation(err error) bool
}
