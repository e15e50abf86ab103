package storetest

import (
	"bytes"
	"fmt"
	"math/rand"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/fhirguard/fhirguard/internal/store"
)

// auditModel is a brute-force reference of the audit search: every
// record in memory, filtered one by one.
type auditModel struct{ recs []store.AuditRecord }

func (m *auditModel) search(q store.AuditQuery) []int64 {
	groups := map[string][]string{}
	var order []string
	for _, r := range q.Refs {
		g := r.Group
		if g == "" {
			g = r.Param
		}
		if _, ok := groups[g]; !ok {
			order = append(order, g)
		}
		groups[g] = append(groups[g], r.Param+"|"+r.Value)
	}
	var out []int64
	for _, r := range m.recs {
		ok := (len(q.Outcomes) == 0 || slices.Contains(q.Outcomes, r.Outcome)) &&
			(len(q.Actions) == 0 || slices.Contains(q.Actions, r.Action)) &&
			(len(q.Subtypes) == 0 || slices.ContainsFunc(q.Subtypes, func(s string) bool { return strings.Contains(r.Subtype, "|"+s+"|") })) &&
			(q.From.IsZero() || !r.Recorded.Before(q.From)) &&
			(q.To.IsZero() || r.Recorded.Before(q.To)) &&
			(q.Before == 0 || r.Seq < q.Before) && (q.After == 0 || r.Seq > q.After)
		for _, g := range order {
			found := false
			for _, f := range r.Refs {
				if slices.Contains(groups[g], f.Param+"|"+f.Value) {
					found = true
				}
			}
			ok = ok && found
		}
		if ok {
			out = append(out, r.Seq)
		}
	}
	if !q.Ascending {
		slices.Reverse(out)
	}
	return out
}

