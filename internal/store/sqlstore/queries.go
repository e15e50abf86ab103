package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
)

// Query names one statement of the store. Backends prepare them once
// (Prepare) and run them through a Runner.
type Query int

// The statements. Placeholders are $1, $2, … (SQLite and PostgreSQL both
// accept them; a repeated $n binds the same argument).
const (
	QLookup Query = iota
	QRead
	QVRead
	QInsertResource
	QUpdateResource
	QInsertVersion
	QDeleteCompartment
	QInsertCompartment
	QDeleteLabels
	QInsertLabel
	QFacts
	QHistInstance
	QHistInstanceSince
	QHistType
	QHistTypeSince
	QHistSystem
	QHistSystemSince
	QCountInstance
	QCountInstanceSince
	QCountType
	QCountTypeSince
	QCountSystem
	QCountSystemSince
	numQueries
)

// ReadQueries are the statements a read-only connection needs.
var ReadQueries = []Query{
	QLookup, QRead, QVRead, QFacts,
	QHistInstance, QHistInstanceSince, QHistType, QHistTypeSince, QHistSystem, QHistSystemSince,
	QCountInstance, QCountInstanceSince, QCountType, QCountTypeSince, QCountSystem, QCountSystemSince,
}

// WriteQueries are the statements a write transaction needs.
var WriteQueries = []Query{
	QLookup, QRead, QVRead, QInsertResource, QUpdateResource, QInsertVersion,
	QDeleteCompartment, QInsertCompartment, QDeleteLabels, QInsertLabel,
}

const versionCols = `seq, type, id, version, last_updated, deleted, body`

// SQL returns the text of q for d.
func SQL(d Dialect, q Query) string {
	switch q {
	case QLookup:
		return `SELECT rid, version, deleted FROM resources WHERE type = $1 AND id = $2` + d.LockRow()
	case QRead:
		return `SELECT v.version, v.last_updated, v.deleted, v.body FROM resources r
JOIN versions v ON v.rid = r.rid AND v.version = r.version
WHERE r.type = $1 AND r.id = $2`
	case QVRead:
		return `SELECT v.version, v.last_updated, v.deleted, v.body FROM resources r
JOIN versions v ON v.rid = r.rid
WHERE r.type = $1 AND r.id = $2 AND v.version = $3`
	case QInsertResource:
		// No RETURNING: in SQLite it makes the INSERT a statement
		// transaction, whose end walks the in-memory savepoint journal of
		// the whole group commit (quadratic in the group's size). Put reads
		// the new rid back with QLookup.
		return `INSERT INTO resources (type, id, version, deleted, last_updated) VALUES ($1, $2, $3, $4, $5)`
	case QUpdateResource:
		return `UPDATE resources SET version = $2, deleted = $3, last_updated = $4 WHERE rid = $1`
	case QInsertVersion:
		return `INSERT INTO versions (rid, type, id, version, last_updated, deleted, body) VALUES ($1, $2, $3, $4, $5, $6, $7)`
	case QDeleteCompartment:
		return `DELETE FROM compartment WHERE rid = $1`
	case QInsertCompartment:
		return `INSERT INTO compartment (rid, type, patient_id) VALUES ($1, $2, $3)`
	case QDeleteLabels:
		return `DELETE FROM labels WHERE rid = $1`
	case QInsertLabel:
		return `INSERT INTO labels (rid, type, system, code) VALUES ($1, $2, $3, $4)`
	case QFacts:
		// One statement, so one consistent snapshot: kind 0 is the
		// resource row itself (absent = not found), 1 a patient, 2 a label.
		return `SELECT 0, r.deleted, '', '' FROM resources r WHERE r.type = $1 AND r.id = $2
UNION ALL
SELECT 1, 0, c.patient_id, '' FROM resources r JOIN compartment c ON c.rid = r.rid WHERE r.type = $1 AND r.id = $2
UNION ALL
SELECT 2, 0, l.system, l.code FROM resources r JOIN labels l ON l.rid = r.rid WHERE r.type = $1 AND r.id = $2`
	case QHistInstance:
		// Within one resource, version order is seq order; ordering by
		// version walks the (rid, version) index without a sort.
		return `SELECT ` + versionCols + ` FROM versions WHERE rid = $1 AND seq < $2 ORDER BY version DESC LIMIT $3`
	case QHistInstanceSince:
		return `SELECT ` + versionCols + ` FROM versions WHERE rid = $1 AND seq < $2 AND last_updated >= $3 ORDER BY version DESC LIMIT $4`
	case QHistType:
		return `SELECT ` + versionCols + ` FROM versions WHERE type = $1 AND seq < $2 ORDER BY seq DESC LIMIT $3`
	case QHistTypeSince:
		return `SELECT ` + versionCols + ` FROM versions WHERE type = $1 AND seq < $2 AND last_updated >= $3 ORDER BY seq DESC LIMIT $4`
	case QHistSystem:
		return `SELECT ` + versionCols + ` FROM versions WHERE seq < $1 ORDER BY seq DESC LIMIT $2`
	case QHistSystemSince:
		return `SELECT ` + versionCols + ` FROM versions WHERE seq < $1 AND last_updated >= $2 ORDER BY seq DESC LIMIT $3`
	case QCountInstance:
		return `SELECT COUNT(*) FROM versions WHERE rid = $1`
	case QCountInstanceSince:
		return `SELECT COUNT(*) FROM versions WHERE rid = $1 AND last_updated >= $2`
	case QCountType:
		return `SELECT COUNT(*) FROM versions WHERE type = $1`
	case QCountTypeSince:
		return `SELECT COUNT(*) FROM versions WHERE type = $1 AND last_updated >= $2`
	case QCountSystem:
		return `SELECT COUNT(*) FROM versions`
	case QCountSystemSince:
		return `SELECT COUNT(*) FROM versions WHERE last_updated >= $1`
	}
	panic(fmt.Sprintf("sqlstore: unknown query %d", int(q)))
}

