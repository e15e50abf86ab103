package server_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fhirguard/fhirguard/internal/audit"
	"github.com/fhirguard/fhirguard/internal/config"
	"github.com/fhirguard/fhirguard/internal/server"
	"github.com/fhirguard/fhirguard/internal/server/servertest"
	"github.com/fhirguard/fhirguard/internal/store"
)

// auditedEvent is what a test checks of a recorded AuditEvent.
type auditedEvent struct {
	Type     string
	Subtype  string
	Action   string
	Outcome  string
	Patients []string
	Entities []string // data entities (versioned references)
	Query    bool
	Results  string
}

func parseEvent(t *testing.T, body []byte) auditedEvent {
	t.Helper()
	var doc struct {
		Type    struct{ Code string }   `json:"type"`
		Subtype []struct{ Code string } `json:"subtype"`
		Action  string                  `json:"action"`
		Outcome string                  `json:"outcome"`
		Entity  []struct {
			What *struct {
				Reference string `json:"reference"`
			} `json:"what"`
			Role   *struct{ Code string } `json:"role"`
			Query  string                 `json:"query"`
			Detail []struct {
				Type        string `json:"type"`
				ValueString string `json:"valueString"`
			} `json:"detail"`
		} `json:"entity"`
	}
	if err := json.Unmarshal(body, &doc); err != nil {
		t.Fatalf("AuditEvent JSON: %v\n%s", err, body)
	}
	ev := auditedEvent{Type: doc.Type.Code, Action: doc.Action, Outcome: doc.Outcome}
	if len(doc.Subtype) > 0 {
		ev.Subtype = doc.Subtype[0].Code
	}
	for _, e := range doc.Entity {
		switch {
		case e.Role != nil && e.Role.Code == "1":
			ev.Patients = append(ev.Patients, e.What.Reference)
		case e.Role != nil && e.Role.Code == "4":
			ev.Entities = append(ev.Entities, e.What.Reference)
		case e.Role != nil && e.Role.Code == "24":
			ev.Query = e.Query != ""
		case e.Role != nil && e.Role.Code == "3":
			for _, d := range e.Detail {
				if d.Type == "result-count" {
					ev.Results = d.ValueString
				}
			}
		}
	}
	return ev
}

