package fhirapi

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/fhirguard/fhirguard/internal/fhir"
	"github.com/fhirguard/fhirguard/internal/store"
)

// History paging limits (RESIL-03).
const (
	DefaultHistoryCount = 20
	MaxHistoryCount     = 1000
)

// cursorParam is the query parameter carrying the store's paging position.
const cursorParam = "_cursor"

// parseHistoryParams reads _since, _count and the paging cursor.
func parseHistoryParams(q *Request) error {
	q.Count = DefaultHistoryCount
	if vs := q.Query["_count"]; len(vs) > 0 {
		n, err := strconv.Atoi(strings.TrimSpace(vs[0]))
		if err != nil || n < 0 {
			return &fhir.Error{Code: fhir.IssueValue, Expr: []string{"_count"},
				Diag: fmt.Sprintf("invalid _count %q: a non-negative integer is required", truncate(vs[0], 40))}
		}
		q.Count = min(n, MaxHistoryCount)
	}
	if vs := q.Query["_since"]; len(vs) > 0 {
		t, err := parseInstant(vs[0])
		if err != nil {
			return &fhir.Error{Code: fhir.IssueValue, Expr: []string{"_since"},
				Diag: fmt.Sprintf("invalid _since %q: a FHIR instant like 2024-01-31T12:00:00Z is required", truncate(vs[0], 40))}
		}
		q.Since = t
	}
	if vs := q.Query["_at"]; len(vs) > 0 {
		return &fhir.Error{Code: fhir.IssueNotSupported, Status: http.StatusBadRequest, Expr: []string{"_at"},
			Diag: "_at is not supported in history"}
	}
	if vs := q.Query[cursorParam]; len(vs) > 0 {
		n, err := strconv.ParseInt(vs[0], 10, 64)
		if err != nil || n < 1 || strings.HasPrefix(vs[0], "+") {
			return &fhir.Error{Code: fhir.IssueValue, Expr: []string{cursorParam},
				Diag: "invalid paging cursor; follow the Bundle's next link as given"}
		}
		q.Before = n
	}
	return nil
}

// parseInstant parses a FHIR instant (seconds required, time zone required).
// A '+' offset decoded from an unescaped query string as a space is put
// back.
func parseInstant(s string) (time.Time, error) {
	s = strings.TrimSpace(s)
	if i := strings.LastIndexByte(s, ' '); i > 0 {
		s = s[:i] + "+" + s[i+1:]
	}
	if len(s) < len("2006-01-02T15:04:05Z") || s[10] != 'T' {
		return time.Time{}, fmt.Errorf("not an instant: %q", s)
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("parse instant: %w", err)
	}
	return t.UTC(), nil
}

type bundleLink struct {
	Relation string `json:"relation"`
	URL      string `json:"url"`
}

type bundleMeta struct {
	LastUpdated string `json:"lastUpdated"`
}

type bundleDoc struct {
	ResourceType string        `json:"resourceType"`
	ID           string        `json:"id,omitempty"`
	Meta         *bundleMeta   `json:"meta,omitempty"`
	Type         string        `json:"type"`
	Total        *int          `json:"total,omitempty"`
	Link         []bundleLink  `json:"link,omitempty"`
	Entry        []bundleEntry `json:"entry,omitempty"`
}

type bundleEntry struct {
	FullURL  string          `json:"fullUrl,omitempty"`
	Resource json.RawMessage `json:"resource,omitempty"`
	Request  *entryRequest   `json:"request,omitempty"`
	Response *entryResponse  `json:"response,omitempty"`
}

type entryRequest struct {
	Method string `json:"method"`
	URL    string `json:"url"`
}

type entryResponse struct {
	Status       string          `json:"status"`
	Location     string          `json:"location,omitempty"`
	Etag         string          `json:"etag,omitempty"`
	LastModified string          `json:"lastModified,omitempty"`
	Outcome      json.RawMessage `json:"outcome,omitempty"`
}

// history serves the three history interactions: a Bundle of type history,
// newest version first, paged by the store's cursor.
func (a *API) history(ctx context.Context, q *Request) (*Response, error) {
	hq := store.HistoryQuery{Type: q.Type, ID: q.ID, Since: q.Since, Count: max(q.Count, 1), Before: q.Before}
	page, err := a.store.History(ctx, hq)
	if err != nil {
		return nil, storeErr(q, nil, err)
	}
	if q.Interaction == HistoryInstance && page.Total == 0 {
		// An instance never written has no history: 404 like read.
		if _, err := a.store.Read(ctx, q.Type, q.ID); err != nil && !isGone(err) {
			return nil, storeErr(q, nil, err)
		}
	}
	entries := page.Entries
	if q.Count == 0 {
		entries = nil
	}
	total := page.Total
	doc := bundleDoc{
		ResourceType: "Bundle",
		ID:           a.newID(),
		Meta:         &bundleMeta{LastUpdated: instant(a.clock.Now())},
		Type:         "history",
		Total:        &total,
		Link:         []bundleLink{{Relation: "self", URL: a.historyURL(q, q.Before)}},
		Entry:        make([]bundleEntry, 0, len(entries)),
	}
	if page.Next > 0 && q.Count > 0 {
		doc.Link = append(doc.Link, bundleLink{Relation: "next", URL: a.historyURL(q, page.Next)})
	}
	for _, res := range entries {
		doc.Entry = append(doc.Entry, a.historyEntry(res))
	}
	body, err := marshalJSON(doc)
	if err != nil {
		return nil, fmt.Errorf("encode history bundle: %w", err)
	}
	return &Response{Status: http.StatusOK, Body: body, Count: len(entries)}, nil
}

// historyEntry describes one version. The store does not record whether a
// version came from POST or PUT; version 1 is shown as the create.
func (a *API) historyEntry(res *fhir.Resource) bundleEntry {
	e := bundleEntry{
		FullURL: a.base + "/" + res.Type + "/" + res.ID,
		Response: &entryResponse{
			Etag:         etag(res.VersionID),
			LastModified: instant(res.LastUpdated),
		},
	}
	switch {
	case res.Deleted:
		e.Request = &entryRequest{Method: http.MethodDelete, URL: res.Type + "/" + res.ID}
		e.Response.Status = statusLine(http.StatusOK)
	case res.VersionID == 1:
		e.Resource = res.Body
		e.Request = &entryRequest{Method: http.MethodPost, URL: res.Type}
		e.Response.Status = statusLine(http.StatusCreated)
	default:
		e.Resource = res.Body
		e.Request = &entryRequest{Method: http.MethodPut, URL: res.Type + "/" + res.ID}
		e.Response.Status = statusLine(http.StatusOK)
	}
	return e
}

// historyURL is the canonical URL of a history page starting at before
// (0 = the first page).
func (a *API) historyURL(q *Request, before int64) string {
	var path string
	switch q.Interaction {
	case HistoryInstance:
		path = "/" + q.Type + "/" + q.ID + "/_history"
	case HistoryType:
		path = "/" + q.Type + "/_history"
	default:
		path = "/_history"
	}
	v := url.Values{}
	v.Set("_count", strconv.Itoa(q.Count))
	if !q.Since.IsZero() {
		v.Set("_since", instant(q.Since))
	}
	if before > 0 {
		v.Set(cursorParam, strconv.FormatInt(before, 10))
	}
	return a.base + path + "?" + v.Encode()
}
