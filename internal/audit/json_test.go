package audit

import (
	"bytes"
	"reflect"
	"testing"
	"time"

	"github.com/fhirguard/fhirguard/internal/store"
)

// sampleEvents are events of every shape the server records.
func sampleEvents() []Event {
	src := Source{Observer: "http://fhir.test/fhir"}
	var out []Event
	for _, inter := range []string{"read", "vread", "create", "update", "patch", "delete", "search-type", "history-instance", "batch", "operation", "other"} {
		for _, status := range []int{200, 404, 500} {
			req := RESTRequest{RequestID: "req-1", Interaction: inter, Status: status, Diag: "nope \"quoted\" <b>&</b>\n",
				ClientIP: "10.0.0.1", Path: "/fhir/Patient", RawQuery: "name=Ünïcode&x=\u2028"}
			req.Facts.Type, req.Facts.ID, req.Facts.Version, req.Facts.Patients, req.Facts.Results = "Patient", "pA", 2, []string{"pA"}, 3
			out = append(out, RESTEvents(src, req)...)
		}
	}
	btg := readEvent("Practitioner/erdoc", "pA")
	btg.Purpose, btg.PurposeText = []Coding{PurposeBTG}, "tab\there, bell\x07, bad utf8 \xff, line sep \u2029"
	btg.Agents[0].Roles = []Coding{{System: "s", Code: "break-glass"}}
	btg.Agents[0].Purpose = btg.Purpose
	btg.Entities = append(btg.Entities, Entity{Name: "n", Details: []Detail{{Type: "t", Value: ""}}})
	return append(out, btg, Event{Type: TypeLogin, Agents: []Agent{{}}})
}

func checkTail(t *testing.T, ev *Event, src Source) {
	t.Helper()
	tail, err := tailOf(ev, src)
	if err != nil {
		return
	}
	want, err := marshal(tail)
	if err != nil {
		t.Fatal(err)
	}
	if got := appendTail(nil, tail); !bytes.Equal(got, want) {
		t.Fatalf("appendTail differs from encoding/json:\n got %s\nwant %s", got, want)
	}
	if got := appendEventTail(nil, ev, &src); !bytes.Equal(got, want) {
		t.Fatalf("appendEventTail differs from encoding/json:\n got %s\nwant %s", got, want)
	}
}

func TestAppendTailMatchesEncodingJSON(t *testing.T) {
	t.Parallel()
	src := Source{Observer: "http://fhir.test/fhir", Name: "fhirguard", Site: "site \"1\""}
	for _, ev := range sampleEvents() {
		checkTail(t, &ev, src)
	}
}

func FuzzAppendTail(f *testing.F) {
	for _, s := range []string{"", "plain", "quote\"back\\slash", "\x00\x1f\x7f", "\xff\xfe", "\u2028\u2029", "é漢字😀", "<html>&amp;"} {
		f.Add(s, s+"x", []byte(s))
	}
	f.Fuzz(func(t *testing.T, a, b string, q []byte) {
		ev := Event{
			Type: Coding{System: a, Code: b, Display: a}, Subtypes: []Coding{{Code: a}}, Action: b,
			Outcome: Outcome(a), OutcomeDesc: b, Purpose: []Coding{{Code: a}}, PurposeText: b,
			Agents:   []Agent{{Type: Coding{Code: a}, Who: a, WhoID: b, Name: a, Roles: []Coding{{Display: b}}, Policy: []string{a, b}, Network: b, NetworkType: a}},
			Entities: []Entity{{What: b, WhatID: a, Type: Coding{Code: b}, Role: Coding{Code: a}, Name: a, Description: b, Query: q, Details: []Detail{{Type: a, Value: b}}}},
		}
		checkTail(t, &ev, Source{Observer: a, Name: b, Site: a})
	})
}

// TestCompactRendersTheStoredJSON: the AuditEvent JSON rendered from the
// compact stored form is byte for byte the JSON the server stored before
// it (the encoding/json shape of the same event).
func TestCompactRendersTheStoredJSON(t *testing.T) {
	t.Parallel()
	srcs := []Source{{Observer: "http://fhir.test/fhir"}, {Observer: "http://fhir.test/fhir", Name: "fhirguard", Site: "site \"1\""}}
	rec := time.Date(2026, 3, 1, 10, 0, 0, 123e6, time.UTC)
	for _, src := range srcs {
		for i, ev := range sampleEvents() {
			ev.Profiles = append(ev.Profiles, "http://other/profile")
			checkCompact(t, &ev, src, int64(i+1), rec)
		}
	}
}

func checkCompact(t *testing.T, ev *Event, src Source, seq int64, rec time.Time) {
	t.Helper()
	tail, err := tailOf(ev, src)
	if err != nil {
		return
	}
	want := &encoded{tail: appendTail(nil, tail)[1:]}
	if len(ev.Profiles) > 0 {
		p, _ := marshal(ev.Profiles)
		want.profiles = append([]byte(`,"profile":`), p...)
	}
	enc, err := encode(ev, src)
	if err != nil {
		t.Fatal(err)
	}
	got, err := EventJSON(&store.AuditRecord{Seq: seq, Recorded: rec, Body: enc.body(seq, rec)})
	if err != nil {
		t.Fatal(err)
	}
	if w := want.jsonBody(nil, seq, rec); !bytes.Equal(got, w) {
		t.Fatalf("rendered from the compact form:\n got %s\nwant %s", got, w)
	}
	if len(enc.compact) > 600 {
		t.Errorf("compact form of %d bytes", len(enc.compact))
	}
}

