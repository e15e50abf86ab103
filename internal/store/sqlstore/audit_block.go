package sqlstore

import (
	"encoding/binary"
	"errors"
	"slices"
	"strings"
	"time"

	"github.com/fhirguard/fhirguard/internal/store"
)

// Audit blocks (schema audit v2). The records of one AppendAudit call are
// stored packed in rows of audit_blocks, up to maxBlockRecords each: a few
// row inserts per group commit instead of one row per record plus one per
// search key (a row
// insert costs ≈ 5 µs of CPU in the SQLite driver, a random search-key
// row ≈ 11 µs; the packed block ≈ 1.5 µs per record). Packing is a storage
// detail: store.AuditRecord stays per record, and every record keeps its
// own seq, recorded time, prev and hash, so verify sees exactly what was
// stored — a record edited, removed, added or moved inside a block is as
// visible as it was with one row per record.
//
// A block is two values: data, the chain fields of each record, and
// keys, its search keys (which are not hashed; kept apart so that
// indexing and filtering read only them). Format (version 1), integers
// unsigned varints unless noted:
//
//	data: 0x01, count, count × (seq, recorded [signed varint, Unix ms],
//	      prev, hash, body [each length-prefixed])
//	keys: 0x01, count, count × (seq, outcome, action, type, subtype,
//	      address [length-prefixed strings], nrefs, nrefs × (param, value))

const blockFormat1 = 1

// ErrAuditBlockCorrupt is returned for a stored block that cannot be
// decoded (it was altered outside the store).
var ErrAuditBlockCorrupt = errors.New("store: audit block is corrupt")

// EncodeAuditBlock packs recs (in order) into one block's data and keys.
// Exported for tests and tools that must alter stored records.
func EncodeAuditBlock(recs []store.AuditRecord) (data, keys []byte) {
	return encodeBlock(nil, nil, recs)
}

// encodeBlock is EncodeAuditBlock appending to data and keys (the
// writer reuses its buffers: the driver copies bound values).
func encodeBlock(data, keys []byte, recs []store.AuditRecord) ([]byte, []byte) {
	nd, nk := 8, 8
	for i := range recs {
		r := &recs[i]
		nd += 30 + len(r.Prev) + len(r.Hash) + len(r.Body)
		nk += 20 + len(r.Outcome) + len(r.Action) + len(r.Type) + len(r.Subtype) + len(r.Address)
		for _, f := range r.Refs {
			nk += 4 + len(f.Param) + len(f.Value)
		}
	}
	data = slices.Grow(data[:0], nd)
	keys = slices.Grow(keys[:0], nk)
	data = append(data, blockFormat1)
	data = binary.AppendUvarint(data, uint64(len(recs)))
	keys = append(keys, blockFormat1)
	keys = binary.AppendUvarint(keys, uint64(len(recs)))
	for i := range recs {
		r := &recs[i]
		data = binary.AppendUvarint(data, uint64(r.Seq))
		data = binary.AppendVarint(data, Millis(r.Recorded))
		data = appendBytes(data, r.Prev)
		data = appendBytes(data, r.Hash)
		data = appendBytes(data, r.Body)
		keys = binary.AppendUvarint(keys, uint64(r.Seq))
		keys = appendStr(keys, r.Outcome)
		keys = appendStr(keys, r.Action)
		keys = appendStr(keys, r.Type)
		keys = appendStr(keys, r.Subtype)
		keys = appendStr(keys, r.Address)
		keys = binary.AppendUvarint(keys, uint64(len(r.Refs)))
		for _, f := range r.Refs {
			keys = appendStr(keys, f.Param)
			keys = appendStr(keys, f.Value)
		}
	}
	return data, keys
}

func appendBytes(b, v []byte) []byte {
	b = binary.AppendUvarint(b, uint64(len(v)))
	return append(b, v...)
}

func appendStr(b []byte, v string) []byte {
	b = binary.AppendUvarint(b, uint64(len(v)))
	return append(b, v...)
}

// blockReader decodes a block; the first error sticks.
type blockReader struct {
	b   []byte
	err error
}

func (r *blockReader) fail() {
	if r.err == nil {
		r.err = ErrAuditBlockCorrupt
	}
	r.b = nil
}

