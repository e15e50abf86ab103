package index

import (
	"bufio"
	"bytes"
	"encoding/json"
	"slices"
	"testing"

	"github.com/fhirguard/fhirguard/internal/synth"
)

// TestSynthDataset indexes a synthetic data set: every resource yields
// rows without error, each Patient is in its own compartment, and every
// clinical resource is in exactly the compartment of the patient it was
// generated for.
func TestSynthDataset(t *testing.T) {
	t.Parallel()
	ix := newIndexer(t)
	var buf bytes.Buffer
	n, err := synth.New(synth.Options{Patients: 4, PerPatient: 40, Seed: 7, Practitioners: 3}).WriteNDJSON(&buf)
	if err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(&buf)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	var current string
	types := map[string]int{}
	rowsSeen := 0
	for sc.Scan() {
		d := json.NewDecoder(bytes.NewReader(sc.Bytes()))
		d.UseNumber()
		var res map[string]any
		if err := d.Decode(&res); err != nil {
			t.Fatal(err)
		}
		typ, _ := res["resourceType"].(string)
		id, _ := res["id"].(string)
		types[typ]++
		e, err := ix.Index(typ, res)
		if err != nil {
			t.Fatalf("Index %s/%s: %v", typ, id, err)
		}
		rows, err := ix.Rows(typ, res)
		if err != nil {
			t.Fatalf("Rows %s/%s: %v", typ, id, err)
		}
		rowsSeen += len(rows.Tokens) + len(rows.References) + len(rows.Dates) + len(rows.Strings)
		switch typ {
		case "Practitioner":
			if len(e.Patients) != 0 {
				t.Errorf("%s/%s in compartments %q", typ, id, e.Patients)
			}
		case "Patient":
			current = id
			if !slices.Equal(e.Patients, []string{id}) {
				t.Errorf("Patient/%s compartments %q", id, e.Patients)
			}
		default:
			if !slices.Equal(e.Patients, []string{current}) {
				t.Errorf("%s/%s compartments %q, want [%s]", typ, id, e.Patients, current)
			}
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if len(types) < 5 || n < 50 {
		t.Fatalf("synthetic set too small: %d resources, types %v", n, types)
	}
	t.Logf("%d resources of %d types, %d rows", n, len(types), rowsSeen)
}
