package validate

import (
	"encoding/json"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/fhirguard/fhirguard/internal/fhir"
)

var (
	sharedOnce sync.Once
	shared     *Validator
	sharedErr  error
)

func validator(tb testing.TB) *Validator {
	tb.Helper()
	sharedOnce.Do(func() { shared, sharedErr = New() })
	if sharedErr != nil {
		tb.Fatalf("New: %v", sharedErr)
	}
	return shared
}

func examples(tb testing.TB) map[string][]byte {
	tb.Helper()
	files, err := filepath.Glob(filepath.Join("..", "testdata", "examples", "*.json"))
	if err != nil || len(files) < 10 {
		tb.Fatalf("examples: %v (%d files)", err, len(files))
	}
	out := map[string][]byte{}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			tb.Fatal(err)
		}
		out[filepath.Base(f)] = b
	}
	return out
}

func parse(tb testing.TB, body string) map[string]any {
	tb.Helper()
	m, err := fhir.ParseResource([]byte(body))
	if err != nil {
		tb.Fatalf("ParseResource(%s): %v", body, err)
	}
	return m
}

func TestExamplesValid(t *testing.T) {
	v := validator(t)
	for name, b := range examples(t) {
		t.Run("ok/"+name, func(t *testing.T) {
			m := parse(t, string(b))
			if err := v.Validate(m["resourceType"].(string), m); err != nil {
				t.Errorf("%s: %v", name, err)
			}
		})
	}
}

// patch returns the example with a change applied to its decoded map.
func patch(tb testing.TB, name string, fn func(m map[string]any)) map[string]any {
	tb.Helper()
	m := parse(tb, string(examples(tb)[name]))
	fn(m)
	return m
}

func obj(m map[string]any, path ...any) map[string]any {
	var cur any = m
	for _, p := range path {
		switch k := p.(type) {
		case string:
			cur = cur.(map[string]any)[k]
		case int:
			cur = cur.([]any)[k]
		}
	}
	return cur.(map[string]any)
}

