package fhirapi

import (
	"context"
	"fmt"
	"net/http"
	"strconv"

	"github.com/fhirguard/fhirguard/internal/fhir"
	"github.com/fhirguard/fhirguard/internal/store"
)

// create runs POST [type] inside tx. q.ID was assigned at parse time, so a
// retried transaction writes the same id.
func (a *API) create(ctx context.Context, tx store.Tx, q *Request) (*Response, error) {
	wr, err := tx.Put(ctx, q.storeWrite())
	if err != nil {
		return nil, storeErr(q, nil, err)
	}
	return a.writeResponse(q, http.StatusCreated, wr.Resource, "created"), nil
}

// update runs PUT [type]/[id] inside tx (create-on-update allowed).
func (a *API) update(ctx context.Context, tx store.Tx, q *Request) (*Response, error) {
	wr, err := tx.Put(ctx, q.storeWrite())
	if err != nil {
		return nil, storeErr(q, nil, err)
	}
	if wr.Created {
		return a.writeResponse(q, http.StatusCreated, wr.Resource, "created"), nil
	}
	return a.writeResponse(q, http.StatusOK, wr.Resource, "updated"), nil
}

// delete runs DELETE [type]/[id] inside tx. Deleting a deleted resource
// succeeds again (200, no new version); deleting one that never existed is
// 404, so a typo in an id does not look like success.
func (a *API) delete(ctx context.Context, tx store.Tx, q *Request) (*Response, error) {
	wr, err := tx.Delete(ctx, q.Type, q.ID, q.IfMatch)
	if err != nil {
		return nil, storeErr(q, nil, err)
	}
	return &Response{
		Status:       http.StatusOK,
		VersionID:    wr.Resource.VersionID,
		LastModified: wr.Resource.LastUpdated,
		Body:         outcome("information", fhir.IssueInformational, fmt.Sprintf("deleted %s", q.Target())),
		IsOutcome:    true,
	}, nil
}

// writeResponse builds the answer to a create/update/patch honouring
// Prefer: return.
func (a *API) writeResponse(q *Request, status int, res *fhir.Resource, verb string) *Response {
	resp := &Response{
		Status:       status,
		Location:     a.versionURL(res),
		VersionID:    res.VersionID,
		LastModified: res.LastUpdated,
	}
	switch q.Return {
	case ReturnRepresentation:
		resp.Body = res.Body
	case ReturnOutcome:
		resp.Body = outcome("information", fhir.IssueInformational,
			fmt.Sprintf("%s %s version %d", verb, res.Ref(), res.VersionID))
		resp.IsOutcome = true
	case ReturnMinimal:
	}
	return resp
}

// versionURL is {base}/Type/id/_history/n.
func (a *API) versionURL(res *fhir.Resource) string {
	return a.base + "/" + res.Type + "/" + res.ID + "/_history/" + strconv.FormatInt(res.VersionID, 10)
}

// storeWrite is the store write of a create or update.
func (q *Request) storeWrite() store.Write {
	if q.prepared != nil {
		return *q.prepared
	}
	return store.Write{Type: q.Type, ID: q.ID, Data: q.Resource, CreateOnly: q.Interaction == Create, IfMatch: q.IfMatch}
}

// prepareWrite lets the store index and serialize a create or update in
// the request's goroutine, before the single writer runs the transaction.
func (a *API) prepareWrite(q *Request) error {
	if q == nil || (q.Interaction != Create && q.Interaction != Update) || q.Resource == nil || q.prepared != nil ||
		q.ID == "" || q.Conditional || q.IfNoneExist != "" {
		return nil
	}
	w := q.storeWrite()
	if err := a.store.Prepare(&w); err != nil {
		return fmt.Errorf("prepare %s: %w", q.Target(), err)
	}
	q.prepared = &w
	return nil
}
