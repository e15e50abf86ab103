package fhirapi

import (
	"github.com/fhirguard/fhirguard/internal/store"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/fhirguard/fhirguard/internal/fhir"
)

// Interaction names. They are the FHIR interaction codes where one exists and
// double as the httpx interaction label (a fixed, small set).
const (
	Capabilities    = "capabilities"
	Read            = "read"
	VRead           = "vread"
	Create          = "create"
	Update          = "update"
	Patch           = "patch"
	Delete          = "delete"
	HistoryInstance = "history-instance"
	HistoryType     = "history-type"
	HistorySystem   = "history-system"
	SearchType      = "search-type"
	SearchSystem    = "search-system"
	SearchCompart   = "search-compartment"
	Operation       = "operation"
	Batch           = "batch"
	Transaction     = "transaction"
)

// ReturnPref is the client's Prefer: return= choice for writes.
type ReturnPref int

// The Prefer: return values (FHIR http.html#ops).
const (
	ReturnRepresentation ReturnPref = iota // the default
	ReturnMinimal
	ReturnOutcome
)

// Request is one FHIR interaction, parsed from an HTTP request or a Bundle
// entry, before any policy decision or store access. It is everything the
// policy engine needs to decide and everything the executor needs to act.
type Request struct {
	Interaction string
	Method      string
	// Type, ID and Version are the target named by the URL (empty/0 when
	// the interaction has none).
	Type    string
	ID      string
	Version int64
	// Query holds the URL parameters as sent (search, conditional
	// interactions, history paging).
	Query url.Values
	// Resource is the parsed and validated resource of a create or update.
	Resource map[string]any
	// PatchDoc is the RFC 6902 JSON Patch document of a patch.
	PatchDoc []byte
	// IfMatch is the version the client requires (If-Match: W/"n"), 0 = none.
	IfMatch int64
	// IfNoneExist is the If-None-Exist search of a conditional create.
	IfNoneExist string
	// Conditional is true for conditional update/delete/patch (URL with a
	// search instead of an id).
	Conditional bool
	Return      ReturnPref
	// History paging (history interactions).
	Since  time.Time
	Count  int
	Before int64
	// Bundle is the parsed batch or transaction (batch/transaction only).
	Bundle *BundleRequest
	// CompartmentType is the searched type of a compartment search
	// (Patient/{id}/Observation → "Observation"; "*" for every type).
	CompartmentType string
	// Lenient is Prefer: handling=lenient (searches drop unknown
	// parameters instead of refusing them).
	Lenient bool
	// cond is the state of a conditional write (search_conditional.go).
	cond *condState
	// Operation is the name ("$access-log") of an operation.
	Operation string
	// xProvenance is the client's X-Provenance resource for a write.
	xProvenance map[string]any
	// provenance is the write's Provenance, prepared before the
	// transaction for the version the write is expected to produce.
	provenance *preparedProvenance

	// prepared is the store write of a create or update, indexed and
	// serialized by store.Prepare before the write transaction (see
	// prepareWrite); nil = the store does that work inside it.
	prepared *store.Write

	// decided is the version a read or vread was authorized on (enforce.go):
	// the answer is that very version, neither read twice nor a newer one
	// the decision did not see.
	decided *fhir.Resource

	// bodyPatients are the compartment patients of Resource, once known
	// (bodyPatientsOf).
	bodyPatients      []string
	bodyPatientsKnown bool
}

// Target returns "Type/id" (or "Type", or "") for messages.
func (q *Request) Target() string {
	if q.ID != "" {
		return q.Type + "/" + q.ID
	}
	return q.Type
}

// segments splits an escaped path remainder ("" or "/a/b") into unescaped
// segments. It refuses empty segments (other than one trailing slash), "."
// and "..", and segments whose unescaped form holds a "/" (an id like
// "a%2Fb" or "%2e%2e%2f").
func segments(escaped string) ([]string, error) {
	escaped = strings.TrimPrefix(escaped, "/")
	escaped = strings.TrimSuffix(escaped, "/")
	if escaped == "" {
		return nil, nil
	}
	raw := strings.Split(escaped, "/")
	out := make([]string, 0, len(raw))
	for _, s := range raw {
		u, err := url.PathUnescape(s)
		if err != nil || u == "" || u == "." || u == ".." || strings.ContainsAny(u, "/\\") {
			return nil, fhir.Errorf(fhir.IssueInvalid, "invalid URL path")
		}
		out = append(out, u)
	}
	return out, nil
}