func TestValidate(t *testing.T) {
	v := validator(t)
	tests := []struct {
		name     string
		typ      string
		data     map[string]any
		wantCode fhir.IssueType
		wantDiag string
		wantExpr string
	}{
		{name: "ok/minimal patient", typ: "Patient", data: parse(t, `{"resourceType":"Patient"}`)},
		{name: "ok/only primitive extension", typ: "Patient", data: parse(t, `{"resourceType":"Patient","_birthDate":{"extension":[{"url":"http://hl7.org/fhir/StructureDefinition/data-absent-reason","valueCode":"unknown"}]}}`)},
		{name: "ok/required primitive by extension", typ: "Observation", data: parse(t, `{"resourceType":"Observation","_status":{"extension":[{"url":"http://x.org/e","valueString":"?"}]},"code":{"text":"x"}}`)},
		{name: "ok/unsignedInt zero", typ: "Observation", data: parse(t, `{"resourceType":"Observation","status":"final","code":{"text":"x"},"valueSampledData":{"origin":{"value":0},"period":1.5,"dimensions":1,"data":"1 2 3"}}`)},
		{name: "ok/meta canonical sibling", typ: "Patient", data: parse(t, `{"resourceType":"Patient","meta":{"profile":["http://x.org/p"],"_profile":[{"id":"p1"}]}}`)},
		{name: "ok/bundle entries", typ: "Bundle", data: parse(t, string(examples(t)["bundle-transaction.json"]))},
		{name: "ok/integer max", typ: "Patient", data: parse(t, `{"resourceType":"Patient","multipleBirthInteger":2147483647}`)},
		{name: "ok/float64 map", typ: "Observation", data: map[string]any{"resourceType": "Observation", "status": "final", "code": map[string]any{"text": "x"}, "valueQuantity": map[string]any{"value": 1.5}}},

		{name: "fail/unknown element", typ: "Patient", data: parse(t, `{"resourceType":"Patient","foo":1}`),
			wantCode: fhir.IssueStructure, wantDiag: "Unknown element 'foo'", wantExpr: "Patient.foo"},
		{name: "fail/unknown nested element", typ: "Observation",
			data:     patch(t, "observation.json", func(m map[string]any) { obj(m, "component", 1, "valueQuantity")["units"] = "mmHg" }),
			wantCode: fhir.IssueStructure, wantDiag: "Unknown element 'units'", wantExpr: "Observation.component[1].valueQuantity.units"},
		{name: "fail/unknown primitive extension sibling", typ: "Patient", data: parse(t, `{"resourceType":"Patient","_name":{"id":"x"}}`),
			wantCode: fhir.IssueStructure, wantDiag: "Unknown element '_name'", wantExpr: "Patient._name"},
		{name: "fail/vendor element Meta.project", typ: "Patient", data: parse(t, `{"resourceType":"Patient","meta":{"project":"p1"}}`),
			wantCode: fhir.IssueStructure, wantDiag: "Unknown element 'project'", wantExpr: "Patient.meta.project"},
		{name: "fail/wrong type string for boolean", typ: "Patient", data: parse(t, `{"resourceType":"Patient","active":"true"}`),
			wantCode: fhir.IssueStructure, wantDiag: "must be a JSON boolean", wantExpr: "Patient.active"},
		{name: "fail/wrong type number for string", typ: "Patient", data: parse(t, `{"resourceType":"Patient","gender":1}`),
			wantCode: fhir.IssueStructure, wantDiag: "must be a JSON string", wantExpr: "Patient.gender"},
		{name: "fail/decimal as string", typ: "Observation",
			data:     patch(t, "observation.json", func(m map[string]any) { obj(m, "component", 1, "valueQuantity")["value"] = "44.0" }),
			wantCode: fhir.IssueStructure, wantDiag: "must be a JSON number", wantExpr: "Observation.component[1].valueQuantity.value"},
		{name: "fail/object expected", typ: "Patient", data: parse(t, `{"resourceType":"Patient","maritalStatus":"M"}`),
			wantCode: fhir.IssueStructure, wantDiag: "must be an object (CodeableConcept)", wantExpr: "Patient.maritalStatus"},
		{name: "fail/single where array expected", typ: "Patient", data: parse(t, `{"resourceType":"Patient","name":{"family":"Shaw"}}`),
			wantCode: fhir.IssueStructure, wantDiag: "must be an array of HumanName", wantExpr: "Patient.name"},
		{name: "fail/array where single expected", typ: "Patient", data: parse(t, `{"resourceType":"Patient","birthDate":["1990-01-01"]}`),
			wantCode: fhir.IssueStructure, wantDiag: "must be a single date, not an array", wantExpr: "Patient.birthDate"},
		{name: "fail/array of primitives item type", typ: "Patient", data: parse(t, `{"resourceType":"Patient","name":[{"given":["Amy",7]}]}`),
			wantCode: fhir.IssueStructure, wantDiag: "must be a JSON string", wantExpr: "Patient.name[0].given[1]"},
		{name: "fail/bad date", typ: "Patient", data: parse(t, `{"resourceType":"Patient","birthDate":"1990-13-01"}`),
			wantCode: fhir.IssueValue, wantDiag: "Invalid date value '1990-13-01'", wantExpr: "Patient.birthDate"},
		{name: "fail/date with time", typ: "Patient", data: parse(t, `{"resourceType":"Patient","birthDate":"1990-01-01T10:00:00Z"}`),
			wantCode: fhir.IssueValue, wantDiag: "Invalid date", wantExpr: "Patient.birthDate"},
		{name: "fail/dateTime without zone", typ: "Observation",
			data:     patch(t, "observation.json", func(m map[string]any) { m["effectiveDateTime"] = "2024-03-14T09:30:10" }),
			wantCode: fhir.IssueValue, wantDiag: "Invalid dateTime", wantExpr: "Observation.effectiveDateTime"},
		{name: "fail/bad instant", typ: "Observation",
			data:     patch(t, "observation.json", func(m map[string]any) { m["issued"] = "2024-03-14" }),
			wantCode: fhir.IssueValue, wantDiag: "Invalid instant", wantExpr: "Observation.issued"},
		{name: "fail/bad id", typ: "Patient", data: parse(t, `{"resourceType":"Patient","id":"a b"}`),
			wantCode: fhir.IssueValue, wantDiag: "Invalid id value 'a b'", wantExpr: "Patient.id"},
		{name: "fail/id too long", typ: "Patient", data: parse(t, `{"resourceType":"Patient","id":"`+strings.Repeat("a", 65)+`"}`),
			wantCode: fhir.IssueValue, wantDiag: "Invalid id", wantExpr: "Patient.id"},
		{name: "fail/bad code whitespace", typ: "Patient", data: parse(t, `{"resourceType":"Patient","language":" en"}`),
			wantCode: fhir.IssueValue, wantDiag: "Invalid code", wantExpr: "Patient.language"},
		{name: "fail/uri with space", typ: "Patient", data: parse(t, `{"resourceType":"Patient","implicitRules":"http://a b"}`),
			wantCode: fhir.IssueValue, wantDiag: "Invalid uri", wantExpr: "Patient.implicitRules"},
		{name: "fail/empty string", typ: "Patient", data: parse(t, `{"resourceType":"Patient","name":[{"family":""}]}`),
			wantCode: fhir.IssueValue, wantDiag: "must not be an empty string", wantExpr: "Patient.name[0].family"},
		{name: "fail/integer with fraction", typ: "Patient", data: parse(t, `{"resourceType":"Patient","multipleBirthInteger":1.5}`),
			wantCode: fhir.IssueValue, wantDiag: "Invalid integer", wantExpr: "Patient.multipleBirthInteger"},
		{name: "fail/integer out of range", typ: "Patient", data: parse(t, `{"resourceType":"Patient","multipleBirthInteger":2147483648}`),
			wantCode: fhir.IssueValue, wantDiag: "out of range", wantExpr: "Patient.multipleBirthInteger"},
		{name: "fail/positiveInt zero", typ: "Patient", data: parse(t, `{"resourceType":"Patient","telecom":[{"value":"1","rank":0}]}`),
			wantCode: fhir.IssueValue, wantDiag: "Invalid positiveInt", wantExpr: "Patient.telecom[0].rank"},
		{name: "fail/unsignedInt negative", typ: "MedicationRequest",
			data: patch(t, "medicationrequest.json", func(m map[string]any) {
				obj(m, "dispenseRequest")["numberOfRepeatsAllowed"] = json.Number("-1")
			}),
			wantCode: fhir.IssueValue, wantDiag: "Invalid unsignedInt", wantExpr: "MedicationRequest.dispenseRequest.numberOfRepeatsAllowed"},
		{name: "fail/bad base64", typ: "DiagnosticReport",
			data:     patch(t, "diagnosticreport.json", func(m map[string]any) { obj(m, "presentedForm", 0)["data"] = "not base64!" }),
			wantCode: fhir.IssueValue, wantDiag: "Invalid base64Binary", wantExpr: "DiagnosticReport.presentedForm[0].data"},
		{name: "fail/enum", typ: "Patient", data: parse(t, `{"resourceType":"Patient","gender":"F"}`),
			wantCode: fhir.IssueCodeInvalid, wantDiag: "Invalid code 'F' for 'gender' (allowed: male, female, other, unknown)", wantExpr: "Patient.gender"},
		{name: "fail/enum in array", typ: "AllergyIntolerance",
			data:     patch(t, "allergyintolerance.json", func(m map[string]any) { m["category"] = []any{"food", "drug"} }),
			wantCode: fhir.IssueCodeInvalid, wantDiag: "Invalid code 'drug'", wantExpr: "AllergyIntolerance.category[1]"},
		{name: "fail/boolean wrong shape in extension", typ: "Patient", data: parse(t, `{"resourceType":"Patient","extension":[{"url":"http://x.org/e","valueBoolean":"yes"}]}`),
			wantCode: fhir.IssueStructure, wantDiag: "must be a JSON boolean", wantExpr: "Patient.extension[0].valueBoolean"},
		{name: "fail/extension without url", typ: "Patient", data: parse(t, `{"resourceType":"Patient","extension":[{"valueString":"x"}]}`),
			wantCode: fhir.IssueRequired, wantDiag: "Missing required element 'url'", wantExpr: "Patient.extension[0]"},
		{name: "fail/missing required complex", typ: "Observation",
			data:     patch(t, "observation.json", func(m map[string]any) { delete(m, "code") }),
			wantCode: fhir.IssueRequired, wantDiag: "Missing required element 'code'", wantExpr: "Observation"},
		{name: "fail/missing required primitive", typ: "Observation",
			data:     patch(t, "observation.json", func(m map[string]any) { delete(m, "status") }),
			wantCode: fhir.IssueRequired, wantDiag: "Missing required element 'status'", wantExpr: "Observation"},
		{name: "fail/missing required in backbone", typ: "Observation",
			data:     patch(t, "observation.json", func(m map[string]any) { delete(obj(m, "component", 2), "code") }),
			wantCode: fhir.IssueRequired, wantDiag: "Missing required element 'code'", wantExpr: "Observation.component[2]"},
		{name: "fail/missing required choice", typ: "MedicationRequest",
			data:     patch(t, "medicationrequest.json", func(m map[string]any) { delete(m, "medicationReference") }),
			wantCode: fhir.IssueRequired, wantDiag: "Missing required element 'medication[x]'", wantExpr: "MedicationRequest"},
		{name: "fail/two choice variants", typ: "Patient", data: parse(t, `{"resourceType":"Patient","deceasedBoolean":true,"deceasedDateTime":"2020"}`),
			wantCode: fhir.IssueStructure, wantDiag: "Only one of deceased[x] may be present, found deceasedBoolean and deceasedDateTime"},
		{name: "fail/unknown contained resourceType", typ: "Patient",
			data:     patch(t, "patient.json", func(m map[string]any) { obj(m, "contained", 0)["resourceType"] = "Organisation" }),
			wantCode: fhir.IssueInvalid, wantDiag: "Unknown resource type 'Organisation'", wantExpr: "Patient.contained[0]"},
		{name: "fail/vendor contained resourceType", typ: "Patient", data: parse(t, `{"resourceType":"Patient","contained":[{"resourceType":"Project","id":"p"}]}`),
			wantCode: fhir.IssueInvalid, wantDiag: "Unknown resource type 'Project'", wantExpr: "Patient.contained[0]"},
		{name: "fail/contained without resourceType", typ: "Patient", data: parse(t, `{"resourceType":"Patient","contained":[{"id":"p"}]}`),
			wantCode: fhir.IssueInvalid, wantDiag: "has no resourceType", wantExpr: "Patient.contained[0]"},
		{name: "fail/invalid contained resource", typ: "Condition",
			data:     patch(t, "condition.json", func(m map[string]any) { obj(m, "contained", 0)["status"] = "done" }),
			wantCode: fhir.IssueCodeInvalid, wantDiag: "Invalid code 'done'", wantExpr: "Condition.contained[0].status"},
		{name: "fail/nested contained", typ: "Patient", data: parse(t, `{"resourceType":"Patient","contained":[{"resourceType":"Patient","contained":[{"resourceType":"Basic","code":{"text":"x"}}]}]}`),
			wantCode: fhir.IssueInvariant, wantDiag: "dom-2", wantExpr: "Patient.contained[0].contained"},
		{name: "fail/bundle entry resource invalid", typ: "Bundle",
			data: patch(t, "bundle-transaction.json", func(m map[string]any) {
				obj(m, "entry", 1, "resource")["valueQuantity"] = map[string]any{"value": "61.5"}
			}),
			wantCode: fhir.IssueStructure, wantDiag: "must be a JSON number", wantExpr: "Bundle.entry[1].resource.valueQuantity.value"},
		{name: "fail/unknown resourceType", typ: "Foo", data: parse(t, `{"resourceType":"Foo"}`),
			wantCode: fhir.IssueNotSupported, wantDiag: "Unknown resource type 'Foo'"},
		{name: "fail/vendor resourceType", typ: "Project", data: parse(t, `{"resourceType":"Project"}`),
			wantCode: fhir.IssueNotSupported, wantDiag: "Unknown resource type 'Project'"},
		{name: "fail/abstract resourceType", typ: "DomainResource", data: parse(t, `{"resourceType":"DomainResource"}`),
			wantCode: fhir.IssueNotSupported, wantDiag: "Unknown resource type"},
		{name: "fail/resourceType mismatch", typ: "Patient", data: parse(t, `{"resourceType":"Observation"}`),
			wantCode: fhir.IssueInvalid, wantDiag: "does not match the expected type 'Patient'", wantExpr: "Patient.resourceType"},
		{name: "fail/resourceType unknown in body", typ: "Patient", data: parse(t, `{"resourceType":"Patiant"}`),
			wantCode: fhir.IssueInvalid, wantDiag: "Unknown resource type 'Patiant'", wantExpr: "Patient.resourceType"},
		{name: "fail/null value", typ: "Patient", data: parse(t, `{"resourceType":"Patient","active":null}`),
			wantCode: fhir.IssueStructure, wantDiag: "must not be null", wantExpr: "Patient.active"},
		{name: "fail/null array item", typ: "Patient", data: parse(t, `{"resourceType":"Patient","name":[null]}`),
			wantCode: fhir.IssueStructure, wantDiag: "must not be null", wantExpr: "Patient.name[0]"},
		{name: "fail/null primitive item without extension", typ: "Patient", data: parse(t, `{"resourceType":"Patient","name":[{"given":["a",null]}]}`),
			wantCode: fhir.IssueStructure, wantDiag: "must not be null", wantExpr: "Patient.name[0].given[1]"},
		{name: "fail/both items null", typ: "Patient", data: parse(t, `{"resourceType":"Patient","name":[{"given":["a",null],"_given":[{"id":"x"},null]}]}`),
			wantCode: fhir.IssueStructure, wantDiag: "must not be null"},
		{name: "fail/sibling length mismatch", typ: "Patient", data: parse(t, `{"resourceType":"Patient","name":[{"given":["a","b"],"_given":[{"id":"x"}]}]}`),
			wantCode: fhir.IssueStructure, wantDiag: "same length", wantExpr: "Patient.name[0].given"},
		{name: "fail/sibling not object", typ: "Patient", data: parse(t, `{"resourceType":"Patient","_birthDate":"x"}`),
			wantCode: fhir.IssueStructure, wantDiag: "must be an object (Element)", wantExpr: "Patient.birthDate"},
		{name: "fail/unknown element in sibling", typ: "Patient", data: parse(t, `{"resourceType":"Patient","_birthDate":{"value":"x"}}`),
			wantCode: fhir.IssueStructure, wantDiag: "Unknown element 'value'", wantExpr: "Patient.birthDate.value"},
		{name: "fail/empty object", typ: "Patient", data: parse(t, `{"resourceType":"Patient","maritalStatus":{}}`),
			wantCode: fhir.IssueStructure, wantDiag: "Empty object", wantExpr: "Patient.maritalStatus"},
		{name: "fail/empty array", typ: "Patient", data: parse(t, `{"resourceType":"Patient","identifier":[]}`),
			wantCode: fhir.IssueStructure, wantDiag: "empty array", wantExpr: "Patient.identifier"},
		{name: "fail/resourceType inside datatype", typ: "Patient", data: parse(t, `{"resourceType":"Patient","maritalStatus":{"resourceType":"CodeableConcept","text":"x"}}`),
			wantCode: fhir.IssueStructure, wantDiag: "Unexpected resourceType", wantExpr: "Patient.maritalStatus.resourceType"},
		{name: "fail/narrative div not string", typ: "Patient", data: parse(t, `{"resourceType":"Patient","text":{"status":"generated","div":{"p":"x"}}}`),
			wantCode: fhir.IssueStructure, wantDiag: "must be a JSON string (xhtml)", wantExpr: "Patient.text.div"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := v.Validate(tt.typ, tt.data)
			if tt.wantCode == "" {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				return
			}
			var fe *fhir.Error
			if !errors.As(err, &fe) {
				t.Fatalf("want *fhir.Error, got %v", err)
			}
			if fe.Code != tt.wantCode || fe.HTTPStatus() != http.StatusBadRequest {
				t.Errorf("code %s status %d, want %s 400 (%s)", fe.Code, fe.HTTPStatus(), tt.wantCode, fe.Diag)
			}
			if !strings.Contains(fe.Diag, tt.wantDiag) {
				t.Errorf("Diag %q lacks %q", fe.Diag, tt.wantDiag)
			}
			if tt.wantExpr != "" && (len(fe.Expr) != 1 || fe.Expr[0] != tt.wantExpr) {
				t.Errorf("Expr %q, want [%s]", fe.Expr, tt.wantExpr)
			}
		})
	}
}

