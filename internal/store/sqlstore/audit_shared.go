package sqlstore

import (
	"context"
	"fmt"
	"slices"
)

// An audit log kept in the resource database itself (the PostgreSQL
// backend: many processes, one database) differs from SQLite's audit file
// in three ways, served here:
//
//   - its schema is the audit module's steps plus the outbox
//     (SharedAuditMigrations);
//   - the head row exists from the start (InitAuditHead), so that every
//     audit transaction can lock it (Dialect.LockRow) — two processes
//     appending to an empty log would otherwise both see no row;
//   - the outbox's ids are not handed out in commit order, so chained
//     entries are removed by id in the chaining transaction
//     (OutboxDB.Remove) instead of being skipped by position.

// SharedAuditMigrations returns the schema steps of an audit log that
// lives in the same database as its outbox: AuditMigrations, then
// OutboxMigrations. A resource store sharing that database must migrate
// with its own modules' steps plus these, not with Migrations (whose audit
// steps stop at version 3: Migrate refuses a database holding a step it
// does not know).
func SharedAuditMigrations(d Dialect) []Migration {
	return slices.Concat(auditMigrations(d), outboxMigrations(d))
}

// InitAuditHead inserts the head row of an empty chain (seq 0, the zero
// hash as head and anchor) unless there is one. Run it in the migration
// transaction.
func InitAuditHead(ctx context.Context, ex Execer) error {
	zero := make([]byte, 32)
	if _, err := ex.ExecContext(ctx, `INSERT INTO audit_head (id, seq, hash, anchor_seq, anchor_hash, recorded, indexed, outbox)
VALUES (1, 0, $1, 0, $2, 0, 0, 0) ON CONFLICT (id) DO NOTHING`, zero, zero); err != nil {
		return fmt.Errorf("sqlstore: create the audit head: %w", err)
	}
	return nil
}
