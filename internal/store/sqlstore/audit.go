package sqlstore

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"

	"github.com/fhirguard/fhirguard/internal/store"
)

// auditQ names one fixed statement of the audit log.
type auditQ int

const (
	aqHead auditQ = iota
	aqHeadInsert
	aqHeadUpdate
	aqHeadAnchor
	aqRead
	aqScan
	aqMaxSeq
	aqCheckpointInsert
	aqCheckpoints
	aqBTGList
	aqBTGIs
	aqBTGReview
	aqCursorGet
	aqCursorSet
	aqKeyGet
	aqKeyPut
	aqPruneRefs
	aqPruneEvents
	aqPruneCheckpoints
	aqPruneBTG
	numAuditQ
)

const auditCols = `seq, recorded, body, prev, hash, outcome, action, type, subtype, address`

// btgKey is the audit_refs key of break-the-glass records.
const btgKey = "btg|1"

func auditSQL(d Dialect, q auditQ) string {
	switch q {
	case aqHead:
		return `SELECT seq, hash, anchor_seq, anchor_hash FROM audit_head WHERE id = 1` + d.LockRow()
	case aqHeadInsert:
		return `INSERT INTO audit_head (id, seq, hash, anchor_seq, anchor_hash) VALUES (1, $1, $2, 0, $3)`
	case aqHeadUpdate:
		return `UPDATE audit_head SET seq = $1, hash = $2 WHERE id = 1 AND seq = $3`
	case aqHeadAnchor:
		return `UPDATE audit_head SET anchor_seq = $1, anchor_hash = $2 WHERE id = 1`
	case aqRead:
		return `SELECT ` + auditCols + ` FROM audit_events WHERE seq = $1`
	case aqScan:
		// The chain columns only: verify and the stream read millions.
		return `SELECT seq, recorded, body, prev, hash FROM audit_events WHERE seq > $1 ORDER BY seq LIMIT $2`
	case aqMaxSeq:
		return `SELECT COALESCE(MAX(seq), 0) FROM audit_events`
	case aqCheckpointInsert:
		return `INSERT INTO audit_checkpoints (seq, hash, created, signature) VALUES ($1, $2, $3, $4)`
	case aqCheckpoints:
		return `SELECT seq, hash, created, signature FROM audit_checkpoints ORDER BY seq`
	case aqBTGList:
		return `SELECT r.seq, COALESCE(b.reviewed_at, 0), COALESCE(b.reviewer, ''), COALESCE(b.note, '')
FROM audit_refs r LEFT JOIN audit_btg b ON b.seq = r.seq WHERE r.k = $1 ORDER BY r.seq`
	case aqBTGIs:
		return `SELECT COUNT(*) FROM audit_refs WHERE k = $1 AND seq = $2`
	case aqBTGReview:
		return `INSERT INTO audit_btg (seq, reviewed_at, reviewer, note) VALUES ($1, $2, $3, $4)`
	case aqCursorGet:
		return `SELECT seq FROM audit_cursors WHERE name = $1`
	case aqCursorSet:
		return `INSERT INTO audit_cursors (name, seq) VALUES ($1, $2) ON CONFLICT (name) DO UPDATE SET seq = excluded.seq`
	case aqKeyGet:
		return `SELECT secret FROM audit_keys WHERE name = $1`
	case aqKeyPut:
		return `INSERT INTO audit_keys (name, secret, created) VALUES ($1, $2, $3) ON CONFLICT (name) DO NOTHING`
	case aqPruneRefs:
		return `DELETE FROM audit_refs WHERE seq <= $1`
	case aqPruneEvents:
		return `DELETE FROM audit_events WHERE seq <= $1`
	case aqPruneCheckpoints:
		return `DELETE FROM audit_checkpoints WHERE seq < $1`
	case aqPruneBTG:
		return `DELETE FROM audit_btg WHERE seq <= $1`
	}
	panic(fmt.Sprintf("sqlstore: unknown audit query %d", int(q)))
}

// Multi-row inserts: a batch is inserted in chunks of these sizes (each a
// prepared statement), which costs less per row than one statement per
// row. Chunks stay small: the SQLite driver resolves each numbered
// parameter by a linear scan, so binding n parameters costs O(n²)
// (measured: 8 rows per statement beat 1, 4, 16 and 64).
var auditChunks = []int{8, 1}

