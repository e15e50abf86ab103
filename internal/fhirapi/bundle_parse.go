package fhirapi

import (
	"encoding/base64"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/fhirguard/fhirguard/internal/fhir"
)

// BundleRequest is a parsed batch or transaction.
type BundleRequest struct {
	Type    string // Batch or Transaction
	Entries []*BundleEntry
}

// BundleEntry is one parsed entry. Exactly one of Req and Err is set: a
// batch answers a parse failure in that entry's response; a transaction
// fails as a whole before anything is written.
type BundleEntry struct {
	Index   int
	FullURL string
	Req     *Request
	Err     error
}

// parseBundle parses a batch/transaction body: every entry's request is
// routed, every resource parsed, urn:uuid/urn:oid references rewritten to
// the ids assigned up front, and every resource validated. The returned
// BundleRequest is non-nil once the Bundle type is known.
func (a *API) parseBundle(body []byte, ret ReturnPref) (*BundleRequest, error) {
	if len(body) == 0 {
		return nil, fhir.Errorf(fhir.IssueRequired, "the request body is empty; a batch or transaction Bundle is required")
	}
	doc, err := a.parseResource(body)
	if err != nil {
		return nil, err
	}
	if rt, _ := doc["resourceType"].(string); rt != "Bundle" {
		return nil, &fhir.Error{Code: fhir.IssueInvalid, Expr: []string{"resourceType"},
			Diag: fmt.Sprintf("a batch or transaction must be a Bundle, not %s", quote(rt))}
	}
	typ, _ := doc["type"].(string)
	b := &BundleRequest{}
	switch typ {
	case "batch":
		b.Type = Batch
	case "transaction":
		b.Type = Transaction
	default:
		return nil, &fhir.Error{Code: fhir.IssueInvalid, Expr: []string{"Bundle.type"},
			Diag: fmt.Sprintf("Bundle.type must be batch or transaction, not %s", quote(typ))}
	}
	raw, _ := doc["entry"].([]any)
	if _, ok := doc["entry"]; ok && raw == nil {
		return b, &fhir.Error{Code: fhir.IssueStructure, Expr: []string{"Bundle.entry"}, Diag: "Bundle.entry must be an array"}
	}
	if len(raw) > a.maxEntries {
		return b, &fhir.Error{Code: fhir.IssueTooCostly, Status: http.StatusRequestEntityTooLarge,
			Diag: fmt.Sprintf("the Bundle has %d entries; at most %d are allowed", len(raw), a.maxEntries)}
	}
	b.Entries = make([]*BundleEntry, len(raw))
	refs := map[string]string{} // urn fullUrl → "Type/id"
	for i, x := range raw {
		e := &BundleEntry{Index: i}
		b.Entries[i] = e
		m, ok := x.(map[string]any)
		if !ok {
			e.Err = fhir.Errorf(fhir.IssueStructure, "the entry must be an object")
			continue
		}
		e.FullURL, _ = m["fullUrl"].(string)
		e.Req, e.Err = a.parseEntry(m, ret)
		if e.Err != nil {
			e.Req = nil
			continue
		}
		// A POST entry's fullUrl (urn:uuid:, urn:oid: or a client URL) and
		// a PUT entry's urn fullUrl stand for the resource it writes.
		if e.FullURL != "" && e.Req.Resource != nil && (isURN(e.FullURL) || e.Req.Interaction == Create) {
			if _, dup := refs[e.FullURL]; dup {
				e.Err = &fhir.Error{Code: fhir.IssueDuplicate, Status: http.StatusBadRequest,
					Expr: []string{"fullUrl"}, Diag: fmt.Sprintf("fullUrl %s appears more than once", quote(e.FullURL))}
				e.Req = nil
				continue
			}
			refs[e.FullURL] = e.Req.Type + "/" + e.Req.ID
		}
	}
	if b.Type == Transaction {
		checkOverlap(b)
	}
	for _, e := range b.Entries {
		if e.Req == nil || e.Req.Resource == nil {
			continue
		}
		if len(refs) > 0 {
			rewriteRefs(e.Req.Resource, refs)
		}
		if err := a.checkResource(e.Req, e.Req.Resource); err != nil {
			e.Err, e.Req = err, nil
		}
	}
	if b.Type == Transaction {
		for _, e := range b.Entries {
			if e.Err != nil {
				return b, entryError(e.Index, e.Err)
			}
		}
	}
	return b, nil
}