// eventJSON is the AuditEvent JSON of a stored audit record (the server
// stores its own events in a compact form).
func eventJSON(t *testing.T, r *store.AuditRecord) []byte {
	t.Helper()
	b, err := audit.EventJSON(r)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// auditLog follows the server's audit log.
type auditLog struct {
	st   store.AuditStore
	last int64
}

// since returns the REST events recorded since the previous call (the
// authorization server's token events are left out).
func (l *auditLog) since(t *testing.T) []auditedEvent {
	t.Helper()
	recs, err := l.st.AuditScan(context.Background(), l.last, 1000)
	if err != nil {
		t.Fatal(err)
	}
	var out []auditedEvent
	for _, r := range recs {
		l.last = r.Seq
		if ev := parseEvent(t, eventJSON(t, &r)); ev.Type == "rest" {
			out = append(out, ev)
		}
	}
	return out
}

func do(t *testing.T, ts *servertest.TestServer, method, path, body string, hdr ...string) (int, []byte, http.Header) {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, ts.FHIRBase+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Accept", "application/fhir+json")
	if body != "" {
		req.Header.Set("Content-Type", "application/fhir+json")
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := ts.Client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b, resp.Header
}

const obsBody = `{"resourceType":"Observation","status":"final","code":{"text":"pulse"},"subject":{"reference":"Patient/pA"}}`

// TestEveryInteractionIsAudited runs every REST interaction, successful and
// failing, and checks the exact AuditEvents each one produced.
func TestEveryInteractionIsAudited(t *testing.T) {
	ts := servertest.Start(t)
	log := &auditLog{st: ts.Server.AuditLog()}
	patient := `{"resourceType":"Patient","id":"pA","name":[{"family":"Alpha"}]}`
	bundle := func(typ string) string {
		return `{"resourceType":"Bundle","type":"` + typ + `","entry":[
{"fullUrl":"urn:uuid:0f3c1f4e-7c1a-4d1e-9a57-1b2b3c4d5e6f","resource":` + obsBody + `,"request":{"method":"POST","url":"Observation"}},
{"request":{"method":"GET","url":"Patient/pA"}}]}`
	}
	type want struct {
		subtype, action, outcome string
		patient                  string // "" = none
		entity                   string // prefix of the data entity ("" = none)
		query                    bool
	}
	tests := []struct {
		name         string
		method, path string
		body         string
		hdr          []string
		status       int
		want         []want
	}{
		{"ok/capabilities", "GET", "/metadata", "", nil, 200, []want{{"capabilities", "E", "0", "", "", false}}},
		{"ok/update-create", "PUT", "/Patient/pA", patient, nil, 201, []want{{"update", "U", "0", "Patient/pA", "Patient/pA/_history/1", false}}},
		{"ok/read", "GET", "/Patient/pA", "", nil, 200, []want{{"read", "R", "0", "Patient/pA", "Patient/pA/_history/1", false}}},
		{"ok/vread", "GET", "/Patient/pA/_history/1", "", nil, 200, []want{{"vread", "R", "0", "Patient/pA", "Patient/pA/_history/1", false}}},
		{"ok/update", "PUT", "/Patient/pA", patient, nil, 200, []want{{"update", "U", "0", "Patient/pA", "Patient/pA/_history/2", false}}},
		{"ok/patch", "PATCH", "/Patient/pA", `[{"op":"add","path":"/active","value":true}]`, []string{"Content-Type", "application/json-patch+json"}, 200,
			[]want{{"patch", "U", "0", "Patient/pA", "Patient/pA/_history/3", false}}},
		{"ok/create-observation", "POST", "/Observation", obsBody, nil, 201, []want{{"create", "C", "0", "Patient/pA", "Observation/", false}}},
		{"ok/history-instance", "GET", "/Patient/pA/_history", "", nil, 200, []want{{"history-instance", "E", "0", "Patient/pA", "Patient/pA", true}}},
		{"ok/history-type", "GET", "/Patient/_history?_count=2", "", nil, 200, []want{{"history-type", "E", "0", "", "", true}}},
		{"ok/access-log", "GET", "/Patient/pA/$access-log?_count=5", "", nil, 200, []want{{"operation", "E", "0", "Patient/pA", "", false}}},
		{"ok/batch", "POST", "", bundle("batch"), nil, 200, []want{
			{"create", "C", "0", "Patient/pA", "Observation/", false},
			{"read", "R", "0", "Patient/pA", "Patient/pA/_history/3", false},
			{"batch", "E", "0", "Patient/pA", "", false}}}, // the Bundle's event names its entries' patients
		{"ok/transaction", "POST", "", bundle("transaction"), nil, 200, []want{
			{"create", "C", "0", "Patient/pA", "Observation/", false},
			{"read", "R", "0", "Patient/pA", "Patient/pA/_history/3", false},
			{"transaction", "E", "0", "", "", false}}},
		{"ok/audit-search", "GET", "/AuditEvent?patient=pA&_count=3", "", nil, 200, []want{{"search-type", "E", "0", "Patient/pA", "", true}}},
		{"ok/search-by-patient", "GET", "/Observation?subject=Patient/pA&_count=1", "", nil, 200, []want{{"search-type", "E", "0", "Patient/pA", "", true}}},
		{"ok/search-no-patient", "GET", "/Observation?code:text=pulse&_count=1", "", nil, 200, []want{{"search-type", "E", "0", "", "", true}}},
		{"fail/read-unknown", "GET", "/Patient/nobody", "", nil, 404, []want{{"read", "R", "4", "Patient/nobody", "", false}}},
		{"fail/create-invalid", "POST", "/Patient", `{"resourceType":"Patient","birthDate":"yesterday"}`, nil, 400, []want{{"create", "C", "4", "", "", false}}},
		{"fail/update-stale", "PUT", "/Patient/pA", patient, []string{"If-Match", `W/"1"`}, 412, []want{{"update", "U", "4", "Patient/pA", "", false}}},
		{"fail/auditevent-update", "PUT", "/AuditEvent/1", `{"resourceType":"AuditEvent"}`, nil, 405, []want{{"update", "U", "4", "", "", false}}},
		{"fail/auditevent-delete", "DELETE", "/AuditEvent/1", "", nil, 405, []want{{"delete", "D", "4", "", "", false}}},
		{"fail/provenance-delete", "DELETE", "/Provenance/x", "", nil, 405, []want{{"delete", "D", "4", "", "", false}}},
		{"fail/unknown-operation", "GET", "/Patient/pA/$nope", "", nil, 404, []want{{"operation", "E", "4", "Patient/pA", "", false}}},
		{"fail/transaction-entry-fails", "POST", "", `{"resourceType":"Bundle","type":"transaction","entry":[
{"request":{"method":"GET","url":"Patient/nobody"}}]}`, nil, 404, []want{
			{"read", "R", "4", "Patient/nobody", "", false},
			{"transaction", "E", "4", "", "", false}}},
		{"ok/delete", "DELETE", "/Patient/pA", "", nil, 200, []want{{"delete", "D", "0", "Patient/pA", "Patient/pA/_history/", false}}},
	}
	log.since(t) // skip anything recorded at start-up
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			status, body, _ := do(t, ts, tc.method, tc.path, tc.body, tc.hdr...)
			if status != tc.status {
				t.Fatalf("status %d, want %d: %s", status, tc.status, body)
			}
			got := log.since(t)
			if len(got) != len(tc.want) {
				t.Fatalf("%d AuditEvents, want %d: %+v", len(got), len(tc.want), got)
			}
			for i, w := range tc.want {
				g := got[i]
				if g.Subtype != w.subtype || g.Action != w.action || g.Outcome != w.outcome || g.Query != w.query {
					t.Errorf("event %d: %+v, want %+v", i, g, w)
				}
				if (w.patient == "") != (len(g.Patients) == 0) || (w.patient != "" && g.Patients[0] != w.patient) {
					t.Errorf("event %d: patients %v, want %q", i, g.Patients, w.patient)
				}
				if w.entity != "" && (len(g.Entities) == 0 || !strings.HasPrefix(g.Entities[0], w.entity)) {
					t.Errorf("event %d: entities %v, want %q…", i, g.Entities, w.entity)
				}
			}
		})
	}
}