const (
	eventCols  = 10
	insertHead = `INSERT INTO audit_events (seq, recorded, outcome, action, type, subtype, address, body, prev, hash) VALUES `
	refsHead   = `INSERT INTO audit_refs (k, seq) VALUES `
)

// valuesList returns "($1, …, $cols), (…)" for rows rows.
func valuesList(rows, cols int) string {
	var b strings.Builder
	n := 1
	for r := 0; r < rows; r++ {
		if r > 0 {
			b.WriteString(", ")
		}
		b.WriteByte('(')
		for c := 0; c < cols; c++ {
			if c > 0 {
				b.WriteString(", ")
			}
			b.WriteByte('$')
			b.WriteString(strconv.Itoa(n))
			n++
		}
		b.WriteByte(')')
	}
	return b.String()
}

// AuditDB runs the audit log's statements, prepared once on one connection
// or pool. The writer's AuditDB is used inside the backend's open write
// transaction (SQLite: the writer connection inside BEGIN IMMEDIATE).
type AuditDB struct {
	d      Dialect
	p      Preparer
	stmts  [numAuditQ]*sql.Stmt
	events map[int]*sql.Stmt // chunk size → multi-row insert
	refs   map[int]*sql.Stmt

	refsJSON *sql.Stmt // all search keys of a batch in one statement (jsonPairer dialects)

	mu     sync.Mutex
	search map[string]*sql.Stmt // search statements by shape, prepared on first use
}

// jsonPairer is implemented by dialects that can expand one JSON array of
// [text, integer] pairs into rows: the SELECT producing (text, bigint)
// from parameter $1. A batch's search keys are then inserted by one
// statement with one parameter, instead of many multi-row inserts.
type jsonPairer interface {
	JSONPairs() string
}

// maxSearchShapes bounds the cache of prepared search statements.
const maxSearchShapes = 256

// PrepareAudit prepares the audit statements on p (write: also the
// inserts).
func PrepareAudit(ctx context.Context, p Preparer, d Dialect, write bool) (*AuditDB, error) {
	a := &AuditDB{d: d, p: p, events: map[int]*sql.Stmt{}, refs: map[int]*sql.Stmt{}, search: map[string]*sql.Stmt{}}
	prep := func(text string) (*sql.Stmt, error) {
		st, err := p.PrepareContext(ctx, text)
		if err != nil {
			_ = a.Close()
			return nil, fmt.Errorf("sqlstore: prepare audit statement: %w", err)
		}
		return st, nil
	}
	for q := auditQ(0); q < numAuditQ; q++ {
		st, err := prep(auditSQL(d, q))
		if err != nil {
			return nil, err
		}
		a.stmts[q] = st
	}
	if write {
		if jp, ok := d.(jsonPairer); ok {
			st, err := prep(`INSERT INTO audit_refs (k, seq) ` + jp.JSONPairs())
			if err != nil {
				return nil, err
			}
			a.refsJSON = st
		}
		for _, n := range auditChunks {
			st, err := prep(insertHead + valuesList(n, eventCols))
			if err != nil {
				return nil, err
			}
			a.events[n] = st
			if st, err = prep(refsHead + valuesList(n, 2)); err != nil {
				return nil, err
			}
			a.refs[n] = st
		}
	}
	return a, nil
}

// Close closes every statement.
func (a *AuditDB) Close() error {
	var errs []error
	closeSt := func(st *sql.Stmt) {
		if st != nil {
			errs = append(errs, st.Close())
		}
	}
	for _, st := range a.stmts {
		closeSt(st)
	}
	for _, st := range a.events {
		closeSt(st)
	}
	for _, st := range a.refs {
		closeSt(st)
	}
	closeSt(a.refsJSON)
	a.mu.Lock()
	for _, st := range a.search {
		closeSt(st)
	}
	a.search = nil
	a.mu.Unlock()
	return errors.Join(errs...)
}

func (a *AuditDB) st(q auditQ) *sql.Stmt { return a.stmts[q] }

// head reads the head row (zero head, zero anchor when there is none).
func (a *AuditDB) head(ctx context.Context) (store.AuditHead, store.AuditAnchor, bool, error) {
	var h store.AuditHead
	var an store.AuditAnchor
	err := a.st(aqHead).QueryRowContext(ctx).Scan(&h.Seq, &h.Hash, &an.Seq, &an.Hash)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		z := make([]byte, 32)
		return store.AuditHead{Hash: z}, store.AuditAnchor{Hash: z}, false, nil
	case err != nil:
		return h, an, false, fmt.Errorf("store: read audit head: %w", err)
	}
	return h, an, true, nil
}

