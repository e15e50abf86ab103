package storetest

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"

	"github.com/fhirguard/fhirguard/internal/fhir"
	"github.com/fhirguard/fhirguard/internal/search"
	"github.com/fhirguard/fhirguard/internal/store"
)

// The _contained cases run over the clinic fixture plus these containers
// (written after it, in this order):
//
//	DiagnosticReport/dr1  subject p1, final     contains g1 (2345-7, 101 mg/dL, p1, laboratory, performer dr1),
//	                                            h1 (8867-4, 80 /min, p1), x1 (2345-7, 99 mg/dL, subject p2!)
//	DiagnosticReport/dr2  subject p2, preliminary contains g2 (2345-7, 150 mg/dL, p2), h2 (8867-4, 60 /min, p2)
//	MedicationRequest/mr1 subject p1            contains med1 (Medication 1049502), g3 (2345-7, 88 mg/dL, no subject)
//	Observation/top1      subject p1, 2345-7    contains g4 (8867-4, 70 /min, p1)
//	DiagnosticReport/dr3  subject p3, label R   contains g5 (2345-7, 120 mg/dL, p3)
//
// The fixture's own Observations o1, o3, o5 (2345-7) and o2 (8867-4) are
// resources of their own.

func containedObs(id, code, value, unit, subject, when string) map[string]any {
	o := fixtureObs(subject, "", code, code, value, unit, when)
	o["id"] = id
	delete(o, "category")
	return o
}

func containers() []store.Write {
	g1 := containedObs("g1", "2345-7", "101", "mg/dL", "Patient/p1", "2020-05-01")
	g1["category"] = []any{coding(obsCat, "laboratory", "laboratory")}
	g1["performer"] = []any{refTo("Practitioner/dr1")}
	report := func(subject, status string, contained ...map[string]any) map[string]any {
		r := map[string]any{"resourceType": "DiagnosticReport", "status": status, "subject": refTo(subject),
			"code": map[string]any{"text": "panel"}}
		var list []any
		var results []any
		for _, c := range contained {
			list = append(list, c)
			results = append(results, refTo("#"+c["id"].(string)))
		}
		r["contained"], r["result"] = list, results
		return r
	}
	dr3 := report("Patient/p3", "final", containedObs("g5", "2345-7", "120", "mg/dL", "Patient/p3", "2022-02-02"))
	dr3["meta"] = map[string]any{"security": []any{map[string]any{"system": confR.System, "code": confR.Code}}}
	top1 := fixtureObs("Patient/p1", "laboratory", "2345-7", "Glucose", "90", "mg/dL", "2020-06-01")
	top1["contained"] = []any{containedObs("g4", "8867-4", "70", "/min", "Patient/p1", "2020-06-01")}
	top1["hasMember"] = []any{refTo("#g4")}
	return []store.Write{
		{Type: "DiagnosticReport", ID: "dr1", Data: report("Patient/p1", "final", g1,
			containedObs("h1", "8867-4", "80", "/min", "Patient/p1", "2020-05-02"),
			containedObs("x1", "2345-7", "99", "mg/dL", "Patient/p2", "2020-05-03"))},
		{Type: "DiagnosticReport", ID: "dr2", Data: report("Patient/p2", "preliminary",
			containedObs("g2", "2345-7", "150", "mg/dL", "Patient/p2", "2021-01-01"),
			containedObs("h2", "8867-4", "60", "/min", "Patient/p2", "2021-01-01"))},
		{Type: "MedicationRequest", ID: "mr1", Data: map[string]any{"resourceType": "MedicationRequest", "status": "active",
			"intent": "order", "subject": refTo("Patient/p1"), "medicationReference": refTo("#med1"),
			"contained": []any{
				map[string]any{"resourceType": "Medication", "id": "med1", "code": coding("http://www.nlm.nih.gov/research/umls/rxnorm", "1049502", "Acetaminophen")},
				containedObs("g3", "2345-7", "88", "mg/dL", "", "2019-01-01"),
			}}},
		{Type: "Observation", ID: "top1", Data: top1},
		{Type: "DiagnosticReport", ID: "dr3", Data: dr3},
	}
}

