package sqlite

import (
	"errors"

	"github.com/fhirguard/fhirguard/internal/store/sqlstore"

	msqlite "modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

// dialect is SQLite's sqlstore.Dialect.
type dialect struct{}

// Dialect returns SQLite's sqlstore.Dialect.
func Dialect() sqlstore.Dialect { return dialect{} }

func (dialect) Name() string      { return "sqlite" }
func (dialect) SerialKey() string { return "INTEGER PRIMARY KEY AUTOINCREMENT" }
func (dialect) RowKey() string    { return "INTEGER PRIMARY KEY" }
func (dialect) Blob() string      { return "BLOB" }
func (dialect) Clustered() string { return " WITHOUT ROWID" }

// FreshBytes is true: modernc.org/sqlite copies every BLOB and TEXT value
// out of the engine into a new slice per row (TestDriverFreshBytes holds
// it to that), so searches may keep the slices (sqlstore.FreshBytes).
func (dialect) FreshBytes() bool { return true }

// PositionalParams is true: SQLite accepts "?" (see sqlstore.insertSQL).
func (dialect) PositionalParams() bool { return true }

// OrIgnore is true: the search-row inserts are INSERT OR IGNORE (see
// sqlstore.insertSQL).
func (dialect) OrIgnore() bool { return true }

// LockRow is empty: there is one writer connection and BEGIN IMMEDIATE
// takes the database write lock up front.
func (dialect) LockRow() string { return "" }

func (dialect) IsUniqueViolation(err error) bool {
	switch errCode(err) {
	case sqlite3.SQLITE_CONSTRAINT_UNIQUE, sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY:
		return true
	}
	return false
}

// errCode is the extended SQLite result code of err, or 0.
func errCode(err error) int {
	var se *msqlite.Error
	if errors.As(err, &se) {
		return se.Code()
	}
	return 0
}
