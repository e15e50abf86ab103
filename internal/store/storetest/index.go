package storetest

import (
	"cmp"
	"slices"
	"strings"
	"testing"

	"github.com/fhirguard/fhirguard/internal/store"
)

func labelled(data map[string]any, codings ...store.Coding) map[string]any {
	var sec []any
	for _, c := range codings {
		sec = append(sec, map[string]any{"system": c.System, "code": c.Code})
	}
	data["meta"] = map[string]any{"security": sec}
	return data
}

var (
	confR   = store.Coding{System: "http://terminology.hl7.org/CodeSystem/v3-Confidentiality", Code: "R"}
	confN   = store.Coding{System: "http://terminology.hl7.org/CodeSystem/v3-Confidentiality", Code: "N"}
	psyInfo = store.Coding{System: "http://terminology.hl7.org/CodeSystem/v3-ActCode", Code: "PSY"}
)

func sortedLabels(l []store.Coding) []store.Coding {
	out := slices.Clone(l)
	slices.SortFunc(out, func(a, b store.Coding) int {
		return cmp.Or(strings.Compare(a.System, b.System), strings.Compare(a.Code, b.Code))
	})
	return out
}

func wantFacts(t *testing.T, s store.Store, typ, id string, patients []string, labels []store.Coding) {
	t.Helper()
	f, err := s.IndexFacts(ctxT(t), typ, id)
	if err != nil {
		t.Fatalf("IndexFacts %s/%s: %v", typ, id, err)
	}
	gotP := slices.Clone(f.Patients)
	slices.Sort(gotP)
	if !slices.Equal(gotP, patients) {
		t.Fatalf("IndexFacts %s/%s patients = %v, want %v", typ, id, gotP, patients)
	}
	if got := sortedLabels(f.Labels); !slices.Equal(got, sortedLabels(labels)) {
		t.Fatalf("IndexFacts %s/%s labels = %v, want %v", typ, id, got, labels)
	}
}

var indexCases = []testCase{
	{"ok/index-facts", func(t *testing.T, s store.Store) {
		mustPut(t, s, store.Write{Type: "Patient", ID: "p1", Data: labelled(patient("One"), confN)})
		mustPut(t, s, store.Write{Type: "Observation", ID: "o1", Data: labelled(observation("p1", "1"), confR, psyInfo)})
		mustPut(t, s, store.Write{Type: "Observation", ID: "o2", Data: observation("p2", "1")})
		wantFacts(t, s, "Patient", "p1", []string{"p1"}, []store.Coding{confN})
		wantFacts(t, s, "Observation", "o1", []string{"p1"}, []store.Coding{confR, psyInfo})
		wantFacts(t, s, "Observation", "o2", []string{"p2"}, nil)
	}},
	{"ok/index-duplicates-collapse", func(t *testing.T, s store.Store) {
		data := labelled(observation("p1", "1"), confR, confR)
		data["patient"] = map[string]any{"reference": "Patient/p1"}
		mustPut(t, s, store.Write{Type: "Observation", ID: "o1", Data: data})
		wantFacts(t, s, "Observation", "o1", []string{"p1"}, []store.Coding{confR})
	}},
	{"ok/index-replaced-on-update", func(t *testing.T, s store.Store) {
		mustPut(t, s, store.Write{Type: "Observation", ID: "o1", Data: labelled(observation("p1", "1"), confR)})
		mustPut(t, s, store.Write{Type: "Observation", ID: "o1", Data: labelled(observation("p2", "1"), confN)})
		wantFacts(t, s, "Observation", "o1", []string{"p2"}, []store.Coding{confN})
		mustPut(t, s, store.Write{Type: "Observation", ID: "o1", Data: map[string]any{"status": "final"}})
		wantFacts(t, s, "Observation", "o1", nil, nil)
	}},
	{"ok/index-gone-after-delete", func(t *testing.T, s store.Store) {
		mustPut(t, s, store.Write{Type: "Observation", ID: "o1", Data: labelled(observation("p1", "1"), confR)})
		mustDelete(t, s, "Observation", "o1")
		f, err := s.IndexFacts(ctxT(t), "Observation", "o1")
		wantErr(t, "IndexFacts after delete", err, store.ErrGone)
		if f != nil && (len(f.Patients) != 0 || len(f.Labels) != 0) {
			t.Fatalf("IndexFacts after delete returned rows: %+v", f)
		}
		// Re-creating brings rows of the new version only.
		mustPut(t, s, store.Write{Type: "Observation", ID: "o1", Data: observation("p3", "1")})
		wantFacts(t, s, "Observation", "o1", []string{"p3"}, nil)
	}},
	{"fail/index-facts-unknown", func(t *testing.T, s store.Store) {
		_, err := s.IndexFacts(ctxT(t), "Observation", "nope")
		wantErr(t, "IndexFacts unknown", err, store.ErrNotFound)
	}},
}