// parseEntry routes one entry's request and reads its resource (not yet
// validated: references are rewritten first).
func (a *API) parseEntry(m map[string]any, ret ReturnPref) (*Request, error) {
	rq, _ := m["request"].(map[string]any)
	if rq == nil {
		return nil, &fhir.Error{Code: fhir.IssueRequired, Expr: []string{"request"}, Diag: "entry.request is required"}
	}
	method, _ := rq["method"].(string)
	switch method {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete:
	default:
		return nil, &fhir.Error{Code: fhir.IssueValue, Expr: []string{"request.method"},
			Diag: fmt.Sprintf("entry.request.method %s is not one of GET, HEAD, POST, PUT, PATCH, DELETE", quote(method))}
	}
	raw, _ := rq["url"].(string)
	segs, query, err := a.splitEntryURL(raw)
	if err != nil {
		return nil, err
	}
	q, err := route(method, segs, query)
	if err != nil {
		return nil, err
	}
	q.Return = ret
	switch q.Interaction {
	case Batch, Transaction:
		return nil, errNotImplemented("a batch or transaction inside a Bundle entry is not supported")
	case Operation:
		return nil, errNotImplemented("operations inside a Bundle entry are not supported")
	}
	if s, _ := rq["ifMatch"].(string); s != "" {
		if q.IfMatch, err = parseETag(s); err != nil {
			return nil, err
		}
	}
	q.IfNoneExist, _ = rq["ifNoneExist"].(string)
	for _, k := range []string{"ifNoneMatch", "ifModifiedSince"} {
		if _, ok := rq[k]; ok {
			return nil, errNotImplemented("entry.request.%s is not supported", k)
		}
	}
	switch q.Interaction {
	case Create, Update:
		res, ok := m["resource"].(map[string]any)
		if !ok {
			return nil, &fhir.Error{Code: fhir.IssueRequired, Expr: []string{"resource"},
				Diag: fmt.Sprintf("a %s entry needs a resource", method)}
		}
		if q.Interaction == Create {
			q.ID = a.newID()
		}
		q.Resource = res
	case Patch:
		doc, err := entryPatch(m["resource"])
		if err != nil {
			return nil, err
		}
		q.PatchDoc = doc
	case HistoryInstance, HistoryType, HistorySystem:
		if err := parseHistoryParams(q); err != nil {
			return nil, err
		}
	}
	return q, nil
}

// splitEntryURL turns entry.request.url (relative to the base, or absolute
// under it) into path segments and query.
func (a *API) splitEntryURL(raw string) ([]string, url.Values, error) {
	bad := func(why string) error {
		return &fhir.Error{Code: fhir.IssueValue, Expr: []string{"request.url"},
			Diag: fmt.Sprintf("entry.request.url %s %s", quote(raw), why)}
	}
	if raw == "" {
		return nil, nil, &fhir.Error{Code: fhir.IssueRequired, Expr: []string{"request.url"}, Diag: "entry.request.url is required"}
	}
	u, err := url.Parse(raw)
	if err != nil || u.Fragment != "" || u.Opaque != "" || u.User != nil {
		return nil, nil, bad("is not a valid URL")
	}
	if u.Scheme != "" || u.Host != "" {
		rel, ok := strings.CutPrefix(raw, a.base)
		if !ok || (rel != "" && rel[0] != '/' && rel[0] != '?') {
			return nil, nil, bad("is not on this server")
		}
		if u, err = url.Parse(rel); err != nil {
			return nil, nil, bad("is not a valid URL")
		}
	}
	path := u.EscapedPath()
	if rest, ok := strings.CutPrefix(path, BasePath+"/"); ok {
		path = rest
	}
	segs, err := segments(path)
	if err != nil {
		return nil, nil, bad("has an invalid path")
	}
	query, err := url.ParseQuery(u.RawQuery)
	if err != nil {
		return nil, nil, bad("has a malformed query")
	}
	return segs, query, nil
}

