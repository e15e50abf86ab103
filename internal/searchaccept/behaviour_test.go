package searchaccept

import (
	"bytes"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/fhirguard/fhirguard/internal/fhir/validate"
	"github.com/fhirguard/fhirguard/internal/importer"
	"github.com/fhirguard/fhirguard/internal/index"
	"github.com/fhirguard/fhirguard/internal/server/servertest"
	"github.com/fhirguard/fhirguard/internal/store/sqlite"
)

// follow pages a search from its first page through every next link,
// checking each previous link on the way, and returns all matches.
func follow(t *testing.T, c *http.Client, ts *servertest.TestServer, first string) ([]string, int) {
	t.Helper()
	return followWith(t, c, ts, first, nil)
}

// followWith is follow calling afterFirst (when non-nil) once the first
// page, which fixes the search's snapshot, has been read.
func followWith(t *testing.T, c *http.Client, ts *servertest.TestServer, first string, afterFirst func()) ([]string, int) {
	t.Helper()
	var all []string
	var pages [][]string
	p := decodePage(t, get(t, c, ts.FHIRBase, first))
	total := p.total
	if afterFirst != nil {
		afterFirst()
	}
	for {
		if len(pages) > 0 {
			back := decodePage(t, get(t, c, p.links["previous"], ""))
			if !slices.Equal(back.matches, pages[len(pages)-1]) {
				t.Fatalf("previous of page %d: %v, want %v", len(pages)+1, back.matches, pages[len(pages)-1])
			}
		}
		pages = append(pages, p.matches)
		all = append(all, p.matches...)
		if p.links["next"] == "" {
			return all, total
		}
		p = decodePage(t, get(t, c, p.links["next"], ""))
		if p.total != total {
			t.Fatalf("total changed while paging: %d then %d", total, p.total)
		}
	}
}

