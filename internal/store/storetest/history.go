package storetest

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/fhirguard/fhirguard/internal/store"
)

// allPages walks q page by page through Next and checks that every page
// reports the same Total and holds at most Count entries.
func allPages(t *testing.T, s store.Store, q store.HistoryQuery) (entries []string, total int) {
	t.Helper()
	total = -1
	for pages := 0; ; pages++ {
		if pages > 1000 {
			t.Fatal("history paging does not terminate")
		}
		p, err := s.History(ctxT(t), q)
		if err != nil {
			t.Fatalf("History %+v: %v", q, err)
		}
		if total >= 0 && p.Total != total {
			t.Fatalf("Total changed between pages: %d then %d", total, p.Total)
		}
		total = p.Total
		if len(p.Entries) > q.Count {
			t.Fatalf("page has %d entries, Count %d", len(p.Entries), q.Count)
		}
		entries = append(entries, versionsOf(p)...)
		if p.Next == 0 {
			return entries, total
		}
		if len(p.Entries) == 0 {
			t.Fatal("empty page with a Next cursor")
		}
		q.Before = p.Next
	}
}

func writeMix(t *testing.T, s store.Store) {
	t.Helper()
	mustPut(t, s, store.Write{Type: "Patient", ID: "p1", Data: patient("One")})
	mustPut(t, s, store.Write{Type: "Patient", ID: "p2", Data: patient("Two")})
	mustPut(t, s, store.Write{Type: "Observation", ID: "o1", Data: observation("p1", "1")})
	mustPut(t, s, store.Write{Type: "Patient", ID: "p1", Data: patient("One b")})
}

