package fhirapi

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"github.com/fhirguard/fhirguard/internal/fhir"
	"github.com/fhirguard/fhirguard/internal/store"
)

// storeErr turns a store error for q into the error the client sees. A
// *fhir.Error (returned through a Tx) and context errors pass unchanged;
// anything unknown is wrapped with context and becomes a 500 in httpx.
// cur is the tombstone a Read returns with ErrGone (may be nil).
func storeErr(q *Request, cur *fhir.Resource, err error) error {
	if _, ok := fhir.AsError(err); ok {
		return err
	}
	switch {
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return err
	case errors.Is(err, store.ErrNotFound):
		if q.Version > 0 {
			return &fhir.Error{Code: fhir.IssueNotFound, Cause: err,
				Diag: fmt.Sprintf("version %d of %s is not known", q.Version, q.Target())}
		}
		return &fhir.Error{Code: fhir.IssueNotFound, Cause: err,
			Diag: fmt.Sprintf("resource %s is not known", q.Target())}
	case errors.Is(err, store.ErrGone):
		fe := &fhir.Error{Code: fhir.IssueDeleted, Cause: err,
			Diag: fmt.Sprintf("resource %s has been deleted", q.Target())}
		if q.Version > 0 {
			fe.Diag = fmt.Sprintf("version %d of %s is a deletion", q.Version, q.Target())
		}
		if cur != nil && cur.VersionID > 0 {
			fe.Header = http.Header{"ETag": {etag(cur.VersionID)}}
		}
		return fe
	case errors.Is(err, store.ErrConflict):
		if q.IfMatch > 0 {
			return &fhir.Error{Code: fhir.IssueConflict, Status: http.StatusPreconditionFailed, Cause: err,
				Diag: fmt.Sprintf("If-Match %s does not match the current version of %s", etag(q.IfMatch), q.Target())}
		}
		return &fhir.Error{Code: fhir.IssueConflict, Cause: err,
			Diag: fmt.Sprintf("%s was changed concurrently; retry", q.Target())}
	case errors.Is(err, store.ErrClosed):
		return &fhir.Error{Code: fhir.IssueTransient, Cause: err,
			Diag: "the server is shutting down", Header: http.Header{"Retry-After": {"5"}}}
	}
	return fmt.Errorf("%s %s: %w", q.Interaction, q.Target(), err)
}

func isGone(err error) bool { return errors.Is(err, store.ErrGone) }
