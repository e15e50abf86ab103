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
