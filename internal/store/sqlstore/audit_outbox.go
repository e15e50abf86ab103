package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/fhirguard/fhirguard/internal/store"
)

// OutboxDB runs the statements of the audit outbox (outboxMigrations) on
// the resource database: inserts inside write transactions, reads for the
// audit log's transactions, and the removal of chained entries.
type OutboxDB struct {
	add, pending, drop *sql.Stmt
	remove             map[int]*sql.Stmt // chunk size → DELETE … WHERE id IN (…)
}

// removeChunks are the statement sizes of Remove.
var removeChunks = []int{64, 8, 1}

// PrepareOutbox prepares the outbox statements on p (write: the insert and
// the removal; otherwise the read).
func PrepareOutbox(ctx context.Context, p Preparer, write bool) (*OutboxDB, error) {
	o := &OutboxDB{}
	prep := func(dst **sql.Stmt, text string) error {
		st, err := p.PrepareContext(ctx, text)
		if err != nil {
			return fmt.Errorf("sqlstore: prepare outbox statement: %w", err)
		}
		*dst = st
		return nil
	}
	var err error
	if write {
		err = errors.Join(prep(&o.add, `INSERT INTO audit_outbox (data) VALUES ($1)`),
			prep(&o.drop, `DELETE FROM audit_outbox WHERE id <= $1`))
	} else {
		err = prep(&o.pending, `SELECT id, data FROM audit_outbox WHERE id > $1 ORDER BY id LIMIT $2`)
	}
	if err != nil {
		_ = o.Close()
		return nil, err
	}
	return o, nil
}

// PrepareOutboxChainer prepares, on the connection of an audit log kept in
// the same database as the outbox (PostgreSQL), the statements that log's
// transactions run: the read of pending entries and Remove.
func PrepareOutboxChainer(ctx context.Context, p Preparer) (*OutboxDB, error) {
	o, err := PrepareOutbox(ctx, p, false)
	if err != nil {
		return nil, err
	}
	o.remove = map[int]*sql.Stmt{}
	for _, n := range removeChunks {
		st, err := p.PrepareContext(ctx, `DELETE FROM audit_outbox WHERE id IN `+valuesList(1, n))
		if err != nil {
			_ = o.Close()
			return nil, fmt.Errorf("sqlstore: prepare outbox statement: %w", err)
		}
		o.remove[n] = st
	}
	return o, nil
}

// Close closes the statements.
func (o *OutboxDB) Close() error {
	var errs []error
	for _, st := range []*sql.Stmt{o.add, o.pending, o.drop} {
		if st != nil {
			errs = append(errs, st.Close())
		}
	}
	for _, st := range o.remove {
		errs = append(errs, st.Close())
	}
	return errors.Join(errs...)
}

// AddInTx inserts events inside tx (a write transaction of the database
// the statements were prepared on; the PostgreSQL backend's resource
// transactions).
func (o *OutboxDB) AddInTx(ctx context.Context, tx *sql.Tx, events [][]byte) error {
	st := tx.StmtContext(ctx, o.add)
	defer st.Close()
	for _, ev := range events {
		if _, err := st.ExecContext(ctx, ev); err != nil {
			return fmt.Errorf("store: insert audit outbox entry: %w", err)
		}
	}
	return nil
}

// Remove deletes exactly the entries ids (those a transaction just
// chained, PrepareOutboxChainer), a chunk of ids per statement; it fails
// unless each was there. Unlike Drop it leaves entries with lower ids
// alone: where ids are not handed out in commit order, a lower id may
// commit after a higher one was chained.
func (o *OutboxDB) Remove(ctx context.Context, ids []int64) error {
	if o.remove == nil {
		return errors.New("sqlstore: outbox statements prepared without Remove")
	}
	args := make([]any, 0, removeChunks[0])
	for len(ids) > 0 {
		n := chunk(removeChunks, len(ids))
		args = args[:0]
		for _, id := range ids[:n] {
			args = append(args, id)
		}
		res, err := o.remove[n].ExecContext(ctx, args...)
		if err != nil {
			return fmt.Errorf("store: remove chained audit outbox entries: %w", err)
		}
		if got, err := res.RowsAffected(); err == nil && got != int64(n) {
			return fmt.Errorf("store: remove chained audit outbox entries from %d: %d of %d found", ids[0], got, n)
		}
		ids = ids[n:]
	}
	return nil
}

// Add inserts events (store.AuditOutboxTx.AddAuditOutbox).
func (o *OutboxDB) Add(ctx context.Context, events [][]byte) error {
	for _, ev := range events {
		if _, err := o.add.ExecContext(ctx, ev); err != nil {
			return fmt.Errorf("store: insert audit outbox entry: %w", err)
		}
	}
	return nil
}

// Pending returns up to limit entries with an id above after, oldest
// first.
func (o *OutboxDB) Pending(ctx context.Context, after int64, limit int) ([]store.AuditOutboxEntry, error) {
	rows, err := o.pending.QueryContext(ctx, after, limit)
	if err != nil {
		return nil, fmt.Errorf("store: read audit outbox: %w", err)
	}
	defer rows.Close()
	var out []store.AuditOutboxEntry
	for rows.Next() {
		var e store.AuditOutboxEntry
		if err := rows.Scan(&e.ID, &e.Data); err != nil {
			return nil, fmt.Errorf("store: read audit outbox: %w", err)
		}
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: read audit outbox: %w", err)
	}
	return out, nil
}

// Drop removes the entries up to and including id (chained already).
func (o *OutboxDB) Drop(ctx context.Context, id int64) error {
	if _, err := o.drop.ExecContext(ctx, id); err != nil {
		return fmt.Errorf("store: remove chained audit outbox entries: %w", err)
	}
	return nil
}
