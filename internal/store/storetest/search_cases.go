package storetest

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fhirguard/fhirguard/internal/fhir"
	"github.com/fhirguard/fhirguard/internal/search"
	"github.com/fhirguard/fhirguard/internal/store"
)

// pageAll follows Next from the first page and returns every match in
// order, checking that each page's Prev leads back to the page before.
func pageAll(t *testing.T, s store.Store, q *search.Query) ([]string, int) {
	t.Helper()
	return pageAllWith(t, s, q, nil)
}

// pageAllWith is pageAll calling between (when non-nil) after every page.
func pageAllWith(t *testing.T, s store.Store, q *search.Query, between func()) ([]string, int) {
	t.Helper()
	var all []string
	var pages [][]string
	res := runSearch(t, s, q, nil)
	total := res.Total
	if res.Prev != nil {
		t.Fatalf("first page has a previous link")
	}
	for {
		page := refs(res.Matches)
		pages = append(pages, page)
		all = append(all, page...)
		if len(pages) > 1 {
			if res.Prev == nil {
				t.Fatalf("page %d has no previous link", len(pages))
			}
			back := runSearch(t, s, q, res.Prev)
			if got, want := refs(back.Matches), pages[len(pages)-2]; !slices.Equal(got, want) {
				t.Fatalf("previous of page %d = %v, want %v", len(pages), got, want)
			}
			if back.Next == nil {
				t.Fatalf("a previous page has no next link")
			}
		}
		if res.Next == nil {
			break
		}
		if len(pages) > 10000 {
			t.Fatal("paging does not end")
		}
		if between != nil {
			between()
		}
		res = runSearch(t, s, q, res.Next)
		if res.Total != total {
			t.Fatalf("total changed while paging: %d then %d", total, res.Total)
		}
	}
	return all, total
}

