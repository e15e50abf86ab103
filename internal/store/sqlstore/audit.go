package sqlstore

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/fhirguard/fhirguard/internal/store"
)

// auditQ names one fixed statement of the audit log.
type auditQ int

const (
	aqHead auditQ = iota
	aqHeadInsert
	aqHeadUpdate
	aqHeadAnchor
	aqHeadIndexed
	aqBlockInsert
	aqBlockAt
	aqBlockAtKeys
	aqBlocksAfterData
	aqBlocksAfterKeys
	aqBlocksBeforeKeys
	aqBlockUpdate
	aqBlockFromDate
	aqPostings
	aqCheckpointInsert
	aqCheckpoints
	aqBTGReviews
	aqBTGReview
	aqCursorGet
	aqCursorSet
	aqKeyGet
	aqKeyPut
	aqPruneBlocks
	aqPrunePostings
	aqPruneCheckpoints
	aqPruneBTG
	aqLegacyAny
	aqLegacyEvents
	aqLegacyRefs
	aqLegacyDeleteEvents
	aqLegacyDeleteRefs
	numAuditQ
)

// maxBlockRecords caps the records packed in one block: a search reads a
// whole block (its blob) for each record it returns from it, and a block
// row costs ≈ 5 µs to insert, so 64 records keep both small.
const maxBlockRecords = 64

// Postings are written per bucket of auditBucketSize seqs: bucket b holds
// seqs b*size+1 … (b+1)*size. A bucket's postings cost one row per
// distinct key (≈ 5 µs each), so larger buckets cost less per record
// where keys repeat (the same clients, users and patients); a keyed search
// reads the keys of the unindexed tail, at most a bucket and a batch
// (schema audit v3: 16384; v2 wrote buckets of 4096).
const auditBucketSize = 16384

func bucketOf(seq int64) int64 { return (seq - 1) / auditBucketSize }

// btgKey is the search key of break-the-glass records.
var btgKey = store.AuditRef{Param: "btg", Value: "1"}

// headSelect reads the head row. Write transactions append the
// dialect's LockRow; readers must not (a lock would make them wait for
// the writer, and take one themselves).
const headSelect = `SELECT seq, hash, anchor_seq, anchor_hash, recorded, indexed, outbox FROM audit_head WHERE id = 1`

// Block columns: both values, the chain fields only, the keys only.
const (
	blockCols     = `first_seq, last_seq, data, keys`
	blockDataCols = `first_seq, last_seq, data, NULL`
	blockKeyCols  = `first_seq, last_seq, NULL, keys`
)

