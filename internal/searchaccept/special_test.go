package searchaccept

import (
	"encoding/json"
	"net/http"
	"testing"

	"github.com/fhirguard/fhirguard/internal/server/servertest"
)

// badRequest asserts a 400 OperationOutcome for path.
func badRequest(t *testing.T, ts *servertest.TestServer, path string) {
	t.Helper()
	r := get(t, ts.Client, ts.FHIRBase, path)
	var oo struct {
		ResourceType string
		Issue        []struct{ Severity, Code, Diagnostics string }
	}
	if r.Status != http.StatusBadRequest || json.Unmarshal(r.Body, &oo) != nil || oo.ResourceType != "OperationOutcome" || len(oo.Issue) == 0 {
		t.Errorf("%s: %d %.300s, want a 400 OperationOutcome", path, r.Status, r.Body)
	}
}

// TestNearBadValues: every malformed near value is a 400 OperationOutcome.
func TestNearBadValues(t *testing.T) {
	ts := servertest.Start(t)
	for _, path := range []string{
		"/Location?near=abc",
		"/Location?near=abc|def",
		"/Location?near=91|0",
		"/Location?near=-90.5|0|1|km",
		"/Location?near=42|181",
		"/Location?near=42|-71|-5|km",
		"/Location?near=42|-71|x|km",
		"/Location?near=42|-71|5|furlong",
		"/Location?near=42|-71|5|mi_us",
		"/Location?near=42|-71|5|km|extra",
		"/Location?near:exact=42|-71",
		"/Location?_sort=near",
		"/Observation?near=42|-71",
	} {
		badRequest(t, ts, path)
	}
}
