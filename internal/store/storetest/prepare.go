package storetest

import (
	"bytes"
	"testing"

	"github.com/fhirguard/fhirguard/internal/store"
)

// prepareCases prove that Store.Prepare changes where the work happens,
// never the result.
var prepareCases = []testCase{
	{"ok/prepared-equals-unprepared", func(t *testing.T, s store.Store) {
		for i, prepared := range []bool{false, true} {
			data := observation("p1", "1.50")
			data["meta"] = map[string]any{
				"security":  []any{map[string]any{"system": "http://terminology.hl7.org/CodeSystem/v3-Confidentiality", "code": "R"}},
				"versionId": "99", "lastUpdated": "1999-01-01T00:00:00Z",
			}
			w := store.Write{Type: "Observation", ID: []string{"plain", "prep"}[i], Data: data}
			if prepared {
				if err := s.Prepare(&w); err != nil {
					t.Fatalf("Prepare: %v", err)
				}
			}
			res := mustPut(t, s, w)
			mustPut(t, s, store.Write{Type: "Observation", ID: w.ID, Data: observation("p1", "2")}) // v2
			v1, err := s.VRead(ctxT(t), "Observation", w.ID, 1)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(v1.Body, res.Resource.Body) {
				t.Fatalf("prepared=%t: stored body differs from returned body", prepared)
			}
			checkResource(t, "prepared", v1, "Observation", w.ID, 1, false)
			if bytes.Contains(v1.Body, []byte("fhirguard-")) || bytes.Contains(v1.Body, []byte(`"99"`)) {
				t.Fatalf("prepared=%t: placeholder or client meta left in body: %s", prepared, v1.Body)
			}
			if !bytes.Contains(v1.Body, []byte(`"code":"R"`)) || !bytes.Contains(v1.Body, []byte(`"value":1.50`)) {
				t.Fatalf("prepared=%t: content lost: %s", prepared, v1.Body)
			}
			facts, err := s.IndexFacts(ctxT(t), "Observation", w.ID)
			if err != nil || len(facts.Patients) != 1 {
				t.Fatalf("prepared=%t: facts %+v %v", prepared, facts, err)
			}
		}
	}},
	{"fail/prepared-for-another-resource", func(t *testing.T, s store.Store) {
		w := store.Write{Type: "Patient", ID: "a", Data: patient("A")}
		if err := s.Prepare(&w); err != nil {
			t.Fatal(err)
		}
		w.ID = "b"
		if _, err := put(ctxT(t), s, w); err == nil {
			t.Fatal("Put accepted a Write prepared for another id")
		}
		if _, err := s.Read(ctxT(t), "Patient", "b"); err == nil {
			t.Fatal("mismatched prepared write stored")
		}
	}},
}