func auditSQL(d Dialect, q auditQ) string {
	switch q {
	case aqHead:
		return headSelect + d.LockRow()
	case aqHeadInsert:
		return `INSERT INTO audit_head (id, seq, hash, anchor_seq, anchor_hash, recorded, indexed, outbox) VALUES (1, $1, $2, 0, $3, $4, 0, $5)`
	case aqHeadUpdate:
		return `UPDATE audit_head SET seq = $1, hash = $2, recorded = $3, outbox = $5 WHERE id = 1 AND seq = $4`
	case aqHeadAnchor:
		return `UPDATE audit_head SET anchor_seq = $1, anchor_hash = $2 WHERE id = 1`
	case aqHeadIndexed:
		return `UPDATE audit_head SET indexed = $1 WHERE id = 1`
	case aqBlockInsert:
		return `INSERT INTO audit_blocks (last_seq, first_seq, rec_min, rec_max, data, keys) VALUES ($1, $2, $3, $4, $5, $6)`
	case aqBlockAt:
		// The block holding seq $1 (or the next one).
		return `SELECT ` + blockCols + ` FROM audit_blocks WHERE last_seq >= $1 ORDER BY last_seq LIMIT 1`
	case aqBlocksAfterData:
		return `SELECT ` + blockDataCols + ` FROM audit_blocks WHERE last_seq > $1 ORDER BY last_seq LIMIT $2`
	case aqBlocksAfterKeys:
		return `SELECT ` + blockKeyCols + ` FROM audit_blocks WHERE last_seq > $1 ORDER BY last_seq LIMIT $2`
	case aqBlocksBeforeKeys:
		return `SELECT ` + blockKeyCols + ` FROM audit_blocks WHERE last_seq < $1 ORDER BY last_seq DESC LIMIT $2`
	case aqBlockAtKeys:
		return `SELECT ` + blockKeyCols + ` FROM audit_blocks WHERE last_seq >= $1 ORDER BY last_seq LIMIT 1`
	case aqBlockUpdate:
		return `UPDATE audit_blocks SET first_seq = $1, rec_min = $2, data = $3, keys = $4 WHERE last_seq = $5`
	case aqBlockFromDate:
		// The first block that may hold a record recorded at or after $1.
		return `SELECT first_seq, last_seq FROM audit_blocks WHERE rec_max >= $1 ORDER BY rec_max, last_seq LIMIT 1`
	case aqPostings:
		return `SELECT bucket, seqs FROM audit_postings WHERE k = $1 AND bucket >= $2 AND bucket <= $3`
	case aqCheckpointInsert:
		return `INSERT INTO audit_checkpoints (seq, hash, created, signature) VALUES ($1, $2, $3, $4)`
	case aqCheckpoints:
		return `SELECT seq, hash, created, signature FROM audit_checkpoints ORDER BY seq`
	case aqBTGReviews:
		return `SELECT seq, reviewed_at, reviewer, note FROM audit_btg`
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
	case aqPruneBlocks:
		return `DELETE FROM audit_blocks WHERE last_seq <= $1`
	case aqPrunePostings:
		return `DELETE FROM audit_postings WHERE bucket < $1`
	case aqPruneCheckpoints:
		return `DELETE FROM audit_checkpoints WHERE seq < $1`
	case aqPruneBTG:
		return `DELETE FROM audit_btg WHERE seq <= $1`
	case aqLegacyAny:
		return `SELECT COUNT(*) FROM (SELECT 1 FROM audit_events LIMIT 1) x`
	case aqLegacyEvents:
		return `SELECT seq, recorded, body, prev, hash, outcome, action, type, subtype, address FROM audit_events WHERE seq > $1 ORDER BY seq LIMIT $2`
	case aqLegacyRefs:
		return `SELECT k, seq FROM audit_refs WHERE seq >= $1 AND seq <= $2`
	case aqLegacyDeleteEvents:
		return `DELETE FROM audit_events`
	case aqLegacyDeleteRefs:
		return `DELETE FROM audit_refs`
	}
	panic(fmt.Sprintf("sqlstore: unknown audit query %d", int(q)))
}

// Postings of a completed bucket are inserted this many rows per
// statement (the driver binds numbered parameters in O(n²); 8 rows per
// statement measured best).
var auditChunks = []int{8, 1}

const postingsHead = `INSERT INTO audit_postings (k, bucket, seqs) VALUES `

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
	d        Dialect
	stmts    [numAuditQ]*sql.Stmt
	postings map[int]*sql.Stmt // chunk size → multi-row insert

	// Append's block buffers, reused (the writer's AuditDB is used by
	// one goroutine, the backend's writer, and the driver copies bound
	// values).
	data, keys []byte
}

// PrepareAudit prepares the audit statements on p (write: also the
// inserts, and the head is read with the dialect's row lock).
func PrepareAudit(ctx context.Context, p Preparer, d Dialect, write bool) (*AuditDB, error) {
	a := &AuditDB{d: d, postings: map[int]*sql.Stmt{}}
	prep := func(text string) (*sql.Stmt, error) {
		st, err := p.PrepareContext(ctx, text)
		if err != nil {
			_ = a.Close()
			return nil, fmt.Errorf("sqlstore: prepare audit statement: %w", err)
		}
		return st, nil
	}
	for q := auditQ(0); q < numAuditQ; q++ {
		text := auditSQL(d, q)
		if q == aqHead && !write {
			text = headSelect
		}
		st, err := prep(text)
		if err != nil {
			return nil, err
		}
		a.stmts[q] = st
	}
	if write {
		for _, n := range auditChunks {
			st, err := prep(postingsHead + valuesList(n, 3))
			if err != nil {
				return nil, err
			}
			a.postings[n] = st
		}
	}
	return a, nil
}

// Close closes every statement.
func (a *AuditDB) Close() error {
	var errs []error
	for _, st := range a.stmts {
		if st != nil {
			errs = append(errs, st.Close())
		}
	}
	for _, st := range a.postings {
		errs = append(errs, st.Close())
	}
	return errors.Join(errs...)
}

