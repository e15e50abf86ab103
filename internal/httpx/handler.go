package httpx

import "net/http"

// HandlerFunc is an HTTP handler that returns its failure instead of writing
// it. A nil error means the handler wrote the full response. A non-nil error
// is rendered by the Encoder given to Wrap; the handler must not have written
// anything in that case.
type HandlerFunc func(w http.ResponseWriter, r *http.Request) error
