package fhirpath

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
)

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

// show renders a result collection compactly: strings and numbers as their
// text, booleans as true/false, maps as Type{keys} or their "reference".
func show(ns []Node) string {
	var parts []string
	for _, n := range ns {
		switch v := n.Value.(type) {
		case map[string]any:
			if r, ok := v["reference"].(string); ok {
				parts = append(parts, n.Type+"@"+r)
				continue
			}
			if id, ok := v["id"].(string); ok {
				parts = append(parts, n.Type+"#"+id)
				continue
			}
			if c, ok := v["code"].(string); ok {
				parts = append(parts, n.Type+":"+c)
				continue
			}
			parts = append(parts, n.Type+"{}")
		default:
			parts = append(parts, fmt.Sprint(v))
		}
	}
	return strings.Join(parts, ",")
}

const observation = `{
  "resourceType": "Observation", "id": "o1", "status": "final",
  "meta": {"lastUpdated": "2024-05-01T10:00:00Z", "security": [{"system": "s", "code": "R"}]},
  "contained": [{"resourceType": "Patient", "id": "cp"}],
  "category": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/observation-category", "code": "vital-signs"}]}],
  "code": {"coding": [{"system": "http://loinc.org", "code": "8867-4", "display": "Heart rate"}], "text": "HR"},
  "subject": {"reference": "Patient/pA"},
  "performer": [{"reference": "Practitioner/d1"}, {"reference": "https://x.org/fhir/Patient/pB/_history/2"}, {"reference": "#cp"}],
  "effectiveDateTime": "2024-05-01",
  "valueQuantity": {"value": 1.50, "unit": "kg", "system": "http://unitsofmeasure.org", "code": "kg"},
  "component": [
    {"code": {"coding": [{"code": "a"}]}, "valueQuantity": {"value": 120, "code": "mm[Hg]"}},
    {"code": {"coding": [{"code": "b"}]}, "valueString": "high"}
  ],
  "extension": [{"url": "http://e/x", "valueString": "ext1"}, {"url": "http://e/y", "valueBoolean": true}]
}`

