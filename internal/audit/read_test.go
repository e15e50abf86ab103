package audit

import (
	"context"
	"encoding/json"
	"github.com/fhirguard/fhirguard/internal/fhir"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/fhirguard/fhirguard/internal/clock"
	"github.com/fhirguard/fhirguard/internal/store"
)

func TestParseSearch(t *testing.T) {
	t.Parallel()
	src := Source{Observer: "http://fhir.test/fhir"}
	day := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	tests := []struct {
		name  string
		query string
		check func(t *testing.T, q store.AuditQuery, empty bool)
		fail  string
	}{
		{name: "ok/patient-bare-id", query: "patient=pA", check: func(t *testing.T, q store.AuditQuery, _ bool) {
			if len(q.Refs) != 1 || q.Refs[0] != (store.AuditRef{Param: KeyPatient, Value: "Patient/pA"}) {
				t.Fatalf("refs %+v", q.Refs)
			}
		}},
		{name: "ok/entity-patient-also-matches-patient-key", query: "entity=Patient/pA", check: func(t *testing.T, q store.AuditQuery, _ bool) {
			if len(q.Refs) != 2 || q.Refs[1] != (store.AuditRef{Param: KeyPatient, Value: "Patient/pA", Group: KeyEntity}) {
				t.Fatalf("refs %+v", q.Refs)
			}
		}},
		{name: "ok/or-values", query: "outcome=4,8&subtype=http://hl7.org/fhir/restful-interaction|read", check: func(t *testing.T, q store.AuditQuery, _ bool) {
			if strings.Join(q.Outcomes, ",") != "4,8" || strings.Join(q.Subtypes, ",") != "read" {
				t.Fatalf("outcomes %v subtypes %v", q.Outcomes, q.Subtypes)
			}
		}},
		{name: "ok/date-ge", query: "date=ge2026-01-01", check: func(t *testing.T, q store.AuditQuery, _ bool) {
			if !q.From.Equal(day) || !q.To.IsZero() {
				t.Fatalf("from %v to %v", q.From, q.To)
			}
		}},
		{name: "ok/date-day", query: "date=2026-01-01", check: func(t *testing.T, q store.AuditQuery, _ bool) {
			if !q.From.Equal(day) || !q.To.Equal(day.AddDate(0, 0, 1)) {
				t.Fatalf("from %v to %v", q.From, q.To)
			}
		}},
		{name: "ok/date-lt-instant", query: "date=lt2026-01-01T10:00:00Z", check: func(t *testing.T, q store.AuditQuery, _ bool) {
			if !q.To.Equal(day.Add(10 * time.Hour)) {
				t.Fatalf("to %v", q.To)
			}
		}},
		{name: "ok/count-capped-and-sort", query: "_count=99999&_sort=date", check: func(t *testing.T, q store.AuditQuery, _ bool) {
			if q.Count != MaxSearchCount || !q.Ascending {
				t.Fatalf("count %d asc %v", q.Count, q.Ascending)
			}
		}},
		{name: "ok/other-source-matches-nothing", query: "source=http://elsewhere", check: func(t *testing.T, _ store.AuditQuery, empty bool) {
			if !empty {
				t.Fatal("a search for another source must match nothing")
			}
		}},
		{name: "fail/unknown-parameter", query: "pateint=pA", fail: "not supported"},
		{name: "fail/bad-date", query: "date=yesterday", fail: "not a FHIR date"},
		{name: "fail/bad-prefix", query: "date=ap2026-01-01", fail: "prefix"},
		{name: "fail/ne-prefix", query: "date=ne2026-01-01", fail: "prefix"},
		{name: "fail/word-as-date", query: "date=notadate", fail: `"notadate" is not a FHIR date`},
		{name: "fail/bad-count", query: "_count=x", fail: "_count"},
		{name: "fail/bad-sort", query: "_sort=agent", fail: "sorts by date"},
		{name: "fail/bad-cursor", query: "_before=-3", fail: "paging"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			v, err := url.ParseQuery(tc.query)
			if err != nil {
				t.Fatal(err)
			}
			q, empty, err := ParseSearch(v, src)
			if tc.fail != "" {
				if err == nil || !strings.Contains(err.Error(), tc.fail) {
					t.Fatalf("err %v, want %q", err, tc.fail)
				}
				if fe, ok := fhir.AsError(err); !ok || fe.HTTPStatus() != 400 {
					t.Fatalf("err %v: want a 400 OperationOutcome", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			tc.check(t, q, empty)
		})
	}
}

func TestSearchBundlePaging(t *testing.T) {
	t.Parallel()
	clk := clock.NewFake(t0)
	st, _ := openStore(t, clk)
	r := newRecorder(t, st, clk, nil)
	ctx := context.Background()
	for i := 0; i < 5; i++ {
		if err := r.Record(ctx, readEvent("Practitioner/drA", "pA")); err != nil {
			t.Fatal(err)
		}
	}
	base := "http://fhir.test/fhir"
	res, err := Search(ctx, st, Source{Observer: base}, base, url.Values{"entity": {"Patient/pA"}, "_count": {"2"}}, clk.Now())
	if err != nil {
		t.Fatal(err)
	}
	var b struct {
		Type  string
		Link  []struct{ Relation, URL string }
		Entry []struct {
			FullURL  string
			Resource struct{ ID string }
		}
	}
	if err := json.Unmarshal(res.Bundle, &b); err != nil {
		t.Fatalf("bundle: %v\n%s", err, res.Bundle)
	}
	if b.Type != "searchset" || len(b.Entry) != 2 || b.Entry[0].Resource.ID != "5" || b.Entry[0].FullURL != base+"/AuditEvent/5" {
		t.Fatalf("bundle %+v", b)
	}
	if len(b.Link) != 2 || b.Link[1].Relation != "next" || !strings.Contains(b.Link[1].URL, "_before=4") {
		t.Fatalf("links %+v", b.Link)
	}
	if len(res.Patients) != 1 || res.Patients[0] != "pA" {
		t.Fatalf("patients %v", res.Patients)
	}
	body, _, err := ReadEvent(ctx, st, "3")
	if err != nil || !strings.Contains(string(body), `"id":"3"`) {
		t.Fatalf("read: %v %s", err, body)
	}
	for _, id := range []string{"99", "03", "x", "-1"} {
		if _, _, err := ReadEvent(ctx, st, id); err == nil || !strings.Contains(err.Error(), "not known") {
			t.Fatalf("read %q: %v", id, err)
		}
	}
}
