package storetest

import (
	"encoding/json"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/fhirguard/fhirguard/internal/clock"
	"github.com/fhirguard/fhirguard/internal/fhir"
	"github.com/fhirguard/fhirguard/internal/search"
	"github.com/fhirguard/fhirguard/internal/store"
)

// The search suite's fixture: a small clinic whose resources exercise
// every value type. Ids are short so expectations read easily.

const (
	loincSys = "http://loinc.org"
	ucumSys  = "http://unitsofmeasure.org"
	obsCat   = "http://terminology.hl7.org/CodeSystem/observation-category"
	mrnSys   = "urn:oid:1.2.3.4"
	tagSys   = "http://example.org/tags"
)

func coding(system, code, display string) map[string]any {
	return map[string]any{"coding": []any{map[string]any{"system": system, "code": code, "display": display}}, "text": display}
}

func refTo(s string) map[string]any { return map[string]any{"reference": s} }

func num(s string) json.Number { return json.Number(s) }

func fixturePatient(id, family, given, gender, birth, city string) map[string]any {
	return map[string]any{
		"resourceType": "Patient",
		"active":       true,
		"name":         []any{map[string]any{"family": family, "given": []any{given}}},
		"gender":       gender,
		"birthDate":    birth,
		"address":      []any{map[string]any{"city": city}},
	}
}

func fixtureObs(subject, cat, code, display, value, unit, when string) map[string]any {
	o := map[string]any{
		"resourceType":      "Observation",
		"status":            "final",
		"category":          []any{coding(obsCat, cat, cat)},
		"code":              coding(loincSys, code, display),
		"effectiveDateTime": when,
		"valueQuantity":     map[string]any{"value": num(value), "unit": unit, "system": ucumSys, "code": unit},
	}
	if subject != "" {
		o["subject"] = refTo(subject)
	}
	return o
}

