package fhirapi

import (
	"context"
	"net/http"

	"github.com/fhirguard/fhirguard/internal/fhir"
)

// resourceResponse answers with a stored version's body as it is (the read
// fast path: no parsing, no re-encoding).
func resourceResponse(status int, res *fhir.Resource) *Response {
	return &Response{
		Status:       status,
		VersionID:    res.VersionID,
		LastModified: res.LastUpdated,
		Body:         res.Body,
	}
}

// read serves GET [type]/[id].
func (a *API) read(ctx context.Context, q *Request) (*Response, error) {
	if q.decided != nil {
		return resourceResponse(http.StatusOK, q.decided), nil
	}
	res, err := a.store.Read(ctx, q.Type, q.ID)
	if err != nil {
		return nil, storeErr(q, res, err)
	}
	return resourceResponse(http.StatusOK, res), nil
}

// vread serves GET [type]/[id]/_history/[vid].
func (a *API) vread(ctx context.Context, q *Request) (*Response, error) {
	if q.decided != nil {
		return resourceResponse(http.StatusOK, q.decided), nil
	}
	res, err := a.store.VRead(ctx, q.Type, q.ID, q.Version)
	if err != nil {
		return nil, storeErr(q, res, err)
	}
	return resourceResponse(http.StatusOK, res), nil
}
