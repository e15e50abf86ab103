package store

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// The audit log is not made of resources: it is an append-only,
// hash-chained sequence of records (internal/audit owns its meaning; a
// backend only stores it). These are the types a backend exchanges with
// internal/audit. A backend that keeps an audit log implements AuditLog:
// AuditTx runs audit write transactions, which may be separate from the
// resource transactions of Store.Tx (the SQLite backend keeps the log in a
// file of its own, so that the commits of read events do not disturb the
// readers of the resources).
//
// A write and the events about it must commit together, so the store.Tx of
// Store.Tx implements AuditOutboxTx: the write's events go into an outbox
// in the write's own transaction, and the next audit transaction moves
// them into the chain (AuditTx.PendingAuditOutbox; the head remembers the
// last outbox entry chained, so none is chained twice or lost).

// ErrAuditChainMoved is returned by AuditTx.AppendAudit when the head of the
// chain is not the one the caller chained from (another writer appended in
// between); the caller re-reads the head and chains again.
var ErrAuditChainMoved = errors.New("store: audit chain head moved")

// AuditRecord is one record of the audit chain as stored.
type AuditRecord struct {
	// Seq is the position in the chain: 1, 2, 3, … without gaps.
	Seq      int64
	Recorded time.Time // millisecond precision, UTC
	// Body is the AuditEvent JSON, byte for byte as hashed.
	Body []byte
	// Prev is the Hash of record Seq-1 (the anchor hash for the first
	// record after a prune; 32 zero bytes for record 1); Hash is the
	// record's own chain hash (internal/audit defines how).
	Prev []byte
	Hash []byte
	// Search keys, derived from Body (not part of the hash). A backend may
	// store them however it likes (packed with the record, in postings)
	// as long as AuditSearch finds by them.
	Outcome string // "0", "4", "8", "12"
	Action  string // C R U D E
	Type    string // system|code of AuditEvent.type
	Subtype string // "|"-separated codes of AuditEvent.subtype, with leading and trailing "|"
	Address string // network address of the requesting agent
	// Refs are the references the record is found by: patients
	// ("patient" → "Patient/x"), agents ("agent" → "Practitioner/y" or a
	// client id), entities ("entity" → "Observation/z"), policies
	// ("policy" → a token jti), purposes ("purpose" → "BTG"), and
	// break-the-glass markers ("btg" → "1").
	Refs []AuditRef
}

// AuditRef is one search key of an audit record.
type AuditRef struct {
	Param string
	Value string
	// Group, in an AuditQuery, puts the key into another parameter's
	// alternatives (OR) instead of its own (default: Param).
	Group string
}

// AuditHead is the end of the chain: the last record's Seq and Hash (Seq 0
// and the anchor hash for an empty or fully pruned chain).
type AuditHead struct {
	Seq  int64
	Hash []byte
	// Recorded is the latest recorded time in the chain (zero when
	// unknown); records appended after it must not be recorded earlier,
	// so that recorded grows with Seq and date searches can use it.
	Recorded time.Time
	// Outbox is the id of the last outbox entry chained (0: none yet).
	Outbox int64
}

// AuditOutboxEntry is one event waiting in the outbox: an opaque encoding
// internal/audit defines, and its id (increasing in commit order).
type AuditOutboxEntry struct {
	ID   int64
	Data []byte
}

// AuditOutboxTx is the outbox part of a resource write transaction.
type AuditOutboxTx interface {
	// AddAuditOutbox stores events that commit (or roll back) with the
	// transaction, for the audit log to chain after the commit.
	AddAuditOutbox(ctx context.Context, events [][]byte) error
}

// AuditLog is a backend's audit log: its write transactions and its read
// side.
type AuditLog interface {
	// AuditTx runs fn in an audit write transaction that commits durably
	// before AuditTx returns nil (fn's error: nothing of it is written).
	AuditTx(ctx context.Context, fn func(tx AuditTx) error) error
	AuditStore
}

// AuditCorruptError is returned when stored audit records cannot be
// decoded at all (their storage was altered outside the store). From is
// the first record the damaged storage holds.
type AuditCorruptError struct {
	From  int64
	Cause error
}

func (e *AuditCorruptError) Error() string {
	return fmt.Sprintf("store: audit records from %d cannot be decoded: %v", e.From, e.Cause)
}

func (e *AuditCorruptError) Unwrap() error { return e.Cause }

// AuditCheckpoint is a signed statement of the chain head at some point.
type AuditCheckpoint struct {
	Seq     int64     // the record it covers (the head when signed)
	Hash    []byte    // that record's Hash
	Created time.Time // when it was signed
	// Signature is a JWS (compact serialization) over the checkpoint
	// payload internal/audit defines.
	Signature string
}

