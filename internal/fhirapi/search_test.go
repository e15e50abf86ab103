package fhirapi

import (
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
)

// searchHarness is a harness on the SQLite store (the memory store of this
// package's tests does not search).
func searchHarness(t *testing.T) *harness {
	t.Helper()
	return newHarness(t, "sqlite")
}

// searchset checks a searchset Bundle and returns its match ids, its
// include references ("Type/id"), its links and its total (-1 = none).
func searchset(t *testing.T, r *reply) (matches, includes []string, links map[string]string, total int) {
	t.Helper()
	if r.Status != http.StatusOK {
		t.Fatalf("search: %d %s", r.Status, r.Body)
	}
	b := r.json(t)
	if b["resourceType"] != "Bundle" || b["type"] != "searchset" {
		t.Fatalf("not a searchset: %s", r.Body)
	}
	total = -1
	if n, ok := b["total"]; ok {
		fmt.Sscan(fmt.Sprint(n), &total)
	}
	links = map[string]string{}
	for _, l := range asSlice(b["link"]) {
		m := l.(map[string]any)
		links[m["relation"].(string)] = m["url"].(string)
	}
	for _, e := range asSlice(b["entry"]) {
		m := e.(map[string]any)
		res, _ := m["resource"].(map[string]any)
		mode, _ := m["search"].(map[string]any)["mode"].(string)
		ref := fmt.Sprintf("%v/%v", res["resourceType"], res["id"])
		switch mode {
		case "match":
			if want := testBase + "/" + ref; m["fullUrl"] != want {
				t.Errorf("fullUrl %v, want %s", m["fullUrl"], want)
			}
			matches = append(matches, res["id"].(string))
		case "include":
			includes = append(includes, ref)
		case "outcome":
			if res["resourceType"] != "OperationOutcome" {
				t.Errorf("outcome entry holds a %v", res["resourceType"])
			}
		default:
			t.Errorf("entry with search.mode %q", mode)
		}
	}
	return matches, includes, links, total
}

// path turns an absolute link into the request path.
func path(t *testing.T, link string) string {
	t.Helper()
	rest, ok := strings.CutPrefix(link, testBase)
	if !ok {
		t.Fatalf("link %s is not under %s", link, testBase)
	}
	return "/fhir" + rest
}

func patientNamed(family, identifier string) string {
	return fmt.Sprintf(`{"resourceType":"Patient","identifier":[{"system":"urn:test","value":%q}],"name":[{"family":%q}],"gender":"female","text":{"status":"generated","div":"<div xmlns=\"http://www.w3.org/1999/xhtml\">%s</div>"}}`,
		identifier, family, family)
}

func TestSearchPagingAndLinks(t *testing.T) {
	t.Parallel()
	h := searchHarness(t)
	var want []string
	for i, fam := range []string{"Adams", "Baker", "Clark", "Davis", "Evans"} {
		id := h.create("Patient", patientNamed(fam, fmt.Sprint(i)))
		want = append(want, id)
	}
	var got []string
	var pages []string
	link := "/fhir/Patient?_count=2&_sort=family"
	for link != "" {
		m, _, links, total := searchset(t, h.do("GET", link, ""))
		if total != 5 {
			t.Fatalf("total %d, want 5", total)
		}
		if !strings.Contains(links["self"], "_sort=family") || !strings.Contains(links["self"], "_count=2") {
			t.Errorf("self link %s", links["self"])
		}
		if len(pages) > 0 {
			prev, _, _, _ := searchset(t, h.do("GET", path(t, links["previous"]), ""))
			if strings.Join(prev, ",") != pages[len(pages)-1] {
				t.Fatalf("previous page %v, want %s", prev, pages[len(pages)-1])
			}
		} else if links["previous"] != "" {
			t.Fatal("first page has a previous link")
		}
		pages = append(pages, strings.Join(m, ","))
		got = append(got, m...)
		link = ""
		if links["next"] != "" {
			link = path(t, links["next"])
		}
	}
	if !slices.Equal(got, want) || len(pages) != 3 {
		t.Fatalf("paged %v in %d pages, want %v in 3", got, len(pages), want)
	}
	// POST _search with a form body answers like GET.
	r := h.do("POST", "/fhir/Patient/_search", "", "Content-Type: application/x-www-form-urlencoded")
	if r.Status != http.StatusOK {
		t.Fatalf("POST _search without parameters: %d %s", r.Status, r.Body)
	}
	req := "family=clark&gender=female"
	rr := h.doRaw("POST", "/fhir/Patient/_search?_count=5", req, "application/x-www-form-urlencoded")
	if m, _, links, total := searchset(t, rr); len(m) != 1 || m[0] != want[2] || total != 1 || !strings.Contains(links["self"], "family=clark") {
		t.Fatalf("POST _search: %v total %d links %v", m, total, links)
	}
}