func (r *blockReader) uvarint() uint64 {
	v, n := binary.Uvarint(r.b)
	if n <= 0 {
		r.fail()
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *blockReader) varint() int64 {
	v, n := binary.Varint(r.b)
	if n <= 0 {
		r.fail()
		return 0
	}
	r.b = r.b[n:]
	return v
}

// bytes returns the next length-prefixed value (aliasing the block).
func (r *blockReader) bytes() []byte {
	n := r.uvarint()
	if n > uint64(len(r.b)) {
		r.fail()
		return nil
	}
	v := r.b[:n:n]
	r.b = r.b[n:]
	return v
}

// blockHeader returns the record count of a block value and the reader
// positioned at its first record.
func blockHeader(v []byte) (int, *blockReader, error) {
	if len(v) == 0 || v[0] != blockFormat1 {
		return 0, nil, ErrAuditBlockCorrupt
	}
	r := &blockReader{b: v[1:]}
	count := r.uvarint()
	// Every record takes at least 5 bytes: a damaged count cannot make a
	// large allocation.
	if r.err != nil || count > uint64(len(v))/5 {
		return 0, nil, ErrAuditBlockCorrupt
	}
	return int(count), r, nil
}

// DecodeAuditBlock unpacks a block. With data nil only Seq and the search
// keys are filled in; with keys nil only the chain fields. Byte fields
// alias data; strings are copies.
func DecodeAuditBlock(data, keys []byte) ([]store.AuditRecord, error) {
	var out []store.AuditRecord
	if data != nil {
		count, r, err := blockHeader(data)
		if err != nil {
			return nil, err
		}
		out = make([]store.AuditRecord, count)
		for i := range out {
			rec := &out[i]
			rec.Seq = int64(r.uvarint())
			rec.Recorded = FromMillis(r.varint())
			rec.Prev = r.bytes()
			rec.Hash = r.bytes()
			rec.Body = r.bytes()
		}
		if r.err != nil || len(r.b) != 0 {
			return nil, ErrAuditBlockCorrupt
		}
	}
	if keys == nil {
		return out, nil
	}
	count, r, err := blockHeader(keys)
	if err != nil {
		return nil, err
	}
	if out == nil {
		out = make([]store.AuditRecord, count)
	} else if count != len(out) {
		return nil, ErrAuditBlockCorrupt
	}
	// Keys repeat within a block (the same client, type, agent): one
	// string each.
	interned := map[string]string{}
	str := func() string {
		v := r.bytes()
		if s, ok := interned[string(v)]; ok {
			return s
		}
		s := string(v)
		interned[s] = s
		return s
	}
	for i := range out {
		rec := &out[i]
		seq := int64(r.uvarint())
		if data == nil {
			rec.Seq = seq
		} else if seq != rec.Seq {
			return nil, ErrAuditBlockCorrupt
		}
		rec.Outcome, rec.Action, rec.Type, rec.Subtype, rec.Address = str(), str(), str(), str(), str()
		nrefs := r.uvarint()
		if nrefs > uint64(len(r.b)) {
			r.fail()
		}
		if nrefs > 0 && r.err == nil {
			rec.Refs = make([]store.AuditRef, nrefs)
			for j := range rec.Refs {
				rec.Refs[j] = store.AuditRef{Param: str(), Value: str()}
			}
		}
		if r.err != nil {
			return nil, r.err
		}
	}
	if len(r.b) != 0 {
		return nil, ErrAuditBlockCorrupt
	}
	return out, nil
}

// decodeOne returns record seq of a block (found false when the block
// does not hold it), decoding only that record.
func decodeOne(data, keys []byte, seq int64) (rec store.AuditRecord, found bool, err error) {
	count, r, err := blockHeader(data)
	if err != nil {
		return rec, false, err
	}
	idx := -1
	for i := 0; i < count && r.err == nil; i++ {
		s := int64(r.uvarint())
		ms := r.varint()
		prev, hash, body := r.bytes(), r.bytes(), r.bytes()
		if s == seq && r.err == nil {
			rec = store.AuditRecord{Seq: s, Recorded: FromMillis(ms), Prev: prev, Hash: hash, Body: body}
			idx = i
			break
		}
	}
	if r.err != nil {
		return rec, false, r.err
	}
	if idx < 0 {
		return rec, false, nil
	}
	kcount, k, err := blockHeader(keys)
	if err != nil || kcount != count {
		return rec, false, ErrAuditBlockCorrupt
	}
	for i := 0; i <= idx && k.err == nil; i++ {
		s := int64(k.uvarint())
		f := [5][]byte{k.bytes(), k.bytes(), k.bytes(), k.bytes(), k.bytes()}
		nrefs := k.uvarint()
		if nrefs > uint64(len(k.b)) {
			k.fail()
			break
		}
		if i < idx {
			for j := uint64(0); j < 2*nrefs; j++ {
				k.bytes()
			}
			continue
		}
		if s != seq {
			return rec, false, ErrAuditBlockCorrupt
		}
		rec.Outcome, rec.Action, rec.Type, rec.Subtype, rec.Address = string(f[0]), string(f[1]), string(f[2]), string(f[3]), string(f[4])
		if nrefs > 0 {
			rec.Refs = make([]store.AuditRef, nrefs)
			for j := range rec.Refs {
				rec.Refs[j] = store.AuditRef{Param: string(k.bytes()), Value: string(k.bytes())}
			}
		}
	}
	if k.err != nil {
		return rec, false, k.err
	}
	return rec, true, nil
}

// eachKey calls fn with every search key of a block's keys value, as
// "param|value" in a buffer reused between calls, without decoding the
// records (postings are built from millions of keys).
func eachKey(keys []byte, fn func(seq int64, key []byte)) error {
	count, r, err := blockHeader(keys)
	if err != nil {
		return err
	}
	var buf []byte
	for i := 0; i < count && r.err == nil; i++ {
		seq := int64(r.uvarint())
		for j := 0; j < 5; j++ { // outcome, action, type, subtype, address
			r.bytes()
		}
		nrefs := r.uvarint()
		if nrefs > uint64(len(r.b)) {
			r.fail()
		}
		for j := uint64(0); j < nrefs && r.err == nil; j++ {
			p, v := r.bytes(), r.bytes()
			buf = append(append(append(buf[:0], p...), '|'), v...)
			if r.err == nil {
				fn(seq, buf)
			}
		}
	}
	if r.err != nil {
		return r.err
	}
	if len(r.b) != 0 {
		return ErrAuditBlockCorrupt
	}
	return nil
}

// auditBlock is one stored block.
type auditBlock struct {
	first, last int64
	data, keys  []byte
}

// blockStats returns the recorded range of recs (Unix ms).
func blockStats(recs []store.AuditRecord) (minMs, maxMs int64) {
	for i, r := range recs {
		ms := Millis(r.Recorded)
		if i == 0 || ms < minMs {
			minMs = ms
		}
		if i == 0 || ms > maxMs {
			maxMs = ms
		}
	}
	return minMs, maxMs
}

// inDates reports whether r was recorded in q's date range.
func inDates(q *store.AuditQuery, r *store.AuditRecord) bool {
	if !q.From.IsZero() && r.Recorded.Before(q.From.Truncate(time.Millisecond)) {
		return false
	}
	return q.To.IsZero() || Millis(r.Recorded) < Millis(q.To)
}

// matchesKeys reports whether r's search keys meet every condition of q
// but the Refs (handled by refsMatch), the dates (inDates) and the
// cursors.
func matchesKeys(q *store.AuditQuery, r *store.AuditRecord) bool {
	if len(q.Outcomes) > 0 && !slices.Contains(q.Outcomes, r.Outcome) {
		return false
	}
	if len(q.Actions) > 0 && !slices.Contains(q.Actions, r.Action) {
		return false
	}
	if len(q.Address) > 0 && !slices.Contains(q.Address, r.Address) {
		return false
	}
	if len(q.Types) > 0 {
		ok := false
		for _, t := range q.Types {
			if strings.Contains(t, "|") && !strings.HasPrefix(t, "|") {
				ok = r.Type == t
			} else {
				ok = strings.HasSuffix(r.Type, "|"+strings.TrimPrefix(t, "|"))
			}
			if ok {
				break
			}
		}
		if !ok {
			return false
		}
	}
	if len(q.Subtypes) > 0 {
		ok := false
		for _, s := range q.Subtypes {
			if strings.Contains(r.Subtype, "|"+s+"|") {
				ok = true
				break
			}
		}
		if !ok {
			return false
		}
	}
	return true
}

// refGroups groups q.Refs as the search ANDs them: one set of "param|value"
// keys per parameter (or Group), any of which matches.
func refGroups(q *store.AuditQuery) [][]string {
	var groups [][]string
	idx := map[string]int{}
	for _, r := range q.Refs {
		g := r.Group
		if g == "" {
			g = r.Param
		}
		i, ok := idx[g]
		if !ok {
			i = len(groups)
			idx[g] = i
			groups = append(groups, nil)
		}
		groups[i] = append(groups[i], refKey(r))
	}
	return groups
}

// refsMatch reports whether r has a key of every group.
func refsMatch(groups [][]string, r *store.AuditRecord) bool {
	for _, g := range groups {
		found := false
		for _, f := range r.Refs {
			if hasKey(g, f) {
				found = true
				break
			}
		}
		if !found {
			return false
		}
	}
	return true
}

func hasKey(keys []string, f store.AuditRef) bool {
	for _, k := range keys {
		if len(k) == len(f.Param)+1+len(f.Value) && k[len(f.Param)] == '|' && k[:len(f.Param)] == f.Param && k[len(f.Param)+1:] == f.Value {
			return true
		}
	}
	return false
}

// refKey is the stored form of a search key.
func refKey(f store.AuditRef) string { return f.Param + "|" + f.Value }