// flakySink fails every record while fail is set.
type flakySink struct {
	next audit.MultiSink
	fail atomic.Bool
}

func (f *flakySink) RecordAll(ctx context.Context, evs []audit.Event) error {
	if f.fail.Load() {
		return errors.New("audit device unavailable")
	}
	return f.next.RecordAll(ctx, evs)
}

// TestAuditFailsClosed: when the audit record cannot be written, the
// request fails with 503 and none of the data leaves.
func TestAuditFailsClosed(t *testing.T) {
	sink := &flakySink{}
	ts := servertest.Start(t, servertest.WithServerOptions(server.WithAuditSink(func(next audit.MultiSink) audit.MultiSink {
		sink.next = next
		return sink
	})))
	if status, body, _ := do(t, ts, "PUT", "/Patient/pA", `{"resourceType":"Patient","id":"pA","name":[{"family":"Secretname"}]}`); status != 201 {
		t.Fatalf("create: %d %s", status, body)
	}
	sink.fail.Store(true)
	for _, path := range []string{"/Patient/pA", "/Patient/pA/_history/1", "/Patient/pA/_history", "/Patient/pA/$access-log"} {
		status, body, hdr := do(t, ts, "GET", path, "")
		if status != http.StatusServiceUnavailable || hdr.Get("Retry-After") == "" {
			t.Errorf("GET %s with a failing audit: %d (Retry-After %q), want 503 with Retry-After", path, status, hdr.Get("Retry-After"))
		}
		if bytes.Contains(body, []byte("Secretname")) || hdr.Get("ETag") != "" || hdr.Get("Last-Modified") != "" {
			t.Errorf("GET %s leaked data with a failing audit: %s %v", path, body, hdr)
		}
		if !bytes.Contains(body, []byte("OperationOutcome")) {
			t.Errorf("GET %s: want an OperationOutcome, got %s", path, body)
		}
	}
	sink.fail.Store(false)
	if status, body, _ := do(t, ts, "GET", "/Patient/pA", ""); status != 200 || !bytes.Contains(body, []byte("Secretname")) {
		t.Fatalf("after recovery: %d %s", status, body)
	}
}