// doRaw sends a body with its own content type.
func (h *harness) doRaw(method, p, body, ct string) *reply {
	h.t.Helper()
	r := h.do(method, p, body, "Content-Type: "+ct)
	return r
}

func TestSearchCursorTampering(t *testing.T) {
	t.Parallel()
	h := searchHarness(t)
	for i := range 3 {
		h.create("Patient", patientNamed("Same", fmt.Sprint(i)))
	}
	_, _, links, _ := searchset(t, h.do("GET", "/fhir/Patient?_count=1", ""))
	next := path(t, links["next"])
	u, _ := url.Parse(next)
	cur := u.Query().Get("_cursor")
	flip := []byte(cur)
	flip[len(flip)/2] ^= 1
	for name, p := range map[string]string{
		"modified":      "/fhir/Patient?_count=1&_cursor=" + url.QueryEscape(string(flip)),
		"other-search":  "/fhir/Patient?_count=1&gender=male&_cursor=" + url.QueryEscape(cur),
		"garbage":       "/fhir/Patient?_count=1&_cursor=%27%3B--",
		"other-type":    "/fhir/Observation?_count=1&_cursor=" + url.QueryEscape(cur),
		"other-sorting": "/fhir/Patient?_count=1&_sort=family&_cursor=" + url.QueryEscape(cur),
	} {
		r := h.do("GET", p, "")
		if code, diag, _ := issue(t, r); r.Status != http.StatusBadRequest || code != "invalid" || !strings.Contains(diag, "cursor") {
			t.Errorf("%s: %d %s %q", name, r.Status, code, diag)
		}
	}
	// The page size may change between pages.
	if r := h.do("GET", strings.Replace(next, "_count=1", "_count=5", 1), ""); r.Status != http.StatusOK {
		t.Errorf("changed _count: %d %s", r.Status, r.Body)
	}
}

func TestSearchHandlingAndShaping(t *testing.T) {
	t.Parallel()
	h := searchHarness(t)
	id := h.create("Patient", patientNamed("Zed", "z1"))
	if r := h.do("GET", "/fhir/Patient?nonsense=1&family=zed", ""); r.Status != http.StatusBadRequest {
		t.Fatalf("strict unknown parameter: %d %s", r.Status, r.Body)
	}
	r := h.do("GET", "/fhir/Patient?nonsense=1&family=zed", "", "Prefer: handling=lenient")
	m, _, links, _ := searchset(t, r)
	if len(m) != 1 || strings.Contains(links["self"], "nonsense") || !strings.Contains(string(r.Body), `"mode":"outcome"`) ||
		!strings.Contains(string(r.Body), "nonsense") {
		t.Fatalf("lenient: %v %v %s", m, links, r.Body)
	}
	r = h.do("GET", "/fhir/Patient?_summary=count", "")
	if m, _, _, total := searchset(t, r); len(m) != 0 || total != 1 {
		t.Fatalf("_summary=count: %v total %d", m, total)
	}
	for _, c := range []struct {
		query        string
		want, absent []string
	}{
		{"_elements=name", []string{`"name"`, `"SUBSETTED"`}, []string{`"gender"`, `"text"`, `"identifier"`}},
		{"_summary=true", []string{`"name"`, `"gender"`, `"identifier"`, `"SUBSETTED"`}, []string{`"text"`}},
		{"_summary=text", []string{`"text"`, `"SUBSETTED"`}, []string{`"gender"`, `"name"`}},
		{"_summary=data", []string{`"gender"`, `"name"`, `"SUBSETTED"`}, []string{`"text"`}},
		{"_summary=false", []string{`"gender"`, `"text"`}, []string{`"SUBSETTED"`}},
	} {
		r := h.do("GET", "/fhir/Patient?_id="+id+"&"+c.query, "")
		if r.Status != http.StatusOK {
			t.Fatalf("%s: %d %s", c.query, r.Status, r.Body)
		}
		for _, w := range c.want {
			if !strings.Contains(string(r.Body), w) {
				t.Errorf("%s: no %s in %s", c.query, w, r.Body)
			}
		}
		for _, a := range c.absent {
			if strings.Contains(string(r.Body), a) {
				t.Errorf("%s: %s present in %s", c.query, a, r.Body)
			}
		}
	}
	if r := h.do("GET", "/fhir/Patient?_summary=true&_elements=name", ""); r.Status != http.StatusBadRequest {
		t.Errorf("_summary with _elements: %d", r.Status)
	}
}