func (a *AuditDB) st(q auditQ) *sql.Stmt { return a.stmts[q] }

// headRow is the audit_head row.
type headRow struct {
	head    store.AuditHead
	anchor  store.AuditAnchor
	indexed int64
	exists  bool
}

// readHead reads the head row (zero head, zero anchor when there is none).
func (a *AuditDB) readHead(ctx context.Context) (headRow, error) {
	var h headRow
	var recorded int64
	err := a.st(aqHead).QueryRowContext(ctx).Scan(&h.head.Seq, &h.head.Hash, &h.anchor.Seq, &h.anchor.Hash, &recorded, &h.indexed, &h.head.Outbox)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		z := make([]byte, 32)
		return headRow{head: store.AuditHead{Hash: z}, anchor: store.AuditAnchor{Hash: z}}, nil
	case err != nil:
		return h, fmt.Errorf("store: read audit head: %w", err)
	}
	if recorded != 0 {
		h.head.Recorded = FromMillis(recorded)
	}
	h.exists = true
	return h, nil
}

// Head returns the chain head (store.AuditTx.AuditHead and
// store.AuditStore.AuditHeadRow).
func (a *AuditDB) Head(ctx context.Context) (store.AuditHead, error) {
	h, err := a.readHead(ctx)
	return h.head, err
}

// Anchor returns where the chain starts.
func (a *AuditDB) Anchor(ctx context.Context) (store.AuditAnchor, error) {
	h, err := a.readHead(ctx)
	return h.anchor, err
}

// Append inserts recs after head (store.AuditTx.AppendAudit) as one
// block, records outbox as the last outbox entry chained, and writes the
// postings of every bucket it completes. The caller runs it inside a
// write transaction.
func (a *AuditDB) Append(ctx context.Context, head store.AuditHead, recs []store.AuditRecord, outbox int64) error {
	if len(recs) == 0 && outbox <= head.Outbox {
		return nil
	}
	cur, err := a.readHead(ctx)
	if err != nil {
		return err
	}
	if cur.head.Seq != head.Seq || !bytes.Equal(cur.head.Hash, head.Hash) || cur.head.Outbox != head.Outbox {
		return fmt.Errorf("%w: at %d, expected %d", store.ErrAuditChainMoved, cur.head.Seq, head.Seq)
	}
	if outbox < head.Outbox {
		return fmt.Errorf("store: audit outbox position %d is before the head's %d", outbox, head.Outbox)
	}
	if len(recs) == 0 {
		// Outbox entries that could not be chained at all (logged by the
		// caller): only the position moves.
		var rec int64
		if !cur.head.Recorded.IsZero() {
			rec = Millis(cur.head.Recorded)
		}
		return a.setHead(ctx, cur, head, head.Seq, head.Hash, rec, outbox)
	}
	for i, r := range recs {
		want := head.Seq + int64(i) + 1
		if r.Seq != want {
			return fmt.Errorf("store: audit record %d has seq %d, want %d", i, r.Seq, want)
		}
	}
	last := recs[len(recs)-1]
	runMax := Millis(cur.head.Recorded)
	if cur.head.Recorded.IsZero() {
		runMax = math.MinInt64
	}
	for rest := recs; len(rest) > 0; {
		blk := rest[:min(len(rest), maxBlockRecords)]
		rest = rest[len(blk):]
		minMs, maxMs := blockStats(blk)
		runMax = max(runMax, maxMs)
		a.data, a.keys = encodeBlock(a.data, a.keys, blk)
		if _, err := a.st(aqBlockInsert).ExecContext(ctx, blk[len(blk)-1].Seq, blk[0].Seq, minMs, runMax, a.data, a.keys); err != nil {
			return fmt.Errorf("store: insert %d audit records from %d: %w", len(blk), blk[0].Seq, err)
		}
	}
	if err := a.setHead(ctx, cur, head, last.Seq, last.Hash, runMax, outbox); err != nil {
		return err
	}
	if done := last.Seq / auditBucketSize * auditBucketSize; done > cur.indexed {
		return a.index(ctx, cur.indexed, done)
	}
	return nil
}

