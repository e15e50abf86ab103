package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
)

// legacyAuditTables are the audit log's tables in resource databases from
// before the log moved into its own file, in the order they are copied.
var legacyAuditTables = []string{
	"audit_events", "audit_refs", "audit_blocks", "audit_postings",
	"audit_checkpoints", "audit_btg", "audit_cursors", "audit_keys",
}

// moveLegacyAudit moves an audit log the resource database at dataPath
// still holds (written before schema audit v4) into the audit database:
// copied in one audit transaction, then removed from the resource database
// in one of its own. A move interrupted between the two is finished the
// next time: the copy is recognized by its head. Both writers are idle
// (Open runs it before they start); another process opening the same
// files at once waits on the write locks, then finds the old tables
// empty, or the same log in both (and finishes the removal). An older
// fhirguard still writing its log into the resource database during the
// upgrade is not supported: stop every process of the old version first.
func (s *Store) moveLegacyAudit(ctx context.Context, dataPath string) (err error) {
	old, err := auditRows(ctx, s.wconn, "main")
	if err != nil || old == 0 {
		return err
	}
	if _, err := s.aconn.ExecContext(ctx, `ATTACH DATABASE ? AS legacy`, dataPath); err != nil {
		return fmt.Errorf("sqlite: move the audit log: attach the resource database: %w", err)
	}
	defer func() {
		if _, derr := s.aconn.ExecContext(context.WithoutCancel(ctx), `DETACH DATABASE legacy`); derr != nil {
			err = errors.Join(err, fmt.Errorf("sqlite: move the audit log: detach: %w", derr))
		}
	}()
	if _, err := s.aconn.ExecContext(ctx, "BEGIN IMMEDIATE"); err != nil {
		return fmt.Errorf("sqlite: move the audit log: begin: %w", err)
	}
	copied, err := s.copyLegacyAudit(ctx)
	if err == nil {
		_, err = s.aconn.ExecContext(ctx, "COMMIT")
	}
	if err != nil {
		_, _ = s.aconn.ExecContext(context.WithoutCancel(ctx), "ROLLBACK")
		return fmt.Errorf("sqlite: move the audit log into %s: %w", s.auditPath, err)
	}
	if _, err := s.wconn.ExecContext(ctx, "BEGIN IMMEDIATE"); err != nil {
		return fmt.Errorf("sqlite: move the audit log: begin: %w", err)
	}
	for _, t := range append(legacyAuditTables, "audit_head") {
		if _, err = s.wconn.ExecContext(ctx, `DELETE FROM `+t); err != nil {
			break
		}
	}
	if err == nil {
		_, err = s.wconn.ExecContext(ctx, "COMMIT")
	}
	if err != nil {
		_, _ = s.wconn.ExecContext(context.WithoutCancel(ctx), "ROLLBACK")
		return fmt.Errorf("sqlite: move the audit log: remove it from the resource database: %w", err)
	}
	s.log.Info("audit log moved into its own database", "path", s.auditPath, "rows", copied)
	return nil
}

// copyLegacyAudit copies the attached resource database's audit tables
// into the empty audit database, inside the caller's transaction; when
// the audit database already holds the same chain (a move interrupted
// after its copy) it copies nothing.
func (s *Store) copyLegacyAudit(ctx context.Context) (int64, error) {
	// This transaction holds the write lock of both files (BEGIN
	// IMMEDIATE with the resource database attached): what it sees of the
	// old tables cannot change under it. A process that opened the files
	// at the same time may have moved the log meanwhile.
	old, err := auditRows(ctx, s.aconn, "legacy")
	if err != nil || old == 0 {
		return 0, err
	}
	have, err := auditRows(ctx, s.aconn, "main")
	if err != nil {
		return 0, err
	}
	if have > 0 {
		// The same head (or no head on either side: only keys were
		// written) means this is the earlier copy.
		var same, heads int
		err := s.aconn.QueryRowContext(ctx, `SELECT
	(SELECT COUNT(*) FROM main.audit_head m JOIN legacy.audit_head l
		ON m.id = l.id AND m.seq = l.seq AND m.hash = l.hash AND m.anchor_seq = l.anchor_seq),
	(SELECT COUNT(*) FROM main.audit_head) + (SELECT COUNT(*) FROM legacy.audit_head)`).Scan(&same, &heads)
		if err != nil {
			return 0, fmt.Errorf("compare the audit heads: %w", err)
		}
		if same != 1 && heads != 0 {
			return 0, errors.New("both the resource database and the audit database hold an audit log; refusing to merge them")
		}
		return 0, nil
	}
	var n int64
	for _, t := range legacyAuditTables {
		res, err := s.aconn.ExecContext(ctx, `INSERT INTO main.`+t+` SELECT * FROM legacy.`+t)
		if err != nil {
			return n, fmt.Errorf("copy %s: %w", t, err)
		}
		c, _ := res.RowsAffected()
		n += c
	}
	cols := "id, seq, hash, anchor_seq, anchor_hash, recorded, indexed"
	if _, err := s.aconn.ExecContext(ctx, `INSERT INTO main.audit_head (`+cols+`) SELECT `+cols+` FROM legacy.audit_head`); err != nil {
		return n, fmt.Errorf("copy audit_head: %w", err)
	}
	return n, nil
}

// auditRows reports whether schema's audit tables hold anything (1) or not
// (0).
func auditRows(ctx context.Context, q interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}, schema string) (int, error) {
	parts := make([]string, 0, len(legacyAuditTables)+1)
	for _, t := range append(legacyAuditTables, "audit_head") {
		parts = append(parts, `EXISTS (SELECT 1 FROM `+schema+`.`+t+`)`)
	}
	var any int
	if err := q.QueryRowContext(ctx, `SELECT `+strings.Join(parts, ` OR `)).Scan(&any); err != nil {
		return 0, fmt.Errorf("sqlite: look for audit records in %s: %w", schema, err)
	}
	return any, nil
}
