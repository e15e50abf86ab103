package fhirapi

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sort"

	"github.com/fhirguard/fhirguard/internal/fhir"
	"github.com/fhirguard/fhirguard/internal/httpx"
	"github.com/fhirguard/fhirguard/internal/store"
)

// processingOrder returns the entry indexes in FHIR's processing order:
// DELETE, then POST, then PUT/PATCH, then GET/HEAD; stable within each.
func processingOrder(b *BundleRequest) []int {
	rank := func(e *BundleEntry) int {
		if e.Req == nil {
			return 4
		}
		switch e.Req.Method {
		case http.MethodDelete:
			return 0
		case http.MethodPost:
			return 1
		case http.MethodPut, http.MethodPatch:
			return 2
		default:
			return 3
		}
	}
	order := make([]int, len(b.Entries))
	for i := range order {
		order[i] = i
	}
	sort.SliceStable(order, func(x, y int) bool {
		return rank(b.Entries[order[x]]) < rank(b.Entries[order[y]])
	})
	return order
}

// transaction runs every entry in one store transaction: all or nothing.
// The first failing entry (in processing order) fails the whole Bundle
// with that entry's status and an OperationOutcome naming it.
func (a *API) transaction(ctx context.Context, q *Request) (*Response, error) {
	b := q.Bundle
	order := processingOrder(b)
	results := make([]*Response, len(b.Entries))
	var later []int // GET entries answered after the commit
	for i, e := range b.Entries {
		if e.Err == nil {
			if err := a.prepareWrite(e.Req); err != nil {
				return nil, entryError(i, err)
			}
			a.prepareProvenance(ctx, e.Req)
			// Search entries are answered after the commit: refuse a bad
			// one before anything is written.
			if err := a.checkSearch(e.Req); err != nil {
				return nil, entryError(i, err)
			}
		}
	}
	before := a.entryPatientsBefore(ctx, b)
	var audited []httpx.Facts // the entries' facts, when audited in the transaction
	err := a.store.Tx(ctx, func(tx store.Tx) error {
		clear(results)
		later = later[:0]
		for _, i := range order {
			e := b.Entries[i]
			if e.Err != nil {
				return entryError(i, e.Err)
			}
			resp, defer_, err := a.txEntry(ctx, tx, e.Req)
			if err != nil {
				return entryError(i, err)
			}
			if defer_ {
				later = append(later, i)
			}
			results[i] = resp
		}
		var err error
		audited, err = a.auditTransactionInTx(ctx, tx, q, results, before)
		return err
	})
	if info := httpx.Info(ctx); err == nil && audited != nil && info != nil {
		// Its events committed with it: whatever happens after the
		// commit (a deferred read failing), they are not recorded again.
		info.Facts.Entries = append(info.Facts.Entries, audited...)
		info.Facts.Audited = true
	} else {
		a.noteTransactionEntries(ctx, b, results, err, before)
	}
	if err != nil {
		if _, ok := fhir.AsError(err); ok || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
			return nil, err
		}
		return nil, storeErr(q, nil, err)
	}
	for _, i := range later {
		resp, err := a.Execute(ctx, b.Entries[i].Req)
		if err != nil {
			// The writes are committed; a read that the transaction
			// checked could not fail for a client reason.
			return nil, fmt.Errorf("transaction entry %d after commit: %w", i, err)
		}
		results[i] = resp
	}
	return a.bundleResponse(ctx, "transaction-response", b, results, nil)
}

// txEntry executes one transaction entry inside tx. Reads see the
// transaction's own writes. Reads that need more than Tx offers (an older
// version, history) are checked here and answered after the commit
// (deferred = true).
func (a *API) txEntry(ctx context.Context, tx store.Tx, q *Request) (resp *Response, deferred bool, err error) {
	switch q.Interaction {
	case Create, Update, Patch, Delete:
		resp, err = a.write(ctx, tx, q)
		return resp, false, err
	case Capabilities:
		return &Response{Status: http.StatusOK, Body: a.capability}, false, nil
	case Read, VRead, HistoryInstance:
		cur, err := tx.Read(ctx, q.Type, q.ID)
		switch {
		case q.Interaction == HistoryInstance:
			if err != nil && !isGone(err) {
				return nil, false, storeErr(q, cur, err)
			}
			return nil, true, nil
		case err != nil && !(q.Interaction == VRead && isGone(err)):
			return nil, false, storeErr(q, cur, err)
		}
		if err := a.authorizeRead(ctx, q, cur); err != nil {
			return nil, false, err
		}
		switch {
		case q.Interaction == Read:
			return resourceResponse(http.StatusOK, cur), false, nil
		case q.Version > cur.VersionID:
			return nil, false, storeErr(q, nil, store.ErrNotFound)
		case q.Version == cur.VersionID:
			if cur.Deleted {
				return nil, false, storeErr(q, cur, store.ErrGone)
			}
			return resourceResponse(http.StatusOK, cur), false, nil
		}
		return nil, true, nil
	case HistoryType, HistorySystem:
		return nil, true, nil
	case SearchType, SearchSystem, SearchCompart:
		return nil, true, nil // answered after the commit, seeing every write
	}
	return nil, false, fhir.Errorf(fhir.IssueNotSupported, "interaction %q is not supported in a transaction", q.Interaction)
}

