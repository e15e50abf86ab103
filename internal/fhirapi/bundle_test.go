package fhirapi

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/fhirguard/fhirguard/internal/store"
)

// entry builds one Bundle entry.
func entry(fullURL, method, url, resource string) string {
	var parts []string
	if fullURL != "" {
		parts = append(parts, `"fullUrl":"`+fullURL+`"`)
	}
	if resource != "" {
		parts = append(parts, `"resource":`+resource)
	}
	parts = append(parts, `"request":{"method":"`+method+`","url":"`+url+`"}`)
	return "{" + strings.Join(parts, ",") + "}"
}

func bundle(typ string, entries ...string) string {
	return `{"resourceType":"Bundle","type":"` + typ + `","entry":[` + strings.Join(entries, ",") + `]}`
}

func responses(t *testing.T, r *reply) []map[string]any {
	t.Helper()
	b := r.json(t)
	var out []map[string]any
	for _, x := range asSlice(b["entry"]) {
		out = append(out, x.(map[string]any))
	}
	return out
}

func respOf(e map[string]any) map[string]any { m, _ := e["response"].(map[string]any); return m }

func TestTransaction(t *testing.T) {
	t.Parallel()
	eachStore(t, func(t *testing.T, h *harness) {
		gone := h.create("Patient", patientJSON)
		pat := `{"resourceType":"Patient","name":[{"family":"Tx"}],"generalPractitioner":[{"reference":"Practitioner/p1"}]}`
		obs := `{"resourceType":"Observation","status":"final","code":{"text":"x"},"subject":{"reference":"urn:uuid:11111111-1111-4111-8111-111111111111"},` +
			`"hasMember":[{"reference":"urn:uuid:22222222-2222-4222-8222-222222222222"}],"contained":[{"resourceType":"Provenance","id":"p","target":[{"reference":"urn:uuid:11111111-1111-4111-8111-111111111111"}],` +
			`"recorded":"2025-01-01T00:00:00Z","agent":[{"who":{"reference":"urn:uuid:11111111-1111-4111-8111-111111111111"}}]}]}`
		obs2 := `{"resourceType":"Observation","status":"final","code":{"text":"y"}}`
		body := bundle("transaction",
			entry("", "GET", "Practitioner/p1", ""),
			entry("urn:uuid:22222222-2222-4222-8222-222222222222", "POST", "Observation", obs2),
			entry("", "PUT", "Practitioner/p1", `{"resourceType":"Practitioner","id":"p1"}`),
			entry("urn:uuid:11111111-1111-4111-8111-111111111111", "POST", "Patient", pat),
			entry("", "POST", "Observation", obs),
			entry("", "DELETE", "Patient/"+gone, ""),
		)
		r := h.do("POST", "/fhir", body)
		if r.Status != http.StatusOK {
			t.Fatalf("transaction: %d %s", r.Status, r.Body)
		}
		b := r.json(t)
		if b["type"] != "transaction-response" {
			t.Fatalf("type %v", b["type"])
		}
		es := responses(t, r)
		wantStatus := []string{"200 OK", "201 Created", "201 Created", "201 Created", "201 Created", "200 OK"}
		for i, e := range es {
			if got := respOf(e)["status"]; got != wantStatus[i] {
				t.Errorf("entry %d status %v, want %s", i, got, wantStatus[i])
			}
		}
		// Original order kept: entry 0 is the GET of the Practitioner the PUT
		// (processed earlier) created.
		if res, _ := es[0]["resource"].(map[string]any); res["id"] != "p1" {
			t.Errorf("GET entry resource %v", es[0]["resource"])
		}
		loc := func(i int) string { return respOf(es[i])["location"].(string) }
		patID := strings.Split(strings.TrimPrefix(loc(3), testBase+"/Patient/"), "/")[0]
		obs2ID := strings.Split(strings.TrimPrefix(loc(1), testBase+"/Observation/"), "/")[0]
		if !uuidRE.MatchString(patID) || !uuidRE.MatchString(obs2ID) {
			t.Fatalf("locations %q %q", loc(3), loc(1))
		}
		if respOf(es[2])["location"] != testBase+"/Practitioner/p1/_history/1" {
			t.Errorf("PUT location %v", respOf(es[2])["location"])
		}
		stored := h.do("GET", strings.TrimPrefix(loc(4), "http://fhir.test"), "")
		s := string(stored.Body)
		for _, want := range []string{`"reference":"Patient/` + patID + `"`, `"reference":"Observation/` + obs2ID + `"`} {
			if !strings.Contains(s, want) {
				t.Errorf("stored Observation lacks %s: %s", want, s)
			}
		}
		if strings.Contains(s, "urn:uuid") {
			t.Errorf("urn:uuid reference left (contained resources too): %s", s)
		}
		if h.do("GET", "/fhir/Patient/"+gone, "").Status != http.StatusGone {
			t.Errorf("DELETE entry not applied")
		}
	})
}