// entryPatch extracts a JSON Patch from a PATCH entry's Binary resource.
func entryPatch(x any) ([]byte, error) {
	res, _ := x.(map[string]any)
	rt, _ := res["resourceType"].(string)
	switch rt {
	case "Binary":
	case "Parameters":
		return nil, errNotImplemented("FHIRPath Patch is not supported; send a JSON Patch in a Binary resource")
	default:
		return nil, &fhir.Error{Code: fhir.IssueRequired, Expr: []string{"resource"},
			Diag: "a PATCH entry needs a Binary resource holding a JSON Patch (contentType application/json-patch+json)"}
	}
	if ct, _ := res["contentType"].(string); ct != "application/json-patch+json" {
		return nil, errMedia("a PATCH entry's Binary.contentType must be application/json-patch+json")
	}
	data, _ := res["data"].(string)
	doc, err := base64.StdEncoding.DecodeString(data)
	if err != nil {
		return nil, &fhir.Error{Code: fhir.IssueValue, Expr: []string{"resource.data"}, Cause: err,
			Diag: "the Binary.data of a PATCH entry is not valid base64"}
	}
	if err := checkPatchDoc(doc); err != nil {
		return nil, err
	}
	return doc, nil
}

func isURN(s string) bool {
	return strings.HasPrefix(s, "urn:uuid:") || strings.HasPrefix(s, "urn:oid:")
}

// checkOverlap fails transaction entries that write a resource another
// entry already writes (FHIR: identities must not overlap).
func checkOverlap(b *BundleRequest) {
	seen := map[string]int{}
	for _, e := range b.Entries {
		if e.Req == nil {
			continue
		}
		switch e.Req.Interaction {
		case Create, Update, Patch, Delete:
		default:
			continue
		}
		key := e.Req.Type + "/" + e.Req.ID
		if j, ok := seen[key]; ok {
			e.Err = &fhir.Error{Code: fhir.IssueDuplicate, Status: http.StatusBadRequest,
				Diag: fmt.Sprintf("%s is also written by Bundle.entry[%d]; a transaction writes each resource at most once", key, j)}
			e.Req = nil
			continue
		}
		seen[key] = e.Index
	}
}

// rewriteRefs replaces every Reference.reference string (at any depth,
// including contained resources and extensions) that names a key of refs.
func rewriteRefs(v any, refs map[string]string) {
	switch t := v.(type) {
	case map[string]any:
		for k, x := range t {
			if s, ok := x.(string); ok {
				if k == "reference" {
					if to, ok := refs[s]; ok {
						t[k] = to
					}
				}
				continue
			}
			rewriteRefs(x, refs)
		}
	case []any:
		for _, x := range t {
			rewriteRefs(x, refs)
		}
	}
}

// entryError names the entry in a transaction failure: the status and issue
// stay those of the entry, the message and expressions point into the
// Bundle.
func entryError(i int, err error) error {
	fe, ok := fhir.AsError(err)
	if !ok {
		return fmt.Errorf("Bundle.entry[%d]: %w", i, err)
	}
	at := fmt.Sprintf("Bundle.entry[%d]", i)
	out := &fhir.Error{Code: fe.Code, Status: fe.HTTPStatus(), Severity: fe.Severity, Header: fe.Header,
		Cause: fe.Cause, Diag: at + ": " + fe.Diag, Expr: []string{at}}
	for _, x := range fe.Expr {
		out.Expr = append(out.Expr, at+"."+entryExpr(x))
	}
	return out
}

// entryExpr maps an expression relative to an entry's resource ("Patient.
// name[0]") or the entry ("request.url") into the entry.
func entryExpr(x string) string {
	if i := strings.IndexByte(x, '.'); i > 0 && fhir.IsResourceType(x[:i]) {
		return "resource" + x[i:]
	}
	if fhir.IsResourceType(x) {
		return "resource"
	}
	return x
}
