package synth

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
)

func TestDeterministicAndShaped(t *testing.T) {
	var a, b bytes.Buffer
	na, err := New(Options{Patients: 3, PerPatient: 100, Seed: 7}).WriteNDJSON(&a)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := New(Options{Patients: 3, PerPatient: 100, Seed: 7}).WriteNDJSON(&b); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(a.Bytes(), b.Bytes()) {
		t.Fatal("same seed produced different data")
	}
	byType := map[string]int{}
	ids := map[string]bool{}
	for _, line := range strings.Split(strings.TrimSpace(a.String()), "\n") {
		var r struct {
			ResourceType string `json:"resourceType"`
			ID           string `json:"id"`
		}
		if err := json.Unmarshal([]byte(line), &r); err != nil {
			t.Fatalf("bad line %q: %v", line, err)
		}
		key := r.ResourceType + "/" + r.ID
		if ids[key] {
			t.Fatalf("duplicate %s", key)
		}
		ids[key] = true
		byType[r.ResourceType]++
	}
	if na != len(ids) {
		t.Fatalf("count %d != lines %d", na, len(ids))
	}
	if byType["Patient"] != 3 || byType["Practitioner"] != 50 {
		t.Fatalf("unexpected counts %v", byType)
	}
	if obs := byType["Observation"]; obs != 3*60 {
		t.Fatalf("Observation count %d, want 180 (60 per patient)", obs)
	}
}