// auditSearchModel appends records in blocks of varying size across
// several postings buckets (16384 seqs each) and compares many searches —
// by key, several keys, other fields, dates, cursors, both orders, paged
// — with the brute-force model: as appended, after the postings were
// dropped and rebuilt when the log opened, and after a prune.
func auditSearchModel(t *testing.T, f AuditFixture) {
	if testing.Short() {
		t.Skip("appends 40,000 records")
	}
	st := f.Log
	ctx := t.Context() // no minute's limit: the appends take long under -race
	rnd := rand.New(rand.NewSource(7))
	m := &auditModel{}
	head, err := st.AuditHeadRow(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	const n = 40000
	seq := int64(0)
	for seq < n {
		size := 1 + rnd.Intn(1500)
		if seq+int64(size) > n {
			size = int(n - seq)
		}
		recs := make([]store.AuditRecord, size)
		prev := head.Hash
		for i := range recs {
			seq++
			r := store.AuditRecord{Seq: seq, Recorded: t0.Add(time.Duration(seq) * time.Second),
				Body: []byte(fmt.Sprintf(`{"n":%d}`, seq)), Prev: prev, Hash: bytes.Repeat([]byte{byte(seq), byte(seq >> 8)}, 16),
				Outcome: []string{"0", "0", "0", "4"}[rnd.Intn(4)], Action: []string{"R", "C", "E"}[rnd.Intn(3)],
				Type: "http://terminology.hl7.org/CodeSystem/audit-event-type|rest", Subtype: []string{"|read|", "|search-type|", "|create|"}[rnd.Intn(3)],
				Address: "10.0.0.1"}
			r.Refs = append(r.Refs, store.AuditRef{Param: "agent", Value: fmt.Sprintf("client-%d", rnd.Intn(3))})
			if rnd.Intn(5) > 0 {
				r.Refs = append(r.Refs, store.AuditRef{Param: "patient", Value: fmt.Sprintf("Patient/p%d", rnd.Intn(50))})
			}
			if rnd.Intn(100) == 0 {
				r.Refs = append(r.Refs, store.AuditRef{Param: "btg", Value: "1"})
			}
			recs[i] = r
			prev = r.Hash
		}
		if err := st.AuditTx(ctx, func(tx store.AuditTx) error { return tx.AppendAudit(ctx, head, recs, head.Outbox) }); err != nil {
			t.Fatal(err)
		}
		head = store.AuditHead{Seq: seq, Hash: prev}
		m.recs = append(m.recs, recs...)
	}
	check := func(t *testing.T, q store.AuditQuery) {
		t.Helper()
		want := m.search(q)
		var got []int64
		for pages := 0; ; pages++ {
			page, err := st.AuditSearch(ctx, q)
			if err != nil {
				t.Fatalf("%+v: %v", q, err)
			}
			for _, r := range page.Records {
				got = append(got, r.Seq)
			}
			if !page.More || pages > 200 {
				break
			}
			last := page.Records[len(page.Records)-1].Seq
			if q.Ascending {
				q.After = last
			} else {
				q.Before = last
			}
		}
		if !slices.Equal(got, want) {
			t.Fatalf("query %+v: got %d records %v…, want %d %v…", q, len(got), auditHead10(got), len(want), auditHead10(want))
		}
	}
	queries := func(t *testing.T) {
		for _, asc := range []bool{false, true} {
			p := func(v string) store.AuditRef { return store.AuditRef{Param: "patient", Value: v} }
			check(t, store.AuditQuery{Refs: []store.AuditRef{p("Patient/p7")}, Ascending: asc, Count: 100})
			check(t, store.AuditQuery{Refs: []store.AuditRef{p("Patient/p7"), p("Patient/p9")}, Ascending: asc, Count: 77})
			check(t, store.AuditQuery{Refs: []store.AuditRef{p("Patient/p3"), {Param: "agent", Value: "client-1"}}, Subtypes: []string{"read"}, Ascending: asc, Count: 50})
			check(t, store.AuditQuery{Refs: []store.AuditRef{{Param: "btg", Value: "1"}}, Ascending: asc, Count: 10})
			check(t, store.AuditQuery{Refs: []store.AuditRef{p("Patient/p1")}, From: t0.Add(3000 * time.Second), To: t0.Add(9000 * time.Second), Ascending: asc, Count: 40})
			check(t, store.AuditQuery{Refs: []store.AuditRef{p("Patient/nobody")}, Ascending: asc, Count: 10})
			check(t, store.AuditQuery{Outcomes: []string{"4"}, Actions: []string{"C"}, Ascending: asc, Count: 300})
			check(t, store.AuditQuery{From: t0.Add(16380 * time.Second), To: t0.Add(16500*time.Second + 500*time.Millisecond), Ascending: asc, Count: 7})
			check(t, store.AuditQuery{Before: 33000, After: 16000, Refs: []store.AuditRef{p("Patient/p2")}, Ascending: asc, Count: 5})
			check(t, store.AuditQuery{Before: 33000, After: 16000, Refs: []store.AuditRef{p("Patient/p2")}, Ascending: asc, Count: 500})
			check(t, store.AuditQuery{Count: 1000, Ascending: asc})
		}
	}
	t.Run("appended", queries)
	for _, seq := range []int64{1, 16384, 16385, 32768, 39999, 40000} {
		r, err := st.AuditRead(ctx, seq)
		if err != nil || r.Seq != seq || !bytes.Equal(r.Body, m.recs[seq-1].Body) || len(r.Refs) != len(m.recs[seq-1].Refs) {
			t.Fatalf("read %d: %+v %v", seq, r, err)
		}
	}
	scanned := int64(0)
	for after := int64(0); ; {
		recs, err := st.AuditScan(ctx, after, 999)
		if err != nil {
			t.Fatal(err)
		}
		if len(recs) == 0 {
			break
		}
		for _, r := range recs {
			scanned++
			if r.Seq != scanned || !bytes.Equal(r.Hash, m.recs[r.Seq-1].Hash) {
				t.Fatalf("scan: record %d at %d", r.Seq, scanned)
			}
		}
		after = recs[len(recs)-1].Seq
	}
	if scanned != n {
		t.Fatalf("scan found %d records", scanned)
	}
	btg, err := st.AuditBTG(ctx, true)
	if err != nil || len(btg) != len(m.search(store.AuditQuery{Refs: []store.AuditRef{{Param: "btg", Value: "1"}}})) {
		t.Fatalf("btg list: %d %v", len(btg), err)
	}

	// Postings dropped (as schema audit v3 does) are rebuilt on open.
	st = f.Reopen(t, true)
	t.Run("reindexed", queries)

	// Prune into the middle of a block and of a bucket.
	const cut = 20000
	if err := st.AuditTx(ctx, func(tx store.AuditTx) error {
		_, err := tx.PruneAudit(ctx, store.AuditAnchor{Seq: cut, Hash: m.recs[cut-1].Hash})
		return err
	}); err != nil {
		t.Fatal(err)
	}
	m.recs = m.recs[cut:]
	t.Run("pruned", queries)
	if _, err := st.AuditRead(ctx, cut); err == nil {
		t.Fatalf("pruned record %d readable", cut)
	}
	if recs, err := st.AuditScan(ctx, 0, 1); err != nil || len(recs) != 1 || recs[0].Seq != cut+1 {
		t.Fatalf("scan after prune: %+v %v", recs, err)
	}
}

func auditHead10(s []int64) []int64 { return s[:min(10, len(s))] }
