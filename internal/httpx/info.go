package httpx

import (
	"context"
	"net/http"
)

// RequestInfo is the per-request record the outer middleware creates and
// inner handlers annotate: the request id and the interaction name used as a
// metrics label and in the access log.
type RequestInfo struct {
	ID          string
	Interaction string // e.g. "read", "create", "search-type", "transaction"
	// Facts is what the request touched, filled by the FHIR layer as it
	// learns it; the audit wrapper turns it into AuditEvents.
	Facts Facts
}

// Facts describes what one FHIR interaction (a request, or one entry of a
// batch/transaction) touched, for its audit record. Nothing in it is a
// resource body or a secret.
type Facts struct {
	// Interaction is the entry's interaction (entries only; a request's is
	// RequestInfo.Interaction).
	Interaction string
	// Type, ID and Version name the resource (version read or written).
	Type    string
	ID      string
	Version int64
	// Operation is the operation name ("$access-log") of an operation.
	Operation string
	// Patients are the ids of the patients whose data was involved.
	Patients []string
	// Query is the raw query (searches, history, conditional
	// interactions) as sent.
	Query string
	// Results is the number of resources returned (searches, history);
	// -1 when not applicable.
	Results int
	// Status and Diag are an entry's outcome (entries only; a request's
	// comes from its response).
	Status int
	Diag   string
	// Entries are the facts of each batch/transaction entry.
	Entries []Facts
	// Audited is set once the request's audit record is written (the
	// outer audit handler then records nothing more).
	Audited bool
}

type infoKey struct{}

// WithInfo returns ctx carrying info.
func WithInfo(ctx context.Context, info *RequestInfo) context.Context {
	return context.WithValue(ctx, infoKey{}, info)
}

// Info returns the request's RequestInfo, or nil outside the middleware.
func Info(ctx context.Context) *RequestInfo {
	info, _ := ctx.Value(infoKey{}).(*RequestInfo)
	return info
}

// SetInteraction records the FHIR interaction name of the request (a metrics
// label; keep the set of names small and fixed).
func SetInteraction(r *http.Request, name string) {
	if info := Info(r.Context()); info != nil {
		info.Interaction = name
	}
}