func TestTransactionAllOrNothing(t *testing.T) {
	t.Parallel()
	eachStore(t, func(t *testing.T, h *harness) {
		id := h.create("Patient", patientJSON)
		count := func(typ string) json.Number {
			return h.do("GET", "/fhir/"+typ+"/_history", "").json(t)["total"].(json.Number)
		}
		tests := []struct {
			name   string
			body   string
			status int
			expr   string
			diag   string
		}{
			{"fail/stale-if-match-at-execution",
				bundle("transaction",
					entry("urn:uuid:a", "POST", "Observation", `{"resourceType":"Observation","status":"final","code":{"text":"x"}}`),
					`{"resource":{"resourceType":"Patient","id":"`+id+`"},"request":{"method":"PUT","url":"Patient/`+id+`","ifMatch":"W/\"7\""}}`),
				412, "Bundle.entry[1]", "If-Match"},
			{"fail/type-mismatch-at-parse",
				bundle("transaction",
					entry("", "POST", "Observation", `{"resourceType":"Observation","status":"final","code":{"text":"x"}}`),
					entry("", "POST", "Observation", `{"resourceType":"Patient"}`)),
				400, "Bundle.entry[1]", "resourceType"},
			{"fail/unknown-entry-id",
				bundle("transaction",
					entry("", "POST", "Observation", `{"resourceType":"Observation","status":"final","code":{"text":"x"}}`),
					entry("", "DELETE", "Observation/nope", "")),
				404, "Bundle.entry[1]", "not known"},
			{"fail/overlap",
				bundle("transaction",
					entry("", "PUT", "Observation/o1", `{"resourceType":"Observation","id":"o1","status":"final","code":{"text":"x"}}`),
					entry("", "DELETE", "Observation/o1", "")),
				400, "Bundle.entry[1]", "also written by Bundle.entry[0]"},
			{"fail/search-entry",
				bundle("transaction",
					entry("", "POST", "Observation", `{"resourceType":"Observation","status":"final","code":{"text":"x"}}`),
					entry("", "GET", "Observation?date=notadate", "")),
				400, "Bundle.entry[1]", "date"},
			{"fail/conditional-create",
				bundle("transaction",
					`{"resource":{"resourceType":"Observation","status":"final","code":{"text":"x"}},"request":{"method":"POST","url":"Observation","ifNoneExist":"code:bogus=x"}}`),
				400, "Bundle.entry[0]", "modifier"},
			{"fail/missing-request",
				bundle("transaction", `{"resource":{"resourceType":"Observation"}}`),
				400, "Bundle.entry[0]", "entry.request"},
			{"fail/bad-method",
				bundle("transaction", entry("", "TRACE", "Observation", "")),
				400, "Bundle.entry[0]", "method"},
			{"fail/foreign-url",
				bundle("transaction", entry("", "GET", "http://evil.test/fhir/Patient/1", "")),
				400, "Bundle.entry[0]", "not on this server"},
			{"fail/traversal-url",
				bundle("transaction", entry("", "GET", "Patient/..%2F..%2Fx", "")),
				400, "Bundle.entry[0]", "invalid path"},
			{"fail/nested-bundle",
				bundle("transaction", entry("", "POST", "", bundle("batch"))),
				400, "Bundle.entry[0]", "request.url is required"},
		}
		for _, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				r := h.do("POST", "/fhir", tc.body)
				if r.Status != tc.status {
					t.Fatalf("status %d, want %d: %s", r.Status, tc.status, r.Body)
				}
				_, diag, expr := issue(t, r)
				if len(expr) == 0 || expr[0] != tc.expr || !strings.Contains(diag, tc.diag) {
					t.Errorf("issue %q %v, want %s and %q", diag, expr, tc.expr, tc.diag)
				}
				if n := count("Observation"); n != "0" {
					t.Errorf("%s Observation versions stored by a failed transaction", n)
				}
				if n := count("Patient"); n != "1" {
					t.Errorf("%s Patient versions, want 1", n)
				}
			})
		}
	})
}

