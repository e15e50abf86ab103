package index

import (
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/fhirguard/fhirguard/internal/fhir"
)

func readTestdata(t testing.TB, name string) map[string]any {
	t.Helper()
	b, err := os.ReadFile("testdata/" + name)
	if err != nil {
		t.Fatal(err)
	}
	return decode(t, string(b))
}

// flat renders every row of r as one line "kind param values...", so
// tests can assert on presence and absence.
func flat(r *Rows) []string {
	var out []string
	ts := func(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) }
	for _, x := range r.Strings {
		out = append(out, fmt.Sprintf("string %s %s|%s", x.Param, x.Norm, x.Exact))
	}
	for _, x := range r.Tokens {
		s := fmt.Sprintf("token %s %s|%s", x.Param, x.System, x.Code)
		if x.Text != "" {
			s += " text=" + x.TextNorm
		}
		if x.TypeCode != "" {
			s += " type=" + x.TypeSystem + "|" + x.TypeCode
		}
		out = append(out, s)
	}
	for _, x := range r.References {
		out = append(out, fmt.Sprintf("ref %s %s/%s v=%s url=%s id=%s|%s", x.Param, x.TargetType, x.TargetID, x.Version, x.URL, x.IdentifierSystem, x.IdentifierValue))
	}
	for _, x := range r.Dates {
		out = append(out, fmt.Sprintf("date %s %s %s", x.Param, ts(x.Low), ts(x.High)))
	}
	for _, x := range r.Numbers {
		out = append(out, fmt.Sprintf("number %s %s", x.Param, x.Value))
	}
	for _, x := range r.Quantities {
		out = append(out, fmt.Sprintf("quantity %s %s [%v:%g,%v:%g] %s|%s %s", x.Param, x.Value, x.HasLow, x.Low, x.HasHigh, x.High, x.System, x.Code, x.Unit))
	}
	for _, x := range r.URIs {
		out = append(out, fmt.Sprintf("uri %s %s", x.Param, x.URI))
	}
	for _, x := range r.Positions {
		out = append(out, fmt.Sprintf("position %s %g,%g", x.Param, x.Lat, x.Lon))
	}
	for _, x := range r.Composites {
		parts := []string{"composite", x.Param}
		for _, v := range x.Components {
			switch {
			case v.Token != nil:
				parts = append(parts, v.Code+"="+v.Token.System+"|"+v.Token.Code)
			case v.Quantity != nil:
				parts = append(parts, v.Code+"="+v.Quantity.Value+" "+v.Quantity.Code)
			case v.String != nil:
				parts = append(parts, v.Code+"="+v.String.Exact)
			case v.Date != nil:
				parts = append(parts, v.Code+"="+ts(v.Date.Low))
			case v.Reference != nil:
				parts = append(parts, v.Code+"="+v.Reference.TargetType+"/"+v.Reference.TargetID)
			case v.Number != nil:
				parts = append(parts, v.Code+"="+v.Number.Value)
			case v.URI != nil:
				parts = append(parts, v.Code+"="+v.URI.URI)
			}
		}
		out = append(out, strings.Join(parts, " "))
	}
	return out
}

