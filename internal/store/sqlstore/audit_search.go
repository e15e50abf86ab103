package sqlstore

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"

	"github.com/fhirguard/fhirguard/internal/store"
)

// Audit search over packed blocks. A query is narrowed by the indexes and
// then checked record by record in memory:
//
//   - search keys (patient, agent, entity, …) through the postings of
//     every complete bucket: exact seqs, whose blocks are then read; the
//     records after the last indexed bucket (at most a bucket and a
//     batch) are read block by block;
//   - a date range through the blocks' running maximum recorded time,
//     which bounds the seqs to read;
//   - paging cursors (Before/After) bound the seqs directly.
//
// Outcome, action, type, subtype and address are checked on the
// candidates only.

// postingsWindow is how many buckets' postings are read at a time.
const postingsWindow = 64

// Search returns one page of records matching q.
func (a *AuditDB) Search(ctx context.Context, q store.AuditQuery) (*store.AuditPage, error) {
	if q.Count <= 0 {
		return nil, fmt.Errorf("store: audit search: count must be positive")
	}
	page := &store.AuditPage{}
	err := a.each(ctx, &q, func(r *store.AuditRecord) bool {
		if len(page.Records) == q.Count {
			page.More = true
			return false
		}
		page.Records = append(page.Records, *r)
		return true
	})
	if err != nil {
		return nil, fmt.Errorf("store: audit search: %w", err)
	}
	return page, nil
}

// each calls fn with every record matching q, in q's order, until fn
// returns false.
func (a *AuditDB) each(ctx context.Context, q *store.AuditQuery, fn func(*store.AuditRecord) bool) error {
	h, err := a.readHead(ctx)
	if err != nil {
		return err
	}
	lo, hi := h.anchor.Seq+1, int64(math.MaxInt64)
	if q.After > 0 {
		lo = max(lo, q.After+1)
	}
	if q.Before > 0 {
		hi = min(hi, q.Before-1)
	}
	if !q.From.IsZero() {
		first, _, ok, err := a.blockFromDate(ctx, Millis(q.From))
		if err != nil || !ok {
			return err
		}
		lo = max(lo, first)
	}
	if !q.To.IsZero() {
		_, last, ok, err := a.blockFromDate(ctx, Millis(q.To))
		if err != nil {
			return err
		}
		if ok {
			hi = min(hi, last)
		}
	}
	if lo > hi {
		return nil
	}
	groups := refGroups(q)
	stop := false
	// emit passes on a record whose keys matched if its date does.
	emit := func(r *store.AuditRecord) bool {
		if !inDates(q, r) {
			return true
		}
		if !fn(r) {
			stop = true
			return false
		}
		return true
	}
	check := func(r *store.AuditRecord) bool {
		if r.Seq < lo || r.Seq > hi || !matchesKeys(q, r) || !refsMatch(groups, r) {
			return true
		}
		return emit(r)
	}
	// A block none of whose keys holds a value of every group cannot
	// match: it is not decoded.
	var skip func([]byte) bool
	if len(q.Refs) > 0 {
		values := make([][][]byte, len(groups))
		for i, g := range groups {
			for _, k := range g {
				_, v, _ := strings.Cut(k, "|")
				values[i] = append(values[i], []byte(v))
			}
		}
		skip = func(keys []byte) bool {
			for _, vs := range values {
				found := false
				for _, v := range vs {
					if bytes.Contains(keys, v) {
						found = true
						break
					}
				}
				if !found {
					return true
				}
			}
			return false
		}
	}
	// Blocks are scanned by their keys; the chain fields (recorded time
	// included) are read for the records that pass.
	var cache blockCache
	var readErr error
	checkKeys := func(k *store.AuditRecord) bool {
		if k.Seq < lo || k.Seq > hi || !matchesKeys(q, k) || !refsMatch(groups, k) {
			return true
		}
		r, err := cache.record(ctx, a, k.Seq)
		if err != nil {
			readErr, stop = err, true
			return false
		}
		if r == nil {
			return true
		}
		return emit(r)
	}
	scan := func(from, to int64) error {
		if from > to {
			return nil
		}
		visit := func(recs []store.AuditRecord) bool {
			for j := range recs {
				i := j
				if !q.Ascending {
					i = len(recs) - 1 - j
				}
				if recs[i].Seq < from || recs[i].Seq > to {
					continue
				}
				if !checkKeys(&recs[i]) {
					return false
				}
			}
			return true
		}
		var err error
		if q.Ascending {
			err = a.eachBlock(ctx, from-1, to, skip, visit)
		} else {
			below := to + 1
			if to == math.MaxInt64 {
				below = to
			}
			err = a.eachBlockDesc(ctx, from, below, skip, visit)
		}
		if err == nil {
			err = readErr
		}
		return err
	}
	if len(groups) == 0 {
		return scan(lo, hi)
	}
	// Indexed buckets through their postings, the rest by reading.
	tailFrom := max(lo, h.indexed+1)
	idxTo := min(hi, h.indexed)
	if q.Ascending {
		if err := a.eachPosted(ctx, groups, lo, idxTo, true, check); err != nil || stop {
			return err
		}
		return scan(tailFrom, hi)
	}
	if err := scan(tailFrom, hi); err != nil || stop {
		return err
	}
	return a.eachPosted(ctx, groups, lo, idxTo, false, check)
}

