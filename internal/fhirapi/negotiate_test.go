package fhirapi

import (
	"net/http"
	"strings"
	"testing"

	"github.com/fhirguard/fhirguard/internal/store"
)

func TestNegotiation(t *testing.T) {
	t.Parallel()
	eachStore(t, func(t *testing.T, h *harness) {
		id := h.create("Patient", patientJSON)
		read := "/fhir/Patient/" + id
		tests := []struct {
			name, method, path, body string
			hdr                      []string
			status                   int
		}{
			{"ok/no-accept", "GET", read, "", nil, 200},
			{"ok/accept-fhir-json", "GET", read, "", []string{"Accept: application/fhir+json"}, 200},
			{"ok/accept-json", "GET", read, "", []string{"Accept: application/json"}, 200},
			{"ok/accept-fhir-version", "GET", read, "", []string{"Accept: application/fhir+json; fhirVersion=4.0"}, 200},
			{"ok/accept-browser", "GET", read, "", []string{"Accept: text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"}, 200},
			{"ok/accept-xml-or-json", "GET", read, "", []string{"Accept: application/fhir+xml, application/fhir+json;q=0.5"}, 200},
			{"ok/format-json", "GET", read + "?_format=json", "", nil, 200},
			{"ok/format-fhir-json", "GET", read + "?_format=application/fhir%2Bjson", "", nil, 200},
			{"ok/format-wins-over-accept", "GET", read + "?_format=json", "", []string{"Accept: application/fhir+xml"}, 200},
			{"fail/accept-xml", "GET", read, "", []string{"Accept: application/fhir+xml"}, 415},
			{"fail/accept-xml-text", "GET", read, "", []string{"Accept: text/xml"}, 415},
			{"fail/accept-json-q0", "GET", read, "", []string{"Accept: application/fhir+json;q=0, application/xml"}, 415},
			{"fail/format-xml", "GET", read + "?_format=xml", "", nil, 415},
			{"fail/format-ttl", "GET", read + "?_format=ttl", "", nil, 415},
			{"fail/fhir-version-5", "GET", read, "", []string{"Accept: application/fhir+json; fhirVersion=5.0"}, 406},
			{"fail/fhir-version-3", "GET", "/fhir/metadata", "", []string{"Accept: application/fhir+json; fhirVersion=3.0"}, 406},
			{"ok/body-json", "POST", "/fhir/Patient", patientJSON, []string{"Content-Type: application/json"}, 201},
			{"ok/body-charset", "POST", "/fhir/Patient", patientJSON, []string{"Content-Type: application/fhir+json; charset=UTF-8"}, 201},
			{"fail/body-xml", "POST", "/fhir/Patient", `<Patient xmlns="http://hl7.org/fhir"/>`, []string{"Content-Type: application/fhir+xml"}, 415},
			{"fail/body-text", "POST", "/fhir/Patient", patientJSON, []string{"Content-Type: text/plain"}, 415},
			{"fail/body-latin1", "POST", "/fhir/Patient", patientJSON, []string{"Content-Type: application/fhir+json; charset=iso-8859-1"}, 415},
			{"fail/body-version-5", "POST", "/fhir/Patient", patientJSON, []string{"Content-Type: application/fhir+json; fhirVersion=5.0"}, 415},
			{"fail/body-garbage-type", "POST", "/fhir/Patient", patientJSON, []string{"Content-Type: ;;;"}, 415},
		}
		for _, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				r := h.do(tc.method, tc.path, tc.body, tc.hdr...)
				if r.Status != tc.status {
					t.Fatalf("status %d, want %d: %s", r.Status, tc.status, r.Body)
				}
				if ct := r.Header.Get("Content-Type"); ct != "application/fhir+json; charset=utf-8" {
					t.Errorf("Content-Type %q", ct)
				}
				if r.Status >= 400 {
					code, _, _ := issue(t, r)
					if code != "not-supported" {
						t.Errorf("issue code %q", code)
					}
				}
			})
		}
	})
}

func TestMetadata(t *testing.T) {
	t.Parallel()
	eachStore(t, func(t *testing.T, h *harness) {
		r := h.do("GET", "/fhir/metadata", "")
		if r.Status != http.StatusOK {
			t.Fatalf("metadata: %d %s", r.Status, r.Body)
		}
		cs := r.json(t)
		if cs["resourceType"] != "CapabilityStatement" || cs["fhirVersion"] != "4.0.1" || cs["kind"] != "instance" {
			t.Fatalf("capability statement: %s", r.Body)
		}
		if _, ok := cs["software"]; ok {
			t.Errorf("software is advertised: %v", cs["software"])
		}
		rest, _ := asSlice(cs["rest"])[0].(map[string]any)
		var sys []string
		for _, x := range asSlice(rest["interaction"]) {
			sys = append(sys, x.(map[string]any)["code"].(string))
		}
		_, searches := h.store.(store.Searcher)
		wantSys, wantPat := "transaction,batch,history-system", "read,vread,update,patch,delete,history-instance,history-type,create"
		if searches {
			wantSys, wantPat = wantSys+",search-system", wantPat+",search-type"
		}
		if strings.Join(sys, ",") != wantSys {
			t.Errorf("system interactions %v", sys)
		}
		res := asSlice(rest["resource"])
		if len(res) < 140 {
			t.Fatalf("%d resource types, want every R4 type", len(res))
		}
		var pat map[string]any
		for _, x := range res {
			if m := x.(map[string]any); m["type"] == "Patient" {
				pat = m
			}
		}
		if pat["versioning"] != "versioned" || pat["readHistory"] != true || pat["updateCreate"] != true ||
			pat["conditionalCreate"] != searches || pat["conditionalUpdate"] != searches ||
			(pat["conditionalDelete"] == "not-supported") == searches {
			t.Errorf("Patient capabilities %v", pat)
		}
		var ia []string
		for _, x := range asSlice(pat["interaction"]) {
			ia = append(ia, x.(map[string]any)["code"].(string))
		}
		if strings.Join(ia, ",") != wantPat {
			t.Errorf("Patient interactions %v", ia)
		}
		// Every advertised type-level interaction really answers.
		id := h.create("Observation", `{"resourceType":"Observation","status":"final","code":{"text":"x"}}`)
		for _, c := range []struct{ method, path, body, ct string }{
			{"GET", "/fhir/Observation/" + id, "", ""},
			{"GET", "/fhir/Observation/" + id + "/_history/1", "", ""},
			{"PUT", "/fhir/Observation/" + id, `{"resourceType":"Observation","id":"` + id + `","status":"amended","code":{"text":"x"}}`, ""},
			{"PATCH", "/fhir/Observation/" + id, `[{"op":"replace","path":"/status","value":"final"}]`, "application/json-patch+json"},
			{"GET", "/fhir/Observation/" + id + "/_history", "", ""},
			{"GET", "/fhir/Observation/_history", "", ""},
			{"GET", "/fhir/_history", "", ""},
			{"DELETE", "/fhir/Observation/" + id, "", ""},
		} {
			var hdr []string
			if c.ct != "" {
				hdr = append(hdr, "Content-Type: "+c.ct)
			}
			if r := h.do(c.method, c.path, c.body, hdr...); r.Status != http.StatusOK {
				t.Errorf("%s %s: %d %s", c.method, c.path, r.Status, r.Body)
			}
		}
	})
}
