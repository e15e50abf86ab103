package audit

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/fhirguard/fhirguard/internal/clock"
	"github.com/fhirguard/fhirguard/internal/fhir"
	"github.com/fhirguard/fhirguard/internal/store"
)

const externalEvent = `{"resourceType":"AuditEvent","id":"theirs","meta":{"versionId":"7"},
"type":{"system":"http://dicom.nema.org/resources/ontology/DCM","code":"110106","display":"Export"},
"action":"R","recorded":"2025-12-24T08:00:00+01:00","outcome":"0",
"agent":[{"who":{"reference":"Practitioner/drX"},"requestor":true,"network":{"address":"192.0.2.7","type":"2"}}],
"source":{"observer":{"display":"lab system"}},
"entity":[{"what":{"reference":"Patient/pA"},"role":{"system":"http://terminology.hl7.org/CodeSystem/object-role","code":"1"}}]}`

func parseMap(t *testing.T, s string) map[string]any {
	t.Helper()
	m, err := fhir.ParseResource([]byte(s))
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func TestRecordExternal(t *testing.T) {
	t.Parallel()
	clk := clock.NewFake(t0)
	st, _ := openStore(t, clk)
	ctx := context.Background()
	signer, err := newTestSigner(ctx, st)
	if err != nil {
		t.Fatal(err)
	}
	r := newRecorder(t, st, clk, func(o *Options) { o.Signer = signer })
	if err := r.Record(ctx, readEvent("Practitioner/drA", "pB")); err != nil {
		t.Fatal(err)
	}
	src := Source{Observer: "http://fhir.test/fhir", Name: "fhirguard"}
	ev := parseMap(t, externalEvent)
	if err := CheckExternal(ev, src); err != nil {
		t.Fatalf("a foreign source was refused: %v", err)
	}
	seq, err := r.RecordExternal(ctx, ev)
	if err != nil || seq != 2 {
		t.Fatalf("record external: seq %d, %v", seq, err)
	}
	rec, err := st.AuditRead(ctx, 2)
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if err := json.Unmarshal(rec.Body, &doc); err != nil {
		t.Fatalf("stored body: %v\n%s", err, rec.Body)
	}
	if doc["id"] != "2" || doc["recorded"] != "2025-12-24T08:00:00+01:00" || strings.Count(string(rec.Body), `"recorded"`) != 1 {
		t.Fatalf("stored %s: want the server's id and the source's recorded", rec.Body)
	}
	page, err := st.AuditSearch(ctx, store.AuditQuery{Refs: []store.AuditRef{{Param: KeyAgent, Value: "Practitioner/drX"}}, Count: 5})
	if err != nil || len(page.Records) != 1 || page.Records[0].Seq != 2 || page.Records[0].Address != "192.0.2.7" {
		t.Fatalf("search by the external agent: %+v %v", page, err)
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	rep, err := Verify(ctx, st, signer, clk)
	if err != nil || rep.Problem != nil || rep.Records != 2 {
		t.Fatalf("verify: %+v %v", rep, err)
	}

	for _, observer := range []string{`{"display":"fhirguard"}`, `{"identifier":{"value":"http://fhir.test/fhir/"}}`, `{"reference":"http://FHIR.test/fhir"}`} {
		bad := parseMap(t, strings.Replace(externalEvent, `{"display":"lab system"}`, observer, 1))
		if err := CheckExternal(bad, src); err == nil || !strings.Contains(err.Error(), "cannot name this server") {
			t.Fatalf("observer %s: %v", observer, err)
		}
	}
	if _, err := r.RecordExternal(ctx, map[string]any{"resourceType": "AuditEvent"}); err == nil {
		t.Fatal("an event without recorded was accepted")
	}
}
