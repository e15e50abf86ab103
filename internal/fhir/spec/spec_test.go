package spec

import (
	"regexp"
	"slices"
	"testing"
	"time"

	"github.com/fhirguard/fhirguard/internal/fhir"
)

func load(t testing.TB) *Model {
	t.Helper()
	m, err := Load()
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	return m
}

func TestLoadFast(t *testing.T) {
	limit := 30 * time.Millisecond
	if raceEnabled {
		limit *= 10
	}
	// The best of a few runs, so a busy machine does not fail the test.
	best := time.Hour
	for range 5 {
		start := time.Now()
		load(t)
		best = min(best, time.Since(start))
	}
	if best > limit {
		t.Errorf("Load took %v, want < %v", best, limit)
	}
}

func TestResourceTypesMatchFhir(t *testing.T) {
	if got, want := load(t).ResourceTypes(), fhir.ResourceTypes(); !slices.Equal(got, want) {
		t.Errorf("spec resource types differ from fhir.ResourceTypes():\n%v\n%v", got, want)
	}
}

func TestLookup(t *testing.T) {
	m := load(t)
	tests := []struct {
		name            string
		typ, elem       string
		wantType        string
		wantArray       bool
		wantSibling     bool
		wantChoice      string
		wantEnum, wantK string
		missing         bool
	}{
		{name: "ok/Patient.birthDate", typ: "Patient", elem: "birthDate", wantType: "date"},
		{name: "ok/Patient._birthDate", typ: "Patient", elem: "_birthDate", wantType: "date", wantSibling: true},
		{name: "ok/Patient.name array", typ: "Patient", elem: "name", wantType: "HumanName", wantArray: true},
		{name: "ok/Patient.gender enum", typ: "Patient", elem: "gender", wantType: "code", wantEnum: "female"},
		{name: "ok/Patient.deceasedBoolean choice", typ: "Patient", elem: "deceasedBoolean", wantType: "boolean", wantChoice: "deceased"},
		{name: "ok/Patient.contained", typ: "Patient", elem: "contained", wantType: "ResourceList", wantArray: true},
		{name: "ok/HumanName._given", typ: "HumanName", elem: "_given", wantType: "string", wantArray: true, wantSibling: true},
		{name: "ok/Observation_Component.valueQuantity", typ: "Observation_Component", elem: "valueQuantity", wantType: "Quantity", wantChoice: "value"},
		{name: "ok/Meta._profile canonical sibling", typ: "Meta", elem: "_profile", wantType: "canonical", wantArray: true, wantSibling: true},
		{name: "ok/Extension.valueBase64Binary", typ: "Extension", elem: "valueBase64Binary", wantType: "base64Binary", wantChoice: "value"},
		{name: "ok/Task.reasonCode is no choice", typ: "Task", elem: "reasonCode", wantType: "CodeableConcept"},
		{name: "ok/Bundle_Entry.resource", typ: "Bundle_Entry", elem: "resource", wantType: "ResourceList"},
		{name: "fail/Patient.foo", typ: "Patient", elem: "foo", missing: true},
		{name: "fail/Patient._name (complex has no sibling)", typ: "Patient", elem: "_name", missing: true},
		{name: "fail/vendor Meta.project", typ: "Meta", elem: "project", missing: true},
		{name: "fail/vendor Meta.compartment", typ: "Meta", elem: "compartment", missing: true},
		{name: "fail/vendor Reference.resource", typ: "Reference", elem: "resource", missing: true},
		{name: "fail/vendor OperationOutcome.status", typ: "OperationOutcome", elem: "status", missing: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			typ := m.Type(tt.typ)
			if typ == nil {
				t.Fatalf("type %s missing", tt.typ)
			}
			el, sib, ok := typ.Lookup(tt.elem)
			if tt.missing {
				if ok {
					t.Fatalf("Lookup(%q) found %+v, want missing", tt.elem, el)
				}
				return
			}
			if !ok {
				t.Fatalf("Lookup(%q) missing", tt.elem)
			}
			if el.Type.Name != tt.wantType || el.Array != tt.wantArray || sib != tt.wantSibling || el.Choice != tt.wantChoice {
				t.Errorf("got type=%s array=%v sibling=%v choice=%q", el.Type.Name, el.Array, sib, el.Choice)
			}
			if tt.wantEnum != "" && !slices.Contains(el.Enum, tt.wantEnum) {
				t.Errorf("enum %v lacks %q", el.Enum, tt.wantEnum)
			}
		})
	}
}

func TestModelShape(t *testing.T) {
	m := load(t)
	if m.Type("Project") != nil || m.Type("Resource") != nil || m.Resource("HumanName") != nil {
		t.Error("vendor, abstract or data type reported as a resource")
	}
	p := m.Resource("Patient")
	if p == nil || !slices.Contains(p.Required, "resourceType") {
		t.Fatalf("Patient missing or resourceType not required: %+v", p)
	}
	if el, _, _ := p.Lookup("resourceType"); el.Const != "Patient" {
		t.Errorf("Patient.resourceType const = %q", el.Const)
	}
	if n := m.Type("Narrative"); !slices.Contains(n.Required, "div") {
		t.Errorf("Narrative.required = %v", n.Required)
	}
	for _, name := range []string{"string", "date", "dateTime", "instant", "id", "code", "uri", "decimal", "integer", "positiveInt", "unsignedInt", "boolean", "base64Binary"} {
		pt := m.Type(name)
		if pt == nil || pt.Kind != Primitive || pt.Pattern == "" {
			t.Errorf("primitive %s missing or without pattern: %+v", name, pt)
			continue
		}
		if _, err := regexp.Compile(pt.Pattern); err != nil {
			t.Errorf("primitive %s pattern: %v", name, err)
		}
	}
	// Every element type is resolved and every choice base has >1 variant.
	for _, rt := range m.ResourceTypes() {
		seen := map[string]int{}
		for _, el := range m.Resource(rt).Elements {
			if el.Type == nil {
				t.Fatalf("%s.%s unresolved", rt, el.Name)
			}
			if el.Choice != "" {
				seen[el.Choice]++
			}
		}
		for base, n := range seen {
			if n < 2 {
				t.Errorf("%s choice %s has %d variant", rt, base, n)
			}
		}
	}
}

func TestParseErrors(t *testing.T) {
	for _, text := range []string{
		"X\tfoo\n",
		"P\tstring\tblob\t\n",
		"E\tfoo\tstring\t1\t\t\t\n",
		"P\tstring\tstring\t\nL\tResourceList\nC\tElement\t\nE\tid\tnope\t1\t\t\t\n",
		"P\tstring\tstring\t\nL\tResourceList\nC\tElement\t\nE\tid\tstring\t1\t\tweird\t\n",
	} {
		if _, err := parse(text); err == nil {
			t.Errorf("parse(%q) succeeded", text)
		}
	}
}

func BenchmarkLoad(b *testing.B) {
	for b.Loop() {
		if _, err := Load(); err != nil {
			b.Fatal(err)
		}
	}
}