func TestRows(t *testing.T) {
	t.Parallel()
	ix := newIndexer(t)
	tests := []struct {
		name    string
		typ     string
		res     map[string]any
		want    []string // rows that must be present
		notWant []string // rows that must be absent
	}{
		{
			name: "ok/observation-blood-pressure",
			typ:  "Observation",
			res:  readTestdata(t, "observation-bp.json"),
			want: []string{
				"token _id |bp-1",
				"token status |final",
				"token code http://loinc.org|85354-9 text=blood pressure panel with all children optional",
				"token code | text=blood pressure systolic & diastolic",
				"token category http://terminology.hl7.org/CodeSystem/observation-category|vital-signs text=vital signs",
				"token identifier urn:oid:1.2.3.4.5|BP-000123 type=http://terminology.hl7.org/CodeSystem/v2-0203|FILL",
				"token _security http://terminology.hl7.org/CodeSystem/v3-Confidentiality|N",
				"token _tag http://example.org/tags|synthetic",
				"token component-code http://loinc.org|8480-6 text=systolic blood pressure",
				"token method | text=automated oscillometric",
				"ref subject Patient/pA v= url= id=|",
				"ref patient Patient/pA v= url= id=|",
				"ref performer Practitioner/drA v= url= id=|",
				"ref performer Organization/org1 v=4 url=https://ehr.example.org/fhir/Organization/org1/_history/4 id=|",
				"ref performer / v= url= id=http://hl7.org/fhir/sid/us-npi|9941339108",
				"ref encounter Encounter/e1 v= url= id=|",
				"ref has-member Observation/hr-1 v= url= id=|",
				"date date 2024-05-01T08:00:00Z 2024-05-01T08:05:01Z",
				"date _lastUpdated 2024-05-01T10:15:30.25Z 2024-05-01T10:15:30.251Z",
				"quantity component-value-quantity 142.50 [true:142.5,true:142.5] http://unitsofmeasure.org|mm[Hg] mmHg",
				"uri _profile http://hl7.org/fhir/us/core/StructureDefinition/us-core-blood-pressure",
				"uri _source urn:uuid:7a1b3c4d-0000-4000-8000-000000000001",
				"composite component-code-value-quantity component-code=http://loinc.org|8480-6 component-value-quantity=142.50 mm[Hg]",
				"composite component-code-value-quantity component-code=http://loinc.org|8462-4 component-value-quantity=91 mm[Hg]",
				"composite combo-code-value-concept combo-code=http://loinc.org|8478-0 combo-value-concept=http://example.org/bp-class|stage-2",
			},
			notWant: []string{
				// a component's code never pairs with another component's value
				"composite component-code-value-quantity component-code=http://loinc.org|8480-6 component-value-quantity=91 mm[Hg]",
				// text-only codes are no composite part
				"composite component-code-value-quantity component-code=| component-value-quantity=142.50 mm[Hg]",
				// root has no value[x]
				"quantity value-quantity 142.50 [true:142.5,true:142.5] http://unitsofmeasure.org|mm[Hg] mmHg",
			},
		},
		{
			name: "ok/observation-value-and-range",
			typ:  "Observation",
			res: decode(t, `{"resourceType":"Observation","id":"o2","status":"final","code":{"coding":[{"system":"http://loinc.org","code":"8867-4"}]},
				"effectiveDateTime":"2024-02","valueQuantity":{"value":72,"unit":"beats/minute","system":"http://unitsofmeasure.org","code":"/min"},
				"subject":{"reference":"Group/g1"}}`),
			want: []string{
				"quantity value-quantity 72 [true:72,true:72] http://unitsofmeasure.org|/min beats/minute",
				"date date 2024-02-01T00:00:00Z 2024-03-01T00:00:00Z",
				"ref subject Group/g1 v= url= id=|",
				"composite code-value-quantity code=http://loinc.org|8867-4 value-quantity=72 /min",
			},
			notWant: []string{"ref patient Group/g1 v= url= id=|"},
		},
		{
			name: "ok/patient",
			typ:  "Patient",
			res: decode(t, `{"resourceType":"Patient","id":"pA","active":true,"gender":"female","birthDate":"1984",
				"name":[{"use":"official","family":"Åström","given":["Zoë","Marie"],"prefix":["Dr."]}],
				"telecom":[{"system":"phone","value":"+1 555 0100","use":"home"},{"system":"email","value":"zoe@example.org"}],
				"address":[{"line":["1 Main St"],"city":"Springfield","postalCode":"12345","country":"US"}],
				"identifier":[{"system":"http://hospital.example.org/mrn","value":"MRN-1"}],
				"deceasedBoolean":false,
				"generalPractitioner":[{"reference":"Practitioner/drA"}],
				"extension":[{"url":"http://hl7.org/fhir/us/core/StructureDefinition/us-core-race",
					"extension":[{"url":"ombCategory","valueCoding":{"system":"urn:oid:2.16.840.1.113883.6.238","code":"2106-3","display":"White"}}]}]}`),
			want: []string{
				"string family astrom|Åström",
				"string given zoe|Zoë",
				"string name marie|Marie",
				"string name dr.|Dr.",
				"string address springfield|Springfield",
				"string address-city springfield|Springfield",
				"string address-postalcode 12345|12345",
				"token gender |female",
				"token active |true",
				"token deceased |false",
				"token identifier http://hospital.example.org/mrn|MRN-1",
				"token phone phone|+1 555 0100",
				"token email email|zoe@example.org",
				"token telecom email|zoe@example.org",
				// US Core race selects ...value.code: the code alone.
				"token race |2106-3",
				"date birthdate 1984-01-01T00:00:00Z 1985-01-01T00:00:00Z",
				"ref general-practitioner Practitioner/drA v= url= id=|",
			},
			notWant: []string{"token phone email|zoe@example.org", "string family åström|Åström"},
		},
		{
			name: "ok/encounter-period-open-end",
			typ:  "Encounter",
			res: decode(t, `{"resourceType":"Encounter","id":"e1","status":"in-progress","class":{"system":"http://terminology.hl7.org/CodeSystem/v3-ActCode","code":"AMB"},
				"subject":{"reference":"Patient/pA"},"period":{"start":"2024-05-01T09:00:00Z"},
				"length":{"value":30,"unit":"min","system":"http://unitsofmeasure.org","code":"min"},
				"participant":[{"individual":{"reference":"Practitioner/drA"}}]}`),
			want: []string{
				"token class http://terminology.hl7.org/CodeSystem/v3-ActCode|AMB",
				"date date 2024-05-01T09:00:00Z 10000-01-01T00:00:00Z",
				"quantity length 30 [true:30,true:30] http://unitsofmeasure.org|min min",
				"ref practitioner Practitioner/drA v= url= id=|",
				"ref participant Practitioner/drA v= url= id=|",
			},
		},
		{
			name: "ok/location-position",
			typ:  "Location",
			res: decode(t, `{"resourceType":"Location","id":"l1","status":"active","name":"Ward",
				"position":{"longitude":-71.0589,"latitude":42.3601,"altitude":12}}`),
			want:    []string{"position near 42.3601,-71.0589", "string name ward|Ward"},
			notWant: []string{"number near 12"},
		},
		{
			name:    "ok/location-position-out-of-range",
			typ:     "Location",
			res:     decode(t, `{"resourceType":"Location","id":"l2","position":{"longitude":200,"latitude":42}}`),
			notWant: []string{"position near 42,200"},
		},
		{
			name: "ok/risk-assessment-number-and-range",
			typ:  "RiskAssessment",
			res: decode(t, `{"resourceType":"RiskAssessment","id":"r1","status":"final","subject":{"reference":"Patient/pA"},
				"prediction":[{"probabilityDecimal":0.025},{"probabilityRange":{"low":{"value":1},"high":{"value":5}}}]}`),
			want: []string{
				"number probability 0.025",
			},
		},
		{
			name: "ok/medication-request-timing-and-canonical",
			typ:  "MedicationRequest",
			res: decode(t, `{"resourceType":"MedicationRequest","id":"m1","status":"active","intent":"order",
				"medicationCodeableConcept":{"coding":[{"system":"http://www.nlm.nih.gov/research/umls/rxnorm","code":"1049502"}]},
				"subject":{"reference":"Patient/pA"},"authoredOn":"2024-05-01T10:00:00.5-05:00",
				"instantiatesCanonical":["http://example.org/PlanDefinition/pd1|2.0"],
				"dosageInstruction":[{"timing":{"event":["2024-05-02","2024-05-03T08:00:00Z"],"repeat":{"boundsPeriod":{"start":"2024-05-02","end":"2024-05-10"}}}}]}`),
			want: []string{
				"token code http://www.nlm.nih.gov/research/umls/rxnorm|1049502",
				"date authoredon 2024-05-01T15:00:00.5Z 2024-05-01T15:00:00.6Z",
				"ref subject Patient/pA v= url= id=|",
			},
		},
		{
			name: "ok/questionnaire-uri-and-context-quantity-range",
			typ:  "Questionnaire",
			res: decode(t, `{"resourceType":"Questionnaire","id":"q1","status":"active","url":"http://example.org/Questionnaire/q1","version":"1.0",
				"useContext":[{"code":{"system":"http://terminology.hl7.org/CodeSystem/usage-context-type","code":"age"},
					"valueRange":{"low":{"value":18,"unit":"a","system":"http://unitsofmeasure.org","code":"a"}}}]}`),
			want: []string{
				"uri url http://example.org/Questionnaire/q1",
				"token version |1.0",
				"quantity context-quantity  [true:18,false:0] http://unitsofmeasure.org|a a",
				"composite context-type-quantity context-type=http://terminology.hl7.org/CodeSystem/usage-context-type|age context-quantity= a",
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			rows, err := ix.Rows(tc.typ, tc.res)
			if err != nil {
				t.Fatalf("Rows: %v", err)
			}
			got := flat(rows)
			for _, w := range tc.want {
				if !slices.Contains(got, w) {
					t.Errorf("missing row %q", w)
				}
			}
			for _, w := range tc.notWant {
				if slices.Contains(got, w) {
					t.Errorf("unexpected row %q", w)
				}
			}
			if t.Failed() {
				t.Logf("rows:\n%s", strings.Join(got, "\n"))
			}
		})
	}
}