// loadContained stores the fixture and the containers.
func loadContained(t *testing.T, s store.Store) {
	t.Helper()
	loadFixture(t, s)
	ctx := ctxT(t)
	if err := s.Tx(ctx, func(tx store.Tx) error {
		for _, w := range containers() {
			if _, err := tx.Put(ctx, w); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		t.Fatalf("load containers: %v", err)
	}
}

func reports(list ...string) []string { return ids("DiagnosticReport", list...) }

// entryRefs names each match, a contained one as "Container/id#local".
func entryRefs(t *testing.T, res *store.SearchResult) []string {
	t.Helper()
	out := make([]string, len(res.Matches))
	for i, m := range res.Matches {
		var body struct{ ResourceType, ID string }
		if err := json.Unmarshal(m.Body, &body); err != nil || body.ResourceType != m.Type || body.ID != m.ID {
			t.Fatalf("match %d: %s/%s with body %.200s (%v)", i, m.Type, m.ID, m.Body, err)
		}
		out[i] = m.Type + "/" + m.ID
		if i < len(res.Containers) && res.Containers[i] != nil {
			c := res.Containers[i]
			out[i] = c.Type + "/" + c.ID + "#" + m.ID
			if m.Type == "" || strings.Contains(string(m.Body), `"contained"`) || strings.Contains(string(m.Body), `"versionId"`) {
				t.Fatalf("contained match %s: type %q body %.200s", out[i], m.Type, m.Body)
			}
		}
	}
	return out
}

// pageEntries follows Next from the first page (like pageAll) and returns
// every match as entryRefs names it.
func pageEntries(t *testing.T, s store.Store, q *search.Query) ([]string, int) {
	t.Helper()
	res := runSearch(t, s, q, nil)
	total := res.Total
	var all []string
	for pages := 0; ; pages++ {
		page := entryRefs(t, res)
		all = append(all, page...)
		if res.Next == nil {
			break
		}
		if pages > 100 {
			t.Fatal("paging does not end")
		}
		next := runSearch(t, s, q, res.Next)
		back := runSearch(t, s, q, next.Prev)
		if got := entryRefs(t, back); !slices.Equal(got, page) {
			t.Fatalf("previous of a page: %v, want %v", got, page)
		}
		if next.Total != total {
			t.Fatalf("total changed while paging: %d then %d", total, next.Total)
		}
		res = next
	}
	return all, total
}

var containedCases = []testCase{
	{"ok/ordinary-searches-never-match-contained-rows", func(t *testing.T, s store.Store) {
		loadContained(t, s)
		for _, c := range []queryCase{
			{"Observation?code=2345-7", obs("o1", "o3", "o5", "top1")},
			{"Observation?code=8867-4", obs("o2")},
			{"Observation?code=8867-4&_contained=false", obs("o2")},
			{"Observation?value-quantity=101", nil},
			{"Observation?patient=p2", obs("o3", "o5")},
			{"Observation?performer=Practitioner/dr1", obs("o1")},
			{"Observation?code-value-quantity=8867-4$80", nil},
			{"Observation?_id=g1", nil},
			{"Medication?code=1049502", nil},
			{"DiagnosticReport?code=2345-7", nil},
			{"DiagnosticReport?subject=Patient/p1", reports("dr1")},
			{"Patient?_has:Observation:patient:code=8867-4", pats("p1")},
			{"Patient/p2/Observation?", obs("o3", "o5")},
			{"Observation?patient.gender=female", obs("o3", "o4", "o5")},
		} {
			res := runSearch(t, s, parseQuery(t, c.spec), nil)
			if got := refs(res.Matches); !slices.Equal(got, c.want) || res.Total != len(c.want) {
				t.Errorf("%s: %v (total %d), want %v", c.spec, got, res.Total, c.want)
			}
		}
		res := runSearch(t, s, parseQuery(t, "Patient?_id=p2&_revinclude=Observation:patient"), nil)
		if inc := refs(res.Includes); !slices.Equal(inc, obs("o3", "o5")) {
			t.Errorf("revinclude: %v", inc)
		}
	}},
	{"ok/containers", func(t *testing.T, s store.Store) {
		loadContained(t, s)
		for _, c := range []queryCase{
			{"Observation?_contained=true&code=2345-7", []string{"DiagnosticReport/dr1", "DiagnosticReport/dr2", "MedicationRequest/mr1", "DiagnosticReport/dr3"}},
			{"Observation?_contained=true&_containedType=container&code=8867-4", []string{"DiagnosticReport/dr1", "DiagnosticReport/dr2", "Observation/top1"}},
			{"Observation?_contained=true", []string{"DiagnosticReport/dr1", "DiagnosticReport/dr2", "MedicationRequest/mr1", "Observation/top1", "DiagnosticReport/dr3"}},
			{"Observation?_contained=true&code=2345-7&date=2020", reports("dr1")},
			{"Observation?_contained=true&code=8867-4&value-quantity=101", nil}, // both on one contained resource
			{"Observation?_contained=true&code-value-quantity=2345-7$gt140", reports("dr2")},
			{"Observation?_contained=true&patient=p2", reports("dr1", "dr2")},
			{"Observation?_contained=true&subject:missing=true", []string{"MedicationRequest/mr1"}},
			{"Observation?_contained=true&patient.gender=female", reports("dr1", "dr2", "dr3")},
			{"Observation?_contained=true&performer:Practitioner.name=house", reports("dr1")},
			{"Observation?_contained=true&_id=g1,g4", []string{"DiagnosticReport/dr1", "Observation/top1"}},
			{"Observation?_contained=true&category=laboratory", reports("dr1")},
			{"Observation?_contained=true&code:not=2345-7", []string{"DiagnosticReport/dr1", "DiagnosticReport/dr2", "Observation/top1"}},
			{"Observation?_contained=true&_lastUpdated=gt2000&code=8867-4", []string{"DiagnosticReport/dr1", "DiagnosticReport/dr2", "Observation/top1"}},
			{"Observation?_contained=true&_lastUpdated=lt2000", nil},
			{"Medication?_contained=true&code=1049502", []string{"MedicationRequest/mr1"}},
			{"Patient?_contained=true", nil},
			{"Patient/p2/Observation?_contained=true&code=2345-7", reports("dr2")}, // the container in the compartment
			{"?_type=Medication,Observation&_contained=true&code=1049502", []string{"MedicationRequest/mr1"}},
			{"Observation?_contained=true&code=2345-7&_sort=-value-quantity", []string{"DiagnosticReport/dr2", "DiagnosticReport/dr3", "DiagnosticReport/dr1", "MedicationRequest/mr1"}},
			{"Observation?_contained=true&code=2345-7&_sort=date", []string{"MedicationRequest/mr1", "DiagnosticReport/dr1", "DiagnosticReport/dr2", "DiagnosticReport/dr3"}},
			{"Observation?_contained=true&code=8867-4&_sort=-_id", []string{"Observation/top1", "DiagnosticReport/dr2", "DiagnosticReport/dr1"}},
			// both: the resources and the containers, each once
			{"Observation?_contained=both&code=2345-7", []string{"Observation/o1", "Observation/o3", "Observation/o5",
				"DiagnosticReport/dr1", "DiagnosticReport/dr2", "MedicationRequest/mr1", "Observation/top1", "DiagnosticReport/dr3"}},
			{"Observation?_contained=both&code=8867-4", []string{"Observation/o2", "DiagnosticReport/dr1", "DiagnosticReport/dr2", "Observation/top1"}},
			// (a container sorts by the values of every Observation it
			// contains, and by its own)
			{"Observation?_contained=both&code=8867-4&_sort=-value-quantity", []string{"DiagnosticReport/dr2", "DiagnosticReport/dr1", "Observation/top1", "Observation/o2"}},
		} {
			res := runSearch(t, s, parseQuery(t, c.spec), nil)
			if got := refs(res.Matches); !slices.Equal(got, c.want) || res.Total != len(c.want) || res.Containers != nil {
				t.Errorf("%s: %v (total %d, containers %v), want %v", c.spec, got, res.Total, res.Containers, c.want)
			}
		}
		got, total := pageAll(t, s, parseQuery(t, "Observation?_contained=true&code=2345-7&_count=1"))
		if want := []string{"DiagnosticReport/dr1", "DiagnosticReport/dr2", "MedicationRequest/mr1", "DiagnosticReport/dr3"}; !slices.Equal(got, want) || total != 4 {
			t.Errorf("paged containers: %v (total %d)", got, total)
		}
		got, total = pageAll(t, s, parseQuery(t, "Observation?_contained=both&code=2345-7&_count=3&_sort=-value-quantity"))
		if want := []string{"Observation/o5", "DiagnosticReport/dr2", "Observation/o3", "DiagnosticReport/dr3",
			"DiagnosticReport/dr1", "Observation/o1", "Observation/top1", "MedicationRequest/mr1"}; !slices.Equal(got, want) || total != 8 {
			t.Errorf("paged both: %v (total %d)", got, total)
		}
		if res := runSearch(t, s, parseQuery(t, "Observation?_contained=true&code=2345-7&_count=0"), nil); res.Total != 4 || len(res.Matches) != 0 {
			t.Errorf("_count=0: total %d, %d matches", res.Total, len(res.Matches))
		}
		// _include follows the matches: the containers' own references
		// (any container type may be the include's source).
		res := runSearch(t, s, parseQuery(t, "Observation?_contained=both&code=8867-4&_include=Observation:patient&_include=DiagnosticReport:subject"), nil)
		inc := refs(res.Includes)
		slices.Sort(inc)
		if !slices.Equal(inc, pats("p1", "p2")) { // o2's, top1's and dr1's p1, dr2's p2
			t.Errorf("includes of containers: %v", inc)
		}
	}},
	{"ok/contained-resources", func(t *testing.T, s store.Store) {
		loadContained(t, s)
		for _, c := range []queryCase{
			{"Observation?_contained=true&_containedType=contained&code=2345-7", []string{"DiagnosticReport/dr1#g1", "DiagnosticReport/dr1#x1",
				"DiagnosticReport/dr2#g2", "MedicationRequest/mr1#g3", "DiagnosticReport/dr3#g5"}},
			{"Observation?_contained=true&_containedType=contained&code=2345-7&date=2020", []string{"DiagnosticReport/dr1#g1", "DiagnosticReport/dr1#x1"}},
			{"Observation?_contained=true&_containedType=contained&code=2345-7&_sort=value-quantity", []string{"MedicationRequest/mr1#g3",
				"DiagnosticReport/dr1#x1", "DiagnosticReport/dr1#g1", "DiagnosticReport/dr3#g5", "DiagnosticReport/dr2#g2"}},
			{"Observation?_contained=true&_containedType=contained&patient=p2&_sort=-_id", []string{"DiagnosticReport/dr1#x1", "DiagnosticReport/dr2#h2", "DiagnosticReport/dr2#g2"}},
			{"Observation?_contained=true&_containedType=contained&_id=h1", []string{"DiagnosticReport/dr1#h1"}},
			{"Medication?_contained=true&_containedType=contained", []string{"MedicationRequest/mr1#med1"}},
			{"Observation?_contained=both&_containedType=contained&code=8867-4", []string{"Observation/o2", "DiagnosticReport/dr1#h1",
				"DiagnosticReport/dr2#h2", "Observation/top1#g4"}},
			{"Observation?_contained=both&_containedType=contained&code=8867-4&_sort=value-quantity", []string{"DiagnosticReport/dr2#h2",
				"Observation/top1#g4", "Observation/o2", "DiagnosticReport/dr1#h1"}},
			{"Observation?_contained=true&_containedType=contained&_lastUpdated=gt2000&performer=Practitioner/dr1", []string{"DiagnosticReport/dr1#g1"}},
		} {
			res := runSearch(t, s, parseQuery(t, c.spec), nil)
			if got := entryRefs(t, res); !slices.Equal(got, c.want) || res.Total != len(c.want) {
				t.Errorf("%s: %v (total %d), want %v", c.spec, got, res.Total, c.want)
			}
		}
		got, total := pageEntries(t, s, parseQuery(t, "Observation?_contained=both&_containedType=contained&code=2345-7&_count=2&_sort=-date"))
		if want := []string{"Observation/o5", "DiagnosticReport/dr3#g5", "DiagnosticReport/dr2#g2", "Observation/top1", "DiagnosticReport/dr1#x1",
			"DiagnosticReport/dr1#g1", "Observation/o1", "Observation/o3", "MedicationRequest/mr1#g3"}; !slices.Equal(got, want) || total != len(want) {
			t.Errorf("paged: %v (total %d), want %v", got, total, want)
		}
		// The body is the contained resource as its container holds it.
		res := runSearch(t, s, parseQuery(t, "Observation?_contained=true&_containedType=contained&_id=g1&_include=Observation:performer&_include=Observation:patient&_revinclude=DiagnosticReport:result"), nil)
		var g1 map[string]any
		if len(res.Matches) != 1 || json.Unmarshal(res.Matches[0].Body, &g1) != nil || g1["status"] != "final" || g1["performer"] == nil {
			t.Fatalf("g1: %v", res.Matches)
		}
		inc := refs(res.Includes)
		slices.Sort(inc)
		if !slices.Equal(inc, []string{"Patient/p1", "Practitioner/dr1"}) {
			t.Errorf("includes of a contained resource: %v", inc)
		}
	}},
	{"ok/narrowing-applies-to-the-container", func(t *testing.T, s store.Store) {
		loadContained(t, s)
		conf := search.Coding{System: confR.System, Code: confR.Code}
		p1 := &search.Narrowing{RestrictPatients: true, Patients: []string{"p1"}}
		p2 := &search.Narrowing{RestrictPatients: true, Patients: []string{"p2"}}
		for _, c := range []struct {
			spec   string
			narrow *search.Narrowing
			want   []string
		}{
			{"Observation?_contained=true&code=2345-7&_count=1", p1, []string{"DiagnosticReport/dr1", "MedicationRequest/mr1"}},
			{"Observation?_contained=true&_containedType=contained&code=2345-7&_count=1", p1, []string{"DiagnosticReport/dr1#g1", "DiagnosticReport/dr1#x1", "MedicationRequest/mr1#g3"}},
			// x1's subject is p2, but it is part of p1's report: p2 never sees it.
			{"Observation?_contained=true&_containedType=contained&code=2345-7&_count=1", p2, []string{"DiagnosticReport/dr2#g2"}},
			{"Observation?_contained=true&_containedType=contained&patient=p2", p2, []string{"DiagnosticReport/dr2#g2", "DiagnosticReport/dr2#h2"}},
			{"Observation?_contained=true&patient=p2&_count=1", p2, reports("dr2")},
			{"Observation?_contained=both&_containedType=contained&code=2345-7&_count=2", p2, []string{"Observation/o3", "Observation/o5", "DiagnosticReport/dr2#g2"}},
			{"Observation?_contained=both&code=2345-7&_count=2", p2, []string{"Observation/o3", "Observation/o5", "DiagnosticReport/dr2"}},
			{"Observation?_contained=true&code=2345-7", &search.Narrowing{RestrictPatients: true}, nil},
			{"Observation?_contained=true&code=2345-7&_count=1", &search.Narrowing{ExcludeLabels: []search.Coding{conf}},
				[]string{"DiagnosticReport/dr1", "DiagnosticReport/dr2", "MedicationRequest/mr1"}},
			{"Observation?_contained=true&_containedType=contained&code=2345-7", &search.Narrowing{ExcludeIDs: []string{"DiagnosticReport/dr1", "Observation/g2"}},
				[]string{"DiagnosticReport/dr2#g2", "MedicationRequest/mr1#g3", "DiagnosticReport/dr3#g5"}},
			// The container's type must be allowed (an Observation token
			// does not see a DiagnosticReport's contents).
			{"Observation?_contained=true&code=8867-4", &search.Narrowing{RestrictTypes: true, AllowedTypes: []string{"Observation"}}, obs("top1")},
			{"Observation?_contained=true&_containedType=contained", &search.Narrowing{RestrictTypes: true, AllowedTypes: []string{"Observation", "MedicationRequest"}},
				[]string{"MedicationRequest/mr1#g3", "Observation/top1#g4"}},
			// ... and the contained resource's type too.
			{"Medication?_contained=true&_containedType=contained", &search.Narrowing{RestrictTypes: true, AllowedTypes: []string{"MedicationRequest"}}, nil},
			// Restrictions on the container's type, and on the contained
			// resource's type (tested on its own values).
			{"Observation?_contained=true&code=2345-7", &search.Narrowing{Restrictions: []search.Restriction{restriction(t, "DiagnosticReport", "status=final")}},
				[]string{"DiagnosticReport/dr1", "MedicationRequest/mr1", "DiagnosticReport/dr3"}},
			{"Observation?_contained=true&_containedType=contained&code=2345-7", &search.Narrowing{Restrictions: []search.Restriction{restriction(t, "Observation", "category=laboratory")}},
				[]string{"DiagnosticReport/dr1#g1"}},
			{"Observation?_contained=true&_containedType=contained&code=8867-4", &search.Narrowing{Restrictions: []search.Restriction{
				restriction(t, "Observation", "_has:DiagnosticReport:result:status=final", "patient=p2")}},
				[]string{"DiagnosticReport/dr2#h2"}},
			{"Observation?_contained=true&code=8867-4", &search.Narrowing{Restrictions: []search.Restriction{restriction(t, "Observation", "patient.gender=female")}},
				reports("dr2")},
			// A hidden chain target is never tested.
			{"Observation?_contained=true&performer:Practitioner.name=house", &search.Narrowing{ExcludeIDs: []string{"Practitioner/dr1"}}, nil},
		} {
			got, total := pageEntries(t, s, narrowed(t, c.spec, c.narrow))
			if !slices.Equal(got, c.want) || total != len(c.want) {
				t.Errorf("%s under %+v: %v (total %d), want %v", c.spec, c.narrow, got, total, c.want)
			}
		}
		res := runSearch(t, s, narrowed(t, "Observation?_contained=true&_containedType=contained&_id=g1&_include=Observation:performer",
			&search.Narrowing{ExcludeIDs: []string{"Practitioner/dr1"}}), nil)
		if len(res.Matches) != 1 || len(res.Includes) != 0 {
			t.Errorf("include of a hidden target: %v %v", refs(res.Matches), refs(res.Includes))
		}
	}},
	{"ok/contained-rows-follow-the-container", func(t *testing.T, s store.Store) {
		loadContained(t, s)
		spec := "Observation?_contained=true&_containedType=contained&code=2345-7"
		want := func(when string, list ...string) {
			t.Helper()
			if got := entryRefs(t, runSearch(t, s, parseQuery(t, spec), nil)); !slices.Equal(got, list) {
				t.Errorf("%s: %v, want %v", when, got, list)
			}
		}
		// dr1 updated: x1 goes, g1 changes code, a new one comes.
		dr1 := containers()[0].Data
		list := dr1["contained"].([]any)
		list[0].(map[string]any)["code"] = coding(loincSys, "718-7", "Hemoglobin")
		dr1["contained"] = []any{list[0], list[1], containedObs("n1", "2345-7", "97", "mg/dL", "Patient/p1", "2020-07-01")}
		mustPut(t, s, store.Write{Type: "DiagnosticReport", ID: "dr1", Data: dr1})
		want("after update", "DiagnosticReport/dr1#n1", "DiagnosticReport/dr2#g2", "MedicationRequest/mr1#g3", "DiagnosticReport/dr3#g5")
		// mr1 no longer contains anything.
		mr1 := containers()[2].Data
		delete(mr1, "contained")
		mustPut(t, s, store.Write{Type: "MedicationRequest", ID: "mr1", Data: mr1})
		mustDelete(t, s, "DiagnosticReport", "dr3")
		want("after delete", "DiagnosticReport/dr1#n1", "DiagnosticReport/dr2#g2")
		if res := runSearch(t, s, parseQuery(t, "Medication?_contained=true"), nil); res.Total != 0 {
			t.Errorf("Medication after mr1 lost it: %v", refs(res.Matches))
		}
		mustPut(t, s, containers()[4])
		want("after re-create", "DiagnosticReport/dr1#n1", "DiagnosticReport/dr2#g2", "DiagnosticReport/dr3#g5")
		// Inside a transaction, the transaction's own writes.
		ctx := ctxT(t)
		if err := s.Tx(ctx, func(tx store.Tx) error {
			if _, err := tx.Delete(ctx, "DiagnosticReport", "dr2", 0); err != nil {
				return err
			}
			res, err := tx.(store.SearchTx).Search(ctx, parseQuery(t, spec), nil)
			if err != nil {
				return err
			}
			if got := entryRefs(t, res); !slices.Equal(got, []string{"DiagnosticReport/dr1#n1", "DiagnosticReport/dr3#g5"}) {
				t.Errorf("inside the transaction: %v", got)
			}
			return nil
		}); err != nil {
			t.Fatal(err)
		}
	}},
	{"fail/contained-unsupported", func(t *testing.T, s store.Store) {
		loadContained(t, s)
		for _, spec := range []string{
			"Observation?_contained=true&_has:DiagnosticReport:result:status=final",
			"Observation?_contained=both&_containedType=contained&_has:DiagnosticReport:result:status=final",
		} {
			_, err := searcher(t, s).Search(ctxT(t), parseQuery(t, spec), nil)
			fe, ok := fhir.AsError(err)
			if !ok || fe.HTTPStatus() != 400 {
				t.Errorf("%s: err %v, want a 400 *fhir.Error", spec, err)
			}
		}
	}},
}
