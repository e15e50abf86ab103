package audit

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/fhirguard/fhirguard/internal/httpx"
)

type sinkFunc func(ctx context.Context, evs []Event) error

func (f sinkFunc) RecordAll(ctx context.Context, evs []Event) error { return f(ctx, evs) }

// TestWrapFailsClosed: when the record fails, the client gets a 503 with
// none of the handler's headers or body; when it succeeds, the held
// response goes out as the handler wrote it (AUDIT-07).
func TestWrapFailsClosed(t *testing.T) {
	t.Parallel()
	handler := func(w http.ResponseWriter, r *http.Request) error {
		w.Header().Set("ETag", `W/"3"`)
		w.Header().Set("Content-Type", "application/fhir+json")
		w.WriteHeader(http.StatusOK)
		_, err := w.Write([]byte(`{"resourceType":"Patient","id":"secret-data"}`))
		return err
	}
	for _, tc := range []struct {
		name string
		err  error
	}{{"ok/recorded", nil}, {"fail/not-recorded", errors.New("disk full")}} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			calls := 0
			a := &HTTP{Source: Source{Observer: "http://fhir.test/fhir"}, Sink: sinkFunc(func(_ context.Context, evs []Event) error {
				calls += len(evs)
				return tc.err
			})}
			h := httpx.Wrap(a.Wrap(handler), nil)
			for i := 0; i < 3; i++ { // buffers are reused
				w := httptest.NewRecorder()
				w.Header().Set("X-Before", "kept")
				h.ServeHTTP(w, httptest.NewRequest("GET", "/fhir/Patient/p1", nil))
				body := w.Body.String()
				if tc.err == nil {
					if w.Code != 200 || w.Header().Get("ETag") != `W/"3"` || !strings.Contains(body, "secret-data") {
						t.Fatalf("recorded: %d %v %s", w.Code, w.Header(), body)
					}
					continue
				}
				if w.Code != http.StatusServiceUnavailable || w.Header().Get("ETag") != "" || strings.Contains(body, "secret-data") ||
					w.Header().Get("Retry-After") == "" || w.Header().Get("X-Before") != "kept" {
					t.Fatalf("not recorded: %d %v %s, want 503 without the handler's headers and data", w.Code, w.Header(), body)
				}
			}
			if calls != 3 {
				t.Fatalf("%d events recorded, want 3", calls)
			}
		})
	}
}

// TestWrapFailsClosedRestoresHeaders: when the record fails, headers that
// were set before the handler ran go out as they were, whatever the
// handler did to them.
func TestWrapFailsClosedRestoresHeaders(t *testing.T) {
	t.Parallel()
	handler := func(w http.ResponseWriter, r *http.Request) error {
		w.Header().Set("X-Before", "changed-by-handler")
		w.Header().Add("X-Multi", "added-by-handler")
		w.Header().Del("X-Gone")
		w.Header().Set("Location", "Patient/secret")
		w.WriteHeader(http.StatusCreated)
		return nil
	}
	a := &HTTP{Source: Source{Observer: "http://fhir.test/fhir"}, Sink: sinkFunc(func(context.Context, []Event) error {
		return errors.New("disk full")
	})}
	h := httpx.Wrap(a.Wrap(handler), nil)
	for i := 0; i < 3; i++ { // buffers are reused
		w := httptest.NewRecorder()
		w.Header().Set("X-Before", "kept")
		w.Header()["X-Multi"] = make([]string, 1, 4)
		w.Header()["X-Multi"][0] = "one"
		w.Header().Set("X-Gone", "kept-too")
		h.ServeHTTP(w, httptest.NewRequest("GET", "/fhir/Patient/p1", nil))
		got := w.Header()
		if w.Code != http.StatusServiceUnavailable || got.Get("X-Before") != "kept" || got.Get("X-Gone") != "kept-too" ||
			len(got.Values("X-Multi")) != 1 || got.Get("Location") != "" {
			t.Fatalf("not recorded: %d %v, want 503 with the headers as before the handler", w.Code, got)
		}
	}
}