func TestEval(t *testing.T) {
	t.Parallel()
	obs := decode(t, observation)
	pat := decode(t, `{"resourceType":"Patient","id":"p1","active":true,
		"deceasedBoolean": false,
		"telecom":[{"system":"phone","value":"555"},{"system":"email","value":"a@b.c"}],
		"extension":[{"url":"http://hl7.org/fhir/us/core/StructureDefinition/us-core-race",
			"extension":[{"url":"ombCategory","valueCoding":{"system":"urn:oid:2.16.840.1.113883.6.238","code":"2106-3"}},
			             {"url":"text","valueString":"White"}]}]}`)
	dead := decode(t, `{"resourceType":"Patient","id":"p2","deceasedDateTime":"2020-01-01"}`)
	tests := []struct {
		name string
		res  map[string]any
		expr string
		want string
	}{
		{"ok/path", obs, "Observation.subject", "@Patient/pA"},
		{"ok/wrong-root-type", obs, "Condition.subject", ""},
		{"ok/resource-root", obs, "Resource.id", "o1"},
		{"ok/domainresource-root", obs, "DomainResource.id", "o1"},
		{"ok/relative", obs, "status", "final"},
		{"ok/nested-arrays", obs, "Observation.category.coding.code", "vital-signs"},
		{"ok/choice", obs, "Observation.value", "Quantity:kg"},
		{"ok/choice-oftype", obs, "Observation.value.ofType(Quantity).unit", "kg"},
		{"ok/choice-oftype-miss", obs, "Observation.value.ofType(string)", ""},
		{"ok/as-operator", obs, "(Observation.value as Quantity).value", "1.50"},
		{"ok/as-function", obs, "Observation.value.as(Quantity).code", "kg"},
		{"ok/choice-datetime-lower", obs, "Observation.effective.ofType(dateTime)", "2024-05-01"},
		{"ok/choice-datetime-upper", obs, "Observation.effective.ofType(DateTime)", "2024-05-01"},
		{"ok/component-union", obs, "Observation.component.value.ofType(Quantity) | Observation.component.value.ofType(string)", "Quantity:mm[Hg],high"},
		{"ok/unfused-oftype", obs, "(Observation.value).ofType(Quantity).unit", "kg"},
		{"ok/unfused-oftype-miss", obs, "(Observation.component.value).ofType(string)", "high"},
		{"ok/fused-oftype-primitive", obs, "Observation.component.value.ofType(string)", "high"},
		{"ok/fused-oftype-type", obs, "Observation.component.value.ofType(Quantity).is(Quantity)", "true"},
		{"ok/union-dedup", obs, "Observation.subject | Observation.subject", "@Patient/pA"},
		{"ok/paren-then-path", obs, "(Observation.value.ofType(Quantity)).code", "kg"},
		{"ok/resolve-is-patient", obs, "Observation.performer.where(resolve() is Patient)", "@https://x.org/fhir/Patient/pB/_history/2,@#cp"},
		{"ok/resolve-is-practitioner", obs, "Observation.performer.where(resolve() is Practitioner)", "@Practitioner/d1"},
		{"ok/resolve-contained", obs, "Observation.performer.resolve()", "Practitioner@Practitioner/d1,Patient@https://x.org/fhir/Patient/pB/_history/2,Patient#cp"},
		{"ok/where-eq", pat, "Patient.telecom.where(system='email').value", "a@b.c"},
		{"ok/where-ne", pat, "Patient.telecom.where(system!='email').value", "555"},
		{"ok/exists-true", pat, "Patient.telecom.exists()", "true"},
		{"ok/exists-false", pat, "Patient.photo.exists()", "false"},
		{"ok/exists-criteria", pat, "Patient.telecom.exists(system='fax')", "false"},
		{"ok/empty", pat, "Patient.photo.empty()", "true"},
		{"ok/not", pat, "Patient.active.not()", "false"},
		{"ok/deceased-boolean-false", pat, "Patient.deceased.exists() and Patient.deceased != false", "false"},
		{"ok/deceased-datetime", dead, "Patient.deceased.exists() and Patient.deceased != false", "true"},
		{"ok/deceased-absent", decode(t, `{"resourceType":"Patient","id":"p3"}`), "Patient.deceased.exists() and Patient.deceased != false", "false"},
		{"ok/extension-fn", obs, "Observation.extension('http://e/x').value", "ext1"},
		{"ok/extension-where", pat, "Patient.extension.where(url = 'http://hl7.org/fhir/us/core/StructureDefinition/us-core-race').extension.value.code", "2106-3"},
		{"ok/first", obs, "Observation.performer.first()", "@Practitioner/d1"},
		{"ok/last", obs, "Observation.performer.last()", "@#cp"},
		{"ok/indexer", obs, "Observation.performer[1]", "@https://x.org/fhir/Patient/pB/_history/2"},
		{"ok/indexer-out-of-range", obs, "Observation.performer[7]", ""},
		{"ok/count", obs, "Observation.performer.count()", "3"},
		{"ok/is-operator", obs, "Observation.value is Quantity", "true"},
		{"ok/is-function", obs, "Observation.value.is(CodeableConcept)", "false"},
		{"ok/percent-resource", obs, "Observation.component.select(%resource.id)", "o1,o1"},
		{"ok/this", obs, "Observation.component.code.coding.code.where($this = 'b')", "b"},
		{"ok/number-compare", obs, "Observation.value.value > 1.4", "true"},
		{"ok/number-equal-scale", obs, "Observation.value.value = 1.5", "true"},
		{"ok/string-concat", obs, "Observation.id & '-' & Observation.status", "o1-final"},
		{"ok/or", obs, "Observation.status = 'x' or Observation.status = 'final'", "true"},
		{"ok/xor", obs, "true xor false", "true"},
		{"ok/implies", obs, "false implies {}", "true"},
		{"ok/and-empty", obs, "true and {}", ""},
		{"ok/equivalent", obs, "Observation.code.text ~ 'hr'", "true"},
		{"ok/empty-literal-eq", obs, "{} = 1", ""},
		{"ok/hasvalue", obs, "Observation.status.hasValue()", "true"},
		{"ok/tail", obs, "Observation.performer.tail().count()", "2"},
		{"ok/meta", obs, "Resource.meta.security.code", "R"},
		{"ok/backtick", obs, "Observation.`status`", "final"},
		{"ok/string-escape", obs, `Observation.id = 'o\u0031'`, "true"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e, err := Compile(tc.expr)
			if err != nil {
				t.Fatalf("Compile(%q): %v", tc.expr, err)
			}
			got, err := e.Eval(tc.res)
			if err != nil {
				t.Fatalf("Eval(%q): %v", tc.expr, err)
			}
			if s := show(got); s != tc.want {
				t.Errorf("Eval(%q) = %q, want %q", tc.expr, s, tc.want)
			}
		})
	}
}