func errMethod(method string, allow ...string) *fhir.Error {
	e := fhir.Errorf(fhir.IssueNotSupported, "method %s is not allowed here", method)
	e.Status = http.StatusMethodNotAllowed
	e.Header = http.Header{"Allow": {strings.Join(allow, ", ")}}
	return e
}

func errNotImplemented(format string, args ...any) *fhir.Error {
	e := fhir.Errorf(fhir.IssueNotSupported, format, args...)
	e.Status = http.StatusNotImplemented
	return e
}

// route names the interaction of method on the path segments (relative to
// the FHIR base) and fills the target fields. It reads no body.
func route(method string, segs []string, query url.Values) (*Request, error) {
	q := &Request{Method: method, Query: query}
	n := len(segs)
	if n == 0 {
		switch method {
		case http.MethodPost:
			q.Interaction = Batch // refined to Transaction once the body is read
		case http.MethodGet, http.MethodHead:
			q.Interaction = SearchSystem
		default:
			return q, errMethod(method, "GET", "POST")
		}
		return q, nil
	}
	first := segs[0]
	switch {
	case first == "metadata" && n == 1:
		q.Interaction = Capabilities
		if method != http.MethodGet && method != http.MethodHead {
			return q, errMethod(method, "GET")
		}
		return q, nil
	case first == "_history" && n == 1:
		q.Interaction = HistorySystem
		if method != http.MethodGet && method != http.MethodHead {
			return q, errMethod(method, "GET")
		}
		return q, nil
	case strings.HasPrefix(first, "$"):
		q.Interaction = Operation
		return q, fhir.Errorf(fhir.IssueNotFound, "unknown operation %q", first)
	case first == "_search" && n == 1:
		q.Interaction = SearchSystem
		if method != http.MethodPost {
			return q, errMethod(method, "POST")
		}
		return q, nil
	}
	if !fhir.IsResourceType(first) {
		return q, fhir.Errorf(fhir.IssueNotFound, "Unknown resource type %q", first)
	}
	q.Type = first
	if n == 1 {
		return routeType(q, method, query)
	}
	second := segs[1]
	switch {
	case second == "_history" && n == 2:
		q.Interaction = HistoryType
		if method != http.MethodGet && method != http.MethodHead {
			return q, errMethod(method, "GET")
		}
		return q, nil
	case second == "_search" && n == 2:
		q.Interaction = SearchType
		if method != http.MethodPost {
			return q, errMethod(method, "POST")
		}
		return q, nil
	case strings.HasPrefix(second, "$"):
		q.Interaction = Operation
		return q, fhir.Errorf(fhir.IssueNotFound, "unknown operation %q on %s", second, q.Type)
	}
	if !fhir.ValidID(second) {
		return q, fhir.Errorf(fhir.IssueInvalid, "invalid resource id: ids are 1 to 64 letters, digits, '-' or '.'")
	}
	q.ID = second
	switch {
	case n == 2:
		return routeInstance(q, method)
	case n == 3 && segs[2] == "_history":
		q.Interaction = HistoryInstance
		if method != http.MethodGet && method != http.MethodHead {
			return q, errMethod(method, "GET")
		}
		return q, nil
	case n == 4 && segs[2] == "_history":
		q.Interaction = VRead
		if method != http.MethodGet && method != http.MethodHead {
			return q, errMethod(method, "GET")
		}
		v, err := parseVersion(segs[3])
		if err != nil {
			return q, err
		}
		q.Version = v
		return q, nil
	case n == 3 && strings.HasPrefix(segs[2], "$"):
		q.Interaction = Operation
		if !knownOperation(q.Type, segs[2]) {
			return q, fhir.Errorf(fhir.IssueNotFound, "unknown operation %q on %s", segs[2], q.Type)
		}
		q.Operation = segs[2]
		if method != http.MethodGet && method != http.MethodHead {
			return q, errMethod(method, "GET")
		}
		return q, nil
	case n == 3 && q.Type == "Patient" && (fhir.IsResourceType(segs[2]) || segs[2] == "*"):
		q.Interaction = SearchCompart
		q.CompartmentType = segs[2]
		if method != http.MethodGet && method != http.MethodHead {
			return q, errMethod(method, "GET")
		}
		return q, nil
	}
	return q, fhir.Errorf(fhir.IssueNotFound, "no FHIR interaction at this URL")
}

