package fhirapi

import (
	"net/http"
	"regexp"
	"strings"
	"testing"

	"github.com/fhirguard/fhirguard/internal/store"
)

var uuidRE = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)

func TestNewOptions(t *testing.T) {
	t.Parallel()
	eachStore(t, func(t *testing.T, h *harness) {
		good := Options{Store: h.store, Validator: testValidator(t), Clock: h.clock, BaseURL: testBase}
		tests := []struct {
			name string
			edit func(*Options)
			want string
		}{
			{"ok/minimal", func(*Options) {}, ""},
			{"ok/trailing-slash", func(o *Options) { o.BaseURL = testBase + "/" }, ""},
			{"fail/no-store", func(o *Options) { o.Store = nil }, "Store"},
			{"fail/no-validator", func(o *Options) { o.Validator = nil }, "Validator"},
			{"fail/no-clock", func(o *Options) { o.Clock = nil }, "Clock"},
			{"fail/relative-base", func(o *Options) { o.BaseURL = "/fhir" }, "BaseURL"},
			{"fail/negative-max", func(o *Options) { o.MaxBundleEntries = -1 }, "MaxBundleEntries"},
		}
		for _, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				o := good
				tc.edit(&o)
				_, err := New(o)
				if tc.want == "" && err != nil {
					t.Fatalf("New: %v", err)
				}
				if tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)) {
					t.Fatalf("New error = %v, want mention of %s", err, tc.want)
				}
			})
		}
	})
}

func TestCreateRead(t *testing.T) {
	t.Parallel()
	eachStore(t, func(t *testing.T, h *harness) {
		r := h.do("POST", "/fhir/Patient", `{"resourceType":"Patient","id":"client-chosen","active":true,"meta":{"versionId":"77","lastUpdated":"2001-01-01T00:00:00Z","tag":[{"code":"t1"}]}}`)
		if r.Status != http.StatusCreated {
			t.Fatalf("create: %d %s", r.Status, r.Body)
		}
		body := r.json(t)
		id, _ := body["id"].(string)
		if !uuidRE.MatchString(id) {
			t.Fatalf("server id %q is not a random UUID", id)
		}
		if got, want := r.Header.Get("Location"), testBase+"/Patient/"+id+"/_history/1"; got != want {
			t.Errorf("Location = %q, want %q", got, want)
		}
		if got := r.Header.Get("ETag"); got != `W/"1"` {
			t.Errorf("ETag = %q", got)
		}
		if got := r.Header.Get("Last-Modified"); got != "Thu, 02 Jan 2025 03:04:05 GMT" {
			t.Errorf("Last-Modified = %q", got)
		}
		if ct := r.Header.Get("Content-Type"); ct != "application/fhir+json; charset=utf-8" {
			t.Errorf("Content-Type = %q", ct)
		}
		meta, _ := body["meta"].(map[string]any)
		if meta["versionId"] != "1" || len(asSlice(meta["tag"])) != 1 {
			t.Errorf("meta = %v: want versionId 1 and the client's tag kept", meta)
		}

		g := h.do("GET", "/fhir/Patient/"+id, "")
		if g.Status != http.StatusOK || string(g.Body) != string(r.Body) {
			t.Fatalf("read: %d %s, want the created body", g.Status, g.Body)
		}
		if g.Header.Get("ETag") != `W/"1"` || g.Header.Get("Last-Modified") == "" {
			t.Errorf("read headers: %v", g.Header)
		}
		head := h.do("HEAD", "/fhir/Patient/"+id, "")
		if head.Status != http.StatusOK || len(head.Body) != 0 || head.Header.Get("ETag") != `W/"1"` {
			t.Errorf("HEAD: %d %q %v", head.Status, head.Body, head.Header)
		}
		if h.do("GET", "/fhir/Patient/client-chosen", "").Status != http.StatusNotFound {
			t.Errorf("the body's id was used")
		}
		if _, searches := h.store.(store.Searcher); searches {
			return // conditional interactions: search_test.go
		}
		for _, c := range []struct{ method, path, hdr, diag string }{
			{"POST", "/fhir/Patient", "If-None-Exist: identifier=x|1", "conditional create needs search"},
			{"PUT", "/fhir/Patient?identifier=x|1", "", "conditional update needs search"},
		} {
			r := h.do(c.method, c.path, `{"resourceType":"Patient","id":"whatever"}`, c.hdr)
			if _, diag, _ := issue(t, r); r.Status != http.StatusNotImplemented || !strings.Contains(diag, c.diag) {
				t.Errorf("%s %s: %d %q, want 501 %q", c.method, c.path, r.Status, diag, c.diag)
			}
		}
	})
}