// Head returns the chain head (store.AuditTx.AuditHead and
// store.AuditStore.AuditHeadRow).
func (a *AuditDB) Head(ctx context.Context) (store.AuditHead, error) {
	h, _, _, err := a.head(ctx)
	return h, err
}

// Anchor returns where the chain starts.
func (a *AuditDB) Anchor(ctx context.Context) (store.AuditAnchor, error) {
	_, an, _, err := a.head(ctx)
	return an, err
}

// Append inserts recs after head (store.AuditTx.AppendAudit). The caller
// runs it inside a write transaction.
func (a *AuditDB) Append(ctx context.Context, head store.AuditHead, recs []store.AuditRecord) error {
	if len(recs) == 0 {
		return nil
	}
	cur, _, exists, err := a.head(ctx)
	if err != nil {
		return err
	}
	if cur.Seq != head.Seq || !bytes.Equal(cur.Hash, head.Hash) {
		return fmt.Errorf("%w: at %d, expected %d", store.ErrAuditChainMoved, cur.Seq, head.Seq)
	}
	for i, r := range recs {
		want := head.Seq + int64(i) + 1
		if r.Seq != want {
			return fmt.Errorf("store: audit record %d has seq %d, want %d", i, r.Seq, want)
		}
	}
	if err := a.insertEvents(ctx, recs); err != nil {
		return err
	}
	if err := a.insertRefs(ctx, recs); err != nil {
		return err
	}
	last := recs[len(recs)-1]
	if !exists {
		if _, err := a.st(aqHeadInsert).ExecContext(ctx, last.Seq, last.Hash, head.Hash); err != nil {
			return fmt.Errorf("store: insert audit head: %w", err)
		}
		return nil
	}
	res, err := a.st(aqHeadUpdate).ExecContext(ctx, last.Seq, last.Hash, head.Seq)
	if err != nil {
		return fmt.Errorf("store: update audit head: %w", err)
	}
	if n, err := res.RowsAffected(); err == nil && n != 1 {
		return fmt.Errorf("%w: head update matched %d rows", store.ErrAuditChainMoved, n)
	}
	return nil
}

func (a *AuditDB) insertEvents(ctx context.Context, recs []store.AuditRecord) error {
	args := make([]any, 0, auditChunks[0]*eventCols)
	for len(recs) > 0 {
		n := chunk(len(recs))
		args = args[:0]
		for _, r := range recs[:n] {
			args = append(args, r.Seq, Millis(r.Recorded), r.Outcome, r.Action, r.Type, r.Subtype, r.Address, r.Body, r.Prev, r.Hash)
		}
		if _, err := a.events[n].ExecContext(ctx, args...); err != nil {
			return fmt.Errorf("store: insert %d audit records from %d: %w", n, recs[0].Seq, err)
		}
		recs = recs[n:]
	}
	return nil
}

func (a *AuditDB) insertRefs(ctx context.Context, recs []store.AuditRecord) error {
	if a.refsJSON != nil {
		buf := make([]byte, 0, 64*len(recs))
		buf = append(buf, '[')
		for _, r := range recs {
			for _, ref := range r.Refs {
				if len(buf) > 1 {
					buf = append(buf, ',')
				}
				buf = append(buf, '[')
				buf = appendJSONString(buf, ref.Param+"|"+ref.Value)
				buf = append(buf, ',')
				buf = strconv.AppendInt(buf, r.Seq, 10)
				buf = append(buf, ']')
			}
		}
		buf = append(buf, ']')
		if len(buf) == 2 {
			return nil
		}
		if _, err := a.refsJSON.ExecContext(ctx, string(buf)); err != nil {
			return fmt.Errorf("store: insert audit search keys: %w", err)
		}
		return nil
	}
	var args []any
	for _, r := range recs {
		for _, ref := range r.Refs {
			args = append(args, ref.Param+"|"+ref.Value, r.Seq)
		}
	}
	for len(args) > 0 {
		n := chunk(len(args) / 2)
		if _, err := a.refs[n].ExecContext(ctx, args[:2*n]...); err != nil {
			return fmt.Errorf("store: insert %d audit search keys: %w", n, err)
		}
		args = args[2*n:]
	}
	return nil
}