func TestSearchIncludesCompartmentSystem(t *testing.T) {
	t.Parallel()
	h := searchHarness(t)
	pid := h.create("Patient", patientNamed("Incl", "i1"))
	obs := fmt.Sprintf(`{"resourceType":"Observation","status":"final","code":{"coding":[{"system":"http://loinc.org","code":"8867-4"}]},"subject":{"reference":"Patient/%s"}}`, pid)
	o1, o2 := h.create("Observation", obs), h.create("Observation", obs)
	m, inc, _, _ := searchset(t, h.do("GET", "/fhir/Observation?code=8867-4&_include=Observation:subject", ""))
	if len(m) != 2 || !slices.Equal(inc, []string{"Patient/" + pid}) {
		t.Fatalf("_include: %v %v", m, inc)
	}
	m, inc, _, _ = searchset(t, h.do("GET", "/fhir/Patient?_id="+pid+"&_revinclude=Observation:patient", ""))
	slices.Sort(inc)
	want := []string{"Observation/" + o1, "Observation/" + o2}
	slices.Sort(want)
	if !slices.Equal(m, []string{pid}) || !slices.Equal(inc, want) {
		t.Fatalf("_revinclude: %v %v", m, inc)
	}
	m, _, links, total := searchset(t, h.do("GET", "/fhir/Patient/"+pid+"/Observation?_count=1", ""))
	if len(m) != 1 || total != 2 || !strings.HasPrefix(links["next"], testBase+"/Patient/"+pid+"/Observation?") {
		t.Fatalf("compartment: %v total %d links %v", m, total, links)
	}
	m2, _, _, _ := searchset(t, h.do("GET", path(t, links["next"]), ""))
	if len(m2) != 1 || m2[0] == m[0] {
		t.Fatalf("compartment page 2: %v after %v", m2, m)
	}
	if _, _, _, total := searchset(t, h.do("GET", "/fhir?_type=Patient,Observation", "")); total != 3 {
		t.Fatalf("system search total %d, want 3", total)
	}
	if _, _, _, total := searchset(t, h.do("GET", "/fhir/Patient/"+pid+"/*", "")); total != 3 {
		t.Fatalf("compartment over every type: total %d, want 3", total)
	}
	if r := h.do("GET", "/fhir/Patient/"+pid+"/Practitioner", ""); r.Status != http.StatusBadRequest {
		t.Fatalf("compartment with a non-member type: %d", r.Status)
	}
}

func TestConditionalInteractions(t *testing.T) {
	t.Parallel()
	h := searchHarness(t)
	body := patientNamed("Cond", "c1")
	r := h.do("POST", "/fhir/Patient", body, "If-None-Exist: identifier=urn:test|c1")
	if r.Status != http.StatusCreated {
		t.Fatalf("conditional create (no match): %d %s", r.Status, r.Body)
	}
	id := r.json(t)["id"]
	r = h.do("POST", "/fhir/Patient", body, "If-None-Exist: identifier=urn:test|c1")
	if r.Status != http.StatusOK || r.json(t)["id"] != id {
		t.Fatalf("conditional create (one match): %d %s", r.Status, r.Body)
	}
	h.create("Patient", body) // now two match
	r = h.do("POST", "/fhir/Patient", body, "If-None-Exist: identifier=urn:test|c1")
	if code, _, _ := issue(t, r); r.Status != http.StatusPreconditionFailed || code != "multiple-matches" {
		t.Fatalf("conditional create (two matches): %d %s", r.Status, r.Body)
	}
	if r := h.do("PUT", "/fhir/Patient?identifier=urn:test|c1", body); r.Status != http.StatusPreconditionFailed {
		t.Fatalf("conditional update (two matches): %d %s", r.Status, r.Body)
	}
	if r := h.do("DELETE", "/fhir/Patient?identifier=urn:test|c1", ""); r.Status != http.StatusPreconditionFailed {
		t.Fatalf("conditional delete (two matches): %d %s", r.Status, r.Body)
	}

	// Update: no match creates, one match updates, a conflicting id is refused.
	u := patientNamed("Upd", "u1")
	r = h.do("PUT", "/fhir/Patient?identifier=urn:test|u1", u)
	if r.Status != http.StatusCreated {
		t.Fatalf("conditional update (no match): %d %s", r.Status, r.Body)
	}
	uid := r.json(t)["id"].(string)
	r = h.do("PUT", "/fhir/Patient?identifier=urn:test|u1", strings.Replace(u, `"gender":"female"`, `"gender":"male"`, 1))
	if r.Status != http.StatusOK || r.json(t)["id"] != uid || r.Header.Get("ETag") != `W/"2"` {
		t.Fatalf("conditional update (one match): %d %v %s", r.Status, r.Header, r.Body)
	}
	withID := strings.Replace(u, `{"resourceType":"Patient",`, `{"resourceType":"Patient","id":"someone-else",`, 1)
	if r := h.do("PUT", "/fhir/Patient?identifier=urn:test|u1", withID); r.Status != http.StatusBadRequest {
		t.Fatalf("conditional update with another id: %d %s", r.Status, r.Body)
	}
	// Patch and delete through the condition.
	r = h.do("PATCH", "/fhir/Patient?identifier=urn:test|u1", `[{"op":"add","path":"/active","value":true}]`, "Content-Type: application/json-patch+json")
	if r.Status != http.StatusOK || r.json(t)["active"] != true {
		t.Fatalf("conditional patch: %d %s", r.Status, r.Body)
	}
	if r := h.do("PATCH", "/fhir/Patient?identifier=urn:test|none", `[{"op":"add","path":"/active","value":true}]`, "Content-Type: application/json-patch+json"); r.Status != http.StatusNotFound {
		t.Fatalf("conditional patch (no match): %d %s", r.Status, r.Body)
	}
	if r := h.do("DELETE", "/fhir/Patient?identifier=urn:test|u1", ""); r.Status != http.StatusOK {
		t.Fatalf("conditional delete: %d %s", r.Status, r.Body)
	}
	if r := h.do("GET", "/fhir/Patient/"+uid, ""); r.Status != http.StatusGone {
		t.Fatalf("deleted by condition: read %d", r.Status)
	}
	if r := h.do("DELETE", "/fhir/Patient?identifier=urn:test|u1", ""); r.Status != http.StatusOK {
		t.Fatalf("conditional delete (no match): %d %s", r.Status, r.Body)
	}
}