func TestCreateIDsAreUnique(t *testing.T) {
	t.Parallel()
	eachStore(t, func(t *testing.T, h *harness) {
		seen := map[string]bool{}
		for range 100 {
			id := h.create("Patient", patientJSON)
			if !uuidRE.MatchString(id) || seen[id] {
				t.Fatalf("id %q: not a fresh UUID", id)
			}
			seen[id] = true
		}
	})
}

func TestReadErrors(t *testing.T) {
	t.Parallel()
	eachStore(t, func(t *testing.T, h *harness) {
		id := h.create("Patient", patientJSON)
		if r := h.do("DELETE", "/fhir/Patient/"+id, ""); r.Status != http.StatusOK {
			t.Fatalf("delete: %d %s", r.Status, r.Body)
		}
		tests := []struct {
			name, method, path string
			status             int
			code, diag         string
		}{
			{"fail/deleted", "GET", "/fhir/Patient/" + id, 410, "deleted", "deleted"},
			{"fail/unknown-id", "GET", "/fhir/Patient/nope", 404, "not-found", "not known"},
			{"fail/unknown-type", "GET", "/fhir/Patientx/1", 404, "not-found", "Unknown resource type"},
			{"fail/lowercase-type", "GET", "/fhir/patient/1", 404, "not-found", "Unknown resource type"},
			{"fail/id-too-long", "GET", "/fhir/Patient/" + strings.Repeat("a", 65), 400, "invalid", "invalid resource id"},
			{"fail/id-bad-char", "GET", "/fhir/Patient/a_b", 400, "invalid", "invalid resource id"},
			{"fail/encoded-slash", "GET", "/fhir/Patient/a%2Fb", 400, "invalid", "invalid URL path"},
			{"fail/encoded-traversal", "GET", "/fhir/Patient/%2e%2e%2fx", 400, "invalid", "invalid URL path"},
			{"fail/encoded-dotdot", "GET", "/fhir/Patient/%2e%2e", 400, "invalid", "invalid URL path"},
			{"fail/vread-unknown-version", "GET", "/fhir/Patient/" + id + "/_history/9", 404, "not-found", "version 9"},
			{"fail/vread-bad-version", "GET", "/fhir/Patient/" + id + "/_history/x", 400, "invalid", "version"},
			{"fail/vread-zero", "GET", "/fhir/Patient/" + id + "/_history/0", 400, "invalid", "version"},
			{"fail/vread-tombstone", "GET", "/fhir/Patient/" + id + "/_history/2", 410, "deleted", "deletion"},
			{"fail/unknown-operation", "GET", "/fhir/Patient/" + id + "/$nope", 404, "not-found", "unknown operation"},
			{"fail/too-deep", "GET", "/fhir/Patient/" + id + "/_history/1/x", 404, "not-found", "no FHIR interaction"},
			{"fail/post-instance", "POST", "/fhir/Patient/" + id, 405, "not-supported", "not allowed"},
			{"fail/delete-type", "DELETE", "/fhir/Patient", 405, "not-supported", "not allowed"},
			{"fail/put-type", "PUT", "/fhir/Patient", 405, "not-supported", "not allowed"},
			{"fail/patch-type", "PATCH", "/fhir/Patient", 405, "not-supported", "not allowed"},
			{"fail/delete-base", "DELETE", "/fhir", 405, "not-supported", "not allowed"},
			{"fail/put-metadata", "PUT", "/fhir/metadata", 405, "not-supported", "not allowed"},
			{"fail/options", "OPTIONS", "/fhir/Patient/" + id, 405, "not-supported", "not allowed"},
			{"fail/unknown-search-param", "GET", "/fhir/Patient?nonsense=x", 400, "not-supported", "unknown search parameter"},
			{"fail/bad-conditional-delete", "DELETE", "/fhir/Patient?birthdate=notadate", 400, "invalid", "birthdate"},
			{"fail/bad-query-escape", "GET", "/fhir/Patient/" + id + "?a=%zz", 400, "invalid", "query"},
		}
		for _, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				r := h.do(tc.method, tc.path, "")
				if r.Status != tc.status {
					t.Fatalf("status %d, want %d: %s", r.Status, tc.status, r.Body)
				}
				code, diag, _ := issue(t, r)
				if code != tc.code || !strings.Contains(diag, tc.diag) {
					t.Errorf("issue %s %q, want %s containing %q", code, diag, tc.code, tc.diag)
				}
			})
		}
	})
}