func TestPagingIncludesAndResultShape(t *testing.T) {
	ts := servertest.Start(t)
	loadClinic(t, ts)
	for _, c := range []struct {
		q    string
		want []string
	}{
		{"/Observation?patient=p6&_count=10", po(1, 25)},
		{"/Observation?patient=p6&_count=7&_sort=-value-quantity", reversed(po(1, 25))},
		{"/Observation?category=laboratory&_count=2&_sort=-date", obs("o10", "o5", "o8", "o9", "o1", "o3")},
		{"/Patient?_count=4&_sort=family", pats("p3", "p4", "p1", "p2", "p5", "p6")},
		{"/Patient/p6/Observation?_count=20&_sort=date", po(1, 25)},
	} {
		got, total := follow(t, ts.Client, ts, c.q)
		if !slices.Equal(got, c.want) || total != len(c.want) {
			t.Errorf("%s: paged %v (total %d), want %v", c.q, got, total, c.want)
		}
	}
	for _, c := range []struct {
		q                string
		match, including []string
	}{
		{"/Observation?_id=o1&_include=Observation:patient", obs("o1"), pats("p1")},
		{"/Observation?_id=o1&_include=Observation:*", obs("o1"), []string{"Encounter/e1", "Patient/p1", "Practitioner/dr1"}},
		{"/Observation?_id=o8&_include=Observation:derived-from&_include:iterate=Observation:encounter", obs("o8"), []string{"Encounter/e1", "Observation/o1"}},
		{"/Patient?_id=p1&_revinclude=Observation:patient", pats("p1"), obs("o1", "o10", "o2", "o8")},
		{"/DiagnosticReport?_id=rep1&_include=DiagnosticReport:result&_include:iterate=Observation:performer",
			ids("DiagnosticReport", "rep1"), []string{"Observation/o1", "Observation/o8", "Practitioner/dr1"}},
		{"/Practitioner?_id=dr2&_revinclude=Patient:general-practitioner&_revinclude:iterate=Observation:patient",
			ids("Practitioner", "dr2"), []string{"Observation/o3", "Observation/o5", "Patient/p2"}},
		{"/Patient?_id=p5&_include=Patient:link", pats("p5"), pats("p2")},
		{"/Organization?_id=org1&_revinclude=Organization:partof", ids("Organization", "org1"), ids("Organization", "org2")},
		{"/Observation?code=2345-7&_include=Observation:patient&_count=2", obs("o1", "o3"), pats("p1", "p2")}, // creation order
		{"/QuestionnaireResponse?_id=qr1&_include=QuestionnaireResponse:questionnaire", ids("QuestionnaireResponse", "qr1"), ids("Questionnaire", "q1")},
		// canonical _revinclude: qr1 names q1's url|1.0, qr2 its url, qr3 a version q1 is not
		{"/Questionnaire?_id=q1&_revinclude=QuestionnaireResponse:questionnaire", ids("Questionnaire", "q1"), ids("QuestionnaireResponse", "qr1", "qr2")},
		{"/Patient?_id=p1&_revinclude=QuestionnaireResponse:subject&_include:iterate=QuestionnaireResponse:questionnaire&_revinclude:iterate=QuestionnaireResponse:questionnaire",
			pats("p1"), []string{"Questionnaire/q1", "QuestionnaireResponse/qr1", "QuestionnaireResponse/qr2"}},
	} {
		p := decodePage(t, get(t, ts.Client, ts.FHIRBase, c.q))
		inc := slices.Clone(p.includes)
		slices.Sort(inc)
		if !slices.Equal(p.matches, c.match) || !slices.Equal(inc, c.including) {
			t.Errorf("%s: matches %v includes %v, want %v and %v", c.q, p.matches, inc, c.match, c.including)
		}
	}
	// _total=none, _summary=count, lenient handling's outcome entry, POST.
	if p := decodePage(t, get(t, ts.Client, ts.FHIRBase, "/Observation?patient=p6&_total=none&_count=5")); p.total != -1 || len(p.matches) != 5 || p.links["next"] == "" {
		t.Errorf("_total=none: total %d, %d matches, links %v", p.total, len(p.matches), p.links)
	}
	if p := decodePage(t, get(t, ts.Client, ts.FHIRBase, "/Observation?patient=p6&_summary=count")); p.total != 25 || len(p.matches) != 0 {
		t.Errorf("_summary=count: total %d, %d matches", p.total, len(p.matches))
	}
	if r := get(t, ts.Client, ts.FHIRBase, "/Patient?family=smith&unknown-param=1"); r.Status != http.StatusBadRequest {
		t.Errorf("strict handling: %d", r.Status)
	}
	if p := decodePage(t, get(t, ts.Client, ts.FHIRBase, "/Patient?family=smith&unknown-param=1", "Prefer: handling=lenient")); len(p.matches) != 3 || p.outcomes != 1 {
		t.Errorf("lenient handling: %v, %d outcome entries", p.matches, p.outcomes)
	}
	// Limits (RESIL-03): chains deeper than 4 and _has nested deeper than 3
	// are refused.
	for _, q := range []string{
		"/Observation?patient.organization.partof.partof.partof.name=x",
		"/Patient?_has:Observation:patient:_has:DiagnosticReport:result:_has:Provenance:target:_has:AuditEvent:entity:action=R",
	} {
		if r := get(t, ts.Client, ts.FHIRBase, q); r.Status != http.StatusBadRequest || !strings.Contains(string(r.Body), "at most") {
			t.Errorf("%s: %d %s, want 400 naming the limit", q, r.Status, r.Body)
		}
	}
	form := url.Values{"family": {"smith"}, "_sort": {"-family"}}
	r := send(t, ts.Client, http.MethodPost, ts.FHIRBase+"/Patient/_search", []byte(form.Encode()), "Content-Type: application/x-www-form-urlencoded")
	if p := decodePage(t, r); !slices.Equal(p.matches, pats("p5", "p1", "p2")) {
		t.Errorf("POST _search: %v", p.matches)
	}
}

func reversed(s []string) []string {
	out := slices.Clone(s)
	slices.Reverse(out)
	return out
}