// chunk returns the largest chunk size <= n.
func chunk(n int) int {
	for _, c := range auditChunks {
		if c <= n {
			return c
		}
	}
	return 1
}

// AddCheckpoint stores cp.
func (a *AuditDB) AddCheckpoint(ctx context.Context, cp store.AuditCheckpoint) error {
	if _, err := a.st(aqCheckpointInsert).ExecContext(ctx, cp.Seq, cp.Hash, Millis(cp.Created), cp.Signature); err != nil {
		if a.d.IsUniqueViolation(err) {
			return fmt.Errorf("store: audit checkpoint at %d exists: %w", cp.Seq, store.ErrConflict)
		}
		return fmt.Errorf("store: insert audit checkpoint: %w", err)
	}
	return nil
}

// Checkpoints lists every checkpoint, oldest first.
func (a *AuditDB) Checkpoints(ctx context.Context) ([]store.AuditCheckpoint, error) {
	rows, err := a.st(aqCheckpoints).QueryContext(ctx)
	if err != nil {
		return nil, fmt.Errorf("store: list audit checkpoints: %w", err)
	}
	defer rows.Close()
	var out []store.AuditCheckpoint
	for rows.Next() {
		var cp store.AuditCheckpoint
		var ms int64
		if err := rows.Scan(&cp.Seq, &cp.Hash, &ms, &cp.Signature); err != nil {
			return nil, fmt.Errorf("store: list audit checkpoints: %w", err)
		}
		cp.Created = FromMillis(ms)
		out = append(out, cp)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: list audit checkpoints: %w", err)
	}
	return out, nil
}

// Prune removes the records up to anchor.Seq and records the anchor.
func (a *AuditDB) Prune(ctx context.Context, anchor store.AuditAnchor) (int64, error) {
	_, _, exists, err := a.head(ctx)
	if err != nil {
		return 0, err
	}
	if !exists {
		return 0, nil
	}
	if _, err := a.st(aqPruneRefs).ExecContext(ctx, anchor.Seq); err != nil {
		return 0, fmt.Errorf("store: prune audit keys: %w", err)
	}
	res, err := a.st(aqPruneEvents).ExecContext(ctx, anchor.Seq)
	if err != nil {
		return 0, fmt.Errorf("store: prune audit records: %w", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return 0, fmt.Errorf("store: prune audit records: %w", err)
	}
	if _, err := a.st(aqPruneCheckpoints).ExecContext(ctx, anchor.Seq); err != nil {
		return 0, fmt.Errorf("store: prune audit checkpoints: %w", err)
	}
	if _, err := a.st(aqPruneBTG).ExecContext(ctx, anchor.Seq); err != nil {
		return 0, fmt.Errorf("store: prune BTG reviews: %w", err)
	}
	if _, err := a.st(aqHeadAnchor).ExecContext(ctx, anchor.Seq, anchor.Hash); err != nil {
		return 0, fmt.Errorf("store: record audit anchor: %w", err)
	}
	return n, nil
}

// ReviewBTG marks a break-the-glass record reviewed.
func (a *AuditDB) ReviewBTG(ctx context.Context, r store.BTGReview) error {
	var n int
	if err := a.st(aqBTGIs).QueryRowContext(ctx, btgKey, r.Seq).Scan(&n); err != nil {
		return fmt.Errorf("store: look up BTG record: %w", err)
	}
	if n == 0 {
		return fmt.Errorf("store: audit record %d is not a break-the-glass record: %w", r.Seq, store.ErrNotFound)
	}
	if _, err := a.st(aqBTGReview).ExecContext(ctx, r.Seq, Millis(r.ReviewedAt), r.Reviewer, r.Note); err != nil {
		if a.d.IsUniqueViolation(err) {
			return fmt.Errorf("store: BTG record %d already reviewed: %w", r.Seq, store.ErrConflict)
		}
		return fmt.Errorf("store: review BTG record: %w", err)
	}
	return nil
}

// BTG lists break-the-glass records (pending only unless all).
func (a *AuditDB) BTG(ctx context.Context, all bool) ([]store.BTGReview, error) {
	rows, err := a.st(aqBTGList).QueryContext(ctx, btgKey)
	if err != nil {
		return nil, fmt.Errorf("store: list BTG records: %w", err)
	}
	defer rows.Close()
	var out []store.BTGReview
	for rows.Next() {
		var r store.BTGReview
		var ms int64
		if err := rows.Scan(&r.Seq, &ms, &r.Reviewer, &r.Note); err != nil {
			return nil, fmt.Errorf("store: list BTG records: %w", err)
		}
		if ms != 0 {
			r.ReviewedAt = FromMillis(ms)
		}
		if all || r.ReviewedAt.IsZero() {
			out = append(out, r)
		}
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: list BTG records: %w", err)
	}
	return out, nil
}

// Cursor returns a consumer position (0 when unset).
func (a *AuditDB) Cursor(ctx context.Context, name string) (int64, error) {
	var seq int64
	err := a.st(aqCursorGet).QueryRowContext(ctx, name).Scan(&seq)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("store: read audit cursor %s: %w", name, err)
	}
	return seq, nil
}