// fixture returns the clinic's resources by "Type/id".
func fixture() map[string]map[string]any {
	p1 := fixturePatient("p1", "Smith", "John", "male", "1970-05-01", "Boston")
	p1["identifier"] = []any{map[string]any{
		"type":   coding("http://terminology.hl7.org/CodeSystem/v2-0203", "MR", "Medical record number"),
		"system": mrnSys, "value": "001",
	}}
	p1["generalPractitioner"] = []any{refTo("Practitioner/dr1")}
	p1["meta"] = map[string]any{"tag": []any{map[string]any{"system": tagSys, "code": "vip"}}}
	p1["telecom"] = []any{map[string]any{"system": "phone", "value": "555-0001"}}
	p2 := fixturePatient("p2", "Smíth", "Jane", "female", "1985-12-24", "Salem")
	p2["identifier"] = []any{map[string]any{"system": mrnSys, "value": "002"}}
	p2["generalPractitioner"] = []any{refTo("Practitioner/dr2")}
	p3 := fixturePatient("p3", "Jones", "Ann", "female", "2001-01-01", "Boston")
	p3["meta"] = map[string]any{"security": []any{map[string]any{"system": confR.System, "code": confR.Code}}}
	p4 := fixturePatient("p4", "O'Brien'; DROP TABLE resources; --", "100%_off", "other", "1990", "Ünïcode")

	o1 := fixtureObs("Patient/p1", "laboratory", "2345-7", "Glucose", "95", "mg/dL", "2020-03-01T10:00:00Z")
	o1["performer"] = []any{refTo("Practitioner/dr1")}
	o1["encounter"] = refTo("Encounter/e1")
	o2 := fixtureObs("Patient/p1", "vital-signs", "8867-4", "Heart rate", "72", "/min", "2021-06-15")
	o3 := fixtureObs("Patient/p2", "laboratory", "2345-7", "Glucose", "140.5", "mg/dL", "2019-11-30T23:00:00Z")
	o3["performer"] = []any{refTo("Practitioner/dr2")}
	o4 := fixtureObs("Patient/p3", "vital-signs", "8310-5", "Body temperature", "37.2", "Cel", "2022-01-01T08:30:00+02:00")
	o4["status"] = "preliminary"
	o5 := fixtureObs("Patient/p2", "laboratory", "2345-7", "Glucose", "250", "mg/dL", "")
	delete(o5, "effectiveDateTime")
	o5["effectivePeriod"] = map[string]any{"start": "2023-01-01", "end": "2023-01-05"}
	o5["status"] = "amended"
	o6 := map[string]any{
		"resourceType": "Observation", "status": "final",
		"code": map[string]any{"text": "free text note"}, "valueString": "nothing to see",
	}

	qty := func(v, unit string) map[string]any {
		return map[string]any{"value": num(v), "unit": unit, "system": ucumSys, "code": unit}
	}
	o7 := map[string]any{
		"resourceType": "Observation", "status": "final", "subject": refTo("Patient/p4"),
		"code":              coding(loincSys, "85354-9", "Blood pressure panel"),
		"effectiveDateTime": "2024-01-01",
		"component": []any{
			map[string]any{"code": coding(loincSys, "8480-6", "Systolic"), "valueQuantity": qty("120", "mm[Hg]")},
			map[string]any{"code": coding(loincSys, "8462-4", "Diastolic"), "valueQuantity": qty("80", "mm[Hg]")},
		},
	}

	return map[string]map[string]any{
		"Patient/p1": p1, "Patient/p2": p2, "Patient/p3": p3, "Patient/p4": p4,
		"Practitioner/dr1": {"resourceType": "Practitioner", "name": []any{map[string]any{"family": "House"}}},
		"Practitioner/dr2": {"resourceType": "Practitioner", "name": []any{map[string]any{"family": "Grey"}}},
		"Observation/o1":   o1, "Observation/o2": o2, "Observation/o3": o3, "Observation/o4": o4,
		"Observation/o5": o5, "Observation/o6": o6, "Observation/o7": o7,
		"Encounter/e1": {"resourceType": "Encounter", "status": "finished", "subject": refTo("Patient/p1"),
			"class":  map[string]any{"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "AMB"},
			"period": map[string]any{"start": "2020-03-01T09:00:00Z", "end": "2020-03-01T11:00:00Z"}},
		"Encounter/e2": {"resourceType": "Encounter", "status": "finished", "subject": refTo("Patient/p2"),
			"class": map[string]any{"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "IMP"}},
		"Condition/c1": {"resourceType": "Condition", "subject": refTo("Patient/p1"),
			"code": coding("http://snomed.info/sct", "44054006", "Diabetes mellitus type 2"), "onsetDateTime": "2015"},
		"Condition/c2": {"resourceType": "Condition", "subject": refTo("Patient/p2"),
			"code": coding("http://snomed.info/sct", "38341003", "Hypertensive disorder")},
		"RiskAssessment/ra1": {"resourceType": "RiskAssessment", "status": "final", "subject": refTo("Patient/p1"),
			"prediction": []any{map[string]any{"probabilityDecimal": num("0.25")}}},
		"RiskAssessment/ra2": {"resourceType": "RiskAssessment", "status": "final", "subject": refTo("Patient/p2"),
			"prediction": []any{map[string]any{"probabilityDecimal": num("0.8")}}},
		"ValueSet/vs1": {"resourceType": "ValueSet", "status": "active", "url": "http://example.org/fhir/ValueSet/colors"},
		"ValueSet/vs2": {"resourceType": "ValueSet", "status": "active", "url": "http://example.org/fhir/ValueSet/colors/extended"},
	}
}

// loadFixture stores the fixture (one transaction).
func loadFixture(t *testing.T, s store.Store) {
	t.Helper()
	fx := fixture()
	keys := make([]string, 0, len(fx))
	for k := range fx {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	ctx := ctxT(t)
	if err := s.Tx(ctx, func(tx store.Tx) error {
		for _, k := range keys {
			typ, id, _ := strings.Cut(k, "/")
			if _, err := tx.Put(ctx, store.Write{Type: typ, ID: id, Data: fx[k]}); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		t.Fatalf("load fixture: %v", err)
	}
}

// searchNow is the clock of the parser (the ap prefix is relative to it).
var searchNow = time.Date(2024, 6, 1, 0, 0, 0, 0, time.UTC)

func searchOpts() search.Options {
	return search.Options{Clock: clock.NewFake(searchNow), BaseURL: "http://fhir.example/fhir"}
}

// parseQuery parses "Type?query" (Type "" = system search) into a Query.
func parseQuery(t *testing.T, spec string) *search.Query {
	t.Helper()
	typ, raw, _ := strings.Cut(spec, "?")
	params, err := url.ParseQuery(raw)
	if err != nil {
		t.Fatalf("%s: %v", spec, err)
	}
	var q *search.Query
	switch {
	case typ == "":
		q, _, err = search.ParseSystem(params, searchOpts())
	case strings.Count(typ, "/") == 2: // Patient/p1/Observation
		parts := strings.Split(typ, "/")
		q, _, err = search.ParseCompartment(search.Compartment{Type: parts[0], ID: parts[1]}, parts[2], params, searchOpts())
	default:
		q, _, err = search.Parse(typ, params, searchOpts())
	}
	if err != nil {
		t.Fatalf("parse %s: %v", spec, err)
	}
	return q
}

func searcher(t *testing.T, s store.Store) store.Searcher {
	t.Helper()
	se, ok := s.(store.Searcher)
	if !ok {
		t.Fatalf("%T does not implement store.Searcher", s)
	}
	return se
}

func runSearch(t *testing.T, s store.Store, q *search.Query, at *search.Cursor) *store.SearchResult {
	t.Helper()
	res, err := searcher(t, s).Search(ctxT(t), q, at)
	if err != nil {
		t.Fatalf("search: %v", err)
	}
	return res
}

func refs(list []*fhir.Resource) []string {
	out := make([]string, len(list))
	for i, r := range list {
		out[i] = r.Type + "/" + r.ID
	}
	return out
}
