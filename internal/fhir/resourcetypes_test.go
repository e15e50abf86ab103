package fhir

import (
	"sort"
	"testing"
)

func TestIsResourceType(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want bool
	}{
		{"ok/Patient", "Patient", true},
		{"ok/Account first", "Account", true},
		{"ok/VisionPrescription last", "VisionPrescription", true},
		{"ok/Bundle", "Bundle", true},
		{"ok/Parameters", "Parameters", true},
		{"ok/MedicinalProductUndesirableEffect", "MedicinalProductUndesirableEffect", true},
		{"fail/abstract Resource", "Resource", false},
		{"fail/abstract DomainResource", "DomainResource", false},
		{"fail/lower case", "patient", false},
		{"fail/empty", "", false},
		{"fail/datatype", "HumanName", false},
		{"fail/backbone", "Patient_Contact", false},
		{"fail/vendor Project", "Project", false},
		{"fail/vendor User", "User", false},
		{"fail/vendor Bot", "Bot", false},
		{"fail/R5 only", "Citation", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := IsResourceType(tt.in); got != tt.want {
				t.Errorf("IsResourceType(%q) = %v, want %v", tt.in, got, tt.want)
			}
		})
	}
}

func TestResourceTypes(t *testing.T) {
	got := ResourceTypes()
	// R4 4.0.1 defines 146 concrete resource types (the 145 listed in the
	// Patient CompartmentDefinition plus Parameters).
	if len(got) != 146 {
		t.Fatalf("len(ResourceTypes()) = %d, want 146", len(got))
	}
	if !sort.StringsAreSorted(got) {
		t.Error("ResourceTypes() not sorted")
	}
	for _, n := range got {
		if !IsResourceType(n) {
			t.Errorf("IsResourceType(%q) = false for a listed type", n)
		}
	}
	got[0] = "mutated"
	if ResourceTypes()[0] != "Account" {
		t.Error("ResourceTypes() shares its backing array with the caller")
	}
}
