package sqlstore

import (
	"context"
	"database/sql"
	"fmt"
	"strings"

	"github.com/fhirguard/fhirguard/internal/store"
)

// legacyBlock is how many version 1 records are packed per block.
const legacyBlock = maxBlockRecords

// HasLegacy reports whether records of schema audit v1 (one row each in
// audit_events) wait to be packed.
func (a *AuditDB) HasLegacy(ctx context.Context) (bool, error) {
	var n int
	if err := a.st(aqLegacyAny).QueryRowContext(ctx).Scan(&n); err != nil {
		return false, fmt.Errorf("store: look for version 1 audit records: %w", err)
	}
	return n > 0, nil
}

// ConvertLegacy moves the records of schema audit v1 into blocks, byte for
// byte (body, prev, hash and search keys as stored, gaps and all, so that
// verify judges them exactly as before) and empties the v1 tables. The
// caller runs it inside a write transaction, and Reindex after it (which
// writes the postings of the records moved).
func (a *AuditDB) ConvertLegacy(ctx context.Context) (int64, error) {
	h, err := a.readHead(ctx)
	if err != nil {
		return 0, err
	}
	var after, moved, runMax int64
	if !h.head.Recorded.IsZero() {
		runMax = Millis(h.head.Recorded)
	}
	for {
		recs, err := a.legacyPage(ctx, after)
		if err != nil {
			return moved, err
		}
		if len(recs) == 0 {
			break
		}
		minMs, maxMs := blockStats(recs)
		runMax = max(runMax, maxMs)
		first, last := recs[0].Seq, recs[len(recs)-1].Seq
		data, keys := EncodeAuditBlock(recs)
		if _, err := a.st(aqBlockInsert).ExecContext(ctx, last, first, minMs, runMax, data, keys); err != nil {
			return moved, fmt.Errorf("store: pack version 1 audit records from %d: %w", first, err)
		}
		moved += int64(len(recs))
		after = last
	}
	if _, err := a.st(aqLegacyDeleteRefs).ExecContext(ctx); err != nil {
		return moved, fmt.Errorf("store: empty audit_refs: %w", err)
	}
	if _, err := a.st(aqLegacyDeleteEvents).ExecContext(ctx); err != nil {
		return moved, fmt.Errorf("store: empty audit_events: %w", err)
	}
	if h.exists {
		if _, err := a.st(aqHeadUpdate).ExecContext(ctx, h.head.Seq, h.head.Hash, runMax, h.head.Seq, h.head.Outbox); err != nil {
			return moved, fmt.Errorf("store: update audit head: %w", err)
		}
	}
	return moved, nil
}

// legacyPage reads the next v1 records after seq with their search keys.
func (a *AuditDB) legacyPage(ctx context.Context, after int64) ([]store.AuditRecord, error) {
	rows, err := a.st(aqLegacyEvents).QueryContext(ctx, after, legacyBlock)
	if err != nil {
		return nil, fmt.Errorf("store: read version 1 audit records: %w", err)
	}
	defer rows.Close()
	var recs []store.AuditRecord
	for rows.Next() {
		var r store.AuditRecord
		var ms int64
		if err := rows.Scan(&r.Seq, &ms, &r.Body, &r.Prev, &r.Hash, &r.Outcome, &r.Action, &r.Type, &r.Subtype, &r.Address); err != nil {
			return nil, fmt.Errorf("store: read version 1 audit records: %w", err)
		}
		r.Recorded = FromMillis(ms)
		recs = append(recs, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: read version 1 audit records: %w", err)
	}
	if len(recs) == 0 {
		return nil, nil
	}
	bySeq := make(map[int64]int, len(recs))
	for i, r := range recs {
		bySeq[r.Seq] = i
	}
	krows, err := a.st(aqLegacyRefs).QueryContext(ctx, recs[0].Seq, recs[len(recs)-1].Seq)
	if err != nil {
		return nil, fmt.Errorf("store: read version 1 audit keys: %w", err)
	}
	defer krows.Close()
	for krows.Next() {
		var k string
		var seq int64
		if err := krows.Scan(&k, &seq); err != nil {
			return nil, fmt.Errorf("store: read version 1 audit keys: %w", err)
		}
		i, ok := bySeq[seq]
		param, value, found := strings.Cut(k, "|")
		if !ok || !found {
			continue
		}
		recs[i].Refs = append(recs[i].Refs, store.AuditRef{Param: param, Value: value})
	}
	if err := krows.Err(); err != nil {
		return nil, fmt.Errorf("store: read version 1 audit keys: %w", err)
	}
	return recs, nil
}

// SQLRunner is what UnpackAuditBlocks needs (*sql.DB, *sql.Tx, *sql.Conn).
type SQLRunner interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}

// UnpackAuditBlocks is ConvertLegacy backwards: it moves every stored
// block into the version 1 tables, one row per record, and drops the
// postings. It is for tampering tests and forensic inspection with plain
// SQL (a record is then one row to edit); the store packs the rows back
// when it next opens. db must not be in use by an open store's writer.
func UnpackAuditBlocks(ctx context.Context, db SQLRunner) error {
	rows, err := db.QueryContext(ctx, `SELECT first_seq, last_seq, data, keys FROM audit_blocks ORDER BY last_seq`)
	if err != nil {
		return fmt.Errorf("store: read audit blocks: %w", err)
	}
	blocks, err := scanBlocks(rows)
	if err != nil {
		return err
	}
	for _, b := range blocks {
		recs, err := b.decode()
		if err != nil {
			return err
		}
		for _, r := range recs {
			if _, err := db.ExecContext(ctx, `INSERT INTO audit_events (seq, recorded, outcome, action, type, subtype, address, body, prev, hash) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)`,
				r.Seq, Millis(r.Recorded), r.Outcome, r.Action, r.Type, r.Subtype, r.Address, r.Body, r.Prev, r.Hash); err != nil {
				return fmt.Errorf("store: unpack audit record %d: %w", r.Seq, err)
			}
			for _, f := range r.Refs {
				if _, err := db.ExecContext(ctx, `INSERT INTO audit_refs (k, seq) VALUES ($1, $2) ON CONFLICT DO NOTHING`, refKey(f), r.Seq); err != nil {
					return fmt.Errorf("store: unpack audit key of %d: %w", r.Seq, err)
				}
			}
		}
	}
	for _, stmt := range []string{`DELETE FROM audit_blocks`, `DELETE FROM audit_postings`, `UPDATE audit_head SET indexed = 0`} {
		if _, err := db.ExecContext(ctx, stmt); err != nil {
			return fmt.Errorf("store: unpack audit blocks: %w", err)
		}
	}
	return nil
}

// UnpackAuditBlocksTx is UnpackAuditBlocks in one transaction of db (for
// the tests and inspection tools that hold a plain *sql.DB).
func UnpackAuditBlocksTx(ctx context.Context, db *sql.DB) error {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("store: unpack audit blocks: begin: %w", err)
	}
	if err := UnpackAuditBlocks(ctx, tx); err != nil {
		_ = tx.Rollback()
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("store: unpack audit blocks: commit: %w", err)
	}
	return nil
}
