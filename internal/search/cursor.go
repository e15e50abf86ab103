package search

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"github.com/fhirguard/fhirguard/internal/clock"
	"github.com/fhirguard/fhirguard/internal/fhir"
)

// Direction is the paging direction of a cursor.
type Direction uint8

// The paging directions.
const (
	// Next: the rows that sort strictly after the boundary row.
	Next Direction = 1
	// Prev: the rows that sort strictly before the boundary row (the
	// compiler reads them in reverse order and flips the page back).
	Prev Direction = 2
)

// Cursor is the decoded content of a paging cursor: a keyset position,
// never an offset. See the package documentation for how the compiler
// uses it.
type Cursor struct {
	Direction Direction
	// Snapshot is the store's version sequence at the first page (the
	// highest committed version seq then). Later pages only consider
	// resources created at or before it.
	Snapshot int64
	// Keys are the sort values of the boundary row, one per Query.Sort
	// key, as the compiler encoded them (Null for a row without a value).
	Keys []KeyValue
	// Row is the boundary row's store key, its place in the tiebreak
	// order (the order resources were created in).
	Row int64
	// Type and ID name the boundary row.
	Type, ID string
}

// KeyValue is one sort-key value of a cursor; the compiler chooses Text's
// encoding for each sort type (and must decode what it encoded).
type KeyValue struct {
	Null bool
	Text string
}

// DefaultCursorTTL is how long a cursor stays valid when
// NewCursorCodec gets ttl 0.
const DefaultCursorTTL = time.Hour

const (
	// cursorVersion 2: the tiebreak is the store's row key (version 1's
	// was (type, id); its cursors would page in another order).
	cursorVersion  = 2
	cursorMaxBytes = 8 << 10
	cursorMinKey   = 32
	cursorMACLabel = "fhirguard/cursor/v1\x00"
)

// CursorCodec encodes and verifies paging cursors: base64url of a binary
// body (query fingerprint, issue time, direction, snapshot, boundary keys)
// followed by its HMAC-SHA256 under the server key. Safe for concurrent
// use.
type CursorCodec struct {
	key []byte
	clk clock.Clock
	ttl time.Duration
}

// NewCursorCodec returns a codec signing with key (at least 32 random
// bytes, shared by every replica), telling time by clk; cursors older than
// ttl (0 = DefaultCursorTTL) are refused.
func NewCursorCodec(key []byte, clk clock.Clock, ttl time.Duration) (*CursorCodec, error) {
	if len(key) < cursorMinKey {
		return nil, fmt.Errorf("search: cursor key must be at least %d bytes, got %d", cursorMinKey, len(key))
	}
	if clk == nil {
		return nil, errors.New("search: cursor codec needs a clock")
	}
	if ttl <= 0 {
		ttl = DefaultCursorTTL
	}
	return &CursorCodec{key: append([]byte(nil), key...), clk: clk, ttl: ttl}, nil
}

func (c *CursorCodec) mac(body []byte) []byte {
	m := hmac.New(sha256.New, c.key)
	m.Write([]byte(cursorMACLabel))
	m.Write(body)
	return m.Sum(nil)
}

// Encode returns the opaque cursor for position cur of query q (q's
// fingerprint, so q must carry its final Narrow).
func (c *CursorCodec) Encode(q *Query, cur Cursor) (string, error) {
	if cur.Direction != Next && cur.Direction != Prev {
		return "", errors.New("search: cursor direction must be Next or Prev")
	}
	if len(cur.Keys) != len(q.Sort) {
		return "", fmt.Errorf("search: cursor has %d keys for %d sort keys", len(cur.Keys), len(q.Sort))
	}
	fp := q.Fingerprint()
	b := make([]byte, 0, 96)
	b = append(b, cursorVersion)
	b = append(b, fp[:]...)
	b = binary.BigEndian.AppendUint64(b, uint64(c.clk.Now().Unix()))
	b = append(b, byte(cur.Direction))
	b = binary.AppendVarint(b, cur.Snapshot)
	b = binary.AppendVarint(b, cur.Row)
	b = binary.AppendUvarint(b, uint64(len(cur.Keys)))
	for _, k := range cur.Keys {
		if k.Null {
			b = append(b, 0)
			continue
		}
		b = append(b, 1)
		b = appendStr(b, k.Text)
	}
	b = appendStr(b, cur.Type)
	b = appendStr(b, cur.ID)
	if len(b) > cursorMaxBytes {
		return "", fmt.Errorf("search: cursor of %d bytes exceeds %d", len(b), cursorMaxBytes)
	}
	b = append(b, c.mac(b)...)
	return base64.RawURLEncoding.EncodeToString(b), nil
}

