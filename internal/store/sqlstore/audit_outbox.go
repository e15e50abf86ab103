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
}

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

// Close closes the statements.
func (o *OutboxDB) Close() error {
	var errs []error
	for _, st := range []*sql.Stmt{o.add, o.pending, o.drop} {
		if st != nil {
			errs = append(errs, st.Close())
		}
	}
	return errors.Join(errs...)
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
