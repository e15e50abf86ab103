package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math"
	"sync"

	"github.com/fhirguard/fhirguard/internal/clock"
	"github.com/fhirguard/fhirguard/internal/fhir"
	"github.com/fhirguard/fhirguard/internal/store"
)

// DefaultHistoryCount is the page size used when HistoryQuery.Count <= 0.
const DefaultHistoryCount = 50

// Core is the backend-independent store logic. Each method runs its
// statements through the Runner it is given, so the backend decides on which
// connection or transaction they run.
type Core struct {
	Dialect Dialect
	// Indexer computes compartment and label rows on every Put; nil
	// means no derived rows.
	Indexer store.Indexer
	Clock   clock.Clock

	phOnce sync.Once
	ph     placeholders
	// params is the search parameter dictionary (LoadSearchParams); nil
	// until loaded.
	params *paramDict
	// inserts are the multi-row INSERTs of the search value tables.
	inserts insertSQLs
	// cursorKey signs search paging cursors (LoadSearchParams).
	cursorKey []byte
}

// Read returns the current version of typ/id (a tombstone with
// store.ErrGone).
func (c *Core) Read(ctx context.Context, r Runner, typ, id string) (*fhir.Resource, error) {
	res := &fhir.Resource{Type: typ, ID: id}
	if err := scanVersion(r.QueryRow(ctx, QRead, typ, id), res); err != nil {
		if errors.Is(err, sql.ErrNoRows) {
			return nil, store.ErrNotFound
		}
		return nil, fmt.Errorf("store: read %s/%s: %w", typ, id, err)
	}
	if res.Deleted {
		return res, store.ErrGone
	}
	return res, nil
}

// VRead returns one version of typ/id (a tombstone with store.ErrGone).
func (c *Core) VRead(ctx context.Context, r Runner, typ, id string, version int64) (*fhir.Resource, error) {
	res := &fhir.Resource{Type: typ, ID: id}
	if err := scanVersion(r.QueryRow(ctx, QVRead, typ, id, version), res); err != nil {
		if errors.Is(err, sql.ErrNoRows) {
			return nil, store.ErrNotFound
		}
		return nil, fmt.Errorf("store: vread %s/%s/_history/%d: %w", typ, id, version, err)
	}
	if res.Deleted {
		return res, store.ErrGone
	}
	return res, nil
}

func scanVersion(row *sql.Row, res *fhir.Resource) error {
	var ms, deleted int64
	if err := row.Scan(&res.VersionID, &ms, &deleted, &res.Body); err != nil {
		return err
	}
	res.LastUpdated = FromMillis(ms)
	res.Deleted = deleted != 0
	if res.Deleted {
		res.Body = nil
	}
	return nil
}

// IndexFacts returns the compartment patients and labels of the current
// version of typ/id. For a deleted resource it returns empty entries and
// store.ErrGone.
func (c *Core) IndexFacts(ctx context.Context, r Runner, typ, id string) (*store.IndexEntries, error) {
	rows, err := r.Query(ctx, QFacts, typ, id)
	if err != nil {
		return nil, fmt.Errorf("store: index facts %s/%s: %w", typ, id, err)
	}
	defer rows.Close()
	var (
		found, deleted bool
		out            = &store.IndexEntries{}
	)
	for rows.Next() {
		var kind, del int64
		var a, b string
		if err := rows.Scan(&kind, &del, &a, &b); err != nil {
			return nil, fmt.Errorf("store: index facts %s/%s: %w", typ, id, err)
		}
		switch kind {
		case 0:
			found, deleted = true, del != 0
		case 1:
			out.Patients = append(out.Patients, a)
		case 2:
			out.Labels = append(out.Labels, store.Coding{System: a, Code: b})
		}
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: index facts %s/%s: %w", typ, id, err)
	}
	switch {
	case !found:
		return nil, store.ErrNotFound
	case deleted:
		return &store.IndexEntries{}, store.ErrGone
	}
	return out, nil
}

// History lists versions newest first. Run it on a Runner bound to one read
// transaction so that Total and the page agree.
func (c *Core) History(ctx context.Context, r Runner, q store.HistoryQuery) (*store.HistoryPage, error) {
	if q.ID != "" && q.Type == "" {
		return nil, fmt.Errorf("store: history: id %q without a type", q.ID)
	}
	count := q.Count
	if count <= 0 {
		count = DefaultHistoryCount
	}
	before := q.Before
	if before <= 0 {
		before = math.MaxInt64
	}
	since := !q.Since.IsZero()
	sinceMs := Millis(q.Since)
	// A Since with sub-millisecond precision must not include a version
	// stored at the same millisecond but earlier than Since.
	if since && FromMillis(sinceMs).Before(q.Since) {
		sinceMs++
	}

	var (
		listQ, countQ Query
		key           any
	)
	switch {
	case q.ID != "":
		var rid, ver, del int64
		if err := r.QueryRow(ctx, QLookup, q.Type, q.ID).Scan(&rid, &ver, &del); err != nil {
			if errors.Is(err, sql.ErrNoRows) {
				return nil, store.ErrNotFound
			}
			return nil, fmt.Errorf("store: history %s/%s: %w", q.Type, q.ID, err)
		}
		key, listQ, countQ = rid, QHistInstance, QCountInstance
	case q.Type != "":
		key, listQ, countQ = q.Type, QHistType, QCountType
	default:
		listQ, countQ = QHistSystem, QCountSystem
	}
	if since {
		listQ, countQ = listQ+1, countQ+1 // the …Since variant follows each query
	}
	var countArgs, listArgs []any
	if key != nil {
		countArgs = append(countArgs, key)
		listArgs = append(listArgs, key)
	}
	listArgs = append(listArgs, before)
	if since {
		countArgs = append(countArgs, sinceMs)
		listArgs = append(listArgs, sinceMs)
	}
	listArgs = append(listArgs, count+1)

	page := &store.HistoryPage{}
	if err := r.QueryRow(ctx, countQ, countArgs...).Scan(&page.Total); err != nil {
		return nil, fmt.Errorf("store: history count: %w", err)
	}
	rows, err := r.Query(ctx, listQ, listArgs...)
	if err != nil {
		return nil, fmt.Errorf("store: history: %w", err)
	}
	defer rows.Close()
	var lastSeq int64
	for rows.Next() {
		if len(page.Entries) == count {
			page.Next = lastSeq // there is at least one more row
			break
		}
		var ms, del int64
		res := &fhir.Resource{}
		if err := rows.Scan(&lastSeq, &res.Type, &res.ID, &res.VersionID, &ms, &del, &res.Body); err != nil {
			return nil, fmt.Errorf("store: history: %w", err)
		}
		res.LastUpdated = FromMillis(ms)
		res.Deleted = del != 0
		if res.Deleted {
			res.Body = nil
		}
		page.Entries = append(page.Entries, res)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: history: %w", err)
	}
	return page, nil
}
