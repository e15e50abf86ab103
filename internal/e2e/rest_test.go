package e2e

import (
	"encoding/json"
	"io"
	"net/http"
	"regexp"
	"strings"
	"testing"
)

var uuidRE = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)

// TestVersionScope covers RESIL-10: FHIR 4.0.1 declared, other versions
// refused, server ids random UUIDs.
func TestVersionScope(t *testing.T) {
	t.Parallel()
	c := start(t)
	r := c.doJSON("GET", "/metadata", "")
	if r.Status != http.StatusOK {
		t.Fatalf("metadata: %d %s", r.Status, r.Body)
	}
	cs := decode(t, r.Body)
	if cs["fhirVersion"] != "4.0.1" {
		t.Errorf("fhirVersion %v", cs["fhirVersion"])
	}
	if _, ok := cs["software"]; ok {
		t.Errorf("CapabilityStatement names software: %v", cs["software"])
	}
	if r := c.doJSON("GET", "/metadata", "", "Accept: application/fhir+json; fhirVersion=5.0"); r.Status != http.StatusNotAcceptable {
		t.Errorf("fhirVersion=5.0: %d", r.Status)
	}
	seen := map[string]bool{}
	var prev string
	for range 100 {
		r := c.doJSON("POST", "/Patient", `{"resourceType":"Patient"}`, "Prefer: return=minimal")
		if r.Status != http.StatusCreated || len(r.Body) != 0 {
			t.Fatalf("create: %d %q", r.Status, r.Body)
		}
		id := idFromLocation(t, r.Header.Get("Location"), "Patient")
		if !uuidRE.MatchString(id) || seen[id] || (prev != "" && id[:8] == prev[:8]) {
			t.Fatalf("id %q after %q: not a fresh random UUID", id, prev)
		}
		seen[id], prev = true, id
	}
}

// TestHistoryLinks follows Bundle.link next as a client would, with the
// absolute URLs the server hands out.
func TestHistoryLinks(t *testing.T) {
	t.Parallel()
	c := start(t)
	for range 25 {
		if r := c.doJSON("POST", "/Observation", `{"resourceType":"Observation","status":"final","code":{"text":"hr"}}`); r.Status != http.StatusCreated {
			t.Fatalf("create: %d %s", r.Status, r.Body)
		}
	}
	next := c.ts.FHIRBase + "/Observation/_history?_count=10"
	got := map[string]bool{}
	for pages := 0; next != ""; pages++ {
		if pages > 3 {
			t.Fatal("more pages than 25 entries need")
		}
		if !strings.HasPrefix(next, c.ts.FHIRBase+"/") {
			t.Fatalf("link %q is not under the server's base %s", next, c.ts.FHIRBase)
		}
		resp, err := c.ts.Client.Get(next)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		var b struct {
			Total json.Number `json:"total"`
			Link  []struct{ Relation, URL string }
			Entry []struct{ FullURL string }
		}
		if err := json.Unmarshal(body, &b); err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("GET %s: %d %v", next, resp.StatusCode, err)
		}
		if b.Total != "25" {
			t.Errorf("total %s", b.Total)
		}
		for _, e := range b.Entry {
			if got[e.FullURL] {
				t.Errorf("%s on two pages", e.FullURL)
			}
			got[e.FullURL] = true
		}
		next = ""
		for _, l := range b.Link {
			if l.Relation == "next" {
				next = l.URL
			}
		}
	}
	if len(got) != 25 {
		t.Errorf("%d distinct entries over all pages, want 25", len(got))
	}
}