// TestProvenanceForEveryWrite: each write of a 50-entry transaction has its
// Provenance, committed with it; a failing transaction leaves none.
func TestProvenanceForEveryWrite(t *testing.T) {
	ts := servertest.Start(t)
	provCount := func() int {
		status, body, _ := do(t, ts, "GET", "/Provenance/_history?_count=0", "")
		if status != 200 {
			t.Fatalf("Provenance history: %d %s", status, body)
		}
		var b struct{ Total int }
		if err := json.Unmarshal(body, &b); err != nil {
			t.Fatal(err)
		}
		return b.Total
	}
	var entries []string
	for i := 0; i < 50; i++ {
		entries = append(entries, fmt.Sprintf(`{"resource":{"resourceType":"Patient","id":"p%d"},"request":{"method":"PUT","url":"Patient/p%d"}}`, i, i))
	}
	tx := `{"resourceType":"Bundle","type":"transaction","entry":[` + strings.Join(entries, ",") + `]}`
	if status, body, _ := do(t, ts, "POST", "", tx); status != 200 {
		t.Fatalf("transaction: %d %s", status, body)
	}
	if n := provCount(); n != 50 {
		t.Fatalf("%d Provenance after a 50-entry transaction, want 50", n)
	}
	// One more entry that fails: nothing of it (nor its Provenance) lands.
	bad := `{"resourceType":"Bundle","type":"transaction","entry":[` + strings.Join(entries[:49], ",") +
		`,{"request":{"method":"DELETE","url":"Patient/never-existed"}}]}`
	if status, _, _ := do(t, ts, "POST", "", bad); status < 400 {
		t.Fatalf("failing transaction answered %d", status)
	}
	if n := provCount(); n != 50 {
		t.Fatalf("%d Provenance after a failed transaction, want still 50", n)
	}
	// A Provenance names the version written and the activity.
	status, body, _ := do(t, ts, "GET", "/Provenance/_history?_count=1", "")
	if status != 200 || !bytes.Contains(body, []byte(`"activity":{"coding":[{"code":"UPDATE"`)) && !bytes.Contains(body, []byte(`"code":"CREATE"`)) {
		t.Fatalf("Provenance: %s", body)
	}
	if !bytes.Contains(body, []byte(`/_history/1"`)) {
		t.Fatalf("Provenance target is not versioned: %s", body)
	}
}

// TestXProvenance: a client-authored Provenance is stored with the server's
// target; a malformed one is refused before anything is written.
func TestXProvenance(t *testing.T) {
	ts := servertest.Start(t)
	xp := `{"resourceType":"Provenance","recorded":"2000-01-01T00:00:00Z","target":[{"reference":"Patient/other"}],"agent":[{"who":{"display":"lab device 7"}}],"reason":[{"text":"import from lab"}]}`
	if status, body, _ := do(t, ts, "PUT", "/Patient/px", `{"resourceType":"Patient","id":"px"}`, "X-Provenance", xp); status != 201 {
		t.Fatalf("PUT with X-Provenance: %d %s", status, body)
	}
	_, body, _ := do(t, ts, "GET", "/Provenance/_history", "")
	if !bytes.Contains(body, []byte("import from lab")) || !bytes.Contains(body, []byte(`"Patient/px/_history/1"`)) || bytes.Contains(body, []byte("Patient/other")) {
		t.Fatalf("stored Provenance: %s", body)
	}
	if status, body, _ := do(t, ts, "PUT", "/Patient/py", `{"resourceType":"Patient","id":"py"}`, "X-Provenance", `{"resourceType":"Patient"}`); status != 400 {
		t.Fatalf("bad X-Provenance: %d %s", status, body)
	}
	if status, _, _ := do(t, ts, "GET", "/Patient/py", ""); status != 404 {
		t.Fatalf("write with a bad X-Provenance was carried out: %d", status)
	}
}

