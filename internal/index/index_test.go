package index

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/fhirguard/fhirguard/internal/fhir/searchparam"
	"github.com/fhirguard/fhirguard/internal/store"
)

// decode parses FHIR JSON the project way (json.Number numbers).
func decode(t testing.TB, s string) map[string]any {
	t.Helper()
	d := json.NewDecoder(bytes.NewReader([]byte(s)))
	d.UseNumber()
	var m map[string]any
	if err := d.Decode(&m); err != nil {
		t.Fatalf("decode: %v", err)
	}
	return m
}

func newIndexer(t testing.TB) *Indexer {
	t.Helper()
	ix, err := New()
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return ix
}

func TestIndex(t *testing.T) {
	t.Parallel()
	ix := newIndexer(t)
	tests := []struct {
		name         string
		typ, body    string
		wantPatients []string
		wantLabels   []store.Coding
		wantErr      bool
	}{
		{
			name: "ok/observation-subject-performer",
			typ:  "Observation",
			body: `{"resourceType":"Observation","id":"o1","status":"final",
				"code":{"coding":[{"system":"http://loinc.org","code":"8867-4"}]},
				"subject":{"reference":"Patient/pA"},
				"performer":[{"reference":"Practitioner/drA"},{"reference":"Patient/pB"},{"reference":"Patient/pA"}],
				"valueQuantity":{"value":72,"unit":"/min"}}`,
			wantPatients: []string{"pA", "pB"},
		},
		{
			name: "ok/observation-group-subject-not-patient",
			typ:  "Observation",
			body: `{"resourceType":"Observation","id":"o2","status":"final","code":{"text":"x"},
				"subject":{"reference":"Group/g1"}}`,
		},
		{
			name: "ok/encounter",
			typ:  "Encounter",
			body: `{"resourceType":"Encounter","id":"e1","status":"finished","class":{"code":"AMB"},
				"subject":{"reference":"Patient/pA","display":"Alice"},
				"participant":[{"individual":{"reference":"Practitioner/drA"}}]}`,
			wantPatients: []string{"pA"},
		},
		{
			name: "ok/patient-own-and-link",
			typ:  "Patient",
			body: `{"resourceType":"Patient","id":"pA","name":[{"family":"Smith"}],
				"link":[{"other":{"reference":"Patient/pOld"},"type":"replaces"},
				        {"other":{"reference":"RelatedPerson/rp1"},"type":"seealso"}]}`,
			wantPatients: []string{"pA", "pOld"},
		},
		{
			name: "ok/allergy-recorder-asserter",
			typ:  "AllergyIntolerance",
			body: `{"resourceType":"AllergyIntolerance","id":"a1",
				"patient":{"reference":"Patient/pA"},
				"recorder":{"reference":"Practitioner/drA"},
				"asserter":{"reference":"Patient/pC"}}`,
			wantPatients: []string{"pA", "pC"},
		},
		{
			name: "ok/absolute-and-versioned-urls",
			typ:  "Condition",
			body: `{"resourceType":"Condition","id":"c1",
				"subject":{"reference":"https://ehr.example.org/fhir/Patient/pA/_history/3"},
				"asserter":{"reference":"http://other.example/base/Patient/pZ"}}`,
			wantPatients: []string{"pA", "pZ"},
		},
		{
			name:         "ok/versioned-relative",
			typ:          "Observation",
			body:         `{"resourceType":"Observation","id":"o3","subject":{"reference":"Patient/pA/_history/2"}}`,
			wantPatients: []string{"pA"},
		},
		{
			name: "ok/ignored-references",
			typ:  "Observation",
			body: `{"resourceType":"Observation","id":"o4",
				"contained":[{"resourceType":"Patient","id":"p1"}],
				"subject":{"reference":"#p1"},
				"performer":[{"reference":"urn:uuid:0b9f0b4a-8a51-4d0e-9f5e-6a1d1b9a6d00"},
				             {"identifier":{"system":"urn:mrn","value":"123"}},
				             {"reference":"Patient/bad id"}]}`,
		},
		{
			name: "ok/security-labels",
			typ:  "Observation",
			body: `{"resourceType":"Observation","id":"o-psy","subject":{"reference":"Patient/pA"},
				"meta":{"security":[
					{"system":"http://terminology.hl7.org/CodeSystem/v3-Confidentiality","code":"R"},
					{"system":"http://terminology.hl7.org/CodeSystem/v3-ActCode","code":"PSY"},
					{"system":"http://terminology.hl7.org/CodeSystem/v3-Confidentiality","code":"R"},
					{"system":"http://example.org/no-code"}]}}`,
			wantPatients: []string{"pA"},
			wantLabels: []store.Coding{
				{System: "http://terminology.hl7.org/CodeSystem/v3-ActCode", Code: "PSY"},
				{System: "http://terminology.hl7.org/CodeSystem/v3-Confidentiality", Code: "R"},
			},
		},
		{
			name: "ok/provenance-target-patient",
			typ:  "Provenance",
			body: `{"resourceType":"Provenance","id":"pv1","recorded":"2024-01-01T00:00:00Z",
				"target":[{"reference":"Observation/o1"},{"reference":"Patient/pA"}],
				"agent":[{"who":{"reference":"Practitioner/drA"}}]}`,
			wantPatients: []string{"pA"},
		},
		{
			name: "ok/not-in-compartment-type",
			typ:  "Organization",
			body: `{"resourceType":"Organization","id":"org1","name":"Acme"}`,
		},
		{
			name:         "ok/no-resourceType-in-body",
			typ:          "Encounter",
			body:         `{"id":"e2","subject":{"reference":"Patient/pA"}}`,
			wantPatients: []string{"pA"},
		},
		{name: "fail/type-mismatch", typ: "Observation", body: `{"resourceType":"Patient","id":"x"}`, wantErr: true},
		{name: "fail/unknown-type", typ: "Nope", body: `{"id":"x"}`, wantErr: true},
		{name: "fail/patient-without-id", typ: "Patient", body: `{"resourceType":"Patient"}`, wantErr: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := ix.Index(tc.typ, decode(t, tc.body))
			if (err != nil) != tc.wantErr {
				t.Fatalf("Index err = %v, wantErr %v", err, tc.wantErr)
			}
			if err != nil {
				return
			}
			if !slices.Equal(got.Patients, tc.wantPatients) {
				t.Errorf("Patients = %q, want %q", got.Patients, tc.wantPatients)
			}
			if !slices.Equal(got.Labels, tc.wantLabels) {
				t.Errorf("Labels = %v, want %v", got.Labels, tc.wantLabels)
			}
		})
	}
}

