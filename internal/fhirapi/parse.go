package fhirapi

import (
	"net/http"
	"net/url"
	"strings"

	"github.com/fhirguard/fhirguard/internal/fhir"
	"github.com/fhirguard/fhirguard/internal/httpx"
)

// ParseHTTP parses an HTTP request under BasePath into a Request: the
// interaction and target from method and path, format negotiation,
// preconditions and preferences from the headers, history paging from the
// query, and the body (a resource parsed and validated, a JSON Patch, or a
// batch/transaction Bundle with all its entries parsed and validated). It
// does not touch the store.
//
// When the interaction could be named, the returned Request is non-nil even
// with an error, so the caller can label the failed request.
func (a *API) ParseHTTP(r *http.Request) (*Request, error) {
	rest, ok := strings.CutPrefix(r.URL.EscapedPath(), BasePath)
	if !ok || (rest != "" && rest[0] != '/') {
		return nil, fhir.Errorf(fhir.IssueNotFound, "no FHIR interaction at this URL")
	}
	segs, err := segments(rest)
	if err != nil {
		return nil, err
	}
	query, err := url.ParseQuery(r.URL.RawQuery)
	if err != nil {
		return nil, fhir.Errorf(fhir.IssueInvalid, "malformed query string")
	}
	q, err := route(r.Method, segs, query)
	if err != nil {
		return q, err
	}
	if err := checkResponseFormat(query.Get("_format"), r.Header.Values("Accept")); err != nil {
		return q, err
	}
	if im := r.Header.Get("If-Match"); im != "" {
		if q.IfMatch, err = parseETag(im); err != nil {
			return q, err
		}
	}
	q.IfNoneExist = r.Header.Get("If-None-Exist")
	q.Return = parsePrefer(r.Header.Values("Prefer"))
	q.Lenient = preferLenient(r.Header.Values("Prefer"))

	switch q.Interaction {
	case Create, Update:
		if err := checkBodyType(r.Header.Get("Content-Type")); err != nil {
			return q, err
		}
		body, err := httpx.ReadBody(r)
		if err != nil {
			return q, err
		}
		if err := a.parseResourceBody(q, body); err != nil {
			return q, err
		}
	case Patch:
		kind, err := checkPatchType(r.Header.Get("Content-Type"))
		if err != nil {
			return q, err
		}
		if kind == patchFHIRPath {
			return q, errMedia("FHIRPath Patch is not supported; send a JSON Patch (application/json-patch+json)")
		}
		body, err := httpx.ReadBody(r)
		if err != nil {
			return q, err
		}
		if err := checkPatchDoc(body); err != nil {
			return q, err
		}
		q.PatchDoc = body
	case Batch:
		if err := checkBodyType(r.Header.Get("Content-Type")); err != nil {
			return q, err
		}
		body, err := httpx.ReadBody(r)
		if err != nil {
			return q, err
		}
		b, err := a.parseBundle(body, q.Return)
		if err != nil {
			if b != nil {
				q.Interaction = b.Type
			}
			return q, err
		}
		q.Bundle = b
		q.Interaction = b.Type
	case HistoryInstance, HistoryType, HistorySystem:
		if err := parseHistoryParams(q); err != nil {
			return q, err
		}
	case SearchType, SearchSystem:
		if r.Method == http.MethodPost {
			if err := checkFormBody(r); err != nil {
				return q, err
			}
			body, err := httpx.ReadBody(r)
			if err != nil {
				return q, err
			}
			if err := readSearchForm(q, body); err != nil {
				return q, err
			}
		}
	}
	return q, nil
}

// checkFormBody checks the body type of POST _search.
func checkFormBody(r *http.Request) error {
	ct := r.Header.Get("Content-Type")
	if ct != "" && !strings.HasPrefix(strings.ToLower(ct), "application/x-www-form-urlencoded") {
		return errMedia("POST _search needs Content-Type application/x-www-form-urlencoded")
	}
	return nil
}

// parseResourceBody parses and validates the body of a create or update and
// checks it against the URL (resourceType; id for update). For a create the
// body's id is ignored and a new random id assigned.
func (a *API) parseResourceBody(q *Request, body []byte) error {
	if len(body) == 0 {
		return fhir.Errorf(fhir.IssueRequired, "the request body is empty; a %s resource is required", q.Type)
	}
	res, err := a.parseResource(body)
	if err != nil {
		return err
	}
	return a.checkResource(q, res)
}

// checkResource checks a parsed resource against its Request target,
// assigns the id of a create, and validates it.
func (a *API) checkResource(q *Request, res map[string]any) error {
	rt, _ := res["resourceType"].(string)
	if rt != q.Type {
		return &fhir.Error{Code: fhir.IssueInvalid, Expr: []string{rt + ".resourceType"},
			Diag: "resourceType " + quote(rt) + " does not match the URL's resource type " + quote(q.Type)}
	}
	switch q.Interaction {
	case Create:
		if q.ID == "" {
			q.ID = a.newID()
		}
		res["id"] = q.ID
	case Update:
		id, _ := res["id"].(string)
		if q.Conditional {
			break // the condition decides the id (search_conditional.go)
		}
		if id == "" {
			return &fhir.Error{Code: fhir.IssueRequired, Expr: []string{rt + ".id"},
				Diag: "an update needs the resource id in the body, equal to the id in the URL"}
		}
		if id != q.ID {
			return &fhir.Error{Code: fhir.IssueInvalid, Expr: []string{rt + ".id"},
				Diag: "the resource id " + quote(id) + " does not match the id in the URL " + quote(q.ID)}
		}
	}
	if err := a.validate(q.Type, res); err != nil {
		return err
	}
	q.Resource = res
	return nil
}

func quote(s string) string {
	return `"` + truncate(s, 64) + `"`
}
