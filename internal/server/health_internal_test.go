package server

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/fhirguard/fhirguard/internal/config"
)

// TestHealthzStoreDown: /healthz answers 503 once the store stops answering.
func TestHealthzStoreDown(t *testing.T) {
	t.Parallel()
	c := config.Default()
	c.Addr = "127.0.0.1:0"
	c.DataDir = t.TempDir()
	c.Dev = true
	s, err := New(context.Background(), c, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()

	rr := httptest.NewRecorder()
	s.http.Handler.ServeHTTP(rr, httptest.NewRequest("GET", "/healthz", nil))
	if rr.Code != http.StatusOK {
		t.Fatalf("healthy store: %d %s", rr.Code, rr.Body)
	}
	if err := s.store.Close(); err != nil {
		t.Fatal(err)
	}
	rr = httptest.NewRecorder()
	s.http.Handler.ServeHTTP(rr, httptest.NewRequest("GET", "/healthz", nil))
	if rr.Code != http.StatusServiceUnavailable || rr.Header().Get("Retry-After") == "" ||
		!strings.Contains(rr.Body.String(), `"code":"transient"`) {
		t.Fatalf("closed store: %d %v %s", rr.Code, rr.Header(), rr.Body)
	}
}
