package storetest

import (
	"fmt"
	"slices"
	"testing"

	"github.com/fhirguard/fhirguard/internal/search"
	"github.com/fhirguard/fhirguard/internal/store"
)

// Canonical references followed backwards (_revinclude of a canonical
// parameter), hierarchical reference searches (:above/:below) and
// ValueSet-based token searches (:in/:not-in).

// putCanonFixture stores Questionnaires and QuestionnaireResponses that
// refer to them by canonical URL, with and without |version.
func putCanonFixture(t *testing.T, s store.Store) {
	t.Helper()
	for id, q := range map[string][2]string{"q1": {"http://example.org/q/intake", "1.0"}, "q2": {"http://example.org/q/intake", "2.0"},
		"q3": {"http://example.org/q/other", ""}, "q4": {"http://example.org/q/unused", ""}} {
		data := map[string]any{"resourceType": "Questionnaire", "status": "active", "url": q[0]}
		if q[1] != "" {
			data["version"] = q[1]
		}
		mustPut(t, s, store.Write{Type: "Questionnaire", ID: id, Data: data})
	}
	for id, r := range map[string][2]string{"r1": {"http://example.org/q/intake|1.0", "Patient/p1"},
		"r2": {"http://example.org/q/intake|2.0", "Patient/p2"}, "r3": {"http://example.org/q/intake", "Patient/p1"},
		"r4": {"http://example.org/q/other", "Patient/p2"}, "r5": {"http://example.org/q/other|9", "Patient/p2"}} {
		mustPut(t, s, store.Write{Type: "QuestionnaireResponse", ID: id, Data: map[string]any{
			"resourceType": "QuestionnaireResponse", "status": "completed", "questionnaire": r[0], "subject": refTo(r[1])}})
	}
}