// blockFromDate returns the first block whose records may be recorded at
// or after ms (ok false: none).
func (a *AuditDB) blockFromDate(ctx context.Context, ms int64) (first, last int64, ok bool, err error) {
	err = a.st(aqBlockFromDate).QueryRowContext(ctx, ms).Scan(&first, &last)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, 0, false, nil
	}
	if err != nil {
		return 0, 0, false, fmt.Errorf("read audit blocks by date: %w", err)
	}
	return first, last, true, nil
}

// eachPosted visits the records in [lo, hi] that the postings of every
// group name, window by window, until visit returns false.
func (a *AuditDB) eachPosted(ctx context.Context, groups [][]string, lo, hi int64, asc bool, visit func(*store.AuditRecord) bool) error {
	if lo > hi {
		return nil
	}
	bLo, bHi := bucketOf(lo), bucketOf(hi)
	var cache blockCache
	for w := 0; ; w++ {
		var from, to int64
		if asc {
			from = bLo + int64(w)*postingsWindow
			to = min(bHi, from+postingsWindow-1)
			if from > bHi {
				return nil
			}
		} else {
			to = bHi - int64(w)*postingsWindow
			from = max(bLo, to-postingsWindow+1)
			if to < bLo {
				return nil
			}
		}
		cands, err := a.candidates(ctx, groups, from, to)
		if err != nil {
			return err
		}
		if !asc {
			slices.Reverse(cands)
		}
		for _, seq := range cands {
			if seq < lo || seq > hi {
				continue
			}
			r, err := cache.record(ctx, a, seq)
			if err != nil {
				return err
			}
			if r != nil && !visit(r) {
				return nil
			}
		}
	}
}

// candidates returns the seqs, ascending, in buckets [from, to] whose
// postings hold a key of every group.
func (a *AuditDB) candidates(ctx context.Context, groups [][]string, from, to int64) ([]int64, error) {
	var out []int64
	for i, g := range groups {
		var set []int64
		for _, k := range g {
			seqs, err := a.postingsOf(ctx, k, from, to)
			if err != nil {
				return nil, err
			}
			set = append(set, seqs...)
		}
		slices.Sort(set)
		set = slices.Compact(set)
		if i == 0 {
			out = set
		} else {
			out = intersect(out, set)
		}
		if len(out) == 0 {
			return nil, nil
		}
	}
	return out, nil
}

func (a *AuditDB) postingsOf(ctx context.Context, k string, from, to int64) ([]int64, error) {
	rows, err := a.st(aqPostings).QueryContext(ctx, k, from, to)
	if err != nil {
		return nil, fmt.Errorf("read audit postings: %w", err)
	}
	defer rows.Close()
	var out []int64
	for rows.Next() {
		var bucket int64
		var seqs []byte
		if err := rows.Scan(&bucket, &seqs); err != nil {
			return nil, fmt.Errorf("read audit postings: %w", err)
		}
		if out, err = decodeSeqs(out, bucket, seqs); err != nil {
			return nil, fmt.Errorf("audit postings of %q: %w", k, err)
		}
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read audit postings: %w", err)
	}
	return out, nil
}

// intersect returns the seqs in both ascending lists.
func intersect(a, b []int64) []int64 {
	out := a[:0]
	i, j := 0, 0
	for i < len(a) && j < len(b) {
		switch {
		case a[i] < b[j]:
			i++
		case a[i] > b[j]:
			j++
		default:
			out = append(out, a[i])
			i++
			j++
		}
	}
	return out
}

// blockCache keeps the last block read while records are fetched one by
// one (candidates from postings often share a block).
type blockCache struct {
	blk *auditBlock
	rec store.AuditRecord
}

// record returns the record seq (nil when it is not stored).
func (c *blockCache) record(ctx context.Context, a *AuditDB, seq int64) (*store.AuditRecord, error) {
	if c.blk == nil || seq < c.blk.first || seq > c.blk.last {
		b, err := a.blockAt(ctx, seq)
		if err != nil {
			return nil, err
		}
		if b == nil || b.first > seq {
			return nil, nil
		}
		c.blk = b
	}
	rec, found, err := decodeOne(c.blk.data, c.blk.keys, seq)
	if err != nil {
		return nil, &store.AuditCorruptError{From: c.blk.first, Cause: err}
	}
	if !found {
		return nil, nil
	}
	c.rec = rec
	return &c.rec, nil
}
