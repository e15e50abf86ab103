package fhirapi

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/fhirguard/fhirguard/internal/clock"
	"github.com/fhirguard/fhirguard/internal/fhir"
	"github.com/fhirguard/fhirguard/internal/policy"
)

// TestXProvenanceAgentMustBeTheCaller: a client-authored Provenance must
// name the caller's fhirUser and no other user (PROV-03).
func TestXProvenanceAgentMustBeTheCaller(t *testing.T) {
	t.Parallel()
	caller := &policy.Principal{FHIRUser: "Practitioner/drA", ClientID: "app1"}
	a := &API{validator: testValidator(t), clock: clock.NewFake(time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)), provenance: true,
		principal: func(context.Context) (*policy.Principal, bool) { return caller, true }}
	prov := func(who ...string) string {
		var agents []string
		for _, w := range who {
			agents = append(agents, `{"who":{"reference":"`+w+`"}}`)
		}
		return `{"resourceType":"Provenance","recorded":"2020-01-01T00:00:00Z","target":[{"reference":"Patient/x"}],"agent":[` + strings.Join(agents, ",") + `]}`
	}
	tests := []struct {
		name   string
		header string
		status int // 0 = accepted
	}{
		{"ok/caller", prov("Practitioner/drA"), 0},
		{"ok/caller-and-device", prov("Practitioner/drA", "Device/d1"), 0},
		{"fail/other-user", prov("Practitioner/drB"), http.StatusUnprocessableEntity},
		{"fail/caller-and-other-user", prov("Practitioner/drA", "Practitioner/drB"), http.StatusUnprocessableEntity},
		{"fail/no-user-agent", prov("Device/d1"), http.StatusUnprocessableEntity},
		{"fail/not-provenance", `{"resourceType":"Patient"}`, http.StatusBadRequest},
		{"fail/not-json", `{`, http.StatusBadRequest},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest("PUT", "/fhir/Patient/p1", nil)
			r.Header.Set(HeaderXProvenance, tc.header)
			q := &Request{Interaction: Update, Type: "Patient", ID: "p1"}
			err := a.parseXProvenance(r, q)
			if tc.status == 0 {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				target := q.xProvenance["target"].([]any)[0].(map[string]any)["reference"]
				if target != "Patient/p1" {
					t.Fatalf("target %v: the server must set it", target)
				}
				return
			}
			fe, ok := fhir.AsError(err)
			if !ok || fe.HTTPStatus() != tc.status {
				t.Fatalf("err %v, want status %d", err, tc.status)
			}
			if q.xProvenance != nil {
				t.Fatal("a refused X-Provenance was kept")
			}
		})
	}
}