var canonCases = []testCase{
	{"ok/revinclude-canonical-by-url-and-version", func(t *testing.T, s store.Store) {
		putCanonFixture(t, s)
		qr := func(list ...string) []string { return ids("QuestionnaireResponse", list...) }
		for _, c := range []struct {
			spec   string
			narrow *search.Narrowing
			want   []string
		}{
			{"Questionnaire?_id=q1&_revinclude=QuestionnaireResponse:questionnaire", nil, qr("r1", "r3")},
			{"Questionnaire?_id=q2&_revinclude=QuestionnaireResponse:questionnaire", nil, qr("r2", "r3")},
			// q3 has no version: only the unversioned reference names it.
			{"Questionnaire?_id=q3&_revinclude=QuestionnaireResponse:questionnaire", nil, qr("r4")},
			{"Questionnaire?_id=q4&_revinclude=QuestionnaireResponse:questionnaire", nil, nil},
			{"Questionnaire?_id=q1,q3&_revinclude=QuestionnaireResponse:*", nil, qr("r1", "r3", "r4")},
			{"Questionnaire?_id=q1&_revinclude=QuestionnaireResponse:questionnaire:Questionnaire", nil, qr("r1", "r3")},
			{"Questionnaire?_id=q1&_revinclude=QuestionnaireResponse:subject", nil, nil},
			// Narrowing applies to the sources.
			{"Questionnaire?_id=q1&_revinclude=QuestionnaireResponse:questionnaire",
				&search.Narrowing{ExcludeIDs: []string{"QuestionnaireResponse/r3"}}, qr("r1")},
			{"Questionnaire?_id=q1,q2&_revinclude=QuestionnaireResponse:questionnaire",
				&search.Narrowing{RestrictPatients: true, Patients: []string{"p2"}}, qr("r2")},
			{"Questionnaire?_id=q1&_revinclude=QuestionnaireResponse:questionnaire",
				&search.Narrowing{RestrictTypes: true, AllowedTypes: []string{"Questionnaire"}}, nil},
		} {
			res := runSearch(t, s, narrowed(t, c.spec, c.narrow), nil)
			inc := refs(res.Includes)
			slices.Sort(inc)
			if !slices.Equal(inc, c.want) {
				t.Fatalf("%s (narrowing %+v): includes %v, want %v", c.spec, c.narrow, inc, c.want)
			}
		}
	}},
	{"ok/revinclude-canonical-iterate", func(t *testing.T, s store.Store) {
		// sd1 <- sd2 <- sd3 (baseDefinition), sd4 names a version sd2 lacks.
		for id, sd := range map[string][2]string{"sd1": {"http://example.org/sd/base", ""}, "sd2": {"http://example.org/sd/mid", "http://example.org/sd/base"},
			"sd3": {"http://example.org/sd/leaf", "http://example.org/sd/mid"}, "sd4": {"http://example.org/sd/odd", "http://example.org/sd/mid|7"}} {
			data := map[string]any{"resourceType": "StructureDefinition", "status": "active", "url": sd[0], "version": "1"}
			if sd[1] != "" {
				data["baseDefinition"] = sd[1]
			}
			mustPut(t, s, store.Write{Type: "StructureDefinition", ID: id, Data: data})
		}
		sds := func(list ...string) []string { return ids("StructureDefinition", list...) }
		for _, c := range []struct {
			spec   string
			narrow *search.Narrowing
			want   []string
		}{
			{"StructureDefinition?_id=sd1&_revinclude=StructureDefinition:base", nil, sds("sd2")},
			{"StructureDefinition?_id=sd1&_revinclude:iterate=StructureDefinition:base", nil, sds("sd2", "sd3")},
			{"StructureDefinition?_id=sd1&_revinclude:iterate=StructureDefinition:base",
				&search.Narrowing{ExcludeIDs: []string{"StructureDefinition/sd2"}}, nil},
			{"StructureDefinition?_id=sd3&_include:iterate=StructureDefinition:base", nil, sds("sd1", "sd2")},
		} {
			res := runSearch(t, s, narrowed(t, c.spec, c.narrow), nil)
			inc := refs(res.Includes)
			slices.Sort(inc)
			if !slices.Equal(inc, c.want) {
				t.Fatalf("%s (narrowing %+v): includes %v, want %v", c.spec, c.narrow, inc, c.want)
			}
		}
	}},
	{"ok/reference-hierarchy-above-below", func(t *testing.T, s store.Store) {
		// l1 <- l2 <- l3 <- l4, l1 <- l5, l6 alone; c1 <-> c2 a cycle;
		// o1 <- o2 <- o3; d0 <- d1 <- ... <- d40 deeper than the bound.
		loc := func(id, partOf string) {
			data := map[string]any{"resourceType": "Location", "status": "active", "name": id}
			if partOf != "" {
				data["partOf"] = refTo(partOf)
			}
			mustPut(t, s, store.Write{Type: "Location", ID: id, Data: data})
		}
		for _, l := range [][2]string{{"l1", ""}, {"l2", "Location/l1"}, {"l3", "Location/l2"}, {"l4", "Location/l3"},
			{"l5", "Location/l1"}, {"l6", ""}, {"c1", "Location/c2"}, {"c2", "Location/c1"}} {
			loc(l[0], l[1])
		}
		for _, o := range [][2]string{{"o1", ""}, {"o2", "Organization/o1"}, {"o3", "Organization/o2"}} {
			data := map[string]any{"resourceType": "Organization", "name": o[0]}
			if o[1] != "" {
				data["partOf"] = refTo(o[1])
			}
			mustPut(t, s, store.Write{Type: "Organization", ID: o[0], Data: data})
		}
		var deep []string
		for i := 0; i <= 40; i++ {
			id, parent := fmt.Sprintf("d%02d", i), ""
			if i > 0 {
				parent = fmt.Sprintf("Location/d%02d", i-1)
				deep = append(deep, id)
			}
			loc(id, parent)
		}
		locs := func(list ...string) []string { return ids("Location", list...) }
		for _, c := range []struct {
			spec   string
			narrow *search.Narrowing
			want   []string
		}{
			{"Location?partof=l1", nil, locs("l2", "l5")},
			{"Location?partof:below=Location/l1", nil, locs("l2", "l3", "l4", "l5")},
			{"Location?partof:below=l2", nil, locs("l3", "l4")},
			{"Location?partof:below=l4", nil, nil},
			{"Location?partof:below=l2,l6", nil, locs("l3", "l4")},
			{"Location?partof:below=l1&name=l4", nil, locs("l4")},
			// :above: the reference names l3 or one of its ancestors.
			{"Location?partof:above=Location/l3", nil, locs("l2", "l3", "l4", "l5")},
			{"Location?partof:above=l1", nil, locs("l2", "l5")},
			{"Location?partof:above=l6", nil, nil},
			// A cycle ends; a chain deeper than the bound stops at 32 levels.
			{"Location?partof:below=c1", nil, locs("c1", "c2")},
			{"Location?partof:above=c1", nil, locs("c1", "c2")},
			{"Location?partof:below=d00&_count=100", nil, locs(deep[:33]...)},
			{"Organization?partof:below=Organization/o1", nil, ids("Organization", "o2", "o3")},
			{"Organization?partof:above=o3", nil, ids("Organization", "o2", "o3")},
			// The walk passes only through resources the caller may see.
			{"Location?partof:below=l1", &search.Narrowing{ExcludeIDs: []string{"Location/l2"}}, locs("l5")},
			{"Location?partof:above=l4", &search.Narrowing{ExcludeIDs: []string{"Location/l3"}}, locs("l4")},
			{"Location?partof:below=l1", &search.Narrowing{RestrictTypes: true, AllowedTypes: []string{"Organization"}}, nil},
		} {
			res := runSearch(t, s, narrowed(t, c.spec, c.narrow), nil)
			if got := refs(res.Matches); !slices.Equal(got, c.want) || res.Total != len(c.want) {
				t.Fatalf("%s (narrowing %+v): %v (total %d), want %v", c.spec, c.narrow, got, res.Total, c.want)
			}
		}
	}},
}
