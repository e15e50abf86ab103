package fhirapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/fhirguard/fhirguard/internal/fhir"
	"github.com/fhirguard/fhirguard/internal/policy"
	"github.com/fhirguard/fhirguard/internal/search"
	"github.com/fhirguard/fhirguard/internal/store"
)

// Search (owned by the search area): the three search interactions
// ([type]?, [base]?_type=, Patient/{id}/[type]?), GET or POST _search,
// answered with a searchset Bundle. The REST layer parses the parameters
// (internal/search), adds the policy's Narrowing, verifies the paging
// cursor and hands the typed query to the store, which runs it in SQL.

// searchOptions are the parser options of this API.
func (a *API) searchOptions(lenient bool) search.Options {
	o := search.Options{Clock: a.clock, BaseURL: a.base, MaxCount: a.maxCount}
	if lenient {
		o.Handling = search.Lenient
	}
	return o
}

// parseSearch builds the typed query of a search request.
func (a *API) parseSearch(q *Request) (*search.Query, []search.Issue, error) {
	opts := a.searchOptions(q.Lenient)
	switch q.Interaction {
	case SearchType:
		return search.Parse(q.Type, q.Query, opts)
	case SearchSystem:
		return search.ParseSystem(q.Query, opts)
	case SearchCompart:
		return search.ParseCompartment(search.Compartment{Type: q.Type, ID: q.ID}, q.CompartmentType, q.Query, opts)
	}
	return nil, nil, fmt.Errorf("fhirapi: %q is not a search", q.Interaction)
}

// searchNarrowing translates the policy's Narrowing of the request's
// decision (none without enforcement) into the store's.
func (a *API) searchNarrowing(ctx context.Context) (*search.Narrowing, error) {
	dec, ok := decisionFrom(ctx)
	if !ok {
		return nil, nil
	}
	return a.toSearchNarrowing(dec.Narrowing)
}

func (a *API) toSearchNarrowing(n policy.Narrowing) (*search.Narrowing, error) {
	if n.IsZero() {
		return nil, nil
	}
	out := &search.Narrowing{
		RestrictPatients: n.RestrictPatients, Patients: n.Patients,
		RestrictTypes: n.RestrictTypes, AllowedTypes: n.AllowedTypes,
		ExcludeIDs: n.ExcludeIDs,
	}
	for _, l := range n.ExcludeLabels {
		out.ExcludeLabels = append(out.ExcludeLabels, search.Coding{System: l.System, Code: l.Code})
	}
	for _, r := range n.Restrictions {
		sr, err := search.NewRestriction(r.Type, r.AnyOf, a.searchOptions(false))
		if err != nil {
			// A granular scope the search grammar cannot express: fail
			// closed (the request is refused, nothing leaks).
			return nil, &fhir.Error{Code: fhir.IssueForbidden, Status: http.StatusForbidden, Cause: err,
				Diag: "the access token's restrictions on " + r.Type + " cannot be applied to this search"}
		}
		out.Restrictions = append(out.Restrictions, sr)
	}
	return out, nil
}

// search runs a search interaction.
func (a *API) search(ctx context.Context, q *Request) (*Response, error) {
	sq, issues, err := a.parseSearch(q)
	if err != nil {
		return nil, err
	}
	searcher, ok := a.store.(store.Searcher)
	if !ok || a.cursors == nil {
		return nil, errNotImplemented("this store does not support search")
	}
	if sq.Summary == search.SummaryCount {
		sq.Count = 0
	}
	if sq.Narrow, err = a.searchNarrowing(ctx); err != nil {
		return nil, err
	}
	at, err := a.cursors.Decode(sq)
	if err != nil {
		return nil, err
	}
	res, err := searcher.Search(ctx, sq, at)
	if err != nil {
		return nil, searchErr(err)
	}
	body, err := a.searchBundle(q, sq, issues, res)
	if err != nil {
		return nil, err
	}
	if q.Interaction == SearchCompart {
		addPatients(ctx, q.ID)
	}
	for i, m := range res.Matches {
		if m.Type == "Patient" && containerOf(res, i) == nil { // a contained Patient's id is local
			addPatients(ctx, m.ID)
		}
	}
	return &Response{Status: http.StatusOK, Body: body, Count: len(res.Matches)}, nil
}

// searchErr passes client errors and cancellations; anything else becomes
// a 500 whose cause is only logged.
func searchErr(err error) error {
	if _, ok := fhir.AsError(err); ok || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	if errors.Is(err, store.ErrClosed) {
		return &fhir.Error{Code: fhir.IssueTransient, Cause: err, Diag: "the server is shutting down", Header: http.Header{"Retry-After": {"5"}}}
	}
	return fmt.Errorf("search: %w", err)
}

type searchEntry struct {
	FullURL  string          `json:"fullUrl,omitempty"`
	Resource json.RawMessage `json:"resource"`
	Search   searchMode      `json:"search"`
}

type searchMode struct {
	Mode string `json:"mode"`
}

type searchsetDoc struct {
	ResourceType string        `json:"resourceType"`
	ID           string        `json:"id"`
	Meta         *bundleMeta   `json:"meta"`
	Type         string        `json:"type"`
	Total        *int          `json:"total,omitempty"`
	Link         []bundleLink  `json:"link"`
	Entry        []searchEntry `json:"entry,omitempty"`
}

// searchPath is the URL path (under the base) the search's links use.
func searchPath(q *Request) string {
	switch q.Interaction {
	case SearchType:
		return "/" + q.Type
	case SearchCompart:
		t := q.CompartmentType
		if t == "" {
			t = "*"
		}
		return "/" + q.Type + "/" + q.ID + "/" + t
	}
	return ""
}