func TestVRead(t *testing.T) {
	t.Parallel()
	eachStore(t, func(t *testing.T, h *harness) {
		id := h.create("Patient", patientJSON)
		upd := strings.Replace(patientJSON, `{"resourceType":"Patient",`, `{"resourceType":"Patient","id":"`+id+`","active":false,`, 1)
		if r := h.do("PUT", "/fhir/Patient/"+id, upd); r.Status != http.StatusOK {
			t.Fatalf("update: %d %s", r.Status, r.Body)
		}
		v1 := h.do("GET", "/fhir/Patient/"+id+"/_history/1", "")
		if v1.Status != 200 || v1.Header.Get("ETag") != `W/"1"` || strings.Contains(string(v1.Body), `"active"`) {
			t.Errorf("vread 1: %d %v %s", v1.Status, v1.Header, v1.Body)
		}
		v2 := h.do("GET", "/fhir/Patient/"+id+"/_history/2", "")
		if v2.Status != 200 || v2.Header.Get("ETag") != `W/"2"` || !strings.Contains(string(v2.Body), `"active":false`) {
			t.Errorf("vread 2: %d %v %s", v2.Status, v2.Header, v2.Body)
		}
	})
}

func TestUpdate(t *testing.T) {
	t.Parallel()
	eachStore(t, func(t *testing.T, h *harness) {
		id := h.create("Patient", patientJSON)
		withID := func(id string) string {
			return `{"resourceType":"Patient","id":"` + id + `","active":true}`
		}
		tests := []struct {
			name, path, body string
			hdr              []string
			status           int
			etag, diag       string
		}{
			{"ok/update", "/fhir/Patient/" + id, withID(id), nil, 200, `W/"2"`, ""},
			{"ok/if-match", "/fhir/Patient/" + id, withID(id), []string{`If-Match: W/"2"`}, 200, `W/"3"`, ""},
			{"fail/if-match-stale", "/fhir/Patient/" + id, withID(id), []string{`If-Match: W/"1"`}, 412, "", "If-Match"},
			{"fail/if-match-garbage", "/fhir/Patient/" + id, withID(id), []string{`If-Match: "abc"`}, 400, "", "If-Match"},
			{"ok/create-on-update", "/fhir/Patient/new-1", withID("new-1"), nil, 201, `W/"1"`, ""},
			{"fail/if-match-nonexistent", "/fhir/Patient/new-2", withID("new-2"), []string{`If-Match: W/"1"`}, 412, "", "If-Match"},
			{"fail/id-mismatch", "/fhir/Patient/" + id, withID("other"), nil, 400, "", "does not match the id in the URL"},
			{"fail/id-missing", "/fhir/Patient/" + id, `{"resourceType":"Patient"}`, nil, 400, "", "id in the body"},
			{"fail/type-mismatch", "/fhir/Patient/" + id, `{"resourceType":"Observation","id":"` + id + `"}`, nil, 400, "", "does not match the URL's resource type"},
			{"fail/empty-body", "/fhir/Patient/" + id, "", nil, 400, "", "empty"},
			{"fail/malformed", "/fhir/Patient/" + id, `{"resourceType":"Patient",`, nil, 400, "", ""},
			{"fail/xml", "/fhir/Patient/" + id, `<Patient/>`, []string{"Content-Type: application/fhir+xml"}, 415, "", "XML"},
		}
		for _, tc := range tests {
			r := h.do("PUT", tc.path, tc.body, tc.hdr...)
			if r.Status != tc.status {
				t.Fatalf("%s: status %d, want %d: %s", tc.name, r.Status, tc.status, r.Body)
			}
			if tc.etag != "" && r.Header.Get("ETag") != tc.etag {
				t.Errorf("%s: ETag %q, want %q", tc.name, r.Header.Get("ETag"), tc.etag)
			}
			if tc.status == 201 && r.Header.Get("Location") != testBase+"/Patient/new-1/_history/1" {
				t.Errorf("%s: Location %q", tc.name, r.Header.Get("Location"))
			}
			if tc.diag != "" {
				if _, diag, _ := issue(t, r); !strings.Contains(diag, tc.diag) {
					t.Errorf("%s: diagnostics %q, want %q", tc.name, diag, tc.diag)
				}
			}
		}
	})
}