// AuditAnchor is where a pruned chain starts: records up to and including
// Seq were removed, and the first kept record's Prev equals Hash. A
// checkpoint at Seq proves it. The zero anchor means nothing was pruned.
type AuditAnchor struct {
	Seq  int64
	Hash []byte
}

// AuditQuery selects audit records for search and the accounting of
// disclosures. Every field narrows (AND); within Refs the values of one
// Param are alternatives (OR).
type AuditQuery struct {
	Refs     []AuditRef // e.g. {patient, Patient/pA}
	Outcomes []string
	Actions  []string
	Types    []string // system|code or |code or code (matched on the code)
	Subtypes []string // codes
	Address  []string
	// From and To bound Recorded (From inclusive, To exclusive); zero =
	// unbounded.
	From, To time.Time
	// Before and After are Seq cursors (exclusive); 0 = unbounded.
	Before, After int64
	// Ascending orders oldest first; the default is newest first.
	Ascending bool
	Count     int // page size (> 0)
}

// AuditPage is one page of AuditQuery results.
type AuditPage struct {
	Records []AuditRecord // without Refs
	// More reports whether further records match beyond this page.
	More bool
}

// BTGReview is the review state of a break-the-glass record.
type BTGReview struct {
	Seq        int64
	ReviewedAt time.Time // zero = not reviewed yet
	Reviewer   string
	Note       string
}

// AuditTx is an audit write transaction (AuditLog.AuditTx).
type AuditTx interface {
	// AuditHead returns the chain head as this transaction sees it.
	AuditHead(ctx context.Context) (AuditHead, error)
	// PendingAuditOutbox returns up to limit outbox entries with an id
	// above after (pass the head's Outbox), oldest first.
	PendingAuditOutbox(ctx context.Context, after int64, limit int) ([]AuditOutboxEntry, error)
	// AppendAudit inserts records that continue the chain from head: the
	// first record's Seq is head.Seq+1 and its Prev is head.Hash; the new
	// head's Outbox becomes outbox (≥ head.Outbox: the last outbox entry
	// among recs, which may hold none). If the head in the database
	// differs, nothing is written and ErrAuditChainMoved is returned.
	AppendAudit(ctx context.Context, head AuditHead, recs []AuditRecord, outbox int64) error
	// AddAuditCheckpoint stores a checkpoint.
	AddAuditCheckpoint(ctx context.Context, cp AuditCheckpoint) error
	// PruneAudit removes every record up to and including anchor.Seq (and
	// the checkpoints before it) and records anchor as the chain's start;
	// it returns the number of records removed.
	PruneAudit(ctx context.Context, anchor AuditAnchor) (int64, error)
	// ReviewBTG marks a break-the-glass record reviewed (ErrNotFound when
	// seq is not a BTG record; ErrConflict when already reviewed).
	ReviewBTG(ctx context.Context, r BTGReview) error
	// SetAuditCursor stores the position of a named consumer (the SIEM
	// stream) of the chain.
	SetAuditCursor(ctx context.Context, name string, seq int64) error
}

// AuditStore is the read side of a backend's audit log.
type AuditStore interface {
	// AuditRead returns one record (ErrNotFound when absent or pruned).
	AuditRead(ctx context.Context, seq int64) (*AuditRecord, error)
	// AuditScan returns up to limit records with Seq > after, oldest
	// first, with the chain fields only (Seq, Recorded, Body, Prev, Hash).
	AuditScan(ctx context.Context, after int64, limit int) ([]AuditRecord, error)
	// AuditSearch returns one page of records matching q.
	AuditSearch(ctx context.Context, q AuditQuery) (*AuditPage, error)
	// AuditHeadRow returns the head as last committed (the head row kept
	// next to the records: it survives a truncation of the records).
	AuditHeadRow(ctx context.Context) (AuditHead, error)
	// AuditAnchor returns where the chain starts.
	AuditAnchor(ctx context.Context) (AuditAnchor, error)
	// AuditCheckpoints lists every checkpoint, oldest first.
	AuditCheckpoints(ctx context.Context) ([]AuditCheckpoint, error)
	// AuditBTG lists break-the-glass records with their review state
	// (pending only, unless all).
	AuditBTG(ctx context.Context, all bool) ([]BTGReview, error)
	// AuditCursor returns a consumer's stored position (0 when unset).
	AuditCursor(ctx context.Context, name string) (int64, error)
	// AuditKey returns the named key of the audit log (e.g. the public key
	// that signed checkpoints), creating it with gen when absent (gen's
	// error is returned when it refuses to create one).
	AuditKey(ctx context.Context, name string, gen func() ([]byte, error)) ([]byte, error)
}
