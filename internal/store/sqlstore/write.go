package sqlstore

import (
	"cmp"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/fhirguard/fhirguard/internal/fhir"
	"github.com/fhirguard/fhirguard/internal/store"
)

// Tx is the store.Tx of a SQL backend: every method runs on one Runner bound
// to the backend's open write transaction.
//
// Each method first checks ctx and returns its error if it is done; the
// Runner decides whether a statement itself may be interrupted (a backend
// running several callers' work in one transaction must not let one caller's
// cancellation abort the others').
//
// After a statement fails (anything but the store's own sentinel
// outcomes), the Tx refuses further work: the engine may have abandoned
// the transaction, and a later statement must not run outside it.
type Tx struct {
	c      *Core
	r      Runner
	broken error
	// pending are search rows not written yet (see FlushSearch); nil
	// when there are none.
	pending *pendingRows
}

// NewTx returns the write view running on r; use one per store.Tx call.
func (c *Core) NewTx(r Runner) *Tx { return &Tx{c: c, r: r} }

// check returns an error if ctx is done or the Tx is broken.
func (t *Tx) check(ctx context.Context) error {
	if t.broken != nil {
		return fmt.Errorf("store: transaction already failed: %w", t.broken)
	}
	return ctx.Err()
}

// fail marks the Tx broken by a statement error and returns err.
func (t *Tx) fail(err error) error {
	t.broken = err
	return err
}

var _ store.Tx = (*Tx)(nil)

// Read returns the current version as this transaction sees it.
func (t *Tx) Read(ctx context.Context, typ, id string) (*fhir.Resource, error) {
	if err := t.check(ctx); err != nil {
		return nil, err
	}
	res, err := t.c.Read(ctx, t.r, typ, id)
	if err != nil && !errors.Is(err, store.ErrNotFound) && !errors.Is(err, store.ErrGone) {
		return nil, t.fail(err)
	}
	return res, err
}

// current is the resources row of one (type, id).
type current struct {
	exists  bool
	rid     int64
	version int64
	deleted bool
}

func (t *Tx) lookup(ctx context.Context, typ, id string) (current, error) {
	var cur current
	var del int64
	err := t.r.QueryRow(ctx, QLookup, typ, id).Scan(&cur.rid, &cur.version, &del)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return current{}, nil
	case err != nil:
		return current{}, err
	}
	cur.exists, cur.deleted = true, del != 0
	return cur, nil
}

func (t *Tx) now(override time.Time) time.Time {
	ts := override
	if ts.IsZero() {
		ts = t.c.Clock.Now()
	}
	return ts.UTC().Truncate(time.Millisecond)
}

// Put creates or updates a resource.
func (t *Tx) Put(ctx context.Context, w store.Write) (*store.WriteResult, error) {
	if err := t.check(ctx); err != nil {
		return nil, err
	}
	if w.Type == "" || w.ID == "" || w.Data == nil {
		return nil, fmt.Errorf("store: put: type, id and data are required (type %q, id %q)", w.Type, w.ID)
	}
	cur, err := t.lookup(ctx, w.Type, w.ID)
	if err != nil {
		return nil, t.fail(fmt.Errorf("store: put %s/%s: lookup: %w", w.Type, w.ID, err))
	}
	live := cur.exists && !cur.deleted
	if w.CreateOnly && live {
		return nil, fmt.Errorf("store: create %s/%s: already exists: %w", w.Type, w.ID, store.ErrConflict)
	}
	if w.IfMatch > 0 && (!live || cur.version != w.IfMatch) {
		return nil, fmt.Errorf("store: put %s/%s: If-Match %d, current %d (deleted %t): %w",
			w.Type, w.ID, w.IfMatch, cur.version, cur.deleted, store.ErrConflict)
	}
	version := cur.version + 1
	lu := t.now(w.LastUpdated)
	ms := Millis(lu)
	var (
		entries *store.IndexEntries
		srows   *searchRows
		body    []byte
	)
	if p, ok := w.Prepared.(*PreparedWrite); ok && p != nil {
		if p.typ != w.Type || p.id != w.ID {
			return nil, fmt.Errorf("store: put %s/%s: prepared for %s/%s", w.Type, w.ID, p.typ, p.id)
		}
		entries, srows, body = p.entries, p.search, p.fill(t.c.placeholders(), version, lu)
	} else {
		Stamp(w.Data, w.Type, w.ID, version, lu)
		if t.c.Indexer != nil {
			if entries, err = t.c.Indexer.Index(w.Type, w.Data); err != nil {
				return nil, fmt.Errorf("store: put %s/%s: index: %w", w.Type, w.ID, err)
			}
			entries = withCompartment(entries, w.Compartment)
			if srows, err = t.c.searchRows(w.Type, w.Data); err != nil {
				return nil, fmt.Errorf("store: put %s/%s: %w", w.Type, w.ID, err)
			}
		}
		if body, err = Encode(w.Type, w.Data); err != nil {
			return nil, fmt.Errorf("store: put %s/%s: %w", w.Type, w.ID, err)
		}
	}
	rid := cur.rid
	if !cur.exists {
		if _, err := t.r.Exec(ctx, QInsertResource, w.Type, w.ID, version, 0, ms); err != nil {
			return nil, t.writeErr("insert resource", w.Type, w.ID, err)
		}
		var ver, del int64
		if err := t.r.QueryRow(ctx, QLookup, w.Type, w.ID).Scan(&rid, &ver, &del); err != nil {
			return nil, t.writeErr("read back resource key", w.Type, w.ID, err)
		}
	} else {
		if _, err := t.r.Exec(ctx, QUpdateResource, rid, version, 0, ms); err != nil {
			return nil, t.writeErr("update resource", w.Type, w.ID, err)
		}
	}
	if _, err := t.r.Exec(ctx, QInsertVersion, rid, w.Type, w.ID, version, ms, 0, body); err != nil {
		return nil, t.writeErr("insert version", w.Type, w.ID, err)
	}
	if err := t.replaceIndex(ctx, rid, w.Type, cur.exists, entries); err != nil {
		return nil, t.writeErr("index", w.Type, w.ID, err)
	}
	if err := t.replaceSearch(ctx, rid, w.Type, cur.exists, srows); err != nil {
		return nil, t.writeErr("search index", w.Type, w.ID, err)
	}
	return &store.WriteResult{
		Resource: &fhir.Resource{Type: w.Type, ID: w.ID, VersionID: version, LastUpdated: lu, Body: body},
		Created:  !live,
	}, nil
}

