package fhirapi

import (
	"net/http"
	"strings"
	"testing"
)

func TestPatch(t *testing.T) {
	t.Parallel()
	eachStore(t, func(t *testing.T, h *harness) {
		id := h.create("Patient", `{"resourceType":"Patient","name":[{"family":"Shaw","given":["Amy"]}],"multipleBirthInteger":2,"extension":[{"url":"http://x.test/w","valueDecimal":1.50}]}`)
		path := "/fhir/Patient/" + id
		jp := "Content-Type: application/json-patch+json"
		tests := []struct {
			name, patch string
			hdr         []string
			status      int
			want, diag  string
		}{
			{"ok/replace", `[{"op":"replace","path":"/name/0/family","value":"Shaw-Lee"}]`, []string{jp}, 200, `"family":"Shaw-Lee"`, ""},
			{"ok/keeps-decimal-text", `[{"op":"add","path":"/gender","value":"female"}]`, []string{jp}, 200, `"valueDecimal":1.50`, ""},
			{"ok/test-and-add", `[{"op":"test","path":"/gender","value":"female"},{"op":"add","path":"/active","value":true}]`, []string{jp, `If-Match: W/"3"`}, 200, `"active":true`, ""},
			{"fail/if-match-stale", `[{"op":"remove","path":"/active"}]`, []string{jp, `If-Match: W/"1"`}, 412, "", "If-Match"},
			{"fail/test-failed", `[{"op":"test","path":"/gender","value":"male"}]`, []string{jp}, 422, "", "operation 0 (test /gender) failed"},
			{"fail/missing-path", `[{"op":"add","path":"/gender","value":"male"},{"op":"replace","path":"/photo/0/url","value":"x"}]`, []string{jp}, 422, "", "operation 1 (replace /photo/0/url) cannot be applied"},
			{"fail/change-id", `[{"op":"replace","path":"/id","value":"other"}]`, []string{jp}, 422, "", "cannot change the resource id"},
			{"fail/change-type", `[{"op":"replace","path":"/resourceType","value":"Group"}]`, []string{jp}, 422, "", "cannot change resourceType"},
			{"fail/not-a-patch", `{"op":"replace"}`, []string{jp}, 400, "", "not a valid JSON Patch"},
			{"fail/unknown-op", `[{"op":"frobnicate","path":"/x"}]`, []string{jp}, 400, "", "not a valid JSON Patch"},
			{"fail/empty-patch", `[]`, []string{jp}, 400, "", "no operations"},
			{"fail/malformed-json", `[{"op":`, []string{jp}, 400, "", ""},
			{"fail/duplicate-key", `[{"op":"add","op":"remove","path":"/x"}]`, []string{jp}, 400, "", "duplicate"},
			{"fail/fhirpath-patch", `{"resourceType":"Parameters"}`, []string{"Content-Type: application/fhir+json"}, 415, "", "FHIRPath Patch is not supported"},
			{"fail/xml-patch", `<diff/>`, []string{"Content-Type: application/xml-patch+xml"}, 415, "", "XML Patch"},
			{"fail/no-content-type", `[]`, []string{"Content-Type:"}, 415, "", "json-patch+json"},
		}
		for _, tc := range tests {
			r := h.do("PATCH", path, tc.patch, tc.hdr...)
			if r.Status != tc.status {
				t.Fatalf("%s: status %d, want %d: %s", tc.name, r.Status, tc.status, r.Body)
			}
			if tc.want != "" && !strings.Contains(string(r.Body), tc.want) {
				t.Errorf("%s: body %s lacks %s", tc.name, r.Body, tc.want)
			}
			if tc.diag != "" {
				if _, diag, _ := issue(t, r); !strings.Contains(diag, tc.diag) {
					t.Errorf("%s: diagnostics %q, want %q", tc.name, diag, tc.diag)
				}
			}
		}
		if r := h.do("GET", path, ""); r.Header.Get("ETag") != `W/"4"` {
			t.Errorf("after 3 patches ETag %q, want W/\"4\" (failures wrote nothing)", r.Header.Get("ETag"))
		}
		if r := h.do("PATCH", "/fhir/Patient/unknown", `[{"op":"add","path":"/active","value":true}]`, jp); r.Status != http.StatusNotFound {
			t.Errorf("patch unknown: %d", r.Status)
		}
		h.do("DELETE", path, "")
		if r := h.do("PATCH", path, `[{"op":"add","path":"/active","value":true}]`, jp); r.Status != http.StatusGone {
			t.Errorf("patch deleted: %d", r.Status)
		}
	})
}
