package storetest

import (
	"slices"
	"testing"

	"github.com/fhirguard/fhirguard/internal/store"
)

func TestIndexer(t *testing.T) {
	tests := []struct {
		name     string
		typ      string
		data     map[string]any
		patients []string
		labels   []store.Coding
	}{
		{"ok/patient-own-compartment", "Patient", map[string]any{"id": "p1"}, []string{"p1"}, nil},
		{"ok/subject", "Observation", map[string]any{"subject": map[string]any{"reference": "Patient/p1"}}, []string{"p1"}, nil},
		{"ok/absolute-and-history", "Condition", map[string]any{
			"subject": map[string]any{"reference": "https://h/fhir/Patient/p2/_history/3"},
			"patient": map[string]any{"reference": "Patient/p3"},
		}, []string{"p2", "p3"}, nil},
		{"ok/not-a-patient", "Observation", map[string]any{"subject": map[string]any{"reference": "Group/g1"}}, nil, nil},
		{"ok/labels", "Observation", map[string]any{"meta": map[string]any{"security": []any{
			map[string]any{"system": "s", "code": "R"},
		}}}, nil, []store.Coding{{System: "s", Code: "R"}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e, err := Indexer().Index(tc.typ, tc.data)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(e.Patients, tc.patients) || !slices.Equal(e.Labels, tc.labels) {
				t.Fatalf("got %+v, want %v %v", e, tc.patients, tc.labels)
			}
		})
	}
	t.Run("fail/security-not-array", func(t *testing.T) {
		if _, err := Indexer().Index("Observation", map[string]any{"meta": map[string]any{"security": "R"}}); err == nil {
			t.Fatal("accepted malformed meta.security")
		}
	})
}
