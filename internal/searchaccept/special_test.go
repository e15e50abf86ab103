package searchaccept

import (
	"encoding/json"
	"net/http"
	"slices"
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

// TestContainedSearch: what a _contained search answers over HTTP, beyond
// TestQueryTable's matches: the entries of contained resources (fullUrl
// {base}/{container}#{local id}, the contained resource as its container
// holds it), paging and totals, includes, and 400s.
func TestContainedSearch(t *testing.T) {
	ts := servertest.Start(t)
	loadClinic(t, ts)
	type entry struct {
		FullURL  string
		Resource map[string]any
		Search   struct{ Mode string }
	}
	entries := func(path string) ([]entry, int) {
		t.Helper()
		r := get(t, ts.Client, ts.FHIRBase, path)
		var b struct {
			Total *int
			Entry []entry
		}
		if r.Status != http.StatusOK || json.Unmarshal(r.Body, &b) != nil {
			t.Fatalf("%s: %d %.300s", path, r.Status, r.Body)
		}
		total := -1
		if b.Total != nil {
			total = *b.Total
		}
		return b.Entry, total
	}
	es, total := entries("/Observation?_contained=true&_containedType=contained&code=2345-7&_include=Observation:patient")
	if total != 1 || len(es) != 2 {
		t.Fatalf("contained entries: total %d, %d entries: %+v", total, len(es), es)
	}
	m, inc := es[0], es[1]
	if m.FullURL != ts.FHIRBase+"/DiagnosticReport/rep2#c-glu" || m.Search.Mode != "match" || m.Resource["resourceType"] != "Observation" ||
		m.Resource["id"] != "c-glu" || m.Resource["meta"] != nil || m.Resource["valueQuantity"] == nil {
		t.Errorf("contained entry: %+v", m)
	}
	if inc.FullURL != ts.FHIRBase+"/Patient/p2" || inc.Search.Mode != "include" {
		t.Errorf("its include: %+v", inc)
	}
	// Containers: the container's fullUrl, once however many match.
	es, total = entries("/Observation?_contained=true&patient=p2")
	if total != 1 || len(es) != 1 || es[0].FullURL != ts.FHIRBase+"/DiagnosticReport/rep2" || es[0].Resource["contained"] == nil {
		t.Errorf("containers: total %d %+v", total, es)
	}
	// Paged one by one, both directions, the total constant.
	got, total := follow(t, ts.Client, ts, "/Observation?_contained=both&_containedType=contained&patient=p2&_count=1&_sort=-value-quantity")
	if want := obs("o5", "o3", "c-glu", "c-hb"); !slices.Equal(got, want) || total != len(want) {
		t.Errorf("paged: %v (total %d), want %v", got, total, want)
	}
	if p := decodePage(t, get(t, ts.Client, ts.FHIRBase, "/Observation?_contained=true&_summary=count")); p.total != 1 || len(p.matches) != 0 {
		t.Errorf("_summary=count: %+v", p)
	}
	for _, path := range []string{
		"/Observation?_contained=true&_has:DiagnosticReport:result:status=final",
		"/Observation?_contained=maybe",
		"/Observation?_containedType=inside&_contained=true",
		"/Observation?_contained=true&_contained=false",
	} {
		badRequest(t, ts, path)
	}
}