// batch runs each entry on its own (own store transaction for writes); a
// failure is reported in that entry's response.outcome.
func (a *API) batch(ctx context.Context, q *Request) (*Response, error) {
	b := q.Bundle
	results := make([]*Response, len(b.Entries))
	failures := make([]error, len(b.Entries))
	for _, i := range processingOrder(b) {
		e := b.Entries[i]
		if e.Err != nil {
			failures[i] = e.Err
			a.noteEntry(ctx, e.Req, nil, e.Err, nil)
			continue
		}
		before := a.patientsBefore(ctx, e.Req)
		ectx, et := markEntry(ctx, e.Req, before)
		resp, err := a.Execute(ectx, e.Req)
		a.noteEntry(ctx, e.Req, resp, err, before)
		if err == nil && et.inTx {
			// Recorded in the entry's own transaction.
			if info := httpx.Info(ctx); info != nil {
				info.Facts.Entries[len(info.Facts.Entries)-1].Audited = true
			}
		}
		if err != nil {
			if ctx.Err() != nil {
				return nil, fmt.Errorf("batch entry %d: %w", i, ctx.Err())
			}
			failures[i] = err
			continue
		}
		results[i] = resp
	}
	return a.bundleResponse(ctx, "batch-response", b, results, func(i int) error { return failures[i] })
}

// bundleResponse builds the batch-response/transaction-response Bundle in
// the original entry order.
func (a *API) bundleResponse(ctx context.Context, typ string, b *BundleRequest, results []*Response, failure func(int) error) (*Response, error) {
	doc := bundleDoc{
		ResourceType: "Bundle",
		ID:           a.newID(),
		Meta:         &bundleMeta{LastUpdated: instant(a.clock.Now())},
		Type:         typ,
		Entry:        make([]bundleEntry, len(b.Entries)),
	}
	for i, resp := range results {
		if resp == nil {
			doc.Entry[i] = a.failedEntry(ctx, i, failure(i))
			continue
		}
		er := &entryResponse{Status: statusLine(resp.Status), Location: resp.Location}
		if resp.VersionID > 0 {
			er.Etag = etag(resp.VersionID)
		}
		if !resp.LastModified.IsZero() {
			er.LastModified = instant(resp.LastModified)
		}
		e := bundleEntry{Response: er}
		if resp.IsOutcome {
			er.Outcome = resp.Body
		} else if resp.Body != nil {
			e.Resource = resp.Body
			if req := b.Entries[i].Req; req != nil && req.ID != "" {
				e.FullURL = a.base + "/" + req.Type + "/" + req.ID
			}
		}
		doc.Entry[i] = e
	}
	body, err := marshalJSON(doc)
	if err != nil {
		return nil, fmt.Errorf("encode %s: %w", typ, err)
	}
	return &Response{Status: http.StatusOK, Body: body}, nil
}

// failedEntry renders a batch entry's failure. Client errors show their
// message; anything else is logged and shown as an opaque 500.
func (a *API) failedEntry(ctx context.Context, i int, err error) bundleEntry {
	fe, ok := fhir.AsError(err)
	if !ok || fe.HTTPStatus() >= 500 && fe.Code == fhir.IssueException {
		reqID := ""
		if info := httpx.Info(ctx); info != nil {
			reqID = info.ID
		}
		a.log.LogAttrs(ctx, slog.LevelError, "batch entry failed", slog.String("request_id", reqID),
			slog.Int("entry", i), slog.Any("error", err))
		fe = &fhir.Error{Code: fhir.IssueException, Status: http.StatusInternalServerError,
			Diag: "internal error in this entry"}
	}
	return bundleEntry{Response: &entryResponse{
		Status:  statusLine(fe.HTTPStatus()),
		Outcome: errorOutcome(fe),
	}}
}