func TestRowsErrors(t *testing.T) {
	t.Parallel()
	ix := newIndexer(t)
	if _, err := ix.Rows("Nope", map[string]any{}); err == nil {
		t.Error("fail/unknown-type: no error")
	}
	if _, err := ix.Rows("Patient", map[string]any{"resourceType": "Observation"}); err == nil {
		t.Error("fail/type-mismatch: no error")
	}
}

// TestRowsEveryType evaluates every parameter of every resource type on a
// minimal resource: no expression fails, and _id is always indexed.
func TestRowsEveryType(t *testing.T) {
	t.Parallel()
	ix := newIndexer(t)
	for _, typ := range fhir.ResourceTypes() {
		rows, err := ix.Rows(typ, map[string]any{"resourceType": typ, "id": "x1", "meta": map[string]any{"lastUpdated": "2024-01-01T00:00:00Z"}})
		if err != nil {
			t.Errorf("%s: %v", typ, err)
			continue
		}
		got := flat(rows)
		if !slices.Contains(got, "token _id |x1") || !slices.Contains(got, "date _lastUpdated 2024-01-01T00:00:00Z 2024-01-01T00:00:01Z") {
			t.Errorf("%s: rows %q", typ, got)
		}
	}
}

// TestRowsOnly: the rows of the kept parameters are exactly Rows' rows of
// those parameters, composites included.
func TestRowsOnly(t *testing.T) {
	t.Parallel()
	ix := newIndexer(t)
	res := readTestdata(t, "observation-bp.json")
	all, err := ix.Rows("Observation", res)
	if err != nil {
		t.Fatal(err)
	}
	keep := map[string]bool{"code": true, "subject": true, "component-code-value-quantity": true, "date": true}
	some, err := ix.RowsOnly("Observation", res, func(code string) bool { return keep[code] })
	if err != nil {
		t.Fatal(err)
	}
	var want []string
	for _, r := range flat(all) {
		if keep[strings.Fields(r)[1]] {
			want = append(want, r)
		}
	}
	got := flat(some)
	if len(want) == 0 || !slices.Equal(got, want) {
		t.Fatalf("RowsOnly:\n%s\nwant the kept parameters' rows of Rows:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}
