package storetest

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/fhirguard/fhirguard/internal/fhir"
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
	{"ok/token-in-not-in-value-sets", func(t *testing.T, s store.Store) {
		loadFixture(t, s)
		putValueSets(t, s)
		vs := "http://example.org/vs/"
		for _, c := range []struct {
			spec   string
			narrow *search.Narrowing
			want   []string
		}{
			{"Observation?code:in=" + vs + "vitals", nil, obs("o2", "o4")},
			{"Observation?code:in=ValueSet/vitals", nil, obs("o2", "o4")},
			{"Observation?code:in=" + vs + "labs", nil, obs("o1", "o3", "o5")},
			{"Observation?code:in=" + vs + "labs-minus-hr", nil, obs("o1", "o3", "o5")},
			{"Observation?code:in=" + vs + "vitals," + vs + "labs", nil, obs("o1", "o2", "o3", "o4", "o5")},
			{"Observation?code:not-in=" + vs + "labs", nil, obs("o2", "o4", "o6", "o7")},
			{"Observation?code:in=" + vs + "empty", nil, nil},
			{"Observation?code:not-in=" + vs + "empty", nil, obs("o1", "o2", "o3", "o4", "o5", "o6", "o7")},
			{"Observation?code:in=" + vs + "versioned|1", nil, obs("o2")},
			{"Observation?code:in=" + vs + "versioned|2", nil, obs("o4")},
			{"Observation?code:in=" + vs + "vitals&patient=p1", nil, obs("o2")},
			{"Observation?code:in=" + vs + "labs&code:not-in=" + vs + "vitals", nil, obs("o1", "o3", "o5")},
			{"Patient?_has:Observation:patient:code:in=" + vs + "vitals", nil, pats("p1", "p3")},
			{"Observation?patient.gender=female&code:in=" + vs + "labs", nil, obs("o3", "o5")},
			// The ValueSet lookup is not narrowed; the searched resources are.
			{"Observation?code:in=" + vs + "vitals", &search.Narrowing{RestrictTypes: true, AllowedTypes: []string{"Observation"}}, obs("o2", "o4")},
			{"Observation?code:in=" + vs + "vitals", &search.Narrowing{RestrictPatients: true, Patients: []string{"p1"}}, obs("o2")},
			{"Observation?", &search.Narrowing{Restrictions: []search.Restriction{restriction(t, "Observation", "code:in="+vs+"vitals")}}, obs("o2", "o4")},
		} {
			res := runSearch(t, s, narrowed(t, c.spec, c.narrow), nil)
			if got := refs(res.Matches); !slices.Equal(got, c.want) || res.Total != len(c.want) {
				t.Fatalf("%s (narrowing %+v): %v (total %d), want %v", c.spec, c.narrow, got, res.Total, c.want)
			}
		}
	}},
	{"fail/token-in-value-sets-it-cannot-expand", func(t *testing.T, s store.Store) {
		loadFixture(t, s)
		putValueSets(t, s)
		vs := "http://example.org/vs/"
		for spec, want := range map[string]string{
			"Observation?code:in=" + vs + "whole-loinc":                   "cannot expand ValueSet " + vs + "whole-loinc without a terminology server: compose.include[0] takes the whole code system",
			"Observation?code:in=" + vs + "filtered":                      "without a terminology server: compose.include[0] uses filters",
			"Observation?code:in=" + vs + "imports":                       "without a terminology server: compose.include[0] includes other value sets",
			"Observation?code:in=" + vs + "incomplete":                    "its stored expansion is incomplete",
			"Observation?code:in=" + vs + "huge":                          "holds more than 1000 codes",
			"Observation?code:in=" + vs + "versioned":                     "several ValueSets have the url",
			"Observation?code:in=" + vs + "nowhere":                       "no ValueSet " + vs + "nowhere on this server",
			"Observation?code:not-in=ValueSet/nowhere":                    "no ValueSet ValueSet/nowhere on this server",
			"Observation?code:in=ValueSet/vs1":                            "neither an expansion nor an enumerated compose",
			"Patient?_has:Observation:patient:code:in=" + vs + "filtered": "uses filters",
		} {
			_, err := searcher(t, s).Search(ctxT(t), parseQuery(t, spec), nil)
			var fe *fhir.Error
			if !errors.As(err, &fe) || fe.HTTPStatus() != 400 || !strings.Contains(fe.Diag, want) {
				t.Errorf("%s: %v, want a 400 saying %q", spec, err, want)
			}
		}
	}},
}

// putValueSets stores the value sets of the :in / :not-in cases.
func putValueSets(t *testing.T, s store.Store) {
	t.Helper()
	vs := "http://example.org/vs/"
	concepts := func(codes ...string) []any {
		out := make([]any, len(codes))
		for i, c := range codes {
			out[i] = map[string]any{"code": c}
		}
		return out
	}
	contains := func(sys string, codes ...string) []any {
		out := make([]any, len(codes))
		for i, c := range codes {
			out[i] = map[string]any{"system": sys, "code": c}
		}
		return out
	}
	var huge []string
	for i := 0; i < 1001; i++ {
		huge = append(huge, fmt.Sprintf("c%d", i))
	}
	for id, body := range map[string]map[string]any{
		// nested expansion: a grouper without a code holds 8310-5
		"vitals": {"url": vs + "vitals", "expansion": map[string]any{"contains": []any{
			map[string]any{"system": loincSys, "code": "8867-4"},
			map[string]any{"abstract": true, "display": "temperatures", "contains": contains(loincSys, "8310-5")}}}},
		"labs": {"url": vs + "labs", "compose": map[string]any{"include": []any{
			map[string]any{"system": loincSys, "concept": concepts("2345-7", "718-7")},
			map[string]any{"system": "http://other.example/cs", "concept": concepts("8867-4")}}}},
		"labs-minus-hr": {"url": vs + "labs-minus-hr", "compose": map[string]any{
			"include": []any{map[string]any{"system": loincSys, "concept": concepts("2345-7", "8867-4")}},
			"exclude": []any{map[string]any{"system": loincSys, "concept": concepts("8867-4")}}}},
		"empty":       {"url": vs + "empty", "expansion": map[string]any{"total": 0}},
		"versioned1":  {"url": vs + "versioned", "version": "1", "expansion": map[string]any{"contains": contains(loincSys, "8867-4")}},
		"versioned2":  {"url": vs + "versioned", "version": "2", "expansion": map[string]any{"contains": contains(loincSys, "8310-5")}},
		"whole-loinc": {"url": vs + "whole-loinc", "compose": map[string]any{"include": []any{map[string]any{"system": loincSys}}}},
		"filtered": {"url": vs + "filtered", "compose": map[string]any{"include": []any{map[string]any{"system": loincSys,
			"filter": []any{map[string]any{"property": "CLASS", "op": "=", "value": "CHEM"}}}}}},
		"imports":    {"url": vs + "imports", "compose": map[string]any{"include": []any{map[string]any{"valueSet": []any{vs + "labs"}}}}},
		"incomplete": {"url": vs + "incomplete", "expansion": map[string]any{"total": 10, "contains": contains(loincSys, "8867-4")}},
		"huge":       {"url": vs + "huge", "expansion": map[string]any{"contains": contains(loincSys, huge...)}},
	} {
		body["resourceType"], body["status"] = "ValueSet", "active"
		mustPut(t, s, store.Write{Type: "ValueSet", ID: id, Data: body})
	}
}