// SetCursor stores a consumer position.
func (a *AuditDB) SetCursor(ctx context.Context, name string, seq int64) error {
	if _, err := a.st(aqCursorSet).ExecContext(ctx, name, seq); err != nil {
		return fmt.Errorf("store: set audit cursor %s: %w", name, err)
	}
	return nil
}

// Key returns a stored secret (nil, nil when absent).
func (a *AuditDB) Key(ctx context.Context, name string) ([]byte, error) {
	var secret []byte
	err := a.st(aqKeyGet).QueryRowContext(ctx, name).Scan(&secret)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("store: read audit key %s: %w", name, err)
	}
	return secret, nil
}

// PutKey stores a secret unless one with that name exists.
func (a *AuditDB) PutKey(ctx context.Context, name string, secret []byte, createdMillis int64) error {
	if _, err := a.st(aqKeyPut).ExecContext(ctx, name, secret, createdMillis); err != nil {
		return fmt.Errorf("store: store audit key %s: %w", name, err)
	}
	return nil
}

func scanAudit(sc interface{ Scan(...any) error }, r *store.AuditRecord) error {
	var ms int64
	if err := sc.Scan(&r.Seq, &ms, &r.Body, &r.Prev, &r.Hash, &r.Outcome, &r.Action, &r.Type, &r.Subtype, &r.Address); err != nil {
		return err
	}
	r.Recorded = FromMillis(ms)
	return nil
}

// Read returns one record.
func (a *AuditDB) Read(ctx context.Context, seq int64) (*store.AuditRecord, error) {
	r := &store.AuditRecord{}
	if err := scanAudit(a.st(aqRead).QueryRowContext(ctx, seq), r); err != nil {
		if errors.Is(err, sql.ErrNoRows) {
			return nil, store.ErrNotFound
		}
		return nil, fmt.Errorf("store: read audit record %d: %w", seq, err)
	}
	return r, nil
}

// Scan returns up to limit records after seq, oldest first, with their
// chain fields only (no search keys).
func (a *AuditDB) Scan(ctx context.Context, after int64, limit int) ([]store.AuditRecord, error) {
	rows, err := a.st(aqScan).QueryContext(ctx, after, limit)
	if err != nil {
		return nil, fmt.Errorf("store: scan audit records: %w", err)
	}
	defer rows.Close()
	out := make([]store.AuditRecord, 0, min(limit, 4096))
	for rows.Next() {
		var r store.AuditRecord
		var ms int64
		if err := rows.Scan(&r.Seq, &ms, &r.Body, &r.Prev, &r.Hash); err != nil {
			return nil, fmt.Errorf("store: scan audit records: %w", err)
		}
		r.Recorded = FromMillis(ms)
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: scan audit records: %w", err)
	}
	return out, nil
}

func collectAudit(rows *sql.Rows, capHint int) ([]store.AuditRecord, error) {
	defer rows.Close()
	out := make([]store.AuditRecord, 0, min(capHint, 1024))
	for rows.Next() {
		var r store.AuditRecord
		if err := scanAudit(rows, &r); err != nil {
			return nil, fmt.Errorf("store: scan audit records: %w", err)
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: scan audit records: %w", err)
	}
	return out, nil
}

// appendJSONString appends s as a JSON string (control characters, quote
// and backslash escaped; invalid UTF-8 replaced as encoding/json does).
func appendJSONString(dst []byte, s string) []byte {
	b, err := json.Marshal(s)
	if err != nil { // cannot happen for a string
		return append(dst, `""`...)
	}
	return append(dst, b...)
}