// searchLink is the GET URL of the query at cursor ("" = first page).
func (a *API) searchLink(q *Request, sq *search.Query, cursor string) string {
	v := sq.Values()
	if cursor != "" {
		v.Set("_cursor", cursor)
	}
	return a.base + searchPath(q) + "?" + v.Encode()
}

// searchBundle renders the searchset Bundle of one page.
func (a *API) searchBundle(q *Request, sq *search.Query, issues []search.Issue, res *store.SearchResult) ([]byte, error) {
	doc := searchsetDoc{
		ResourceType: "Bundle",
		ID:           a.newID(),
		Meta:         &bundleMeta{LastUpdated: instant(a.clock.Now())},
		Type:         "searchset",
		Link:         []bundleLink{{Relation: "self", URL: a.searchLink(q, sq, sq.Cursor)}},
	}
	if res.Total >= 0 {
		total := res.Total
		doc.Total = &total
	}
	for _, pos := range []struct {
		rel string
		at  *search.Cursor
	}{{"next", res.Next}, {"previous", res.Prev}} {
		if pos.at == nil {
			continue
		}
		c, err := a.cursors.Encode(sq, *pos.at)
		if err != nil {
			return nil, fmt.Errorf("encode %s cursor: %w", pos.rel, err)
		}
		doc.Link = append(doc.Link, bundleLink{Relation: pos.rel, URL: a.searchLink(q, sq, c)})
	}
	doc.Entry = make([]searchEntry, 0, len(res.Matches)+len(res.Includes)+1)
	for _, list := range []struct {
		mode string
		res  []*fhir.Resource
	}{{"match", res.Matches}, {"include", res.Includes}} {
		for i, r := range list.res {
			body, err := a.shape(sq, r, list.mode == "match")
			if err != nil {
				return nil, err
			}
			full := a.base + "/" + r.Type + "/" + r.ID
			if c := containerOf(res, i); c != nil && list.mode == "match" {
				// A contained resource: {base}/{container}#{local id}.
				full = a.base + "/" + c.Type + "/" + c.ID + "#" + r.ID
			}
			doc.Entry = append(doc.Entry, searchEntry{FullURL: full, Resource: body, Search: searchMode{Mode: list.mode}})
		}
	}
	if res.IncludesTruncated {
		issues = append(issues, search.Issue{Severity: "warning", Code: fhir.IssueTooCostly, Param: "_include",
			Diag: fmt.Sprintf("more than %d resources would be included; the list of included resources is incomplete", maxIncludes)})
	}
	if len(issues) > 0 {
		oo := outcomeDoc{ResourceType: "OperationOutcome"}
		for _, is := range issues {
			oo.Issue = append(oo.Issue, outcomeIssue{Severity: is.Severity, Code: string(is.Code), Diagnostics: is.Diag,
				Expression: []string{is.Param}})
		}
		doc.Entry = append(doc.Entry, searchEntry{Resource: mustJSON(oo), Search: searchMode{Mode: "outcome"}})
	}
	body, err := marshalSearchset(doc)
	if err != nil {
		return nil, fmt.Errorf("encode searchset: %w", err)
	}
	return body, nil
}

// containerOf returns the container of the i-th match when it is a
// contained resource (_containedType=contained), else nil.
func containerOf(res *store.SearchResult, i int) *store.ContainerRef {
	if i < len(res.Containers) {
		return res.Containers[i]
	}
	return nil
}

// maxIncludes is the store's bound on included resources per page (for the
// warning's text).
const maxIncludes = 1000

// preferLenient reads handling= from Prefer headers (strict unless
// lenient is asked for).
func preferLenient(h []string) bool {
	lenient := false
	for _, v := range h {
		for _, part := range strings.Split(v, ",") {
			for _, kv := range strings.Split(part, ";") {
				k, val, ok := strings.Cut(strings.TrimSpace(kv), "=")
				if ok && strings.EqualFold(strings.TrimSpace(k), "handling") {
					lenient = strings.EqualFold(strings.Trim(strings.TrimSpace(val), `"`), "lenient")
				}
			}
		}
	}
	return lenient
}

// readSearchForm merges the form body of POST _search into the query.
func readSearchForm(q *Request, body []byte) error {
	form, err := url.ParseQuery(string(body))
	if err != nil {
		return fhir.Errorf(fhir.IssueInvalid, "malformed form body in POST _search")
	}
	if q.Query == nil {
		q.Query = url.Values{}
	}
	for k, vs := range form {
		q.Query[k] = append(q.Query[k], vs...)
	}
	return nil
}

// setupSearch prepares searching when the store can search: the cursor
// codec signs with the store's key.
func (a *API) setupSearch(opts Options) error {
	a.maxCount = opts.SearchMaxCount
	if a.maxCount <= 0 {
		a.maxCount = search.DefaultMaxCount
	}
	sh, err := newShaper()
	if err != nil {
		return fmt.Errorf("fhirapi: %w", err)
	}
	a.shaper = sh
	s, ok := opts.Store.(store.Searcher)
	if !ok {
		return nil
	}
	if a.cursors, err = search.NewCursorCodec(s.CursorKey(), a.clock, 0); err != nil {
		return fmt.Errorf("fhirapi: paging cursors: %w", err)
	}
	return nil
}

// checkSearch refuses, before a transaction writes anything, a search entry
// that would fail: bad parameters, or a store that cannot search.
func (a *API) checkSearch(q *Request) error {
	switch q.Interaction {
	case SearchType, SearchSystem, SearchCompart:
	default:
		return nil
	}
	if _, _, err := a.parseSearch(q); err != nil {
		return err
	}
	if a.cursors == nil {
		return errNotImplemented("this store does not support search")
	}
	return nil
}