// Runner runs the store's named statements. Implementations: *Prepared
// (statements prepared on a *sql.DB or a *sql.Conn) and TxRunner
// (statements bound to a *sql.Tx).
type Runner interface {
	Exec(ctx context.Context, q Query, args ...any) (sql.Result, error)
	QueryRow(ctx context.Context, q Query, args ...any) *sql.Row
	Query(ctx context.Context, q Query, args ...any) (*sql.Rows, error)
}

// Preparer is a *sql.DB or *sql.Conn.
type Preparer interface {
	PrepareContext(ctx context.Context, query string) (*sql.Stmt, error)
}

// Prepared holds prepared statements; it is a Runner.
type Prepared struct {
	stmts [numQueries]*sql.Stmt
}

// Prepare prepares the given statements on p.
func Prepare(ctx context.Context, p Preparer, d Dialect, qs []Query) (*Prepared, error) {
	ps := &Prepared{}
	for _, q := range qs {
		st, err := p.PrepareContext(ctx, SQL(d, q))
		if err != nil {
			_ = ps.Close()
			return nil, fmt.Errorf("sqlstore: prepare statement %d: %w", int(q), err)
		}
		ps.stmts[q] = st
	}
	return ps, nil
}

// Stmt returns the prepared statement for q (nil if it was not prepared).
func (p *Prepared) Stmt(q Query) *sql.Stmt { return p.stmts[q] }

func (p *Prepared) stmt(q Query) *sql.Stmt {
	st := p.stmts[q]
	if st == nil {
		panic(fmt.Sprintf("sqlstore: statement %d not prepared", int(q)))
	}
	return st
}

// Exec runs q.
func (p *Prepared) Exec(ctx context.Context, q Query, args ...any) (sql.Result, error) {
	return p.stmt(q).ExecContext(ctx, args...)
}

// QueryRow runs q for one row.
func (p *Prepared) QueryRow(ctx context.Context, q Query, args ...any) *sql.Row {
	return p.stmt(q).QueryRowContext(ctx, args...)
}

// Query runs q.
func (p *Prepared) Query(ctx context.Context, q Query, args ...any) (*sql.Rows, error) {
	return p.stmt(q).QueryContext(ctx, args...)
}

// Close closes every statement.
func (p *Prepared) Close() error {
	var errs []error
	for i, st := range p.stmts {
		if st != nil {
			if err := st.Close(); err != nil {
				errs = append(errs, err)
			}
			p.stmts[i] = nil
		}
	}
	return errors.Join(errs...)
}

// TxRunner runs prepared statements inside a *sql.Tx.
type TxRunner struct {
	Tx *sql.Tx
	P  *Prepared
}

// Exec runs q in the transaction.
func (t TxRunner) Exec(ctx context.Context, q Query, args ...any) (sql.Result, error) {
	return t.Tx.StmtContext(ctx, t.P.stmt(q)).ExecContext(ctx, args...)
}

// QueryRow runs q in the transaction for one row.
func (t TxRunner) QueryRow(ctx context.Context, q Query, args ...any) *sql.Row {
	return t.Tx.StmtContext(ctx, t.P.stmt(q)).QueryRowContext(ctx, args...)
}

// Query runs q in the transaction.
func (t TxRunner) Query(ctx context.Context, q Query, args ...any) (*sql.Rows, error) {
	return t.Tx.StmtContext(ctx, t.P.stmt(q)).QueryContext(ctx, args...)
}