func TestDeterministicReport(t *testing.T) {
	v := validator(t)
	body := `{"resourceType":"Patient","zzz":1,"active":"x","birthDate":"bad","aaa":2,"gender":"F"}`
	first := v.Validate("Patient", parse(t, body)).(*fhir.Error)
	if first.Expr[0] != "Patient.aaa" {
		t.Errorf("first problem reported at %v, want Patient.aaa (sorted order)", first.Expr)
	}
	for range 50 {
		got := v.Validate("Patient", parse(t, body)).(*fhir.Error)
		if got.Diag != first.Diag {
			t.Fatalf("report changed: %q vs %q", got.Diag, first.Diag)
		}
	}
}

func TestDeepMapBounded(t *testing.T) {
	v := validator(t)
	// A map built in Go (not by ParseResource) nested far deeper than any
	// resource: the validator must refuse it, not recurse without bound.
	ext := map[string]any{"url": "http://x.org/e", "valueString": "x"}
	for range 10000 {
		ext = map[string]any{"url": "http://x.org/e", "extension": []any{ext}}
	}
	err := v.Validate("Patient", map[string]any{"resourceType": "Patient", "extension": []any{ext}})
	fe, ok := fhir.AsError(err)
	if !ok || !strings.Contains(fe.Diag, "Nesting deeper") {
		t.Fatalf("got %v", err)
	}
}