// TestCompartmentEveryType builds, for every compartment parameter of every
// type, a resource holding Patient/p1 at that parameter's path (the first
// union member, without its where() filter) and checks p1 is found.
func TestCompartmentEveryType(t *testing.T) {
	t.Parallel()
	ix := newIndexer(t)
	types := searchparam.CompartmentTypes("Patient")
	if len(types) < 60 {
		t.Fatalf("compartment covers %d types", len(types))
	}
	for _, typ := range types {
		for _, code := range searchparam.CompartmentParams("Patient", typ) {
			p, _ := searchparam.Lookup(typ, code)
			path := strings.TrimSpace(strings.Split(p.Expression, "|")[0])
			if i := strings.Index(path, ".where("); i >= 0 {
				path = path[:i]
			}
			steps := strings.Split(path, ".")[1:]
			var leaf any = map[string]any{"reference": "Patient/p1"}
			for i := len(steps) - 1; i >= 0; i-- {
				leaf = map[string]any{steps[i]: []any{leaf}}
			}
			res := leaf.(map[string]any)
			res["resourceType"], res["id"] = typ, "x1"
			if typ == "Patient" {
				res["id"] = "p0"
			}
			got, err := ix.Index(typ, res)
			if err != nil {
				t.Errorf("%s.%s: %v", typ, code, err)
				continue
			}
			if !slices.Contains(got.Patients, "p1") {
				t.Errorf("%s.%s (%s): patients %q lack p1", typ, code, path, got.Patients)
			}
		}
	}
}

// TestConcurrentUse shares one Indexer between goroutines (run with -race).
func TestConcurrentUse(t *testing.T) {
	t.Parallel()
	ix := newIndexer(t)
	obs := readTestdata(t, "observation-bp.json")
	want, err := ix.Rows("Observation", obs)
	if err != nil {
		t.Fatal(err)
	}
	wantFlat := flat(want)
	var wg sync.WaitGroup
	errs := make(chan string, 8)
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 20 {
				e, err := ix.Index("Observation", obs)
				if err != nil || !slices.Equal(e.Patients, []string{"pA"}) {
					errs <- fmt.Sprintf("Index: %v %v", e, err)
					return
				}
				r, err := ix.Rows("Observation", obs)
				if err != nil || !slices.Equal(flat(r), wantFlat) {
					errs <- fmt.Sprintf("Rows differ: %v", err)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Error(e)
	}
}