var pagingCases = []testCase{
	concurrentSearches,
	{"ok/next-and-previous", func(t *testing.T, s store.Store) {
		loadFixture(t, s)
		for _, c := range []struct {
			spec string
			want []string
		}{
			{"Observation?_count=2", obs("o1", "o2", "o3", "o4", "o5", "o6", "o7")},
			{"Observation?_count=4&_sort=-date", obs("o6", "o7", "o5", "o4", "o2", "o1", "o3")},
			{"Observation?_count=1&_sort=status,-date", obs("o5", "o6", "o7", "o2", "o1", "o3", "o4")},
			{"Observation?_count=2&_sort=patient,-value-quantity", obs("o1", "o2", "o5", "o3", "o4", "o7", "o6")},
			{"?_type=Condition,Encounter,Patient&_count=3", []string{"Condition/c1", "Condition/c2", "Encounter/e1", "Encounter/e2",
				"Patient/p1", "Patient/p2", "Patient/p3", "Patient/p4"}},
			{"Patient?_count=3&_sort=-family", pats("p1", "p2", "p4", "p3")}, // smith = smíth: tie in creation order
			// driven by a value index (the page from the index keys alone)
			{"Patient?name=smi&_count=1", pats("p1", "p2")},
			{"Observation?patient=p1&_count=1", obs("o1", "o2")},
			{"Observation?patient=p2&_count=1&_sort=-date", obs("o5", "o3")},
			{"Patient/p2/Observation?_count=1", obs("o3", "o5")},
		} {
			got, total := pageAll(t, s, parseQuery(t, c.spec))
			if !slices.Equal(got, c.want) || total != len(c.want) {
				t.Fatalf("%s: paged %v (total %d), want %v", c.spec, got, total, c.want)
			}
		}
	}},
	{"ok/total-modes", func(t *testing.T, s store.Store) {
		loadFixture(t, s)
		res := runSearch(t, s, parseQuery(t, "Observation?_total=none&_count=2"), nil)
		if res.Total != -1 || len(res.Matches) != 2 {
			t.Fatalf("_total=none: total %d, %d matches", res.Total, len(res.Matches))
		}
		res = runSearch(t, s, parseQuery(t, "Observation?_count=0&code=2345-7"), nil)
		if res.Total != 3 || len(res.Matches) != 0 || res.Next != nil {
			t.Fatalf("_count=0: total %d, %d matches, next %v", res.Total, len(res.Matches), res.Next)
		}
		res = runSearch(t, s, parseQuery(t, "Observation?_count=2&_total=estimate"), nil)
		if res.Total != 7 {
			t.Fatalf("_total=estimate: total %d, want 7", res.Total)
		}
	}},
	{"ok/paging-stable-under-concurrent-inserts", func(t *testing.T, s store.Store) {
		// Longer than ctxT: under -race with the whole suite running this
		// case alone takes more than a minute.
		ctx, cancel := context.WithTimeout(t.Context(), 5*time.Minute)
		defer cancel()
		n := 300
		if err := s.Tx(ctx, func(tx store.Tx) error {
			for i := range n {
				o := fixtureObs("Patient/px", "laboratory", "2345-7", "Glucose", fmt.Sprint(50+i%200), "mg/dL",
					fmt.Sprintf("2020-01-%02dT10:00:00Z", 1+i%28))
				if _, err := tx.Put(ctx, store.Write{Type: "Observation", ID: fmt.Sprintf("a%04d", i), Data: o}); err != nil {
					return err
				}
			}
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		for k, spec := range []string{"Observation?code=2345-7&_count=7", "Observation?code=2345-7&_count=9&_sort=-date,value-quantity"} {
			q := parseQuery(t, spec)
			newObs := func(i int) store.Write {
				// Ids and values interleave with the originals, so a new
				// row would land on pages already read and still to come.
				o := fixtureObs("Patient/px", "laboratory", "2345-7", "Glucose", fmt.Sprint(50+i%200), "mg/dL",
					fmt.Sprintf("2020-01-%02dT10:00:00Z", 1+i%28))
				return store.Write{Type: "Observation", ID: fmt.Sprintf("a%04d-%d-%d", (i*37)%n, k, i), Data: o}
			}
			before, _ := pageAll(t, s, q) // the matches when paging starts
			var inserted atomic.Int64
			var wg sync.WaitGroup
			var startWriter sync.Once
			// The concurrent writer starts once the first page (which
			// fixes the snapshot) has been read: a row committed between
			// `before` and the first page rightly belongs to the paging.
			writer := func() { // a concurrent writer, bounded
				defer wg.Done()
				for i := range 150 {
					if _, err := put(ctx, s, newObs(1000+i)); err != nil {
						t.Errorf("concurrent insert: %v", err)
						return
					}
					inserted.Add(1)
				}
			}
			step := 0
			got, total := pageAllWith(t, s, q, func() { // and inserts between every page
				startWriter.Do(func() { wg.Add(1); go writer() })
				for range 3 {
					step++
					mustPut(t, s, newObs(step))
					inserted.Add(1)
				}
			})
			wg.Wait()
			if len(before) != n {
				t.Fatalf("%s: %d matches before paging, want %d", spec, len(before), n)
			}
			// Sort values never change here, so even the order is the same.
			if !slices.Equal(got, before) || total != n {
				t.Fatalf("%s: paged %d rows (total %d) with %d inserted meanwhile; want exactly the %d originals, each once, in order",
					spec, len(got), total, inserted.Load(), n)
			}
			after := runSearch(t, s, parseQuery(t, "Observation?code=2345-7&_count=0"), nil)
			if want := n + int(inserted.Load()); after.Total != want {
				t.Fatalf("a new search sees %d, want %d", after.Total, want)
			}
			n += int(inserted.Load()) // the next spec pages over everything now stored
		}
	}},
}

// concurrentSearches runs many new search shapes at once: more than a
// backend's connections, each shape seen for the first time.
var concurrentSearches = testCase{"ok/concurrent-new-searches", func(t *testing.T, s store.Store) {
	loadFixture(t, s)
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for g := range 32 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 4 {
				q := parseQuery(t, fmt.Sprintf("Observation?code=2345-7&_count=%d&_sort=%s", 1+g, []string{"date", "-date", "status", "_id"}[i]))
				if _, err := searcher(t, s).Search(ctxT(t), q, nil); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
}}

var includeCases = []testCase{
	{"ok/include-revinclude-iterate", func(t *testing.T, s store.Store) {
		loadFixture(t, s)
		for _, c := range []struct {
			spec          string
			match, follow []string
		}{
			{"Observation?_id=o1&_include=Observation:patient", obs("o1"), pats("p1")},
			{"Observation?_id=o1&_include=Observation:*", obs("o1"), []string{"Encounter/e1", "Patient/p1", "Practitioner/dr1"}},
			{"Observation?_id=o1&_include=Observation:subject:Patient", obs("o1"), pats("p1")},
			{"Observation?_id=o1&_include=Observation:subject:Group", obs("o1"), nil},
			{"Observation?code=2345-7&_include=Observation:patient", obs("o1", "o3", "o5"), pats("p1", "p2")},
			{"Patient?_id=p1&_revinclude=Observation:patient", pats("p1"), obs("o1", "o2")},
			{"Patient?_id=p1,p3&_revinclude=Observation:subject", pats("p1", "p3"), obs("o1", "o2", "o4")},
			{"Observation?_id=o1&_include=Observation:encounter&_include:iterate=Encounter:subject", obs("o1"),
				[]string{"Encounter/e1", "Patient/p1"}},
			{"Patient?_id=p1&_revinclude=Observation:subject&_include:iterate=Observation:performer", pats("p1"),
				[]string{"Observation/o1", "Observation/o2", "Practitioner/dr1"}},
			{"Practitioner?_id=dr2&_revinclude=Patient:general-practitioner&_revinclude:iterate=Observation:patient",
				ids("Practitioner", "dr2"), []string{"Observation/o3", "Observation/o5", "Patient/p2"}},
		} {
			res := runSearch(t, s, parseQuery(t, c.spec), nil)
			got, inc := refs(res.Matches), refs(res.Includes)
			slices.Sort(inc)
			if !slices.Equal(got, c.match) || !slices.Equal(inc, c.follow) {
				t.Fatalf("%s: matches %v includes %v, want %v and %v", c.spec, got, inc, c.match, c.follow)
			}
		}
	}},
	{"ok/include-canonical-by-url-and-version", func(t *testing.T, s store.Store) {
		mustPut(t, s, store.Write{Type: "Questionnaire", ID: "q1", Data: map[string]any{"resourceType": "Questionnaire", "status": "active",
			"url": "http://example.org/q/intake", "version": "1.0"}})
		for id, canon := range map[string]string{"r1": "http://example.org/q/intake|1.0", "r2": "http://example.org/q/intake|2.0",
			"r3": "http://example.org/q/intake", "r4": "http://example.org/q/other"} {
			mustPut(t, s, store.Write{Type: "QuestionnaireResponse", ID: id, Data: map[string]any{
				"resourceType": "QuestionnaireResponse", "status": "completed", "questionnaire": canon}})
		}
		for id, want := range map[string][]string{"r1": {"Questionnaire/q1"}, "r2": nil, "r3": {"Questionnaire/q1"}, "r4": nil} {
			res := runSearch(t, s, parseQuery(t, "QuestionnaireResponse?_id="+id+"&_include=QuestionnaireResponse:questionnaire"), nil)
			if got := refs(res.Includes); !slices.Equal(got, want) {
				t.Fatalf("%s: includes %v, want %v", id, got, want)
			}
		}
	}},
	{"ok/include-never-repeats-a-match", func(t *testing.T, s store.Store) {
		loadFixture(t, s)
		res := runSearch(t, s, parseQuery(t, "Patient?_id=p1&_revinclude=Observation:patient&_include:iterate=Observation:patient"), nil)
		if got, inc := refs(res.Matches), refs(res.Includes); !slices.Equal(got, pats("p1")) || slices.Contains(inc, "Patient/p1") {
			t.Fatalf("matches %v includes %v", got, inc)
		}
	}},
}

func narrowed(t *testing.T, spec string, n *search.Narrowing) *search.Query {
	t.Helper()
	q := parseQuery(t, spec)
	q.Narrow = n
	return q
}

func restriction(t *testing.T, typ string, anyOf ...string) search.Restriction {
	t.Helper()
	var sets []url.Values
	for _, a := range anyOf {
		v, err := url.ParseQuery(a)
		if err != nil {
			t.Fatal(err)
		}
		sets = append(sets, v)
	}
	r, err := search.NewRestriction(typ, sets, searchOpts())
	if err != nil {
		t.Fatalf("restriction %s %v: %v", typ, anyOf, err)
	}
	return r
}

var narrowCases = []testCase{
	{"ok/hidden-rows-never-in-total-page-or-next", func(t *testing.T, s store.Store) {
		loadFixture(t, s)
		conf := search.Coding{System: confR.System, Code: confR.Code}
		for _, c := range []struct {
			spec   string
			narrow *search.Narrowing
			want   []string
		}{
			{"Observation?_count=1", &search.Narrowing{RestrictPatients: true, Patients: []string{"p1"}}, obs("o1", "o2")},
			{"Observation?_count=1&_sort=-date", &search.Narrowing{RestrictPatients: true, Patients: []string{"p2"}}, obs("o5", "o3")},
			{"Observation?patient=p1,p2&_count=1", &search.Narrowing{RestrictPatients: true, Patients: []string{"p1"}}, obs("o1", "o2")},
			{"Patient?name=smi&_count=1", &search.Narrowing{ExcludeIDs: []string{"Patient/p1"}}, pats("p2")},
			{"Observation?", &search.Narrowing{RestrictPatients: true}, nil},
			{"Patient?_count=2", &search.Narrowing{ExcludeLabels: []search.Coding{conf}}, pats("p1", "p2", "p4")},
			{"Patient?_count=2", &search.Narrowing{ExcludeIDs: []string{"Patient/p2", "Observation/o1"}}, pats("p1", "p3", "p4")},
			{"Observation?_count=1", &search.Narrowing{Restrictions: []search.Restriction{restriction(t, "Observation", "category=vital-signs")}}, obs("o2", "o4")},
			{"Observation?_count=5", &search.Narrowing{Restrictions: []search.Restriction{
				restriction(t, "Observation", "category=vital-signs", "code=2345-7&patient=p2")}}, obs("o2", "o3", "o4", "o5")},
			{"Observation?", &search.Narrowing{Restrictions: []search.Restriction{restriction(t, "Observation")}}, nil},
			{"Observation?_count=2&patient.gender=female", &search.Narrowing{ExcludeLabels: []search.Coding{conf}}, obs("o3", "o5")},
			{"Observation?subject:Patient.name=jones", &search.Narrowing{RestrictPatients: true, Patients: []string{"p1", "p2"}}, nil},
			{"Patient?_has:Observation:patient:code=8867-4", &search.Narrowing{ExcludeIDs: []string{"Observation/o2"}}, nil},
			{"Patient?_has:Observation:patient:category=laboratory", &search.Narrowing{Restrictions: []search.Restriction{
				restriction(t, "Observation", "status=amended")}}, pats("p2")},
			{"?_id=p1,dr1,o1", &search.Narrowing{RestrictTypes: true, AllowedTypes: []string{"Patient", "Observation"}}, []string{"Observation/o1", "Patient/p1"}},
			{"?_type=Patient,Practitioner,Observation&_count=2", &search.Narrowing{RestrictPatients: true, Patients: []string{"p2"}},
				[]string{"Observation/o3", "Observation/o5", "Patient/p2", "Practitioner/dr1", "Practitioner/dr2"}},
			{"Patient/p1/Observation?", &search.Narrowing{ExcludeIDs: []string{"Observation/o1"}}, obs("o2")},
			{"Patient/p3/*?", &search.Narrowing{ExcludeLabels: []search.Coding{conf}}, obs("o4")},
		} {
			got, total := pageAll(t, s, narrowed(t, c.spec, c.narrow))
			if !slices.Equal(got, c.want) || total != len(c.want) {
				t.Fatalf("%s under %+v: %v (total %d), want %v", c.spec, c.narrow, got, total, c.want)
			}
		}
	}},
	{"ok/narrowing-applies-to-includes", func(t *testing.T, s store.Store) {
		loadFixture(t, s)
		for _, c := range []struct {
			spec          string
			narrow        *search.Narrowing
			match, follow []string
		}{
			{"Observation?_id=o1&_include=Observation:*", &search.Narrowing{ExcludeIDs: []string{"Practitioner/dr1"}},
				obs("o1"), []string{"Encounter/e1", "Patient/p1"}},
			{"Patient?_id=p1&_revinclude=Observation:patient", &search.Narrowing{Restrictions: []search.Restriction{
				restriction(t, "Observation", "category=laboratory")}}, pats("p1"), obs("o1")},
			{"Patient?_id=p1&_revinclude=Observation:subject&_include:iterate=Observation:performer",
				&search.Narrowing{RestrictTypes: true, AllowedTypes: []string{"Patient", "Observation"}}, pats("p1"), obs("o1", "o2")},
			{"Practitioner?_id=dr2&_revinclude=Patient:general-practitioner&_revinclude:iterate=Observation:patient",
				&search.Narrowing{ExcludeIDs: []string{"Patient/p2"}}, ids("Practitioner", "dr2"), nil},
			{"Observation?code=2345-7&_include=Observation:patient", &search.Narrowing{RestrictPatients: true, Patients: []string{"p2"}},
				obs("o3", "o5"), pats("p2")},
		} {
			res := runSearch(t, s, narrowed(t, c.spec, c.narrow), nil)
			got, inc := refs(res.Matches), refs(res.Includes)
			slices.Sort(inc)
			if !slices.Equal(got, c.match) || !slices.Equal(inc, c.follow) {
				t.Fatalf("%s under %+v: matches %v includes %v, want %v and %v", c.spec, c.narrow, got, inc, c.match, c.follow)
			}
		}
	}},
}

var searchWriteCases = []testCase{
	{"ok/update-replaces-and-delete-removes-rows", func(t *testing.T, s store.Store) {
		loadFixture(t, s)
		o1 := fixture()["Observation/o1"]
		o1["code"] = coding(loincSys, "718-7", "Hemoglobin")
		mustPut(t, s, store.Write{Type: "Observation", ID: "o1", Data: o1})
		mustDelete(t, s, "Observation", "o2")
		for _, c := range []struct {
			spec string
			want []string
		}{
			{"Observation?code=2345-7", obs("o3", "o5")},
			{"Observation?code=718-7", obs("o1")},
			{"Observation?patient=p1", obs("o1")},
			{"Observation?code-value-quantity=8867-4$72", nil},
			{"Patient?_has:Observation:patient:code=8867-4", nil},
		} {
			res := runSearch(t, s, parseQuery(t, c.spec), nil)
			if got := refs(res.Matches); !slices.Equal(got, c.want) || res.Total != len(c.want) {
				t.Fatalf("%s: %v (total %d), want %v", c.spec, got, res.Total, c.want)
			}
		}
		// Re-created after delete: found again.
		mustPut(t, s, store.Write{Type: "Observation", ID: "o2", Data: fixture()["Observation/o2"]})
		if got := refs(runSearch(t, s, parseQuery(t, "Observation?patient=p1"), nil).Matches); !slices.Equal(got, obs("o1", "o2")) {
			t.Fatalf("after re-create: %v", got)
		}
	}},
	{"ok/search-inside-tx-sees-own-writes", func(t *testing.T, s store.Store) {
		loadFixture(t, s)
		ctx := ctxT(t)
		q := parseQuery(t, "Patient?identifier=urn:oid:1.2.3.4|009")
		err := s.Tx(ctx, func(tx store.Tx) error {
			st, ok := tx.(store.SearchTx)
			if !ok {
				return fmt.Errorf("%T does not implement store.SearchTx", tx)
			}
			res, err := st.Search(ctx, q, nil)
			if err != nil || len(res.Matches) != 0 {
				return fmt.Errorf("before: %v %v", res, err)
			}
			p := fixturePatient("p9", "Nine", "N", "male", "2000", "X")
			p["identifier"] = []any{map[string]any{"system": mrnSys, "value": "009"}}
			if _, err := tx.Put(ctx, store.Write{Type: "Patient", ID: "p9", Data: p}); err != nil {
				return err
			}
			res, err = st.Search(ctx, q, nil)
			if err != nil || len(refs(res.Matches)) != 1 || res.Total != 1 {
				return fmt.Errorf("after: %v %v", res, err)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}},
	{"ok/rows-of-one-transaction", func(t *testing.T, s store.Store) {
		// A backend may buffer search rows until the transaction ends:
		// updates, deletes and searches inside it, a failed transaction and
		// one larger than any buffer all still see exactly the current rows.
		loadFixture(t, s)
		ctx := ctxT(t)
		patient := func(id, family, mrn string) store.Write {
			p := fixturePatient(id, family, "G", "male", "2000", "X")
			p["identifier"] = []any{map[string]any{"system": mrnSys, "value": mrn}}
			return store.Write{Type: "Patient", ID: id, Data: p}
		}
		search := func(tx store.Tx, spec string) []string {
			res, err := tx.(store.SearchTx).Search(ctx, parseQuery(t, spec), nil)
			if err != nil {
				t.Fatalf("%s: %v", spec, err)
			}
			return refs(res.Matches)
		}
		err := s.Tx(ctx, func(tx store.Tx) error {
			for _, w := range []store.Write{patient("b1", "Zed", "b-1"), patient("b2", "Zed", "b-2"), patient("b1", "Yan", "b-1")} {
				if _, err := tx.Put(ctx, w); err != nil {
					return err
				}
			}
			if _, err := tx.Delete(ctx, "Patient", "b2", 0); err != nil {
				return err
			}
			if got := search(tx, "Patient?family=zed"); len(got) != 0 {
				t.Errorf("inside: family=zed %v, want none", got)
			}
			if got := search(tx, "Patient?family=yan"); !slices.Equal(got, pats("b1")) {
				t.Errorf("inside: family=yan %v, want b1", got)
			}
			_, err := tx.Put(ctx, patient("b3", "Xu", "b-3")) // buffered at the end
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		failed := errors.New("rolled back")
		if err := s.Tx(ctx, func(tx store.Tx) error {
			if _, err := tx.Put(ctx, patient("b4", "Wu", "b-4")); err != nil {
				return err
			}
			return failed
		}); !errors.Is(err, failed) {
			t.Fatalf("failing transaction: %v", err)
		}
		const many = 3000 // several rows each: more than one buffer's worth
		if err := s.Tx(ctx, func(tx store.Tx) error {
			for i := range many {
				if _, err := tx.Put(ctx, patient(fmt.Sprintf("m%04d", i), "Many", fmt.Sprintf("m-%d", i))); err != nil {
					return err
				}
			}
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		for spec, want := range map[string]int{"Patient?family=zed": 0, "Patient?family=yan": 1, "Patient?family=xu": 1,
			"Patient?family=wu": 0, "Patient?identifier=b-2": 0, "Patient?family=many&_count=1": many, "Patient?identifier=m-2999": 1} {
			if res := runSearch(t, s, parseQuery(t, spec), nil); res.Total != want {
				t.Errorf("%s: total %d, want %d", spec, res.Total, want)
			}
		}
	}},
	{"fail/unsupported-values-are-client-errors", func(t *testing.T, s store.Store) {
		loadFixture(t, s)
		for _, spec := range []string{
			"Patient?name:contains=%00", "Patient?name=a%00b", "Patient?name=%20%20", "Observation?code:text=%09"} {
			_, err := searcher(t, s).Search(ctxT(t), parseQuery(t, spec), nil)
			fe, ok := fhir.AsError(err)
			if !ok || fe.HTTPStatus() != 400 {
				t.Fatalf("%s: err %v, want a 400 *fhir.Error", spec, err)
			}
		}
	}},
}
