package authz_test

import (
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
)

// TestContainedSearchPatientToken: a contained resource is part of its
// container, so a patient token searching with _contained sees only what
// its own containers hold — never a contained resource of another
// patient's container (even one whose own subject is the token's
// patient), not in the matches, the total, the paging links or the
// includes.
func TestContainedSearchPatientToken(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	sys := mustSystemToken(t, f.ts)
	glucose := func(id, patient string) string {
		return `{"resourceType":"Observation","id":"` + id + `","status":"final","code":{"coding":[{"system":"http://loinc.org","code":"2345-7"}]},` +
			`"subject":{"reference":"Patient/` + patient + `"}}`
	}
	report := func(id, patient string, contained ...string) string {
		return `{"resourceType":"DiagnosticReport","id":"` + id + `","status":"final","code":{"text":"panel"},"subject":{"reference":"Patient/` + patient + `"},` +
			`"contained":[` + strings.Join(contained, ",") + `]}`
	}
	for _, r := range []struct{ path, body string }{ // in creation order
		// pA's report holds a1 and x (whose subject is pB); pB's report
		// holds b1 and y (whose subject is pA).
		{"/DiagnosticReport/drA", report("drA", "pA", glucose("a1", "pA"), glucose("x", "pB"))},
		{"/DiagnosticReport/drB", report("drB", "pB", glucose("b1", "pB"), glucose("y", "pA"))},
		{"/Observation/oA", strings.TrimSuffix(glucose("oA", "pA"), "}") + `,"contained":[` + glucose("z", "pA") + `]}`},
		{"/Observation/oB", strings.TrimSuffix(glucose("oB", "pB"), "}") + `,"contained":[` + glucose("w", "pB") + `]}`},
	} {
		if code, _, b := call(t, f.ts, sys, http.MethodPut, r.path, r.body); code != 201 {
			t.Fatalf("seed %s: %d %s", r.path, code, b)
		}
	}
	withReports := f.userToken(t, "launch/patient patient/Observation.rs patient/DiagnosticReport.rs", "alice", alicePW)
	obsOnly := f.userToken(t, "launch/patient patient/Observation.rs", "alice", alicePW)

	type bundle struct {
		Total int
		Link  []struct{ Relation, URL string }
		Entry []struct {
			FullURL  string
			Resource json.RawMessage
			Search   struct{ Mode string }
		}
	}
	// search pages through path with token and returns every fullUrl
	// (matches and includes) and the total, checking that no entry names
	// anything of pB's containers.
	search := func(token, path string) ([]string, int) {
		t.Helper()
		var urls []string
		total := -1
		next := path
		for pages := 0; next != ""; pages++ {
			code, _, body := call(t, f.ts, token, http.MethodGet, next, "")
			if code != 200 {
				t.Fatalf("%s: %d %s", next, code, body)
			}
			var b bundle
			if err := json.Unmarshal([]byte(body), &b); err != nil {
				t.Fatal(err)
			}
			for _, e := range b.Entry {
				for _, hidden := range []string{"DiagnosticReport/drB", `"drB"`, `"b1"`, `"y"`, `"w"`, "Observation/oB", `"oB"`} {
					if strings.Contains(e.FullURL, hidden) || strings.Contains(string(e.Resource), hidden) {
						t.Errorf("%s: an entry names %s: %s %s", next, hidden, e.FullURL, e.Resource)
					}
				}
			}
			if total >= 0 && b.Total != total {
				t.Errorf("%s: total %d, then %d", path, total, b.Total)
			}
			total = b.Total
			for _, e := range b.Entry {
				urls = append(urls, strings.TrimPrefix(e.FullURL, f.ts.FHIRBase+"/"))
			}
			next = ""
			for _, l := range b.Link {
				if l.Relation == "next" {
					u, err := url.Parse(l.URL)
					if err != nil {
						t.Fatal(err)
					}
					next = strings.TrimPrefix(u.Path, strings.TrimPrefix(f.ts.FHIRBase, f.ts.URL)) + "?" + u.RawQuery
				}
			}
			if pages > 20 {
				t.Fatal("paging does not end")
			}
		}
		return urls, total
	}
	for _, tc := range []struct {
		name, token, path string
		want              []string
		total             int
	}{
		{"ok/containers", withReports, "/Observation?_contained=true&code=2345-7&_count=1",
			[]string{"DiagnosticReport/drA", "Observation/oA"}, 2},
		{"ok/contained", withReports, "/Observation?_contained=true&_containedType=contained&code=2345-7&_count=1",
			[]string{"DiagnosticReport/drA#a1", "DiagnosticReport/drA#x", "Observation/oA#z"}, 3},
		{"ok/both", withReports, "/Observation?_contained=both&_containedType=contained&_count=2",
			[]string{"Observation/oA", "DiagnosticReport/drA#a1", "DiagnosticReport/drA#x", "Observation/oA#z"}, 4},
		// y's subject is pA, but y is part of pB's report.
		{"ok/own-subject-in-another-container", withReports, "/Observation?_contained=true&_containedType=contained&patient=pA",
			[]string{"DiagnosticReport/drA#a1", "Observation/oA#z"}, 2},
		{"ok/includes-are-narrowed", withReports, "/Observation?_contained=true&_containedType=contained&_id=x&_include=Observation:patient",
			[]string{"DiagnosticReport/drA#x"}, 1},
		// Without DiagnosticReport scopes no report's contents show.
		{"ok/container-type-not-granted", obsOnly, "/Observation?_contained=true&code=2345-7",
			[]string{"Observation/oA"}, 1},
		{"ok/container-type-not-granted-contained", obsOnly, "/Observation?_contained=true&_containedType=contained",
			[]string{"Observation/oA#z"}, 1},
	} {
		got, total := search(tc.token, tc.path)
		if !slices.Equal(got, tc.want) || total != tc.total {
			t.Errorf("%s: %s: %v (total %d), want %v (total %d)", tc.name, tc.path, got, total, tc.want, tc.total)
		}
	}
	// The system token sees the rest (the rows are there).
	code, _, body := call(t, f.ts, sys, http.MethodGet, "/Observation?_contained=true&_containedType=contained&_id=y,w", "")
	if code != 200 || !strings.Contains(body, `"total":2`) || !strings.Contains(body, "/DiagnosticReport/drB#y") || !strings.Contains(body, "/Observation/oB#w") {
		t.Errorf("system token: %d %s", code, body)
	}
}