// TestAuditStreamToFile: with audit.stream set, requests reach the JSON
// lines file within 5 s, each line with its chain hash.
func TestAuditStreamToFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.jsonl")
	ts := servertest.Start(t, servertest.WithConfig(func(c *config.Config) { c.Audit.Stream = path }))
	if status, body, _ := do(t, ts, "GET", "/Patient/nobody", ""); status != 404 {
		t.Fatalf("read: %d %s", status, body)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		b, _ := os.ReadFile(path)
		if bytes.Contains(b, []byte(`"Patient/nobody"`)) {
			if !bytes.Contains(b, []byte(`"hash":"`)) || !bytes.Contains(b, []byte(`"seq":`)) {
				t.Fatalf("stream lines lack seq/hash: %s", b)
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the read's AuditEvent did not reach the stream file within 5 s: %s", b)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestUnauthenticatedRequestsAreAudited: a request refused by bearer
// validation (401) never reaches the FHIR handler, and is still recorded.
func TestUnauthenticatedRequestsAreAudited(t *testing.T) {
	ts := servertest.Start(t)
	log := &auditLog{st: ts.Server.AuditLog()}
	log.since(t)
	resp, err := (&http.Client{}).Get(ts.FHIRBase + "/Patient/pA?name=x")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("no token: %d, want 401", resp.StatusCode)
	}
	got := log.since(t)
	if len(got) != 1 || got[0].Subtype != "unauthenticated" || got[0].Outcome != "4" || got[0].Action != "E" {
		t.Fatalf("events %+v, want one unauthenticated failure", got)
	}
}

// TestProvenanceSearchByTarget: every version of a resource has exactly one
// Provenance, found by Provenance?target= with the versioned or the plain
// reference (PROV-01, PROV-05).
func TestProvenanceSearchByTarget(t *testing.T) {
	ts := servertest.Start(t)
	obs := func(v string) string {
		return `{"resourceType":"Observation","id":"o1","status":"final","code":{"text":"` + v + `"},"subject":{"reference":"Patient/pA"}}`
	}
	for i := 0; i < 4; i++ {
		if status, body, _ := do(t, ts, "PUT", "/Observation/o1", obs(fmt.Sprint(i))); status >= 300 {
			t.Fatalf("PUT %d: %d %s", i, status, body)
		}
	}
	total := func(path string) int {
		t.Helper()
		status, body, _ := do(t, ts, "GET", path, "")
		if status != 200 {
			t.Fatalf("GET %s: %d %s", path, status, body)
		}
		var b struct {
			Total int
			Entry []json.RawMessage
		}
		if err := json.Unmarshal(body, &b); err != nil {
			t.Fatal(err)
		}
		return len(b.Entry)
	}
	for v := 1; v <= 4; v++ {
		if n := total(fmt.Sprintf("/Provenance?target=Observation/o1/_history/%d", v)); n != 1 {
			t.Errorf("Provenance for version %d: %d, want 1", v, n)
		}
	}
	if n := total("/Observation/o1/_history"); n != 4 {
		t.Errorf("history: %d versions, want 4", n)
	}
	if n := total("/Provenance?target=Observation/o1"); n != 4 {
		t.Errorf("Provenance?target=Observation/o1: %d, want the 4 versions' Provenance", n)
	}
}

// TestAuditRecordsTokenIDNeverToken: the events of a token's requests name
// the client and the token's jti (BALP agent.policy); the token itself is
// nowhere in the audit log (AUDIT-03).
func TestAuditRecordsTokenIDNeverToken(t *testing.T) {
	ts := servertest.Start(t)
	be, err := ts.RegisterBackend("audited-app", "system/*.cruds")
	if err != nil {
		t.Fatal(err)
	}
	token, err := be.Token("system/Patient.rs")
	if err != nil {
		t.Fatal(err)
	}
	log := &auditLog{st: ts.Server.AuditLog()}
	log.since(t)
	resp, err := ts.WithToken(token).Get(ts.FHIRBase + "/Patient/nobody")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Fatalf("read: %d", resp.StatusCode)
	}
	recs, err := ts.Server.AuditLog().AuditScan(context.Background(), log.last-1, 10)
	if err != nil || len(recs) == 0 {
		t.Fatalf("records: %v", err)
	}
	body := string(eventJSON(t, &recs[len(recs)-1]))
	parts := strings.Split(token, ".")
	var claims struct {
		JTI string `json:"jti"`
	}
	if len(parts) == 3 {
		if raw, err := base64.RawURLEncoding.DecodeString(parts[1]); err == nil {
			_ = json.Unmarshal(raw, &claims)
		}
	}
	if claims.JTI == "" || !strings.Contains(body, `"policy":["`+claims.JTI+`"]`) || !strings.Contains(body, `"audited-app"`) {
		t.Fatalf("event lacks the client or the token's jti %q: %s", claims.JTI, body)
	}
	all, err := ts.Server.AuditLog().AuditScan(context.Background(), 0, 100000)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range all {
		if ev := string(eventJSON(t, &r)); strings.Contains(ev, token) || strings.Contains(ev, parts[2]) || strings.Contains(string(r.Body), token) {
			t.Fatalf("AuditEvent/%d contains the access token", r.Seq)
		}
	}
}

// TestAuditSourcePost: a client allowed to create AuditEvents may POST one
// (appended to the chain, never changed); posing as this server → 422; an
// ordinary client → 403; changing one → 405 (AUDIT-11).
func TestAuditSourcePost(t *testing.T) {
	ts := servertest.Start(t)
	src, err := ts.RegisterBackend("lab-audit-source", "system/AuditEvent.c")
	if err != nil {
		t.Fatal(err)
	}
	tok, err := src.Token("system/AuditEvent.c")
	if err != nil {
		t.Fatal(err)
	}
	post := func(c *http.Client, body string) (int, []byte) {
		t.Helper()
		req, _ := http.NewRequest("POST", ts.FHIRBase+"/AuditEvent", strings.NewReader(body))
		req.Header.Set("Content-Type", "application/fhir+json")
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, b
	}
	ev := `{"resourceType":"AuditEvent","type":{"system":"http://dicom.nema.org/resources/ontology/DCM","code":"110106"},
"recorded":"2025-12-24T08:00:00Z","agent":[{"who":{"reference":"Practitioner/drX"},"requestor":true}],
"source":{"observer":{"display":"lab system"}},"entity":[{"what":{"reference":"Patient/pA"},"role":{"system":"http://terminology.hl7.org/CodeSystem/object-role","code":"1"}}]}`
	status, body := post(ts.WithToken(tok), ev)
	if status != http.StatusCreated || !bytes.Contains(body, []byte(`"recorded":"2025-12-24T08:00:00Z"`)) || !bytes.Contains(body, []byte(`"lab system"`)) {
		t.Fatalf("audit source POST: %d %s", status, body)
	}
	var stored struct{ ID string }
	if err := json.Unmarshal(body, &stored); err != nil || stored.ID == "" {
		t.Fatalf("stored id: %v %s", err, body)
	}
	posing := strings.Replace(ev, `{"display":"lab system"}`, `{"identifier":{"value":"`+ts.FHIRBase+`"}}`, 1)
	if status, body := post(ts.WithToken(tok), posing); status != http.StatusUnprocessableEntity {
		t.Fatalf("posing as this server: %d %s", status, body)
	}
	ordinary, err := ts.RegisterBackend("ordinary-app", "system/Patient.rs")
	if err != nil {
		t.Fatal(err)
	}
	if status, body := post(ordinary.HTTPClient("system/Patient.rs"), ev); status != http.StatusForbidden {
		t.Fatalf("ordinary client: %d %s", status, body)
	}
	if status, _, _ := do(t, ts, "PUT", "/AuditEvent/"+stored.ID, `{"resourceType":"AuditEvent","id":"`+stored.ID+`"}`); status != http.StatusMethodNotAllowed {
		t.Fatalf("PUT AuditEvent: %d", status)
	}
	if status, body, _ := do(t, ts, "GET", "/AuditEvent/"+stored.ID, ""); status != 200 || !bytes.Contains(body, []byte("Practitioner/drX")) {
		t.Fatalf("read back: %d %s", status, body)
	}
}

// TestDenialsAreAudited: requests the policy refuses (403) are recorded as
// failures naming the client.
func TestDenialsAreAudited(t *testing.T) {
	ts := servertest.Start(t)
	if status, body, _ := do(t, ts, "PUT", "/Observation/o1", obsBody[:1]+`"id":"o1",`+obsBody[1:]); status != 201 {
		t.Fatalf("setup: %d %s", status, body)
	}
	narrow, err := ts.RegisterBackend("narrow-app", "system/Patient.rs")
	if err != nil {
		t.Fatal(err)
	}
	c := narrow.HTTPClient("system/Patient.rs")
	log := &auditLog{st: ts.Server.AuditLog()}
	for _, tc := range []struct{ method, path, subtype, action string }{
		{"GET", "/Observation/o1", "read", "R"},
		{"DELETE", "/Patient/pZ", "delete", "D"},
		{"GET", "/Observation?subject=Patient/pA", "search-type", "E"},
	} {
		log.since(t)
		req, _ := http.NewRequest(tc.method, ts.FHIRBase+tc.path, nil)
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusForbidden {
			t.Fatalf("%s %s: %d %s, want 403", tc.method, tc.path, resp.StatusCode, body)
		}
		got := log.since(t)
		if len(got) != 1 || got[0].Subtype != tc.subtype || got[0].Action != tc.action || got[0].Outcome != "4" {
			t.Fatalf("%s %s: events %+v, want one %s failure", tc.method, tc.path, got, tc.subtype)
		}
		recs, err := ts.Server.AuditLog().AuditScan(context.Background(), log.last-1, 1)
		if err != nil || len(recs) != 1 || !bytes.Contains(eventJSON(t, &recs[0]), []byte(`"narrow-app"`)) || !bytes.Contains(eventJSON(t, &recs[0]), []byte(`"outcomeDesc"`)) {
			t.Fatalf("%s %s: the denial's event lacks the client or the reason: %v", tc.method, tc.path, err)
		}
	}
}

// txOnlySink appends inside write transactions but fails every other
// record: a write then still succeeds (its event commits with it) while
// reads fail closed.
type txOnlySink struct{ rec audit.TxAppender }

func (s txOnlySink) RecordAll(context.Context, []audit.Event) error {
	return errors.New("audit device unavailable")
}

func (s txOnlySink) AppendInTx(ctx context.Context, tx store.Tx, evs []audit.Event) error {
	return s.rec.AppendInTx(ctx, tx, evs)
}

// Drain chains the outbox (the write's event) through the real recorder.
func (s txOnlySink) Drain(ctx context.Context) error {
	return s.rec.(audit.Drainer).Drain(ctx)
}

// TestWriteAuditedInItsTransaction: a single write's AuditEvent is part of
// the write's own commit.
func TestWriteAuditedInItsTransaction(t *testing.T) {
	ts := servertest.Start(t, servertest.WithServerOptions(server.WithAuditSink(func(next audit.MultiSink) audit.MultiSink {
		return txOnlySink{rec: next.(audit.TxAppender)}
	})))
	log := &auditLog{st: ts.Server.AuditLog()}
	log.since(t)
	if status, body, _ := do(t, ts, "PUT", "/Observation/o1", obsBody[:1]+`"id":"o1",`+obsBody[1:]); status != 201 {
		t.Fatalf("write with only in-transaction auditing: %d %s", status, body)
	}
	got := log.since(t)
	if len(got) != 1 || got[0].Subtype != "update" || got[0].Outcome != "0" || len(got[0].Patients) != 1 ||
		got[0].Patients[0] != "Patient/pA" || len(got[0].Entities) != 1 || got[0].Entities[0] != "Observation/o1/_history/1" {
		t.Fatalf("events %+v, want the update with its patient and version", got)
	}
	if status, _, _ := do(t, ts, "GET", "/Observation/o1", ""); status != http.StatusServiceUnavailable {
		t.Fatalf("read with failing post-hoc recording: %d, want 503", status)
	}
	if status, _, _ := do(t, ts, "PUT", "/Observation/o1", `{"resourceType":"Observation","id":"o1"}`); status != http.StatusBadRequest && status != http.StatusServiceUnavailable {
		t.Fatalf("an invalid write: %d", status)
	}
	if status, body, _ := do(t, ts, "PUT", "/Patient/pA", `{"resourceType":"Patient","id":"pA"}`); status != 201 {
		t.Fatalf("create Patient/pA: %d %s", status, body)
	}
	log.since(t)

	// A transaction: the Bundle's event and every entry's (a read entry
	// included) commit with its writes.
	entry := func(id string) string {
		return `{"resource":` + obsBody[:1] + `"id":"` + id + `",` + obsBody[1:] + `,"request":{"method":"PUT","url":"Observation/` + id + `"}}`
	}
	tx := `{"resourceType":"Bundle","type":"transaction","entry":[` + entry("t1") + `,` + entry("t2") +
		`,{"request":{"method":"GET","url":"Patient/pA"}}]}`
	if status, body, _ := do(t, ts, "POST", "", tx); status != 200 {
		t.Fatalf("transaction with only in-transaction auditing: %d %s", status, body)
	}
	got = log.since(t)
	if len(got) != 4 || got[0].Entities[0] != "Observation/t1/_history/1" || got[1].Entities[0] != "Observation/t2/_history/1" ||
		got[2].Subtype != "read" || got[3].Subtype != "transaction" || got[0].Patients[0] != "Patient/pA" {
		t.Fatalf("transaction events %+v, want both writes, the read and the Bundle", got)
	}

	// A batch: each write entry's event commits with its write; the rest
	// (the Bundle's event) cannot be recorded, so the answer is 503, but
	// the writes that happened are in the log.
	batch := `{"resourceType":"Bundle","type":"batch","entry":[` + entry("b1") + `,` + entry("b2") + `]}`
	if status, _, _ := do(t, ts, "POST", "", batch); status != http.StatusServiceUnavailable {
		t.Fatalf("batch with failing post-hoc recording: %d, want 503", status)
	}
	got = log.since(t)
	if len(got) != 2 || got[0].Entities[0] != "Observation/b1/_history/1" || got[1].Entities[0] != "Observation/b2/_history/1" {
		t.Fatalf("batch events %+v, want both writes", got)
	}
}

// TestProvenanceUnderConcurrentUpdates: concurrent updates of one resource
// (whose Provenance is prepared for a predicted version) still give each
// version exactly one Provenance naming it.
func TestProvenanceUnderConcurrentUpdates(t *testing.T) {
	ts := servertest.Start(t)
	const n = 16
	errs := make(chan error, n)
	for i := 0; i < n; i++ {
		go func() {
			body := `{"resourceType":"Observation","id":"o2","status":"final","code":{"text":"v` + fmt.Sprint(i) + `"}}`
			req, _ := http.NewRequest("PUT", ts.FHIRBase+"/Observation/o2", strings.NewReader(body))
			req.Header.Set("Content-Type", "application/fhir+json")
			resp, err := ts.Client.Do(req)
			if err == nil {
				resp.Body.Close()
				if resp.StatusCode >= 300 {
					err = fmt.Errorf("PUT: %d", resp.StatusCode)
				}
			}
			errs <- err
		}()
	}
	for i := 0; i < n; i++ {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	for v := 1; v <= n; v++ {
		status, body, _ := do(t, ts, "GET", fmt.Sprintf("/Provenance?target=Observation/o2/_history/%d", v), "")
		var b struct{ Entry []json.RawMessage }
		if status != 200 || json.Unmarshal(body, &b) != nil || len(b.Entry) != 1 {
			t.Fatalf("version %d: %d Provenance (status %d), want 1", v, len(b.Entry), status)
		}
	}
}

// TestAuditSearchWithAuditEventScope: a token granting AuditEvent searches
// alone (an auditor's `…/AuditEvent.rs`) searches the audit log; one for
// other types does not.
func TestAuditSearchWithAuditEventScope(t *testing.T) {
	ts := servertest.Start(t)
	get := func(scope string) int {
		t.Helper()
		tok, err := ts.Backend.Token(scope)
		if err != nil {
			t.Fatal(err)
		}
		req, _ := http.NewRequest("GET", ts.FHIRBase+"/AuditEvent?_count=5", nil)
		req.Header.Set("Authorization", "Bearer "+tok)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode == 200 && !strings.Contains(string(body), `"searchset"`) {
			t.Fatalf("scope %s: 200 without a searchset: %s", scope, body)
		}
		return resp.StatusCode
	}
	if got := get("system/AuditEvent.rs"); got != 200 {
		t.Fatalf("system/AuditEvent.rs: %d, want 200", got)
	}
	if got := get("system/Observation.rs"); got != http.StatusForbidden {
		t.Fatalf("system/Observation.rs: %d, want 403", got)
	}
}
