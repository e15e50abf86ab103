package searchparam

import (
	"slices"
	"testing"
)

func TestLookup(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, typ, code string
		wantType        Type
		wantExpr        string
		wantOK          bool
	}{
		{"ok/observation-subject", "Observation", "subject", TypeReference, "Observation.subject", true},
		{"ok/split-union", "Observation", "patient", TypeReference, "Observation.subject.where(resolve() is Patient)", true},
		{"ok/split-union-allergy", "AllergyIntolerance", "patient", TypeReference, "AllergyIntolerance.patient", true},
		{"ok/resource-id", "Observation", "_id", TypeToken, "Resource.id", true},
		{"ok/lastUpdated-on-bundle", "Bundle", "_lastUpdated", TypeDate, "Resource.meta.lastUpdated", true},
		{"ok/text-on-domain", "Patient", "_text", TypeString, "", true},
		{"ok/relative-expression", "InsurancePlan", "name", TypeString, "InsurancePlan.name | InsurancePlan.alias", true},
		{"ok/us-core-race", "Patient", "race", TypeToken, "Patient.extension.where(url = 'http://hl7.org/fhir/us/core/StructureDefinition/us-core-race').extension.value.code", true},
		{"ok/value-quantity", "Observation", "value-quantity", TypeQuantity, "(Observation.value.ofType(Quantity)) | (Observation.value.ofType(SampledData))", true},
		{"fail/text-not-on-bundle", "Bundle", "_text", "", "", false},
		{"fail/unknown-code", "Observation", "nope", "", "", false},
		{"fail/unknown-type", "Nope", "_id", "", "", false},
		{"fail/other-types-param", "Patient", "subject", "", "", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			p, ok := Lookup(tc.typ, tc.code)
			if ok != tc.wantOK {
				t.Fatalf("Lookup(%s, %s) ok = %v, want %v", tc.typ, tc.code, ok, tc.wantOK)
			}
			if !ok {
				return
			}
			if p.Type != tc.wantType || p.Expression != tc.wantExpr || p.Code != tc.code {
				t.Errorf("Lookup(%s, %s) = %s %q %q, want %s %q", tc.typ, tc.code, p.Type, p.Code, p.Expression, tc.wantType, tc.wantExpr)
			}
		})
	}
}

func TestParamDetails(t *testing.T) {
	t.Parallel()
	p, _ := Lookup("Observation", "code-value-quantity")
	if p.Type != TypeComposite || p.MultipleOr || len(p.Components) != 2 ||
		p.Components[0].Code != "code" || p.Components[1].Code != "value-quantity" ||
		p.Components[1].Expression != "value.ofType(Quantity)" {
		t.Errorf("code-value-quantity = %+v", p)
	}
	s, _ := Lookup("Observation", "subject")
	if !slices.Contains(s.Targets, "Patient") || !slices.Contains(s.Targets, "Group") || !s.HasModifier("identifier") || s.HasModifier("exact") {
		t.Errorf("Observation.subject = %+v", s)
	}
	d, _ := Lookup("Observation", "date")
	if !d.HasComparator("ge") || d.HasComparator("xx") {
		t.Errorf("Observation.date comparators = %v", d.Comparators)
	}
	g, _ := Lookup("Patient", "given")
	if !g.HasModifier("exact") || !g.HasModifier("contains") {
		t.Errorf("Patient.given modifiers = %v", g.Modifiers)
	}
	u, _ := Lookup("Goal", "description")
	if u.URL != "http://hl7.org/fhir/us/core/SearchParameter/us-core-goal-description" || u.Type != TypeToken {
		t.Errorf("US Core Goal.description = %+v", u)
	}
}

func TestForType(t *testing.T) {
	t.Parallel()
	ps := ForType("Observation")
	codes := map[string]bool{}
	for _, p := range ps {
		if codes[p.Code] {
			t.Errorf("duplicate code %s", p.Code)
		}
		codes[p.Code] = true
		if p.Base != "Observation" && p.Base != "Resource" && p.Base != "DomainResource" {
			t.Errorf("foreign param %s.%s", p.Base, p.Code)
		}
	}
	for _, c := range []string{"subject", "code", "value-quantity", "_id", "_lastUpdated", "_security", "_text"} {
		if !codes[c] {
			t.Errorf("ForType(Observation) lacks %s", c)
		}
	}
	if ForType("Nope") != nil {
		t.Error("ForType(Nope) != nil")
	}
	for _, p := range ForType("Bundle") {
		if p.Code == "_text" {
			t.Error("Bundle has _text")
		}
	}
}

func TestCompartment(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, comp, typ string
		want            []string
	}{
		{"ok/observation", "Patient", "Observation", []string{"subject", "performer"}},
		{"ok/allergy", "Patient", "AllergyIntolerance", []string{"patient", "recorder", "asserter"}},
		{"ok/patient-link", "Patient", "Patient", []string{"link"}},
		{"fail/not-in-compartment", "Patient", "Organization", nil},
		{"fail/other-compartment", "Encounter", "Observation", nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if got := CompartmentParams(tc.comp, tc.typ); !slices.Equal(got, tc.want) {
				t.Errorf("CompartmentParams(%s, %s) = %v, want %v", tc.comp, tc.typ, got, tc.want)
			}
		})
	}
	for _, typ := range CompartmentTypes("Patient") {
		for _, code := range CompartmentParams("Patient", typ) {
			p, ok := Lookup(typ, code)
			if !ok || p.Type != TypeReference || p.Expression == "" {
				t.Errorf("compartment param %s.%s: %+v", typ, code, p)
			}
		}
	}
}

func TestTablesSorted(t *testing.T) {
	t.Parallel()
	all := All()
	for i := 1; i < len(all); i++ {
		a, b := all[i-1], all[i]
		if a.Base > b.Base || a.Base == b.Base && a.Code >= b.Code {
			t.Fatalf("params not sorted at %d: %s.%s, %s.%s", i, a.Base, a.Code, b.Base, b.Code)
		}
	}
	if !slices.IsSorted(choiceElements[:]) {
		t.Fatal("choice elements not sorted")
	}
	if IsDomainResource("Bundle") || !IsDomainResource("Observation") || IsDomainResource("Resource") || IsDomainResource("Bot") {
		t.Error("IsDomainResource wrong")
	}
	for _, c := range []struct {
		name string
		want bool
	}{{"value", true}, {"onset", true}, {"deceased", true}, {"effective", true}, {"medication", true}, {"status", false}, {"valueSet", false}} {
		if IsChoiceElement(c.name) != c.want {
			t.Errorf("IsChoiceElement(%s) = %v", c.name, !c.want)
		}
	}
}
