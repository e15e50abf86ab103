package fhirapi

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite testdata/golden/*.golden")

// TestGolden pins the exact responses (status, FHIR headers, body) of a
// scripted session on the in-memory store, with a fake clock and a
// counting id source so the output is stable.
func TestGolden(t *testing.T) {
	t.Parallel()
	h := newHarness(t, "mem")
	n := 0
	h.api.newID = func() string {
		n++
		return fmt.Sprintf("00000000-0000-4000-8000-%012d", n)
	}
	jp := "Content-Type: application/json-patch+json"
	steps := []struct {
		name, method, path, body string
		hdr                      []string
	}{
		{"create", "POST", "/fhir/Patient", `{"resourceType":"Patient","id":"ignored","meta":{"versionId":"9","tag":[{"system":"http://x.test/tags","code":"t"}]},"name":[{"family":"Shaw","given":["Amy"]}],"birthDate":"1987-02-20"}`, nil},
		{"update", "PUT", "/fhir/Patient/00000000-0000-4000-8000-000000000001", `{"resourceType":"Patient","id":"00000000-0000-4000-8000-000000000001","active":true}`, []string{`If-Match: W/"1"`}},
		{"patch-outcome", "PATCH", "/fhir/Patient/00000000-0000-4000-8000-000000000001", `[{"op":"add","path":"/gender","value":"female"}]`, []string{jp, "Prefer: return=OperationOutcome"}},
		{"delete", "DELETE", "/fhir/Patient/00000000-0000-4000-8000-000000000001", "", nil},
		{"read-deleted", "GET", "/fhir/Patient/00000000-0000-4000-8000-000000000001", "", nil},
		{"history-instance", "GET", "/fhir/Patient/00000000-0000-4000-8000-000000000001/_history?_count=2", "", nil},
		{"transaction", "POST", "/fhir", bundle("transaction",
			entry("urn:uuid:aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa", "POST", "Patient", `{"resourceType":"Patient","name":[{"family":"Tx"}]}`),
			entry("", "POST", "Observation", `{"resourceType":"Observation","status":"final","code":{"text":"heart rate"},"subject":{"reference":"urn:uuid:aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa"},"valueQuantity":{"value":72.50,"unit":"/min"}}`),
			entry("", "PUT", "Practitioner/dr1", `{"resourceType":"Practitioner","id":"dr1"}`)), nil},
		{"transaction-failure", "POST", "/fhir", bundle("transaction",
			entry("", "POST", "Patient", `{"resourceType":"Patient"}`),
			entry("", "POST", "Patient", `{"resourceType":"Patient","birthDate":"tomorrow"}`)), nil},
		{"batch", "POST", "/fhir", bundle("batch",
			entry("", "GET", "Practitioner/dr1", ""),
			entry("", "GET", "Practitioner/nobody", ""),
			entry("", "POST", "Observation", `{"resourceType":"Observation","code":{"text":"x"}}`)), []string{"Prefer: return=minimal"}},
		{"error-unknown-element", "POST", "/fhir/Patient", `{"resourceType":"Patient","colour":"red"}`, nil},
	}
	for _, s := range steps {
		h.clock.Advance(time.Second)
		r := h.do(s.method, s.path, s.body, s.hdr...)
		got := render(t, s.method+" "+s.path, r)
		file := filepath.Join("testdata", "golden", s.name+".golden")
		if *update {
			if err := os.MkdirAll(filepath.Dir(file), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(file, got, 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		want, err := os.ReadFile(file)
		if err != nil {
			t.Fatalf("%s: %v (run go test ./internal/fhirapi -run TestGolden -update)", s.name, err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s: response differs from %s\n--- got\n%s\n--- want\n%s", s.name, file, got, want)
		}
	}
}

// render prints status, the FHIR headers and the indented body.
func render(t *testing.T, req string, r *reply) []byte {
	t.Helper()
	var b bytes.Buffer
	fmt.Fprintf(&b, "%s\n%d\n", req, r.Status)
	for _, k := range []string{"Content-Type", "Location", "Content-Location", "ETag", "Last-Modified"} {
		if v := r.Header.Get(k); v != "" {
			fmt.Fprintf(&b, "%s: %s\n", k, v)
		}
	}
	b.WriteString("\n")
	if len(r.Body) > 0 {
		if err := json.Indent(&b, r.Body, "", "  "); err != nil {
			t.Fatalf("%s: body is not JSON: %v", req, err)
		}
		b.WriteString("\n")
	}
	return []byte(strings.ReplaceAll(b.String(), "\r", ""))
}