// TestInjection sends values built to break SQL or LIKE in every
// parameter type: the answer is a 400 or a correct (here: empty, or the
// one literal match) result, never a 500, and the data is unchanged.
func TestInjection(t *testing.T) {
	ts := servertest.Start(t)
	n := loadClinic(t, ts)
	payloads := []string{
		`'`, `''`, `' OR '1'='1`, `" OR ""="`, `'; DROP TABLE resources; --`, `--`, `;`, `/* */`,
		`) or 1=1 --`, `%`, `%%`, `_`, `\`, `\%`, `\_`, `$1`, `?`, `:name`, "\x00", `ÿ€😀`, `𝕏'𝕐`,
		`1 union select body from versions`, `char(39)`, strings.Repeat("x", 4000), `\u0027`, `%27`,
	}
	params := []string{
		"name", "family:exact", "family:contains", "given", "address-city", // string
		"identifier", "gender", "_tag", "_security", "code:text", "identifier:of-type", "gender:not", // token
		"general-practitioner", "general-practitioner:Practitioner", "general-practitioner:identifier", "organization.name", // reference
		"birthdate", "_lastUpdated", // date
		"_id", "_has:Observation:patient:code", "_sort", "_count", "_include", "_revinclude", "_elements", "_summary", "_total", "_cursor",
	}
	obsParams := []string{"value-quantity", "code-value-quantity", "combo-value-quantity", "date", "subject", "subject:Patient.name", "code"}
	allPatients := pats("p1", "p2", "p3", "p4", "p5", "p6")
	check := func(path string, negated bool) {
		r := get(t, ts.Client, ts.FHIRBase, path)
		switch r.Status {
		case http.StatusOK:
			p := decodePage(t, r)
			if negated { // :not of a value nobody has: everybody
				if !slices.Equal(p.matches, allPatients) {
					t.Errorf("%s matched %v, want every Patient", path, p.matches)
				}
				return
			}
			for _, m := range p.matches {
				if m != "Patient/p4" { // the only resource with %, _, ' and ; in its values
					t.Errorf("%s matched %s", path, m)
				}
			}
		case http.StatusBadRequest:
		case http.StatusForbidden:
			// The policy refuses an unknown _type before the search is
			// parsed (a bad request is a denial there).
			if !strings.Contains(path, "_type=") {
				t.Errorf("%s: status %d: %.200s", path, r.Status, r.Body)
			}
		default:
			t.Errorf("%s: status %d: %.200s", path, r.Status, r.Body)
		}
	}
	for _, v := range payloads {
		for _, p := range params {
			check("/Patient?"+url.Values{p: {v}}.Encode(), strings.HasSuffix(p, ":not"))
		}
		for _, p := range obsParams {
			check("/Observation?"+url.Values{p: {v}}.Encode(), false)
		}
		check("/RiskAssessment?"+url.Values{"probability": {v}}.Encode(), false)
		check("/ValueSet?"+url.Values{"url": {v}}.Encode(), false)
		check("/ValueSet?"+url.Values{"url:below": {v}}.Encode(), false)
		check("/?"+url.Values{"_type": {v}}.Encode(), false)
		check("/Patient?"+url.Values{v: {"x"}}.Encode(), false)
	}
	// Literal matches of LIKE wildcards and quotes.
	for q, want := range map[string][]string{
		"/Patient?name:contains=%25":        pats("p4"),
		"/Patient?name:contains=_":          pats("p4"),
		"/Patient?name=%25":                 nil,
		"/Patient?name=_":                   nil,
		"/Patient?family:contains='%3B":     pats("p4"),
		"/Patient?family:contains=%25%25":   nil,
		"/Patient?family:exact=O'Brien'%3B": nil,
	} {
		if p := decodePage(t, get(t, ts.Client, ts.FHIRBase, q)); !slices.Equal(p.matches, want) {
			t.Errorf("%s: %v, want %v", q, p.matches, want)
		}
	}
	// Nothing was changed: every resource is still there.
	total := 0
	for _, typ := range []string{"Patient", "Observation", "Practitioner", "Organization", "Encounter", "Condition",
		"MedicationRequest", "Immunization", "AllergyIntolerance", "DiagnosticReport", "Procedure", "RiskAssessment",
		"ValueSet", "Questionnaire", "QuestionnaireResponse", "Group", "Location"} {
		total += decodePage(t, get(t, ts.Client, ts.FHIRBase, "/"+typ+"?_summary=count")).total
	}
	if total != n {
		t.Fatalf("%d resources after the injection attempts, want %d", total, n)
	}
}

