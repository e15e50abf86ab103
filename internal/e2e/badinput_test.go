package e2e

import (
	"bytes"
	"io"
	"net/http"
	"strings"
	"testing"
)

// TestBadInput is the catalog of hostile or broken requests: each gets a
// 4xx OperationOutcome (never a 500, never internals in the body; do
// checks both on every answer).
func TestBadInput(t *testing.T) {
	t.Parallel()
	c := start(t)
	r := c.doJSON("POST", "/Patient", `{"resourceType":"Patient","active":true}`)
	if r.Status != http.StatusCreated {
		t.Fatalf("create: %d %s", r.Status, r.Body)
	}
	id := idFromLocation(t, r.Header.Get("Location"), "Patient")
	put := `{"resourceType":"Patient","id":"` + id + `"}`
	deep := strings.Repeat(`{"a":[`, 5000) + strings.Repeat(`]}`, 5000)
	deepRes := `{"resourceType":"Patient","extension":` + strings.Repeat(`[`, 10000) + strings.Repeat(`]`, 10000) + `}`
	tests := []struct {
		name, method, path string
		body               io.Reader
		hdr                []string
		status             int
	}{
		{"fail/malformed-json", "POST", "/Patient", strings.NewReader(`{"resourceType":"Patient",`), nil, 400},
		{"fail/not-json", "POST", "/Patient", strings.NewReader(`hello`), nil, 400},
		{"fail/nested-10000-objects", "POST", "/Patient", strings.NewReader(deep), nil, 400},
		{"fail/nested-10000-arrays", "POST", "/Patient", strings.NewReader(deepRes), nil, 400},
		{"fail/body-20MiB", "POST", "/Patient", bytes.NewReader(hugeBody(20 << 20)), nil, 413},
		{"fail/body-20MiB-chunked", "POST", "/Patient", io.MultiReader(strings.NewReader(""), bytes.NewReader(hugeBody(20<<20))), nil, 413},
		{"fail/wrong-resourceType", "POST", "/Patient", strings.NewReader(`{"resourceType":"Observation","status":"final","code":{"text":"x"}}`), nil, 400},
		{"fail/wrong-resourceType-put", "PUT", "/Patient/" + id, strings.NewReader(`{"resourceType":"Observation","id":"` + id + `"}`), nil, 400},
		{"fail/id-65-chars", "GET", "/Patient/" + strings.Repeat("a", 65), nil, nil, 400},
		{"fail/id-65-chars-put", "PUT", "/Patient/" + strings.Repeat("a", 65), strings.NewReader(`{"resourceType":"Patient","id":"` + strings.Repeat("a", 65) + `"}`), nil, 400},
		{"fail/unknown-element", "POST", "/Patient", strings.NewReader(`{"resourceType":"Patient","colour":"red"}`), nil, 400},
		{"fail/resourceType-missing", "POST", "/Patient", strings.NewReader(`{"active":true}`), nil, 400},
		{"fail/duplicate-keys", "POST", "/Patient", strings.NewReader(`{"resourceType":"Patient","active":true,"active":false}`), nil, 400},
		{"fail/invalid-utf8", "POST", "/Patient", bytes.NewReader([]byte("{\"resourceType\":\"Patient\",\"name\":[{\"family\":\"\xff\xfe\"}]}")), nil, 400},
		{"fail/xml-body", "POST", "/Patient", strings.NewReader(`<Patient xmlns="http://hl7.org/fhir"/>`), []string{"Content-Type: application/fhir+xml"}, 415},
		{"fail/xml-accept", "GET", "/Patient/" + id, nil, []string{"Accept: application/fhir+xml"}, 415},
		{"fail/format-xml", "GET", "/Patient/" + id + "?_format=xml", nil, nil, 415},
		{"fail/fhir-version-5", "GET", "/Patient/" + id, nil, []string{"Accept: application/fhir+json; fhirVersion=5.0"}, 406},
		{"fail/traversal-dotdot", "GET", "/Patient/../Patient/" + id + "/../x", nil, nil, 404},
		{"fail/traversal-encoded", "GET", "/Patient/%2e%2e%2f" + id, nil, nil, 400},
		{"fail/traversal-encoded-slash", "GET", "/Patient/..%2F..%2Fetc%2Fpasswd", nil, nil, 400},
		{"fail/method-delete-type", "DELETE", "/Patient", nil, nil, 405},
		{"fail/method-put-type", "PUT", "/Patient", strings.NewReader(put), nil, 405},
		{"fail/method-post-instance", "POST", "/Patient/" + id, strings.NewReader(put), nil, 405},
		{"fail/method-trace", "TRACE", "/Patient/" + id, nil, nil, 405},
		{"fail/unknown-type", "GET", "/Patientx/" + id, nil, nil, 404},
		{"fail/unknown-type-create", "POST", "/Frobnicator", strings.NewReader(`{"resourceType":"Frobnicator"}`), nil, 404},
		{"fail/bad-count", "GET", "/Patient/_history?_count=lots", nil, nil, 400},
		{"fail/bad-since", "GET", "/_history?_since=last-tuesday", nil, nil, 400},
		{"fail/bad-cursor", "GET", "/_history?_cursor=%27%20OR%201=1", nil, nil, 400},
		{"fail/bad-if-match", "PUT", "/Patient/" + id, strings.NewReader(put), []string{"If-Match: version-one"}, 400},
		{"fail/stale-if-match", "PUT", "/Patient/" + id, strings.NewReader(put), []string{`If-Match: W/"99"`}, 412},
		{"fail/transaction-not-bundle", "POST", "", strings.NewReader(`{"resourceType":"Patient"}`), nil, 400},
		{"fail/transaction-wrong-type", "POST", "", strings.NewReader(`{"resourceType":"Bundle","type":"collection","entry":[]}`), nil, 400},
		{"fail/empty-body", "POST", "/Patient", strings.NewReader(""), nil, 400},
		{"fail/unknown-version", "GET", "/Patient/" + id + "/_history/7", nil, nil, 404},
		{"fail/sql-in-id", "GET", "/Patient/1'%20OR%20'1'='1", nil, nil, 400},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := c.do(tc.method, tc.path, tc.body, tc.hdr...)
			if r.Status != tc.status {
				t.Fatalf("status %d, want %d: %.400s", r.Status, tc.status, r.Body)
			}
			outcome(t, r)
		})
	}
}

// hugeBody is a syntactically plausible Patient of n bytes.
func hugeBody(n int) []byte {
	head := `{"resourceType":"Patient","text":{"status":"generated","div":"<div xmlns=\"http://www.w3.org/1999/xhtml\">`
	tail := `</div>"}}`
	return []byte(head + strings.Repeat("x", n-len(head)-len(tail)) + tail)
}