// Delete writes a tombstone. An already deleted resource returns its
// tombstone unchanged; ifMatch > 0 on a deleted resource is a conflict (it
// has no current version), as for Write.IfMatch.
func (t *Tx) Delete(ctx context.Context, typ, id string, ifMatch int64) (*store.WriteResult, error) {
	if err := t.check(ctx); err != nil {
		return nil, err
	}
	cur, err := t.lookup(ctx, typ, id)
	if err != nil {
		return nil, t.fail(fmt.Errorf("store: delete %s/%s: lookup: %w", typ, id, err))
	}
	switch {
	case !cur.exists:
		return nil, store.ErrNotFound
	case ifMatch > 0 && (cur.deleted || cur.version != ifMatch):
		return nil, fmt.Errorf("store: delete %s/%s: If-Match %d, current %d (deleted %t): %w",
			typ, id, ifMatch, cur.version, cur.deleted, store.ErrConflict)
	case cur.deleted:
		res, err := t.c.Read(ctx, t.r, typ, id)
		if err != nil && !errors.Is(err, store.ErrGone) {
			return nil, t.fail(fmt.Errorf("store: delete %s/%s: read tombstone: %w", typ, id, err))
		}
		return &store.WriteResult{Resource: res}, nil
	}
	version := cur.version + 1
	lu := t.now(time.Time{})
	ms := Millis(lu)
	if _, err := t.r.Exec(ctx, QUpdateResource, cur.rid, version, 1, ms); err != nil {
		return nil, t.writeErr("update resource", typ, id, err)
	}
	if _, err := t.r.Exec(ctx, QInsertVersion, cur.rid, typ, id, version, ms, 1, nil); err != nil {
		return nil, t.writeErr("insert tombstone", typ, id, err)
	}
	if err := t.replaceIndex(ctx, cur.rid, typ, true, nil); err != nil {
		return nil, t.writeErr("index", typ, id, err)
	}
	if err := t.replaceSearch(ctx, cur.rid, typ, true, nil); err != nil {
		return nil, t.writeErr("search index", typ, id, err)
	}
	return &store.WriteResult{
		Resource: &fhir.Resource{Type: typ, ID: id, VersionID: version, LastUpdated: lu, Deleted: true},
	}, nil
}

// replaceIndex replaces the derived rows of rid with entries (nil = none).
// Future search-parameter tables are replaced here too.
func (t *Tx) replaceIndex(ctx context.Context, rid int64, typ string, hadRows bool, entries *store.IndexEntries) error {
	if hadRows {
		if _, err := t.r.Exec(ctx, QDeleteCompartment, rid); err != nil {
			return fmt.Errorf("clear compartment: %w", err)
		}
		if _, err := t.r.Exec(ctx, QDeleteLabels, rid); err != nil {
			return fmt.Errorf("clear labels: %w", err)
		}
	}
	if entries == nil {
		return nil
	}
	patients := slices.Clone(entries.Patients)
	slices.Sort(patients)
	for i, p := range slices.Compact(patients) {
		if p == "" {
			continue
		}
		if _, err := t.r.Exec(ctx, QInsertCompartment, rid, typ, p); err != nil {
			return fmt.Errorf("compartment row %d: %w", i, err)
		}
	}
	labels := slices.Clone(entries.Labels)
	slices.SortFunc(labels, func(a, b store.Coding) int {
		return cmp.Or(strings.Compare(a.System, b.System), strings.Compare(a.Code, b.Code))
	})
	for i, l := range slices.Compact(labels) {
		if _, err := t.r.Exec(ctx, QInsertLabel, rid, typ, l.System, l.Code); err != nil {
			return fmt.Errorf("label row %d: %w", i, err)
		}
	}
	return nil
}

// writeErr wraps a failed write statement and marks the Tx broken. A
// unique violation (a concurrent create of the same id, possible only where
// writers run in parallel) is reported as store.ErrConflict.
func (t *Tx) writeErr(step, typ, id string, err error) error {
	if t.c.Dialect.IsUniqueViolation(err) {
		return t.fail(fmt.Errorf("store: write %s/%s: %s: concurrent write: %w", typ, id, step, store.ErrConflict))
	}
	return t.fail(fmt.Errorf("store: write %s/%s: %s: %w", typ, id, step, err))
}