// TestNarrowedSearch searches with granular scopes: the narrowing holds
// for matches, total, paging, chains, _has and includes.
func TestNarrowedSearch(t *testing.T) {
	ts := servertest.Start(t)
	loadClinic(t, ts)
	const scope = "system/Observation.rs?category=laboratory system/Patient.rs"
	b, err := ts.RegisterBackend("narrowed", scope)
	if err != nil {
		t.Fatal(err)
	}
	c := b.HTTPClient(scope)
	labs := obs("o1", "o3", "o5", "o8", "o9", "o10") // creation order
	got, total := follow(t, c, ts, "/Observation?_count=2")
	if !slices.Equal(got, labs) || total != len(labs) {
		t.Fatalf("narrowed paging: %v (total %d), want %v", got, total, labs)
	}
	for q, want := range map[string][]string{
		"/Observation?patient.gender=female":                  obs("o3", "o5", "o9"),
		"/Observation?code=8867-4":                            nil,
		"/Patient?_has:Observation:patient:code=8867-4":       nil,
		"/Patient?_has:Observation:patient:code=2345-7":       pats("p1", "p2"),
		"/Patient/p6/Observation":                             nil,
		"/Observation?_sort=-value-quantity&patient=p1":       obs("o1", "o10", "o8"),
		"/Observation?code-value-quantity=8867-4$72":          nil,
		"/Observation?_id=o1,o2&_include=Observation:patient": obs("o1"),
	} {
		p := decodePage(t, get(t, c, ts.FHIRBase, q))
		if !slices.Equal(p.matches, want) || p.total != len(want) {
			t.Errorf("%s: %v (total %d), want %v", q, p.matches, p.total, want)
		}
	}
	p := decodePage(t, get(t, c, ts.FHIRBase, "/Observation?_id=o1&_include=Observation:*"))
	if !slices.Equal(p.includes, pats("p1")) {
		t.Errorf("includes under narrowing: %v, want only the Patient (no Encounter, no Practitioner)", p.includes)
	}
	p = decodePage(t, get(t, c, ts.FHIRBase, "/Patient?_id=p1&_revinclude=Observation:patient"))
	inc := slices.Clone(p.includes)
	slices.Sort(inc)
	if !slices.Equal(inc, obs("o1", "o10", "o8")) {
		t.Errorf("revinclude under narrowing: %v", inc)
	}
	// The same permitted set whatever the form of the search (AUTHZ-22).
	want := obs("o1", "o8", "o10") // creation order
	form := url.Values{"patient": {"p1"}}
	for name, r := range map[string]*reply{
		"GET":         get(t, c, ts.FHIRBase, "/Observation?patient=p1"),
		"POST":        send(t, c, http.MethodPost, ts.FHIRBase+"/Observation/_search", []byte(form.Encode()), "Content-Type: application/x-www-form-urlencoded"),
		"compartment": get(t, c, ts.FHIRBase, "/Patient/p1/Observation"),
		"system":      get(t, c, ts.FHIRBase, "/?_type=Observation&patient=p1"),
	} {
		if p := decodePage(t, r); !slices.Equal(p.matches, want) || p.total != len(want) {
			t.Errorf("%s: %v (total %d), want %v", name, p.matches, p.total, want)
		}
	}
	if r := get(t, c, ts.FHIRBase, "/Encounter"); r.Status != http.StatusForbidden {
		t.Errorf("search of an ungranted type: %d", r.Status)
	}
	// A cursor made under one narrowing is refused under another.
	first := decodePage(t, get(t, ts.Client, ts.FHIRBase, "/Observation?_count=2"))
	if r := get(t, c, first.links["next"], ""); r.Status != http.StatusBadRequest {
		t.Errorf("cursor of an unnarrowed search used under narrowing: %d %.200s", r.Status, r.Body)
	}
}

