// Package store defines the one storage interface every fhirguard backend
// implements (embedded SQLite, PostgreSQL) and the sentinel errors that are
// part of its contract. internal/store/storetest is the conformance suite
// every backend runs.
//
// A backend stores each resource version as JSON in a version table, keeps the
// current version per (type, id), and on every write fills the derived
// indexes produced by the injected Indexer: the patient-compartment table
// (resource → patient ids) and the security-label index (meta.security), and
// later the search-parameter index tables. Index rows always describe the
// current version only; a tombstone has none.
package store

import (
	"context"
	"errors"
	"time"

	"github.com/fhirguard/fhirguard/internal/fhir"
	"github.com/fhirguard/fhirguard/internal/search"
)

// Sentinel errors. Backends return these (possibly wrapped), never driver
// errors, so callers can use errors.Is.
var (
	// ErrNotFound: no resource with that type and id ever existed (or no
	// such version).
	ErrNotFound = errors.New("store: not found")
	// ErrGone: the current version is a tombstone.
	ErrGone = errors.New("store: deleted")
	// ErrConflict: an If-Match precondition did not hold (the current
	// version differs), or a create-only write found an existing resource.
	ErrConflict = errors.New("store: version conflict")
	// ErrClosed: the store was closed.
	ErrClosed = errors.New("store: closed")
)

// Store is the persistence interface of fhirguard. All methods are safe for
// concurrent use.
type Store interface {
	// Read returns the current version of a resource. For a deleted
	// resource it returns the tombstone version AND ErrGone.
	Read(ctx context.Context, typ, id string) (*fhir.Resource, error)
	// VRead returns one version (a tombstone is returned with ErrGone).
	VRead(ctx context.Context, typ, id string, version int64) (*fhir.Resource, error)
	// History lists versions newest first (instance, type or system level).
	History(ctx context.Context, q HistoryQuery) (*HistoryPage, error)
	// IndexFacts returns the derived index rows of the current version
	// (compartment patients, security labels); ErrNotFound / ErrGone as
	// Read. The policy engine uses them for compartment and label checks.
	IndexFacts(ctx context.Context, typ, id string) (*IndexEntries, error)
	// Prepare does the CPU work of a Put (index rows, serialization) in
	// the caller's goroutine, so that the single writer of a backend only
	// runs SQL. It is optional: a Put of an unprepared Write does the same
	// work itself. w.Data must not change between Prepare and Put.
	Prepare(w *Write) error
	// Tx runs fn in one atomic write transaction: either every write fn
	// made is committed durably, or (fn returned an error, or the commit
	// failed) none is. fn must only use tx and must not retain it. fn may
	// be called more than once if the backend retries a serialization
	// failure, so it must be free of outside side effects.
	Tx(ctx context.Context, fn func(tx Tx) error) error
	// Close releases resources; in-flight transactions finish first.
	Close() error
}

// Tx is the write view inside Store.Tx. Reads inside a Tx see the
// transaction's own earlier writes.
type Tx interface {
	Read(ctx context.Context, typ, id string) (*fhir.Resource, error)
	// Put creates or updates a resource and returns the new version.
	Put(ctx context.Context, w Write) (*WriteResult, error)
	// Delete writes a tombstone version. Deleting a resource that is
	// already deleted returns the existing tombstone (no new version);
	// deleting one that never existed returns ErrNotFound.
	Delete(ctx context.Context, typ, id string, ifMatch int64) (*WriteResult, error)
}

// Write is one create or update.
type Write struct {
	Type string
	ID   string // required; create assigns it before calling Put
	// Data is the parsed, validated resource. The store sets
	// resourceType, id, meta.versionId and meta.lastUpdated in it (it may
	// modify the map) and serializes it as the stored body.
	Data map[string]any
	// IfMatch, when > 0, requires the current version to be exactly this
	// (a deleted resource has no current version): else ErrConflict.
	IfMatch int64
	// CreateOnly requires that the resource does not currently exist
	// (a tombstone counts as not existing): else ErrConflict.
	CreateOnly bool
	// Compartment adds patients to the compartments the indexer finds in
	// Data: a Provenance is in its target's (it follows its target's
	// policy, and FHIR's compartment definition would only place it in a
	// Patient target's).
	Compartment []string
	// Prepared is set by Store.Prepare (backend-specific, opaque).
	Prepared any
	// LastUpdated, when non-zero, is used instead of the clock (import
	// keeping source timestamps is NOT done; reserved for replication).
	LastUpdated time.Time
}

