package fhirapi

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
)

func links(t *testing.T, b map[string]any) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, x := range asSlice(b["link"]) {
		m := x.(map[string]any)
		out[m["relation"].(string)] = m["url"].(string)
	}
	return out
}

func TestHistory(t *testing.T) {
	t.Parallel()
	eachStore(t, func(t *testing.T, h *harness) {
		id := h.create("Patient", patientJSON)
		h.clock.Advance(time.Minute)
		mid := h.clock.Now()
		h.do("PUT", "/fhir/Patient/"+id, `{"resourceType":"Patient","id":"`+id+`","active":true}`)
		h.clock.Advance(time.Minute)
		h.do("DELETE", "/fhir/Patient/"+id, "")
		other := h.create("Observation", `{"resourceType":"Observation","status":"final","code":{"text":"x"}}`)

		r := h.do("GET", "/fhir/Patient/"+id+"/_history", "")
		if r.Status != http.StatusOK {
			t.Fatalf("instance history: %d %s", r.Status, r.Body)
		}
		b := r.json(t)
		if b["type"] != "history" || b["total"] != jsonNum(3) {
			t.Fatalf("bundle type %v total %v", b["type"], b["total"])
		}
		entries := asSlice(b["entry"])
		wantMethods := []string{"DELETE", "PUT", "POST"}
		wantStatus := []string{"200 OK", "200 OK", "201 Created"}
		for i, x := range entries {
			e := x.(map[string]any)
			req := e["request"].(map[string]any)
			resp := e["response"].(map[string]any)
			if req["method"] != wantMethods[i] || resp["status"] != wantStatus[i] {
				t.Errorf("entry %d: request %v response %v", i, req, resp)
			}
			if e["fullUrl"] != testBase+"/Patient/"+id {
				t.Errorf("entry %d fullUrl %v", i, e["fullUrl"])
			}
			if _, has := e["resource"]; has == (i == 0) {
				t.Errorf("entry %d: resource present = %v (deletes have none)", i, has)
			}
			if resp["etag"] != etag(int64(3-i)) || resp["lastModified"] == nil {
				t.Errorf("entry %d: response %v", i, resp)
			}
		}

		r = h.do("GET", "/fhir/Patient/"+id+"/_history?_since="+url.QueryEscape(mid.Format(time.RFC3339)), "")
		if b := r.json(t); b["total"] != jsonNum(2) {
			t.Errorf("_since: total %v, want 2", b["total"])
		}
		r = h.do("GET", "/fhir/Patient/_history", "")
		if b := r.json(t); b["total"] != jsonNum(3) {
			t.Errorf("type history total %v", b["total"])
		}
		r = h.do("GET", "/fhir/_history", "")
		if b := r.json(t); b["total"] != jsonNum(4) || !strings.Contains(string(r.Body), other) {
			t.Errorf("system history total %v", b["total"])
		}
		r = h.do("GET", "/fhir/_history?_count=0", "")
		if b := r.json(t); b["total"] != jsonNum(4) || len(asSlice(b["entry"])) != 0 {
			t.Errorf("_count=0: %s", r.Body)
		}
		if r := h.do("GET", "/fhir/Patient/never/_history", ""); r.Status != http.StatusNotFound {
			t.Errorf("history of unknown instance: %d", r.Status)
		}
	})
}

func TestHistoryPaging(t *testing.T) {
	t.Parallel()
	eachStore(t, func(t *testing.T, h *harness) {
		for range 7 {
			h.create("Patient", patientJSON)
		}
		next := "/fhir/Patient/_history?_count=3"
		seen := map[string]bool{}
		pages := 0
		for next != "" {
			r := h.do("GET", next, "")
			if r.Status != http.StatusOK {
				t.Fatalf("%s: %d %s", next, r.Status, r.Body)
			}
			b := r.json(t)
			if b["total"] != jsonNum(7) {
				t.Errorf("page %d total %v", pages, b["total"])
			}
			for _, x := range asSlice(b["entry"]) {
				u := x.(map[string]any)["fullUrl"].(string)
				if seen[u] {
					t.Errorf("%s on two pages", u)
				}
				seen[u] = true
			}
			l := links(t, b)
			if !strings.HasPrefix(l["self"], testBase+"/Patient/_history?") {
				t.Errorf("self link %q", l["self"])
			}
			next = strings.TrimPrefix(l["next"], "http://fhir.test")
			pages++
			if pages > 5 {
				t.Fatal("paging does not end")
			}
		}
		if pages != 3 || len(seen) != 7 {
			t.Errorf("%d pages, %d entries; want 3 and 7", pages, len(seen))
		}
	})
}

func TestHistoryParams(t *testing.T) {
	t.Parallel()
	eachStore(t, func(t *testing.T, h *harness) {
		h.create("Patient", patientJSON)
		tests := []struct {
			name, query string
			status      int
			expr        string
		}{
			{"ok/count", "_count=5", 200, ""},
			{"ok/count-capped", "_count=100000", 200, ""},
			{"ok/since-offset", "_since=2025-01-01T00:00:00%2B01:00", 200, ""},
			{"ok/since-plus-as-space", "_since=2025-01-01T00:00:00+01:00", 200, ""},
			{"ok/since-fraction", "_since=2025-01-01T00:00:00.123Z", 200, ""},
			{"fail/count-text", "_count=ten", 400, "_count"},
			{"fail/count-negative", "_count=-1", 400, "_count"},
			{"fail/since-date", "_since=2025-01-01", 400, "_since"},
			{"fail/since-no-zone", "_since=2025-01-01T00:00:00", 400, "_since"},
			{"fail/since-garbage", "_since=yesterday", 400, "_since"},
			{"fail/cursor-garbage", "_cursor=abc", 400, "_cursor"},
			{"fail/cursor-negative", "_cursor=-5", 400, "_cursor"},
			{"fail/at", "_at=2025", 400, "_at"},
		}
		for _, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				r := h.do("GET", "/fhir/_history?"+tc.query, "")
				if r.Status != tc.status {
					t.Fatalf("status %d, want %d: %s", r.Status, tc.status, r.Body)
				}
				if tc.status == 200 {
					if b := r.json(t); tc.name == "ok/count-capped" && !strings.Contains(links(t, b)["self"], "_count=1000") {
						t.Errorf("self link %q: _count not capped at 1000", links(t, b)["self"])
					}
					return
				}
				if _, _, expr := issue(t, r); len(expr) == 0 || expr[0] != tc.expr {
					t.Errorf("expression %v, want %s", expr, tc.expr)
				}
			})
		}
	})
}
