package main

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

// sourceDir finds the FHIR R4 definitions: $FHIRGUARD_FHIR_R4 or
// ../shared/fhir-r4 beside the repository root.
func sourceDir(t *testing.T) string {
	t.Helper()
	if d := os.Getenv("FHIRGUARD_FHIR_R4"); d != "" {
		return d
	}
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return filepath.Join(dir, "..", "shared", "fhir-r4")
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("no go.mod above the test directory")
		}
		dir = parent
	}
}

// TestTablesUpToDate regenerates the tables and compares them with the
// committed tables_gen.go and params*_gen.go. Without the definitions (a checkout without
// ../shared) there is nothing to compare against.
func TestTablesUpToDate(t *testing.T) {
	src := sourceDir(t)
	if _, err := os.Stat(filepath.Join(src, "search-parameters.json")); err != nil {
		t.Skipf("FHIR R4 definitions not found at %s (set FHIRGUARD_FHIR_R4): %v", src, err)
	}
	got, err := Generate(src)
	if err != nil {
		t.Fatalf("Generate: %v", err)
	}
	have, err := filepath.Glob(filepath.Join("..", "*_gen.go"))
	if err != nil {
		t.Fatal(err)
	}
	if len(have) != len(got) {
		t.Errorf("%d generated files committed, want %d: run go generate ./internal/fhir/searchparam", len(have), len(got))
	}
	for name, src := range got {
		want, err := os.ReadFile(filepath.Join("..", name))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(src, want) {
			t.Errorf("internal/fhir/searchparam/%s is stale: run go generate ./internal/fhir/searchparam", name)
		}
	}
}

func TestRestrict(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, expr, base, want string
		wantErr                bool
	}{
		{"ok/keep-own", "Observation.subject | Condition.subject", "Condition", "Condition.subject", false},
		{"ok/resource", "Resource.id", "Resource", "Resource.id", false},
		{"ok/parens", "(Observation.value.ofType(Quantity)) | (Condition.onset.ofType(Age))", "Observation", "(Observation.value.ofType(Quantity))", false},
		{"ok/pipe-in-string", "Observation.code.where(text = 'a|b')", "Observation", "Observation.code.where(text = 'a|b')", false},
		{"ok/relative", "name | alias", "InsurancePlan", "InsurancePlan.name | InsurancePlan.alias", false},
		{"fail/no-part", "Observation.subject", "Condition", "", true},
		{"fail/unbalanced", "Observation.subject.where(", "Observation", "", true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := restrict(tc.expr, tc.base)
			if (err != nil) != tc.wantErr || got != tc.want {
				t.Errorf("restrict(%q, %s) = %q, %v; want %q, err %v", tc.expr, tc.base, got, err, tc.want, tc.wantErr)
			}
		})
	}
}