// WriteResult is the outcome of a Put or Delete.
type WriteResult struct {
	Resource *fhir.Resource
	// Created is true when there was no current version before (new
	// resource, or re-created after delete).
	Created bool
}

// HistoryQuery selects versions. Type and ID empty = system history; ID
// empty = type history.
type HistoryQuery struct {
	Type  string
	ID    string
	Since time.Time // only versions with lastUpdated >= Since (zero = all)
	Count int       // page size (> 0)
	// Before is an opaque position from HistoryPage.Next: return only
	// versions older than it (0 = from the newest).
	Before int64
}

// HistoryPage is one page of history, newest first.
type HistoryPage struct {
	Entries []*fhir.Resource
	Total   int   // all versions matching Type/ID/Since, regardless of paging
	Next    int64 // 0 when there is no further page
}

// Indexer computes the derived index rows of a resource body. The store calls
// it on every Put (never for tombstones) inside the write transaction.
type Indexer interface {
	Index(typ string, data map[string]any) (*IndexEntries, error)
}

// IndexEntries are the derived rows of one resource version.
type IndexEntries struct {
	// Patients are the ids of the patients whose compartment contains the
	// resource (a Patient is in its own compartment).
	Patients []string
	// Labels are meta.security codings.
	Labels []Coding
}

// Coding is a system|code pair.
type Coding struct {
	System string
	Code   string
}

// Searcher is implemented by stores that run FHIR searches (the SQL
// backends). Search runs q — with its Narrow predicates applied to every
// match, the total, each page and every included resource — from the
// position at (nil = the first page; at comes from a verified cursor, see
// search.CursorCodec).
type Searcher interface {
	Search(ctx context.Context, q *search.Query, at *search.Cursor) (*SearchResult, error)
	// CursorKey is the key that signs paging cursors: random, made once
	// per database and shared by every process using it.
	CursorKey() []byte
}

// SearchTx is implemented by the Tx of stores that are Searchers: a search
// inside the write transaction, seeing its earlier writes (conditional
// create, update and delete decide on it atomically).
type SearchTx interface {
	Search(ctx context.Context, q *search.Query, at *search.Cursor) (*SearchResult, error)
}

// SearchResult is one page of a search.
type SearchResult struct {
	// Matches are the page's resources in the search order (at most
	// q.Count).
	Matches []*fhir.Resource
	// Includes are the resources added by _include and _revinclude
	// (every :iterate round), each once and never one of Matches.
	Includes []*fhir.Resource
	// IncludesTruncated is true when more resources would have been
	// included than the store's bound allows.
	IncludesTruncated bool
	// Total is the number of matches over all pages, -1 when not computed
	// (_total=none).
	Total int
	// Next and Prev are the positions of the following and the preceding
	// page (nil when there is none), to be encoded with
	// search.CursorCodec.Encode.
	Next, Prev *search.Cursor
	// Containers is set when matches are contained resources
	// (_containedType=contained): Containers[i] names the container of
	// Matches[i] when that is a contained resource (whose ID is then its
	// local id and Body the resource as its container holds it, with no
	// version of its own), nil when it is a resource of its own.
	Containers []*ContainerRef
}

// ContainerRef names the resource a contained resource is part of.
type ContainerRef struct {
	Type, ID string
}

// BulkLoader is a Store that loads large inputs faster while it has its
// data to itself: the search value indexes are dropped for the load and
// built once at its end (sorting all rows at once instead of inserting
// them one by one at random places). Search results stay correct during
// the load, only slower.
type BulkLoader interface {
	// BeginBulk starts a bulk load of about size bytes of input. ok is
	// false when it is not worth it (a small input for the data already
	// there) or another process has the data open (a running server):
	// the caller then loads as usual. Otherwise end must be called once
	// the load is over, also after it failed: it builds the indexes
	// again. A load that never calls end (a crash) leaves them to the
	// next open of the store.
	BeginBulk(ctx context.Context, size int64) (end func(context.Context) error, ok bool, err error)
}