func appendStr(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

func badCursor(why string) *fhir.Error {
	return fhir.Errorf(fhir.IssueInvalid, "invalid paging cursor: %s", why)
}

// Decode verifies q.Cursor and returns its position; nil, nil when q has no
// cursor. Call it after the policy set q.Narrow: a cursor made for another
// query or another narrowing, a modified one, or an expired one is a 400
// *fhir.Error.
func (c *CursorCodec) Decode(q *Query) (*Cursor, error) {
	if q.Cursor == "" {
		return nil, nil
	}
	if len(q.Cursor) > base64.RawURLEncoding.EncodedLen(cursorMaxBytes+sha256.Size) {
		return nil, badCursor("malformed or modified")
	}
	raw, err := base64.RawURLEncoding.DecodeString(q.Cursor)
	if err != nil || len(raw) < 1+32+8+sha256.Size {
		return nil, badCursor("malformed or modified")
	}
	body, sig := raw[:len(raw)-sha256.Size], raw[len(raw)-sha256.Size:]
	if !hmac.Equal(sig, c.mac(body)) {
		return nil, badCursor("malformed or modified")
	}
	r := reader{b: body}
	if v := r.byte(); v != cursorVersion {
		return nil, badCursor("unsupported version; restart the search")
	}
	fp := r.bytes(32)
	issued := int64(binary.BigEndian.Uint64(r.bytes(8)))
	cur := &Cursor{Direction: Direction(r.byte())}
	cur.Snapshot = r.varint()
	cur.Row = r.varint()
	n := r.uvarint()
	if n > uint64(len(body)) {
		return nil, badCursor("malformed or modified")
	}
	for range n {
		k := KeyValue{Null: r.byte() == 0}
		if !k.Null {
			k.Text = r.str()
		}
		cur.Keys = append(cur.Keys, k)
	}
	cur.Type, cur.ID = r.str(), r.str()
	if r.err || r.i != len(body) || (cur.Direction != Next && cur.Direction != Prev) {
		return nil, badCursor("malformed or modified")
	}
	want := q.Fingerprint()
	if !hmac.Equal(fp, want[:]) || len(cur.Keys) != len(q.Sort) {
		return nil, badCursor("it belongs to a different search")
	}
	now := c.clk.Now()
	iss := time.Unix(issued, 0)
	if iss.After(now.Add(time.Minute)) || now.Sub(iss) > c.ttl {
		return nil, badCursor("expired; restart the search")
	}
	return cur, nil
}

type reader struct {
	b   []byte
	i   int
	err bool
}

func (r *reader) bytes(n int) []byte {
	if r.err || n < 0 || r.i+n > len(r.b) {
		r.err = true
		return make([]byte, n)
	}
	out := r.b[r.i : r.i+n]
	r.i += n
	return out
}

func (r *reader) byte() byte { return r.bytes(1)[0] }

func (r *reader) uvarint() uint64 {
	if r.err {
		return 0
	}
	v, k := binary.Uvarint(r.b[r.i:])
	if k <= 0 {
		r.err = true
		return 0
	}
	r.i += k
	return v
}

func (r *reader) varint() int64 {
	if r.err {
		return 0
	}
	v, k := binary.Varint(r.b[r.i:])
	if k <= 0 {
		r.err = true
		return 0
	}
	r.i += k
	return v
}

func (r *reader) str() string {
	n := r.uvarint()
	if n > uint64(len(r.b)) {
		r.err = true
		return ""
	}
	return string(r.bytes(int(n)))
}