// setHead moves the head row from head to seq/hash (inserting it when
// there is none yet).
func (a *AuditDB) setHead(ctx context.Context, cur headRow, head store.AuditHead, seq int64, hash []byte, recorded, outbox int64) error {
	if !cur.exists {
		if _, err := a.st(aqHeadInsert).ExecContext(ctx, seq, hash, head.Hash, recorded, outbox); err != nil {
			return fmt.Errorf("store: insert audit head: %w", err)
		}
		return nil
	}
	res, err := a.st(aqHeadUpdate).ExecContext(ctx, seq, hash, recorded, head.Seq, outbox)
	if err != nil {
		return fmt.Errorf("store: update audit head: %w", err)
	}
	if n, err := res.RowsAffected(); err == nil && n != 1 {
		return fmt.Errorf("%w: head update matched %d rows", store.ErrAuditChainMoved, n)
	}
	return nil
}

// NeedsReindex reports whether complete buckets lack their postings
// (Reindex has work).
func (a *AuditDB) NeedsReindex(ctx context.Context) (bool, error) {
	h, err := a.readHead(ctx)
	if err != nil || !h.exists {
		return false, err
	}
	return h.head.Seq/auditBucketSize*auditBucketSize > h.indexed, nil
}

// Reindex writes the postings of every complete bucket not indexed yet
// (after a schema step cleared them). The caller runs it inside a write
// transaction.
func (a *AuditDB) Reindex(ctx context.Context) (int64, error) {
	h, err := a.readHead(ctx)
	if err != nil || !h.exists {
		return 0, err
	}
	done := h.head.Seq / auditBucketSize * auditBucketSize
	if done <= h.indexed {
		return 0, nil
	}
	return done - h.indexed, a.index(ctx, h.indexed, done)
}

// index writes the postings of the records after from up to and
// including to (whole buckets) and records to as indexed.
func (a *AuditDB) index(ctx context.Context, from, to int64) error {
	for b := bucketOf(from + 1); b <= bucketOf(to); b++ {
		if err := a.indexBucket(ctx, b); err != nil {
			return fmt.Errorf("store: index audit records %d–%d: %w", b*auditBucketSize+1, (b+1)*auditBucketSize, err)
		}
	}
	if _, err := a.st(aqHeadIndexed).ExecContext(ctx, to); err != nil {
		return fmt.Errorf("store: record audit postings: %w", err)
	}
	return nil
}

// indexBucket writes the postings of bucket b: one row per key.
func (a *AuditDB) indexBucket(ctx context.Context, b int64) error {
	lo, hi := b*auditBucketSize, (b+1)*auditBucketSize
	seqs := map[string][]int64{}
	var order []string
	after := lo
	for after < hi {
		blocks, err := a.blocks(ctx, aqBlocksAfterKeys, after)
		if err != nil {
			return err
		}
		for _, blk := range blocks {
			if blk.first > hi {
				return a.writePostings(ctx, b, order, seqs)
			}
			err := eachKey(blk.keys, func(seq int64, key []byte) {
				if seq <= lo || seq > hi {
					return
				}
				s, ok := seqs[string(key)]
				if !ok {
					k := string(key)
					order = append(order, k)
					seqs[k] = []int64{seq}
					return
				}
				if s[len(s)-1] != seq {
					seqs[string(key)] = append(s, seq)
				}
			})
			if err != nil {
				return &store.AuditCorruptError{From: blk.first, Cause: err}
			}
			after = blk.last
		}
		if len(blocks) < blocksPerQuery {
			break
		}
	}
	return a.writePostings(ctx, b, order, seqs)
}

// writePostings inserts the postings of bucket b, keys in order.
func (a *AuditDB) writePostings(ctx context.Context, b int64, order []string, seqs map[string][]int64) error {
	args := make([]any, 0, 3*auditChunks[0])
	for len(order) > 0 {
		n := chunk(auditChunks, len(order))
		args = args[:0]
		for _, k := range order[:n] {
			args = append(args, k, b, encodeSeqs(b, seqs[k]))
		}
		if _, err := a.postings[n].ExecContext(ctx, args...); err != nil {
			return fmt.Errorf("insert audit postings: %w", err)
		}
		order = order[n:]
	}
	return nil
}

// encodeSeqs packs ascending seqs of a bucket as varint deltas from the
// bucket's start.
func encodeSeqs(bucket int64, seqs []int64) []byte {
	b := make([]byte, 0, 2*len(seqs))
	prev := bucket * auditBucketSize
	for _, s := range seqs {
		b = binary.AppendUvarint(b, uint64(s-prev))
		prev = s
	}
	return b
}

