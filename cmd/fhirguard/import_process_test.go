package main

import (
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestImportWhileServing: `fhirguard import` writes into the data directory
// of a running server; the server serves the imported resources at once,
// a bad line is reported with its line number and the exit status is 1.
func TestImportWhileServing(t *testing.T) {
	t.Parallel()
	data := t.TempDir()
	p := startProc(t, "--dev", "--data", data, "--addr", "127.0.0.1:0")
	requireFHIR(t, p)

	file := filepath.Join(t.TempDir(), "set.ndjson")
	lines := []string{
		`{"resourceType":"Patient","id":"imp-1","name":[{"family":"Imported"}]}`,
		`{"resourceType":"Observation","id":"imp-obs","status":"final","code":{"text":"hr"},"subject":{"reference":"Patient/imp-1"},"valueQuantity":{"value":72.0,"unit":"/min"}}`,
		`{"resourceType":"Patient","id":"imp-2","foo":true}`,
	}
	if err := os.WriteFile(file, []byte(strings.Join(lines, "\n")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	code, stdout, stderr := runCmd(t, "import", "--data", data, "--quiet", file)
	if code != 1 {
		t.Fatalf("import exit %d (want 1: one bad line)\nstdout: %s\nstderr: %s", code, stdout, stderr)
	}
	if !strings.Contains(stderr, "set.ndjson:3:") || !strings.Contains(stderr, "foo") {
		t.Fatalf("stderr lacks the line-3 error naming foo:\n%s", stderr)
	}
	if !strings.Contains(stdout, "imported 2 resources (1 failed)") {
		t.Fatalf("stdout: %s", stdout)
	}
	for _, path := range []string{"/fhir/Patient/imp-1", "/fhir/Observation/imp-obs"} {
		status, body := fetch(t, p, p.url+path)
		if status != http.StatusOK {
			t.Fatalf("GET %s from the running server: %d %s", path, status, body)
		}
	}
	if status, _ := fetch(t, p, p.url+"/fhir/Patient/imp-2"); status != http.StatusNotFound {
		t.Fatalf("rejected resource readable: %d", status)
	}
	// The decimal keeps its precision through import.
	if _, body := fetch(t, p, p.url+"/fhir/Observation/imp-obs"); !strings.Contains(string(body), `"value":72.0`) {
		t.Fatalf("decimal changed: %s", body)
	}
}
