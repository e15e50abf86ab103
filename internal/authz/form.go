package authz

import (
	"encoding/json"
	"errors"
	"io"
	"mime"
	"net/http"
	"net/url"
	"slices"
	"strconv"

	"github.com/fhirguard/fhirguard/internal/httpx"
)

// Limits on OAuth requests (RESIL-03): the whole form and each value.
const (
	maxFormBytes  = 64 << 10
	maxParamBytes = 8 << 10
)

// readForm returns the request parameters: the query for GET, the
// application/x-www-form-urlencoded body for POST (the query is ignored
// then, except for authorize which merges nothing: RFC 6749 parameters come
// from one place). Repeated parameters and oversized values are refused
// (RFC 6749 §3.1).
func readForm(r *http.Request) (url.Values, error) { return readFormMulti(r) }

// readFormMulti is readForm allowing the named parameters to repeat (the
// consent page's scope checkboxes).
func readFormMulti(r *http.Request, multi ...string) (url.Values, error) {
	var raw string
	switch r.Method {
	case http.MethodGet, http.MethodHead:
		raw = r.URL.RawQuery
	case http.MethodPost:
		ct, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
		if err != nil || ct != "application/x-www-form-urlencoded" {
			return nil, oauthErr(ErrInvalidRequest, "the body must be application/x-www-form-urlencoded")
		}
		b, err := io.ReadAll(io.LimitReader(r.Body, maxFormBytes+1))
		if err != nil {
			if httpx.IsBodyTooLarge(err) {
				return nil, oauthErr(ErrInvalidRequest, "the request is too large")
			}
			return nil, oauthErr(ErrInvalidRequest, "the request body could not be read")
		}
		if len(b) > maxFormBytes {
			return nil, oauthErr(ErrInvalidRequest, "the request is larger than %d bytes", maxFormBytes)
		}
		raw = string(b)
	default:
		return nil, requireMethod(r, http.MethodGet, http.MethodPost)
	}
	if len(raw) > maxFormBytes {
		return nil, oauthErr(ErrInvalidRequest, "the request is larger than %d bytes", maxFormBytes)
	}
	v, err := url.ParseQuery(raw)
	if err != nil {
		return nil, oauthErr(ErrInvalidRequest, "malformed parameters")
	}
	for k, vs := range v {
		if len(vs) > 1 && !slices.Contains(multi, k) {
			return nil, oauthErr(ErrInvalidRequest, "parameter %q is repeated", clip(k))
		}
		if len(vs) > 200 {
			return nil, oauthErr(ErrInvalidRequest, "parameter %q is repeated too often", clip(k))
		}
		for _, x := range vs {
			if len(x) > maxParamBytes || len(k) > 64 {
				return nil, oauthErr(ErrInvalidRequest, "parameter %q is too long", clip(k))
			}
		}
	}
	return v, nil
}

// writeJSON writes a JSON answer that must never be cached (RFC 6749
// §5.1).
func writeJSON(w http.ResponseWriter, status int, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return errors.New("encode response")
	}
	h := w.Header()
	h.Set("Content-Type", "application/json; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("Pragma", "no-cache")
	h.Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(status)
	_, err = w.Write(b)
	return err
}