// decodeSeqs appends the seqs of a postings value to dst.
func decodeSeqs(dst []int64, bucket int64, b []byte) ([]int64, error) {
	prev := bucket * auditBucketSize
	for len(b) > 0 {
		d, n := binary.Uvarint(b)
		if n <= 0 {
			return dst, ErrAuditBlockCorrupt
		}
		prev += int64(d)
		dst = append(dst, prev)
		b = b[n:]
	}
	return dst, nil
}

// chunk returns the largest of sizes (descending, ending in 1) that is
// <= n.
func chunk(sizes []int, n int) int {
	for _, c := range sizes {
		if c <= n {
			return c
		}
	}
	return 1
}

// decode returns the block's records, or an AuditCorruptError naming the
// block's first record when it cannot be decoded.
func (b auditBlock) decode() ([]store.AuditRecord, error) {
	recs, err := DecodeAuditBlock(b.data, b.keys)
	if err != nil {
		return nil, &store.AuditCorruptError{From: b.first, Cause: err}
	}
	return recs, nil
}

// scanBlocks reads blocks from rows.
func scanBlocks(rows *sql.Rows) ([]auditBlock, error) {
	defer rows.Close()
	var out []auditBlock
	for rows.Next() {
		var b auditBlock
		if err := rows.Scan(&b.first, &b.last, &b.data, &b.keys); err != nil {
			return nil, fmt.Errorf("store: read audit blocks: %w", err)
		}
		out = append(out, b)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: read audit blocks: %w", err)
	}
	return out, nil
}

// blocksPerQuery is how many blocks a scan reads per statement.
const blocksPerQuery = 16

// blocks reads up to blocksPerQuery blocks with q (aqBlocksAfter… or
// aqBlocksBefore…) from seq on.
func (a *AuditDB) blocks(ctx context.Context, q auditQ, seq int64) ([]auditBlock, error) {
	rows, err := a.st(q).QueryContext(ctx, seq, blocksPerQuery)
	if err != nil {
		return nil, fmt.Errorf("store: read audit blocks: %w", err)
	}
	return scanBlocks(rows)
}

// visit passes b's records to fn unless skip, when set, tells from b's
// keys value that none of them can match (b is then not decoded); it
// reports whether the walk goes on.
func (b *auditBlock) visit(skip func(keys []byte) bool, fn func([]store.AuditRecord) bool) (bool, error) {
	if skip != nil && skip(b.keys) {
		return true, nil
	}
	recs, err := b.decode()
	if err != nil {
		return false, err
	}
	return fn(recs), nil
}

// eachBlock calls fn with the records of every block holding seqs in
// (after, upTo], oldest first, with their search keys only (no chain
// fields), until fn returns false; skip as in visit. upTo <= 0 means no
// upper bound.
func (a *AuditDB) eachBlock(ctx context.Context, after, upTo int64, skip func(keys []byte) bool, fn func([]store.AuditRecord) bool) error {
	for {
		blocks, err := a.blocks(ctx, aqBlocksAfterKeys, after)
		if err != nil {
			return err
		}
		for i := range blocks {
			b := &blocks[i]
			if upTo > 0 && b.first > upTo {
				return nil
			}
			if more, err := b.visit(skip, fn); err != nil || !more {
				return err
			}
			after = b.last
		}
		if len(blocks) < blocksPerQuery || (upTo > 0 && after >= upTo) {
			return nil
		}
	}
}

// eachBlockDesc is eachBlock newest first over blocks holding seqs in
// [from, below).
func (a *AuditDB) eachBlockDesc(ctx context.Context, from, below int64, skip func(keys []byte) bool, fn func([]store.AuditRecord) bool) error {
	// The block holding below-1 may end after it.
	b, err := a.blockAtQ(ctx, aqBlockAtKeys, below-1)
	if err != nil {
		return err
	}
	if b != nil && b.first < below {
		if more, err := b.visit(skip, fn); err != nil || !more {
			return err
		}
		if b.first <= from {
			return nil
		}
		below = b.first
	}
	for {
		blocks, err := a.blocks(ctx, aqBlocksBeforeKeys, below)
		if err != nil {
			return err
		}
		for i := range blocks {
			b := &blocks[i]
			if b.last < from {
				return nil
			}
			if more, err := b.visit(skip, fn); err != nil || !more {
				return err
			}
			below = b.first
		}
		if len(blocks) < blocksPerQuery {
			return nil
		}
	}
}

