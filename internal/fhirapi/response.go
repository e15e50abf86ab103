package fhirapi

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/fhirguard/fhirguard/internal/fhir"
)

// Response is the result of executing one Request: what an HTTP response or
// a Bundle entry's response carries.
type Response struct {
	Status   int
	Location string // absolute URL of the version written (create/update)
	// VersionID and LastModified give ETag and Last-Modified when > 0 /
	// non-zero.
	VersionID    int64
	LastModified time.Time
	// Body is the JSON body (resource, Bundle or OperationOutcome); nil
	// means none. IsOutcome marks an OperationOutcome body (it goes to
	// Bundle.entry.response.outcome, not .resource).
	Body      []byte
	IsOutcome bool
	// Count is the number of resources in a searchset or history Bundle
	// (for the audit record).
	Count int
}

// etag returns W/"n".
func etag(v int64) string { return `W/"` + strconv.FormatInt(v, 10) + `"` }

// write sends resp as the HTTP response (no body for HEAD).
func (resp *Response) write(w http.ResponseWriter, r *http.Request) error {
	h := w.Header()
	if resp.Location != "" {
		if resp.Status == http.StatusCreated {
			h.Set("Location", resp.Location)
		} else {
			h.Set("Content-Location", resp.Location)
		}
	}
	if resp.VersionID > 0 {
		h.Set("ETag", etag(resp.VersionID))
	}
	if !resp.LastModified.IsZero() {
		h.Set("Last-Modified", resp.LastModified.UTC().Format(http.TimeFormat))
	}
	if resp.Body != nil {
		h.Set("Content-Type", contentTypeFHIR)
		h.Set("Content-Length", strconv.Itoa(len(resp.Body)))
	}
	w.WriteHeader(resp.Status)
	if resp.Body == nil || r.Method == http.MethodHead {
		return nil
	}
	if _, err := w.Write(resp.Body); err != nil {
		// The status is sent; the client went away. Nothing more to
		// render, so only report it for the log.
		return fmt.Errorf("write response body: %w", err)
	}
	return nil
}

// instant formats t as a FHIR instant (UTC, with as many fractional digits
// as needed, like the store writes meta.lastUpdated).
func instant(t time.Time) string {
	return t.UTC().Format(time.RFC3339Nano)
}

type outcomeIssue struct {
	Severity    string   `json:"severity"`
	Code        string   `json:"code"`
	Diagnostics string   `json:"diagnostics,omitempty"`
	Expression  []string `json:"expression,omitempty"`
}

type outcomeDoc struct {
	ResourceType string         `json:"resourceType"`
	Issue        []outcomeIssue `json:"issue"`
}

// outcome returns an OperationOutcome with one issue.
func outcome(severity string, code fhir.IssueType, diag string, expr ...string) []byte {
	return mustJSON(outcomeDoc{
		ResourceType: "OperationOutcome",
		Issue:        []outcomeIssue{{Severity: severity, Code: string(code), Diagnostics: diag, Expression: expr}},
	})
}

// errorOutcome renders a client-visible error as an OperationOutcome (for
// batch entries; the HTTP path leaves rendering to httpx).
func errorOutcome(fe *fhir.Error) []byte {
	sev := fe.Severity
	if sev == "" {
		sev = "error"
	}
	code := fe.Code
	if code == "" {
		code = fhir.IssueException
	}
	return outcome(sev, code, fe.Diag, fe.Expr...)
}

// mustJSON marshals v without HTML escaping. v is always one of this
// package's own document types, so a failure is a programming error.
func mustJSON(v any) []byte {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		panic(fmt.Sprintf("fhirapi: marshal %T: %v", v, err))
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n"))
}

// statusLine returns "201 Created" for Bundle.entry.response.status.
func statusLine(code int) string {
	return strconv.Itoa(code) + " " + http.StatusText(code)
}

// marshalJSON encodes a Bundle document without HTML escaping. Embedded
// resource bodies (json.RawMessage) are checked and compacted by the
// encoder.
func marshalJSON(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, fmt.Errorf("marshal %T: %w", v, err)
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}
