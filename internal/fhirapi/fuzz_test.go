package fhirapi

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// FuzzHandler throws arbitrary methods, paths, headers and bodies at the
// whole FHIR handler (parse and execute, on the in-memory store): it must
// never panic, never answer 500, and never leak internals.
func FuzzHandler(f *testing.F) {
	seeds := []struct{ method, path, ctype, ifMatch, body string }{
		{"GET", "/fhir/metadata", "", "", ""},
		{"GET", "/fhir/Patient/p1", "", "", ""},
		{"PUT", "/fhir/Patient/p1", "application/fhir+json", "", `{"resourceType":"Patient","id":"p1","active":true}`},
		{"PUT", "/fhir/Patient/p1", "application/fhir+json", `W/"1"`, `{"resourceType":"Patient","id":"p1"}`},
		{"POST", "/fhir/Observation", "application/fhir+json", "", `{"resourceType":"Observation","status":"final","code":{"text":"x"}}`},
		{"PATCH", "/fhir/Patient/p1", "application/json-patch+json", "", `[{"op":"add","path":"/gender","value":"female"}]`},
		{"DELETE", "/fhir/Patient/p1", "", "", ""},
		{"GET", "/fhir/Patient/p1/_history?_count=2&_since=2025-01-01T00:00:00Z", "", "", ""},
		{"GET", "/fhir/_history?_cursor=3", "", "", ""},
		{"GET", "/fhir/Patient/%2e%2e%2fx", "", "", ""},
		{"POST", "/fhir", "application/fhir+json", "", bundle("transaction",
			entry("urn:uuid:a", "POST", "Patient", `{"resourceType":"Patient"}`),
			entry("", "POST", "Observation", `{"resourceType":"Observation","status":"final","code":{"text":"x"},"subject":{"reference":"urn:uuid:a"}}`),
			entry("", "GET", "Patient/p1/_history/1", ""))},
		{"POST", "/fhir", "application/fhir+json", "", bundle("batch",
			entry("", "PATCH", "Patient/p1", `{"resourceType":"Binary","contentType":"application/json-patch+json","data":"W10="}`),
			entry("", "DELETE", "Patient/p1", ""))},
	}
	for _, s := range seeds {
		f.Add(s.method, s.path, s.ctype, s.ifMatch, s.body)
	}
	h := newHarness(f, "mem")
	f.Fuzz(func(t *testing.T, method, path, ctype, ifMatch, body string) {
		if !strings.HasPrefix(path, "/fhir") {
			path = "/fhir/" + path
		}
		req, err := http.NewRequest(method, "http://fhir.test"+path, strings.NewReader(body))
		if err != nil {
			return // not a request a client could send
		}
		req.Header.Set("Content-Type", ctype)
		req.Header.Set("If-Match", ifMatch)
		rec := httptest.NewRecorder()
		h.h.ServeHTTP(rec, req)
		if rec.Code >= 500 && rec.Code != http.StatusNotImplemented {
			t.Fatalf("%s %s: %d %s", method, path, rec.Code, rec.Body.Bytes())
		}
		if rec.Code >= 400 && leak.Match(rec.Body.Bytes()) {
			t.Fatalf("%s %s: leaks internals: %s", method, path, rec.Body.Bytes())
		}
	})
}