// blockAt returns the block holding seq or the next one (nil at the end).
func (a *AuditDB) blockAt(ctx context.Context, seq int64) (*auditBlock, error) {
	return a.blockAtQ(ctx, aqBlockAt, seq)
}

// blockAtQ is blockAt reading the columns of q (aqBlockAt…).
func (a *AuditDB) blockAtQ(ctx context.Context, q auditQ, seq int64) (*auditBlock, error) {
	var b auditBlock
	err := a.st(q).QueryRowContext(ctx, seq).Scan(&b.first, &b.last, &b.data, &b.keys)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("store: read audit block at %d: %w", seq, err)
	}
	return &b, nil
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
	h, err := a.readHead(ctx)
	if err != nil {
		return 0, err
	}
	if !h.exists {
		return 0, nil
	}
	var n int64
	// Count what goes, then delete whole blocks; a block straddling the
	// anchor keeps its later records.
	err = a.eachBlock(ctx, h.anchor.Seq, anchor.Seq, nil, func(recs []store.AuditRecord) bool {
		for _, r := range recs {
			if r.Seq <= anchor.Seq {
				n++
			}
		}
		return true
	})
	if err != nil {
		return 0, fmt.Errorf("store: prune audit records: %w", err)
	}
	if _, err := a.st(aqPruneBlocks).ExecContext(ctx, anchor.Seq); err != nil {
		return 0, fmt.Errorf("store: prune audit records: %w", err)
	}
	b, err := a.blockAt(ctx, anchor.Seq+1)
	if err != nil {
		return 0, err
	}
	if b != nil && b.first <= anchor.Seq {
		recs, err := b.decode()
		if err != nil {
			return 0, err
		}
		keep := recs[:0]
		for _, r := range recs {
			if r.Seq > anchor.Seq {
				keep = append(keep, r)
			}
		}
		minMs, _ := blockStats(keep)
		data, keys := EncodeAuditBlock(keep)
		if _, err := a.st(aqBlockUpdate).ExecContext(ctx, keep[0].Seq, minMs, data, keys, b.last); err != nil {
			return 0, fmt.Errorf("store: prune audit records: %w", err)
		}
	}
	if _, err := a.st(aqPrunePostings).ExecContext(ctx, anchor.Seq/auditBucketSize); err != nil {
		return 0, fmt.Errorf("store: prune audit keys: %w", err)
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

// Read returns one record.
func (a *AuditDB) Read(ctx context.Context, seq int64) (*store.AuditRecord, error) {
	b, err := a.blockAt(ctx, seq)
	if err != nil {
		return nil, err
	}
	if b == nil || b.first > seq {
		return nil, store.ErrNotFound
	}
	rec, found, err := decodeOne(b.data, b.keys, seq)
	if err != nil {
		return nil, &store.AuditCorruptError{From: b.first, Cause: err}
	}
	if !found {
		return nil, store.ErrNotFound
	}
	return &rec, nil
}

// Scan returns up to limit records after seq, oldest first, with their
// chain fields only (no search keys). A block that cannot be decoded ends
// the page before it; a page starting at it is an *store.AuditCorruptError.
func (a *AuditDB) Scan(ctx context.Context, after int64, limit int) ([]store.AuditRecord, error) {
	out := make([]store.AuditRecord, 0, min(limit, 4096))
	for len(out) < limit {
		blocks, err := a.blocks(ctx, aqBlocksAfterData, after)
		if err != nil {
			return nil, fmt.Errorf("store: scan audit records: %w", err)
		}
		for _, b := range blocks {
			recs, err := DecodeAuditBlock(b.data, nil)
			if err != nil {
				if len(out) > 0 {
					return out, nil
				}
				return nil, &store.AuditCorruptError{From: b.first, Cause: err}
			}
			for _, r := range recs {
				if r.Seq > after && len(out) < limit {
					out = append(out, r)
				}
			}
			if len(out) >= limit {
				return out, nil
			}
			after = max(after, b.last)
		}
		if len(blocks) < blocksPerQuery {
			break
		}
	}
	return out, nil
}