func TestDelete(t *testing.T) {
	t.Parallel()
	eachStore(t, func(t *testing.T, h *harness) {
		id := h.create("Patient", patientJSON)
		if r := h.do("DELETE", "/fhir/Patient/"+id, "", `If-Match: W/"5"`); r.Status != 412 {
			t.Errorf("stale If-Match delete: %d", r.Status)
		}
		r := h.do("DELETE", "/fhir/Patient/"+id, "")
		if r.Status != 200 || r.Header.Get("ETag") != `W/"2"` {
			t.Fatalf("delete: %d %v %s", r.Status, r.Header, r.Body)
		}
		if code, _, _ := issue(t, r); code != "informational" {
			t.Errorf("delete outcome code %q", code)
		}
		if r := h.do("DELETE", "/fhir/Patient/"+id, ""); r.Status != 200 || r.Header.Get("ETag") != `W/"2"` {
			t.Errorf("second delete: %d %v (want 200, no new version)", r.Status, r.Header)
		}
		if r := h.do("DELETE", "/fhir/Patient/never", ""); r.Status != 404 {
			t.Errorf("delete of unknown: %d", r.Status)
		}
		if r := h.do("GET", "/fhir/Patient/"+id, ""); r.Status != 410 || r.Header.Get("ETag") != `W/"2"` {
			t.Errorf("read after delete: %d %v", r.Status, r.Header)
		}
		// Re-create after delete.
		if r := h.do("PUT", "/fhir/Patient/"+id, `{"resourceType":"Patient","id":"`+id+`"}`); r.Status != 201 || r.Header.Get("ETag") != `W/"3"` {
			t.Errorf("re-create: %d %v", r.Status, r.Header)
		}
	})
}

func TestPrefer(t *testing.T) {
	t.Parallel()
	eachStore(t, func(t *testing.T, h *harness) {
		tests := []struct {
			name, prefer string
			wantType     string // "" = no body
		}{
			{"ok/default", "", "Patient"},
			{"ok/representation", "return=representation", "Patient"},
			{"ok/minimal", "return=minimal", ""},
			{"ok/outcome", "return=OperationOutcome", "OperationOutcome"},
			{"ok/with-handling", "handling=strict; return=minimal", ""},
		}
		for _, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				var hdr []string
				if tc.prefer != "" {
					hdr = []string{"Prefer: " + tc.prefer}
				}
				r := h.do("POST", "/fhir/Patient", patientJSON, hdr...)
				if r.Status != 201 || r.Header.Get("Location") == "" || r.Header.Get("ETag") != `W/"1"` {
					t.Fatalf("create: %d %v", r.Status, r.Header)
				}
				if tc.wantType == "" {
					if len(r.Body) != 0 {
						t.Errorf("body %s, want none", r.Body)
					}
					return
				}
				if got := r.json(t)["resourceType"]; got != tc.wantType {
					t.Errorf("body resourceType %v, want %s", got, tc.wantType)
				}
			})
		}
	})
}

func TestValidation(t *testing.T) {
	t.Parallel()
	eachStore(t, func(t *testing.T, h *harness) {
		id := h.create("Patient", patientJSON)
		jp := "Content-Type: application/json-patch+json"
		tests := []struct {
			name, method, path, body string
			hdr                      []string
			expr                     string
		}{
			{"fail/unknown-element", "POST", "/fhir/Patient", `{"resourceType":"Patient","colour":"red"}`, nil, "Patient.colour"},
			{"fail/bad-date", "POST", "/fhir/Patient", `{"resourceType":"Patient","birthDate":"20.2.1987"}`, nil, "Patient.birthDate"},
			{"fail/update-unknown-element", "PUT", "/fhir/Patient/" + id, `{"resourceType":"Patient","id":"` + id + `","colour":"red"}`, nil, "Patient.colour"},
			{"fail/patch-makes-invalid", "PATCH", "/fhir/Patient/" + id, `[{"op":"add","path":"/gender","value":"sometimes"}]`, []string{jp}, "Patient.gender"},
			{"fail/transaction-entry", "POST", "/fhir", bundle("transaction",
				entry("", "POST", "Patient", patientJSON),
				entry("", "POST", "Patient", `{"resourceType":"Patient","colour":"red"}`)), nil, "Bundle.entry[1]"},
		}
		for _, tc := range tests {
			r := h.do(tc.method, tc.path, tc.body, tc.hdr...)
			if r.Status != http.StatusBadRequest {
				t.Fatalf("%s: status %d: %s", tc.name, r.Status, r.Body)
			}
			_, _, expr := issue(t, r)
			if len(expr) == 0 || expr[0] != tc.expr {
				t.Errorf("%s: expression %v, want %s first", tc.name, expr, tc.expr)
			}
		}
		if n := h.do("GET", "/fhir/Patient/_history", "").json(t)["total"]; n != jsonNum(1) {
			t.Errorf("%v Patient versions after rejected writes, want 1", n)
		}
	})
}