func BenchmarkValidate(b *testing.B) {
	v := validator(b)
	for _, name := range []string{"patient.json", "observation.json", "medicationrequest.json", "diagnosticreport.json"} {
		m := parse(b, string(examples(b)[name]))
		typ := m["resourceType"].(string)
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if err := v.Validate(typ, m); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkNew(b *testing.B) {
	for b.Loop() {
		if _, err := New(); err != nil {
			b.Fatal(err)
		}
	}
}

func FuzzValidate(f *testing.F) {
	for _, b := range examples(f) {
		f.Add(b)
	}
	f.Add([]byte(`{"resourceType":"Patient","name":[{"given":[null],"_given":[null]}]}`))
	f.Add([]byte(`{"resourceType":"Bundle","entry":[{"resource":{"resourceType":"Bundle","entry":[{"resource":{"resourceType":"Patient","contained":[{"resourceType":"Patient"}]}}]}}]}`))
	v := validator(f)
	f.Fuzz(func(t *testing.T, body []byte) {
		m, err := fhir.ParseResource(body)
		if err != nil {
			return
		}
		typ, _ := m["resourceType"].(string)
		err = v.Validate(typ, m)
		if err == nil {
			return
		}
		fe, ok := fhir.AsError(err)
		if !ok || fe.HTTPStatus() != http.StatusBadRequest || fe.Diag == "" {
			t.Fatalf("error %v is not a 400 *fhir.Error with a message", err)
		}
		// The report is deterministic.
		if again := v.Validate(typ, m); again.Error() != err.Error() {
			t.Fatalf("report changed: %v vs %v", err, again)
		}
	})
}

func TestConcurrentUse(t *testing.T) {
	v := validator(t)
	bad := parse(t, `{"resourceType":"Patient","gender":"F","foo":1}`)
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for name, b := range examples(t) {
				m := parse(t, string(b))
				if err := v.Validate(m["resourceType"].(string), m); err != nil {
					t.Errorf("goroutine %d %s: %v", g, name, err)
				}
				if err := v.Validate("Patient", bad); err == nil {
					t.Errorf("goroutine %d: invalid Patient accepted", g)
				}
			}
		}()
	}
	wg.Wait()
}