// TestPaging10000 pages through 10,000 matches while other clients keep
// creating matching resources: every original match comes exactly once,
// in order, and none of the new ones.
func TestPaging10000(t *testing.T) {
	if testing.Short() {
		t.Skip("imports 10,000 resources")
	}
	ts := servertest.Start(t)
	const n = 10000
	start := time.Now()
	importObservations(t, ts, n)
	t.Logf("imported %d Observations in %s", n, time.Since(start).Round(time.Millisecond))
	for _, q := range []string{
		"/Observation?code=http://loinc.org|99999-9&_count=250",
		"/Observation?code=http://loinc.org|99999-9&_count=400&_sort=-date,value-quantity",
	} {
		before, _ := follow(t, ts.Client, ts, q)
		if len(before) < n {
			t.Fatalf("%s: %d matches before paging, want at least %d", q, len(before), n)
		}
		n := len(before) // the second search also sees what the first one's creator made
		stop := make(chan struct{})
		done := make(chan int)
		creator := func() { // another client creating matching resources all along
			created := 0
			defer func() { done <- created }()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				body := fmt.Sprintf(`{"resourceType":"Observation","status":"final","code":{"coding":[{"system":"http://loinc.org","code":"99999-9"}]},`+
					`"effectiveDateTime":"2020-01-%02dT00:00:00Z","valueQuantity":{"value":%d}}`, 1+i%28, i%500)
				r, err := tryPost(ts, "/Observation", body)
				if err != nil || r != http.StatusCreated {
					t.Errorf("concurrent create: %d %v", r, err)
					return
				}
				created++
			}
		}
		// The creator starts once the first page has fixed the snapshot:
		// what is committed before it rightly belongs to the search.
		got, total := followWith(t, ts.Client, ts, q, func() { go creator() })
		close(stop)
		created := <-done
		if created == 0 {
			t.Fatalf("%s: no resource was created while paging", q)
		}
		if !slices.Equal(got, before) || total != n {
			seen := map[string]int{}
			dup := 0
			for _, r := range got {
				if seen[r]++; seen[r] == 2 {
					dup++
				}
			}
			t.Fatalf("%s: paged %d rows (total %d, %d duplicates) while %d were created; want the %d originals, each once, in order",
				q, len(got), total, dup, created, n)
		}
		t.Logf("%s: %d matches paged exactly once while %d matching resources were created (%s so far)", q, n, created,
			time.Since(start).Round(time.Millisecond))
		// _count above the maximum is clamped to 1000, with a next link
		// and an informational outcome entry (RESIL-03).
		big := decodePage(t, get(t, ts.Client, ts.FHIRBase, "/Observation?code=http://loinc.org|99999-9&_count=100000"))
		if len(big.matches) != 1000 || big.links["next"] == "" || big.outcomes != 1 {
			t.Fatalf("_count=100000: %d entries, next %q, %d outcome entries", len(big.matches), big.links["next"], big.outcomes)
		}
		after := decodePage(t, get(t, ts.Client, ts.FHIRBase, "/Observation?code=http://loinc.org|99999-9&_summary=count"))
		if after.total < n+created {
			t.Fatalf("a new search sees %d, want at least %d", after.total, n+created)
		}
	}
}

func tryPost(ts *servertest.TestServer, path, body string) (int, error) {
	req, err := http.NewRequest(http.MethodPost, ts.FHIRBase+path, strings.NewReader(body))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", "application/fhir+json")
	resp, err := ts.Client.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	_, err = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode, err
}

// importObservations imports n matching Observations into the server's
// database through a second store handle (as fhirguard import does while
// the server runs).
func importObservations(t *testing.T, ts *servertest.TestServer, n int) {
	t.Helper()
	var nd bytes.Buffer
	for i := range n {
		fmt.Fprintf(&nd, `{"resourceType":"Observation","id":"m%05d","status":"final","code":{"coding":[{"system":"http://loinc.org","code":"99999-9"}]},`+
			`"effectiveDateTime":"2020-01-%02dT%02d:00:00Z","valueQuantity":{"value":%d}}`+"\n", i, 1+i%28, i%24, i%1000)
	}
	file := filepath.Join(t.TempDir(), "obs.ndjson")
	if err := os.WriteFile(file, nd.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	ix, err := index.New()
	if err != nil {
		t.Fatal(err)
	}
	st, err := sqlite.Open(t.Context(), sqlite.Options{Path: ts.Config.SQLitePath(), Indexer: ix, Logger: slog.New(slog.DiscardHandler), Synchronous: "NORMAL"})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	v, err := validate.New()
	if err != nil {
		t.Fatal(err)
	}
	stats, err := importer.Run(t.Context(), importer.Options{Store: st, Validator: v}, []string{file})
	if err != nil || stats.Imported != n {
		t.Fatalf("import: %d of %d: %v", stats.Imported, n, err)
	}
}