// routeType handles [type] with each method.
func routeType(q *Request, method string, query url.Values) (*Request, error) {
	hasSearch := hasSearchParams(query)
	switch method {
	case http.MethodGet, http.MethodHead:
		q.Interaction = SearchType
	case http.MethodPost:
		q.Interaction = Create
	case http.MethodPut:
		q.Interaction = Update
		if !hasSearch {
			return q, errMethod(method, "GET", "POST")
		}
		q.Conditional = true
	case http.MethodPatch:
		q.Interaction = Patch
		if !hasSearch {
			return q, errMethod(method, "GET", "POST")
		}
		q.Conditional = true
	case http.MethodDelete:
		q.Interaction = Delete
		if !hasSearch {
			return q, errMethod(method, "GET", "POST")
		}
		q.Conditional = true
	default:
		return q, errMethod(method, "GET", "POST")
	}
	return q, nil
}

// routeInstance handles [type]/[id] with each method.
func routeInstance(q *Request, method string) (*Request, error) {
	switch method {
	case http.MethodGet, http.MethodHead:
		q.Interaction = Read
	case http.MethodPut:
		q.Interaction = Update
	case http.MethodPatch:
		q.Interaction = Patch
	case http.MethodDelete:
		q.Interaction = Delete
	default:
		return q, errMethod(method, "GET", "PUT", "PATCH", "DELETE")
	}
	return q, nil
}

// hasSearchParams reports whether query holds anything but result-format
// parameters (which do not make a conditional interaction).
func hasSearchParams(query url.Values) bool {
	for k := range query {
		switch k {
		case "_format", "_pretty", "_summary", "_elements":
		default:
			return true
		}
	}
	return false
}

func parseVersion(s string) (int64, error) {
	v, err := strconv.ParseInt(s, 10, 64)
	if err != nil || v < 1 || strings.HasPrefix(s, "+") {
		return 0, fhir.Errorf(fhir.IssueInvalid, "invalid version id %q: a positive integer is required", truncate(s, 40))
	}
	return v, nil
}

// parseETag parses a FHIR version ETag, W/"n" (the weak marker and quotes
// are optional, as clients vary).
func parseETag(h string) (int64, error) {
	s := strings.TrimSpace(h)
	s = strings.TrimPrefix(s, "W/")
	s = strings.TrimPrefix(s, "w/")
	if len(s) >= 2 && s[0] == '"' && s[len(s)-1] == '"' {
		s = s[1 : len(s)-1]
	}
	v, err := strconv.ParseInt(s, 10, 64)
	if err != nil || v < 1 || strings.HasPrefix(s, "+") {
		return 0, fhir.Errorf(fhir.IssueInvalid, "invalid If-Match: a version ETag like W/\"3\" is required")
	}
	return v, nil
}

// parsePrefer reads return= from Prefer headers.
func parsePrefer(h []string) ReturnPref {
	for _, v := range h {
		for _, part := range strings.Split(v, ",") {
			for _, kv := range strings.Split(part, ";") {
				k, val, ok := strings.Cut(strings.TrimSpace(kv), "=")
				if !ok || !strings.EqualFold(strings.TrimSpace(k), "return") {
					continue
				}
				switch strings.Trim(strings.TrimSpace(val), `"`) {
				case "minimal":
					return ReturnMinimal
				case "OperationOutcome":
					return ReturnOutcome
				case "representation":
					return ReturnRepresentation
				}
			}
		}
	}
	return ReturnRepresentation
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