func TestConditionalCreateIsAtomic(t *testing.T) {
	t.Parallel()
	h := searchHarness(t)
	var wg sync.WaitGroup
	statuses := make([]int, 12)
	for i := range statuses {
		wg.Add(1)
		go func() {
			defer wg.Done()
			statuses[i] = h.do("POST", "/fhir/Patient", patientNamed("Race", "r1"), "If-None-Exist: identifier=urn:test|r1").Status
		}()
	}
	wg.Wait()
	created := 0
	for _, s := range statuses {
		switch s {
		case http.StatusCreated:
			created++
		case http.StatusOK:
		default:
			t.Fatalf("status %d", s)
		}
	}
	if _, _, _, total := searchset(t, h.do("GET", "/fhir/Patient?identifier=urn:test|r1", "")); created != 1 || total != 1 {
		t.Fatalf("%d creates, %d stored; want exactly one", created, total)
	}
}

func TestSearchInBundles(t *testing.T) {
	t.Parallel()
	h := searchHarness(t)
	id := h.create("Patient", patientNamed("Bund", "b1"))
	tx := bundle("transaction",
		`{"resource":`+patientNamed("Bund", "b1")+`,"request":{"method":"POST","url":"Patient","ifNoneExist":"identifier=urn:test|b1"}}`,
		`{"resource":`+patientNamed("New", "b2")+`,"request":{"method":"POST","url":"Patient","ifNoneExist":"identifier=urn:test|b2"}}`,
		entry("", "GET", "Patient?family=bund,new", ""))
	r := h.do("POST", "/fhir", tx)
	if r.Status != http.StatusOK {
		t.Fatalf("transaction: %d %s", r.Status, r.Body)
	}
	es := asSlice(r.json(t)["entry"])
	st := func(i int) string { return es[i].(map[string]any)["response"].(map[string]any)["status"].(string) }
	if st(0) != "200 OK" || st(1) != "201 Created" || st(2) != "200 OK" {
		t.Fatalf("statuses %s %s %s", st(0), st(1), st(2))
	}
	if got := es[0].(map[string]any)["resource"].(map[string]any)["id"]; got != id {
		t.Fatalf("conditional create entry returned %v, want the existing %s", got, id)
	}
	sb := es[2].(map[string]any)["resource"].(map[string]any)
	if sb["type"] != "searchset" || fmt.Sprint(sb["total"]) != "2" {
		t.Fatalf("search entry: %v", sb)
	}
	b := h.do("POST", "/fhir", bundle("batch", entry("", "GET", "Patient?identifier=urn:test|b2", ""), entry("", "GET", "Patient?bogus=1", "")))
	es = asSlice(b.json(t)["entry"])
	if st(0) != "200 OK" || st(1) != "400 Bad Request" {
		t.Fatalf("batch search statuses %s %s", st(0), st(1))
	}
}

func TestSearchWithoutSearchingStore(t *testing.T) {
	t.Parallel()
	h := newHarness(t, "mem")
	if r := h.do("GET", "/fhir/Patient?name=x", ""); r.Status != http.StatusNotImplemented {
		t.Fatalf("search on a store without search: %d %s", r.Status, r.Body)
	}
	if r := h.do("GET", "/fhir/Patient?name:bogus=x", ""); r.Status != http.StatusBadRequest {
		t.Fatalf("bad search on a store without search: %d %s", r.Status, r.Body)
	}
}