func TestBundleRequestErrors(t *testing.T) {
	t.Parallel()
	eachStore(t, func(t *testing.T, h *harness) {
		small, err := New(Options{Store: h.store, Validator: testValidator(t), Clock: h.clock, BaseURL: testBase, MaxBundleEntries: 2})
		if err != nil {
			t.Fatal(err)
		}
		three := bundle("batch", entry("", "GET", "metadata", ""), entry("", "GET", "metadata", ""), entry("", "GET", "metadata", ""))
		if _, err := small.parseBundle([]byte(three), ReturnRepresentation); err == nil || !strings.Contains(err.Error(), "at most 2") {
			t.Errorf("3 entries with max 2: %v", err)
		}
		tests := []struct {
			name, body string
			status     int
			diag       string
		}{
			{"fail/not-a-bundle", patientJSON, 400, "must be a Bundle"},
			{"fail/document", `{"resourceType":"Bundle","type":"document"}`, 400, "batch or transaction"},
			{"fail/no-type", `{"resourceType":"Bundle"}`, 400, "batch or transaction"},
			{"fail/entry-not-array", `{"resourceType":"Bundle","type":"batch","entry":{}}`, 400, "array"},
			{"fail/empty", "", 400, "empty"},
			{"fail/malformed", `{"resourceType":"Bundle",`, 400, ""},
			{"fail/array", `[]`, 400, ""},
		}
		for _, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				r := h.do("POST", "/fhir", tc.body)
				if r.Status != tc.status {
					t.Fatalf("status %d, want %d: %s", r.Status, tc.status, r.Body)
				}
				if _, diag, _ := issue(t, r); !strings.Contains(diag, tc.diag) {
					t.Errorf("diagnostics %q, want %q", diag, tc.diag)
				}
			})
		}
		if r := h.do("POST", "/fhir", `<Bundle/>`, "Content-Type: application/fhir+xml"); r.Status != 415 {
			t.Errorf("XML bundle: %d", r.Status)
		}
	})
}

