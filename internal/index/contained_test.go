package index

import (
	"slices"
	"testing"
)

func TestContainedRows(t *testing.T) {
	t.Parallel()
	ix := newIndexer(t)
	report := decode(t, `{"resourceType":"DiagnosticReport","id":"r1","status":"final","code":{"text":"panel"},
		"subject":{"reference":"Patient/pA"},"result":[{"reference":"#g"},{"reference":"#h"}],
		"contained":[
			{"resourceType":"Observation","id":"g","status":"final","subject":{"reference":"Patient/pA"},
				"code":{"coding":[{"system":"http://loinc.org","code":"2345-7"}]},"valueQuantity":{"value":95,"code":"mg/dL"}},
			"not a resource",
			{"resourceType":"Observation","status":"final","code":{"text":"no id"}},
			{"resourceType":"NoSuchType","id":"x"},
			{"resourceType":"Practitioner","id":"h","name":[{"family":"House"}]}
		]}`)
	got, err := ix.ContainedRows(report, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0].Pos != 0 || got[0].Type != "Observation" || got[0].ID != "g" ||
		got[1].Pos != 4 || got[1].Type != "Practitioner" || got[1].ID != "h" {
		t.Fatalf("contained: %+v", got)
	}
	obs := flat(got[0].Rows)
	for _, want := range []string{"token code http://loinc.org|2345-7", "ref subject Patient/pA v= url= id=|", "token status |final"} {
		if !slices.Contains(obs, want) {
			t.Errorf("contained Observation rows lack %q: %v", want, obs)
		}
	}
	if pr := flat(got[1].Rows); !slices.Contains(pr, "string family house|House") {
		t.Errorf("contained Practitioner rows: %v", pr)
	}
	// The container's own rows do not include the contained values.
	own, err := ix.Rows("DiagnosticReport", report)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range flat(own) {
		if r == "token code http://loinc.org|2345-7" || r == "string family house|House" {
			t.Errorf("container row %q comes from a contained resource", r)
		}
	}
	// keep selects per contained type.
	only, err := ix.ContainedRows(report, func(typ, code string) bool { return typ == "Observation" && code == "code" })
	if err != nil {
		t.Fatal(err)
	}
	if rows := flat(only[0].Rows); !slices.Equal(rows, []string{"token code http://loinc.org|2345-7"}) || len(flat(only[1].Rows)) != 0 {
		t.Errorf("kept rows: %v and %v", rows, flat(only[1].Rows))
	}
	if none, err := ix.ContainedRows(map[string]any{"resourceType": "Patient", "id": "p"}, nil); err != nil || none != nil {
		t.Errorf("no contained: %v %v", none, err)
	}
}