func TestCompileErrors(t *testing.T) {
	t.Parallel()
	tests := []struct{ name, expr, wantMsg string }{
		{"fail/empty", "", "unexpected end"},
		{"fail/unknown-function", "Patient.name.foo()", "unsupported function foo()"},
		{"fail/arity", "Patient.name.where()", "takes 1 to 1 arguments"},
		{"fail/oftype-not-type", "Patient.value.ofType('x')", "needs a type name"},
		{"fail/unbalanced", "Patient.name.where(given = 'x'", `expected ")"`},
		{"fail/trailing", "Patient.name )", "after the expression"},
		{"fail/unterminated-string", "Patient.name = 'abc", "unterminated literal"},
		{"fail/bad-char", "Patient.name # 1", "unexpected character"},
		{"fail/unsupported-operator", "Patient.a * 2", "unsupported operator"},
		{"fail/unsupported-variable", "%foo.bar", "unsupported variable"},
		{"fail/unsupported-dollar", "$index", "unsupported variable"},
		{"fail/dangling-dot", "Patient.", "unexpected end"},
		{"fail/bad-escape", `'a\q'`, "unknown escape"},
		{"fail/too-deep", strings.Repeat("(", 500) + "a" + strings.Repeat(")", 500), "nested too deeply"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := Compile(tc.expr)
			if err == nil || !strings.Contains(err.Error(), tc.wantMsg) {
				t.Errorf("Compile(%q) err = %v, want containing %q", tc.expr, err, tc.wantMsg)
			}
		})
	}
}

func TestEvalErrors(t *testing.T) {
	t.Parallel()
	obs := decode(t, observation)
	for _, expr := range []string{
		"Observation.performer is Patient",          // 'is' on many
		"Observation.performer[Observation.status]", // non-integer index
		"Observation.performer < 1",                 // comparison on many
	} {
		e, err := Compile(expr)
		if err != nil {
			t.Fatalf("Compile(%q): %v", expr, err)
		}
		if _, err := e.Eval(obs); err == nil {
			t.Errorf("fail/Eval(%q): no error", expr)
		}
	}
}

func TestParseReference(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, ref, typ, id, version string
		ok                          bool
	}{
		{"ok/relative", "Patient/123", "Patient", "123", "", true},
		{"ok/versioned", "Patient/123/_history/4", "Patient", "123", "4", true},
		{"ok/absolute", "https://h.example/fhir/Patient/a.b-c", "Patient", "a.b-c", "", true},
		{"ok/absolute-versioned", "http://h/fhir/R4/Observation/o1/_history/2", "Observation", "o1", "2", true},
		{"fail/contained", "#p1", "", "", "", false},
		{"fail/urn-uuid", "urn:uuid:1234", "", "", "", false},
		{"fail/bare-id", "123", "", "", "", false},
		{"fail/lowercase-type", "patient/1", "", "", "", false},
		{"fail/relative-extra-segments", "a/Patient/1", "", "", "", false},
		{"fail/bad-id", "Patient/a b", "", "", "", false},
		{"fail/empty-history", "Patient/1/_history/", "", "", "", false},
		{"fail/empty", "", "", "", "", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			typ, id, v, ok := ParseReference(tc.ref)
			if typ != tc.typ || id != tc.id || v != tc.version || ok != tc.ok {
				t.Errorf("ParseReference(%q) = %q %q %q %v", tc.ref, typ, id, v, ok)
			}
		})
	}
}

func TestString(t *testing.T) {
	t.Parallel()
	tests := []struct{ in, want string }{
		{"a.b | c.d", "a.b | c.d"},
		{"(a | b).c", "(a | b).c"},
		{"a = 'x''", ""},
		{"a and (b or c)", "a and (b or c)"},
		{"a or b and c", "a or b and c"},
		{"x.where(resolve() is Patient)", "x.where(resolve() is Patient)"},
		{"x.ofType(FHIR.Quantity)", "x.ofType(FHIR.Quantity)"},
		{"x = 'it\\'s'", "x = 'it\\'s'"},
		{"-1.5 < x", "-1.5 < x"},
	}
	for _, tc := range tests {
		e, err := Compile(tc.in)
		if tc.want == "" {
			if err == nil {
				t.Errorf("fail/Compile(%q) succeeded", tc.in)
			}
			continue
		}
		if err != nil {
			t.Errorf("Compile(%q): %v", tc.in, err)
			continue
		}
		if got := e.String(); got != tc.want {
			t.Errorf("String(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}