func TestBatch(t *testing.T) {
	t.Parallel()
	eachStore(t, func(t *testing.T, h *harness) {
		id := h.create("Patient", patientJSON)
		patch := base64.StdEncoding.EncodeToString([]byte(`[{"op":"add","path":"/active","value":true}]`))
		body := bundle("batch",
			entry("", "GET", "Patient/"+id, ""),
			entry("", "POST", "Observation", `{"resourceType":"Observation","status":"final","code":{"text":"x"}}`),
			entry("", "POST", "Observation", `{"resourceType":"Patient"}`),
			entry("", "GET", "Patient/nope", ""),
			entry("", "PATCH", "Patient/"+id, `{"resourceType":"Binary","contentType":"application/json-patch+json","data":"`+patch+`"}`),
			entry("", "GET", "Patient/"+id+"/_history/1", ""),
			entry("", "GET", "Patient/"+id+"/_history", ""),
			entry("", "GET", "Patient?name=x", ""),
			entry("", "PUT", "Patient/"+id, `{"resourceType":"Patient","id":"`+id+`"}`),
			fmt.Sprintf(`{"resource":{"resourceType":"Patient","id":"%s"},"request":{"method":"PUT","url":"Patient/%s","ifMatch":"W/\"1\""}}`, id, id),
		)
		r := h.do("POST", "/fhir", body, "Prefer: return=minimal")
		if r.Status != http.StatusOK {
			t.Fatalf("batch: %d %s", r.Status, r.Body)
		}
		es := responses(t, r)
		want := []string{"200 OK", "201 Created", "400 Bad Request", "404 Not Found", "200 OK", "200 OK", "200 OK", "501 Not Implemented", "200 OK", "412 Precondition Failed"}
		if _, searches := h.store.(store.Searcher); searches {
			want[7] = "200 OK"
		}
		if len(es) != len(want) {
			t.Fatalf("%d entries, want %d", len(es), len(want))
		}
		for i, e := range es {
			resp := respOf(e)
			if resp["status"] != want[i] {
				t.Errorf("entry %d status %v, want %s: %v", i, resp["status"], want[i], resp)
			}
			if strings.HasPrefix(want[i], "4") || strings.HasPrefix(want[i], "5") {
				oc, _ := resp["outcome"].(map[string]any)
				if oc["resourceType"] != "OperationOutcome" {
					t.Errorf("entry %d: failure without outcome: %v", i, resp)
				}
			}
		}
		// Prefer: return=minimal drops written bodies but reads keep theirs.
		if _, has := es[1]["resource"]; has {
			t.Errorf("minimal create returned a resource")
		}
		if res, _ := es[0]["resource"].(map[string]any); res["id"] != id {
			t.Errorf("GET entry resource %v", es[0]["resource"])
		}
		if hist, _ := es[6]["resource"].(map[string]any); hist["type"] != "history" {
			t.Errorf("history entry %v", es[6]["resource"])
		}
		// Processing order: the PATCH and the PUT (entries 4 and 8) ran before
		// the GET of entry 0, which sees version 3.
		if res, _ := es[0]["resource"].(map[string]any); res["meta"].(map[string]any)["versionId"] != "3" {
			t.Errorf("GET did not run after the writes: %v", res)
		}
	})
}

func TestTransactionClientURLs(t *testing.T) {
	t.Parallel()
	eachStore(t, func(t *testing.T, h *harness) {
		body := bundle("transaction",
			entry("http://client.test/fhir/Patient/x1", "POST", "Patient", `{"resourceType":"Patient","id":"x1"}`),
			entry("urn:uuid:33333333-3333-4333-8333-333333333333", "PUT", "Patient/keep", `{"resourceType":"Patient","id":"keep"}`),
			entry("", "POST", "Observation", `{"resourceType":"Observation","status":"final","code":{"text":"x"},`+
				`"subject":{"reference":"http://client.test/fhir/Patient/x1"},"performer":[{"reference":"urn:uuid:33333333-3333-4333-8333-333333333333"}]}`),
		)
		r := h.do("POST", "/fhir", body)
		if r.Status != http.StatusOK {
			t.Fatalf("transaction: %d %s", r.Status, r.Body)
		}
		es := responses(t, r)
		patLoc := respOf(es[0])["location"].(string)
		patID := strings.Split(strings.TrimPrefix(patLoc, testBase+"/Patient/"), "/")[0]
		if patID == "x1" || !uuidRE.MatchString(patID) {
			t.Errorf("POST kept the client id: %s", patLoc)
		}
		obs, _ := es[2]["resource"].(map[string]any)
		if got := obs["subject"].(map[string]any)["reference"]; got != "Patient/"+patID {
			t.Errorf("subject %v, want Patient/%s", got, patID)
		}
		if got := asSlice(obs["performer"])[0].(map[string]any)["reference"]; got != "Patient/keep" {
			t.Errorf("performer %v, want Patient/keep (PUT entries keep their id)", got)
		}
	})
}
