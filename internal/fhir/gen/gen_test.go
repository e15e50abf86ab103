package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"testing"
)

// schemaDir finds the shared FHIR R4 definitions; the generated files are
// committed, so without them the up-to-date check is skipped.
func schemaDir(t *testing.T) string {
	t.Helper()
	dir := os.Getenv("FHIR_R4_DIR")
	if dir == "" {
		dir = filepath.Join("..", "..", "..", "..", "shared", "fhir-r4")
	}
	if _, err := os.Stat(filepath.Join(dir, "fhir.schema.json")); err != nil {
		t.Skipf("FHIR R4 schema not found in %s (set FHIR_R4_DIR); generated files not re-checked", dir)
	}
	return dir
}

func TestGeneratedUpToDate(t *testing.T) {
	files, err := Generate(schemaDir(t))
	if err != nil {
		t.Fatalf("Generate: %v", err)
	}
	if len(files) == 0 {
		t.Fatal("Generate produced no files")
	}
	for rel, want := range files {
		got, err := os.ReadFile(filepath.Join("..", rel))
		if err != nil {
			t.Fatalf("read committed %s: %v", rel, err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("internal/fhir/%s is stale: run go generate ./internal/fhir", rel)
		}
	}
}

func TestAnchor(t *testing.T) {
	tests := []struct {
		name, pattern, in string
		want              bool
	}{
		{"ok/boolean true", "^true|false$", "true", true},
		{"fail/boolean prefix", "^true|false$", "trueish", false},
		{"fail/boolean suffix", "^true|false$", "notfalse", false},
		{"ok/unsignedInt", "^[0]|([1-9][0-9]*)$", "42", true},
		{"fail/unsignedInt negative", "^[0]|([1-9][0-9]*)$", "-5", false},
		{"fail/unsignedInt leading zero", "^[0]|([1-9][0-9]*)$", "01", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := regexp.MustCompile(anchor(tt.pattern)).MatchString(tt.in); got != tt.want {
				t.Errorf("%s on %q = %v, want %v", anchor(tt.pattern), tt.in, got, tt.want)
			}
		})
	}
}

func TestVendorDetection(t *testing.T) {
	s, err := loadSchema(schemaDir(t))
	if err != nil {
		t.Fatal(err)
	}
	types, err := s.resourceTypes()
	if err != nil {
		t.Fatal(err)
	}
	if len(types) != 146 {
		t.Errorf("got %d R4 resource types, want 146", len(types))
	}
	// Cross-check against the Patient compartment definition, which lists
	// every R4 resource type except Parameters.
	var cd struct {
		Resource []struct {
			Code string `json:"code"`
		} `json:"resource"`
	}
	b, err := os.ReadFile(filepath.Join(schemaDir(t), "compartmentdefinition-patient.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &cd); err != nil {
		t.Fatal(err)
	}
	want := map[string]bool{"Parameters": true}
	for _, r := range cd.Resource {
		want[r.Code] = true
	}
	for _, n := range types {
		if !want[n] {
			t.Errorf("%s is not an R4 resource type", n)
		}
		delete(want, n)
	}
	for n := range want {
		t.Errorf("R4 resource type %s missing", n)
	}
}