var historyCases = []testCase{
	{"ok/history-instance", func(t *testing.T, s store.Store) {
		for i := range 3 {
			mustPut(t, s, store.Write{Type: "Patient", ID: "p1", Data: patient(fmt.Sprint("v", i+1))})
		}
		mustPut(t, s, store.Write{Type: "Patient", ID: "other", Data: patient("X")})
		mustDelete(t, s, "Patient", "p1")
		p, err := s.History(ctxT(t), store.HistoryQuery{Type: "Patient", ID: "p1", Count: 10})
		if err != nil {
			t.Fatalf("History: %v", err)
		}
		got := versionsOf(p)
		want := []string{"Patient/p1/4", "Patient/p1/3", "Patient/p1/2", "Patient/p1/1"}
		if !slices.Equal(got, want) || p.Total != 4 || p.Next != 0 {
			t.Fatalf("instance history = %v total %d next %d, want %v total 4 next 0", got, p.Total, p.Next, want)
		}
		checkResource(t, "history tombstone", p.Entries[0], "Patient", "p1", 4, true)
		for i, e := range p.Entries[1:] {
			checkResource(t, "history entry", e, "Patient", "p1", int64(3-i), false)
		}
	}},
	{"ok/history-type", func(t *testing.T, s store.Store) {
		writeMix(t, s)
		p, err := s.History(ctxT(t), store.HistoryQuery{Type: "Patient", Count: 10})
		if err != nil {
			t.Fatalf("History: %v", err)
		}
		want := []string{"Patient/p1/2", "Patient/p2/1", "Patient/p1/1"}
		if got := versionsOf(p); !slices.Equal(got, want) || p.Total != 3 {
			t.Fatalf("type history = %v total %d, want %v total 3", got, p.Total, want)
		}
		p, err = s.History(ctxT(t), store.HistoryQuery{Type: "Encounter", Count: 10})
		if err != nil || len(p.Entries) != 0 || p.Total != 0 || p.Next != 0 {
			t.Fatalf("empty type history = %+v, %v", p, err)
		}
	}},
	{"ok/history-system", func(t *testing.T, s store.Store) {
		p, err := s.History(ctxT(t), store.HistoryQuery{Count: 10})
		if err != nil || len(p.Entries) != 0 || p.Total != 0 || p.Next != 0 {
			t.Fatalf("history of an empty store = %+v, %v", p, err)
		}
		writeMix(t, s)
		p, err = s.History(ctxT(t), store.HistoryQuery{Count: 10})
		if err != nil {
			t.Fatalf("History: %v", err)
		}
		want := []string{"Patient/p1/2", "Observation/o1/1", "Patient/p2/1", "Patient/p1/1"}
		if got := versionsOf(p); !slices.Equal(got, want) || p.Total != 4 {
			t.Fatalf("system history = %v total %d, want %v total 4", got, p.Total, want)
		}
		for _, e := range p.Entries {
			checkResource(t, "system history entry", e, e.Type, e.ID, e.VersionID, false)
		}
	}},
	{"ok/history-paging", func(t *testing.T, s store.Store) {
		var all []string
		for i := range 23 {
			typ := []string{"Patient", "Observation"}[i%2]
			id := fmt.Sprint("r", i%5)
			data := patient("x")
			if typ == "Observation" {
				data = observation("p", fmt.Sprint(i))
			}
			w := mustPut(t, s, store.Write{Type: typ, ID: id, Data: data})
			all = append(all, fmt.Sprintf("%s/%s/%d", typ, id, w.Resource.VersionID))
		}
		slices.Reverse(all)
		for _, count := range []int{1, 5, 7, 23, 50} {
			got, total := allPages(t, s, store.HistoryQuery{Count: count})
			if !slices.Equal(got, all) || total != len(all) {
				t.Fatalf("Count %d: paged system history\n%v\nwant\n%v (total %d)", count, got, all, total)
			}
		}
		var patients []string
		for _, v := range all {
			if v[:8] == "Patient/" {
				patients = append(patients, v)
			}
		}
		got, total := allPages(t, s, store.HistoryQuery{Type: "Patient", Count: 4})
		if !slices.Equal(got, patients) || total != len(patients) {
			t.Fatalf("paged type history %v, want %v", got, patients)
		}
		var r0 []string
		for _, v := range patients {
			if v[:11] == "Patient/r0/" {
				r0 = append(r0, v)
			}
		}
		got, total = allPages(t, s, store.HistoryQuery{Type: "Patient", ID: "r0", Count: 1})
		if !slices.Equal(got, r0) || total != len(r0) {
			t.Fatalf("paged instance history %v, want %v", got, r0)
		}
	}},
	{"ok/history-paging-concurrent-writes", func(t *testing.T, s store.Store) {
		var all []string
		for i := range 12 {
			w := mustPut(t, s, store.Write{Type: "Patient", ID: fmt.Sprint("p", i), Data: patient("x")})
			all = append(all, fmt.Sprintf("Patient/%s/%d", w.Resource.ID, w.Resource.VersionID))
		}
		slices.Reverse(all)
		q := store.HistoryQuery{Count: 5}
		var got []string
		for range 100 {
			p, err := s.History(ctxT(t), q)
			if err != nil {
				t.Fatalf("History: %v", err)
			}
			got = append(got, versionsOf(p)...)
			// Writes between pages must not shift later pages.
			mustPut(t, s, store.Write{Type: "Patient", ID: "p0", Data: patient("y")})
			if p.Next == 0 {
				break
			}
			q.Before = p.Next
		}
		if !slices.Equal(got, all) {
			t.Fatalf("pages with writes in between:\n%v\nwant\n%v", got, all)
		}
	}},
	{"ok/history-since", func(t *testing.T, s store.Store) {
		var written []*store.WriteResult
		for i := range 6 {
			written = append(written, mustPut(t, s, store.Write{Type: "Patient", ID: fmt.Sprint("p", i%3), Data: patient("x")}))
			time.Sleep(3 * time.Millisecond) // distinct lastUpdated with a real clock
		}
		since := written[3].Resource.LastUpdated
		var want []string
		for i := len(written) - 1; i >= 0; i-- {
			if r := written[i].Resource; !r.LastUpdated.Before(since) {
				want = append(want, fmt.Sprintf("%s/%s/%d", r.Type, r.ID, r.VersionID))
			}
		}
		got, total := allPages(t, s, store.HistoryQuery{Since: since, Count: 2})
		if !slices.Equal(got, want) || total != len(want) {
			t.Fatalf("system history since %v = %v (total %d), want %v", since, got, total, want)
		}
		got, total = allPages(t, s, store.HistoryQuery{Type: "Patient", Since: since, Count: 10})
		if !slices.Equal(got, want) || total != len(want) {
			t.Fatalf("type history since = %v (total %d), want %v", got, total, want)
		}
		var inst []string
		for _, v := range want {
			if v[:11] == "Patient/p0/" {
				inst = append(inst, v)
			}
		}
		got, total = allPages(t, s, store.HistoryQuery{Type: "Patient", ID: "p0", Since: since, Count: 10})
		if !slices.Equal(got, inst) || total != len(inst) {
			t.Fatalf("instance history since = %v (total %d), want %v", got, total, inst)
		}
		future := written[len(written)-1].Resource.LastUpdated.Add(time.Hour)
		p, err := s.History(ctxT(t), store.HistoryQuery{Since: future, Count: 10})
		if err != nil || len(p.Entries) != 0 || p.Total != 0 {
			t.Fatalf("history since the future = %+v, %v", p, err)
		}
	}},
	{"fail/history-instance-unknown", func(t *testing.T, s store.Store) {
		mustPut(t, s, store.Write{Type: "Patient", ID: "p1", Data: patient("One")})
		_, err := s.History(ctxT(t), store.HistoryQuery{Type: "Patient", ID: "nope", Count: 10})
		wantErr(t, "instance history of unknown", err, store.ErrNotFound)
	}},
}