func FuzzCompactRoundTrip(f *testing.F) {
	for _, s := range []string{"", "plain", "quote\"back\\slash", "\x00\x1f\x7f", "\xff\xfe", "é漢字😀"} {
		f.Add(s, s+"x", []byte(s))
	}
	f.Fuzz(func(t *testing.T, a, b string, q []byte) {
		ev := Event{
			Type: Coding{System: a, Code: b + "c", Display: a}, Subtypes: []Coding{{Code: a, System: SystemRESTful}}, Action: b,
			Outcome: Outcome(a), OutcomeDesc: b, Purpose: []Coding{{Code: a}}, PurposeText: b, Profiles: []string{a, BALPProfileBase + b},
			Agents:   []Agent{{Type: Coding{Code: a}, Who: a, WhoID: b, Name: a, Roles: []Coding{{Display: b}}, Policy: []string{a, b}, Network: b, NetworkType: a}},
			Entities: []Entity{{What: b, WhatID: a, Type: Coding{Code: b}, Role: Coding{Code: a}, Name: a, Description: b, Query: q, Details: []Detail{{Type: a, Value: b}}}},
		}
		checkCompact(t, &ev, Source{Observer: a, Name: b, Site: a}, 7, time.UnixMilli(1_700_000_000_000).UTC())
		// Damaged compact bodies are refused, never a panic.
		enc, _ := encode(&ev, Source{Observer: a})
		for i := range enc.compact {
			_, _, _ = decodeCompact(enc.compact[:i])
		}
		_, _, _ = decodeCompact(append([]byte{compactV1}, q...))
	})
}

// checkSummary: the summary taken from a compact record's Event is the one
// parsed from the AuditEvent JSON rendered from it (what the admin views
// and the searches' patient facts used to parse).
func checkSummary(t *testing.T, ev *Event, src Source, seq int64, rec time.Time) {
	t.Helper()
	enc, err := encode(ev, src)
	if err != nil || enc.compact == nil {
		return
	}
	r := &store.AuditRecord{Seq: seq, Recorded: rec, Body: enc.body(seq, rec)}
	body, err := EventJSON(r)
	if err != nil {
		t.Fatal(err)
	}
	want, err := summarize(body)
	if err != nil {
		t.Fatal(err)
	}
	got, err := summarizeRecord(r)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("summary from the compact form:\n got %#v\nwant %#v (from %s)", got, want, body)
	}
}

func TestSummaryFromCompactMatchesJSON(t *testing.T) {
	t.Parallel()
	src := Source{Observer: "http://fhir.test/fhir"}
	rec := time.Date(2026, 3, 1, 10, 0, 0, 123e6, time.UTC)
	evs := sampleEvents()
	edge := readEvent("Practitioner/dr\xffA", "p\xfeA")
	edge.Agents = append([]Agent{{Requestor: true}}, edge.Agents...)
	edge.Entities = append(edge.Entities, Entity{WhatID: "id-only", Role: RolePatient}, Entity{What: "Patient/pB", Role: RolePatient},
		Entity{What: "Observation/o1/_history/1", Role: Coding{System: "other", Code: RoleDomainRes.Code}}, Entity{Role: RoleDomainRes})
	edge.Subtypes = []Coding{{Code: "vr\xffead"}, {Code: "second"}}
	edge.PurposeText = "because \xff"
	byID := Event{Type: TypeLogin, PurposeText: "text only", Agents: []Agent{{Who: "Patient/pA"}, {Requestor: true, WhoID: "client-\xff1"}}}
	evs = append(evs, edge, byID)
	for i, ev := range evs {
		checkSummary(t, &ev, src, int64(i+1), rec)
	}
}

func FuzzSummaryFromCompact(f *testing.F) {
	for _, s := range []string{"", "Patient/pA", "1", "4", "\xff\xfe", "é漢字😀", SystemObjectRole} {
		f.Add(s, s+"x", true)
	}
	f.Fuzz(func(t *testing.T, a, b string, req bool) {
		ev := Event{
			Type: Coding{Code: "c"}, Subtypes: []Coding{{Code: a}}, Action: b, Purpose: []Coding{{Code: a}}, PurposeText: b,
			Agents: []Agent{{Who: a, WhoID: b, Requestor: req}, {WhoID: a, Requestor: true}, {Who: b, Requestor: true}},
			Entities: []Entity{{What: b, WhatID: a, Role: Coding{System: a, Code: b}}, {What: a, Role: RolePatient},
				{WhatID: b, Role: RolePatient}, {What: b, Role: Coding{Code: a}}},
		}
		checkSummary(t, &ev, Source{Observer: a}, 7, time.UnixMilli(1_700_000_000_000).UTC())
	})
}
