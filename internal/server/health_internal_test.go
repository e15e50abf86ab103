package server

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/fhirguard/fhirguard/internal/config"
	"github.com/fhirguard/fhirguard/internal/store"
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

// skewStore is the server's store plus a database clock skew, standing
// for a store on PostgreSQL (postgres.AuditLog.ClockSkew measures it).
type skewStore struct {
	store.Store
	skew time.Duration
	err  error
}

func (s skewStore) ClockSkew(context.Context) (time.Duration, error) { return s.skew, s.err }

// TestHealthzClockSkew: /healthz reports clockSkewMs when the store
// measures its database's clock, "warn" beyond 1 s either way, and 503
// when the clock cannot be read; without a database clock the body stays
// {"status":"ok"}.
func TestHealthzClockSkew(t *testing.T) {
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
	plain := s.store
	tests := []struct {
		name     string
		store    store.Store
		wantCode int
		wantBody string
	}{
		{name: "ok/no-database-clock", store: plain, wantCode: 200, wantBody: `{"status":"ok"}` + "\n"},
		{name: "ok/skew-small", store: skewStore{Store: plain, skew: 120 * time.Millisecond}, wantCode: 200,
			wantBody: `{"status":"ok","clockSkewMs":120}` + "\n"},
		{name: "ok/skew-exactly-1s", store: skewStore{Store: plain, skew: -time.Second}, wantCode: 200,
			wantBody: `{"status":"ok","clockSkewMs":-1000}` + "\n"},
		{name: "fail/database-ahead", store: skewStore{Store: plain, skew: 1500 * time.Millisecond}, wantCode: 200,
			wantBody: `{"status":"warn","clockSkewMs":1500,"warning":"the database clock differs from the server clock by more than 1s"}` + "\n"},
		{name: "fail/database-behind", store: skewStore{Store: plain, skew: -2 * time.Minute}, wantCode: 200,
			wantBody: `{"status":"warn","clockSkewMs":-120000,"warning":"the database clock differs from the server clock by more than 1s"}` + "\n"},
		{name: "fail/clock-unreadable", store: skewStore{Store: plain, err: errors.New("conn closed")}, wantCode: 503},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s.store = tc.store
			rr := httptest.NewRecorder()
			s.http.Handler.ServeHTTP(rr, httptest.NewRequest("GET", "/healthz", nil))
			if rr.Code != tc.wantCode {
				t.Fatalf("status %d, want %d: %s", rr.Code, tc.wantCode, rr.Body)
			}
			if tc.wantCode != 200 {
				if rr.Header().Get("Retry-After") == "" || !strings.Contains(rr.Body.String(), `"code":"transient"`) || strings.Contains(rr.Body.String(), "conn closed") {
					t.Fatalf("unreadable clock: %v %s", rr.Header(), rr.Body)
				}
				return
			}
			if rr.Body.String() != tc.wantBody {
				t.Fatalf("body %s, want %s", rr.Body, tc.wantBody)
			}
		})
	}
	s.store = plain

	// A database clock known to the audit log only (the PostgreSQL audit
	// log next to another store) is reported as well.
	backend := s.audit.backend
	s.audit.backend = skewAudit{AuditLog: backend, skew: -40 * time.Millisecond}
	rr := httptest.NewRecorder()
	s.http.Handler.ServeHTTP(rr, httptest.NewRequest("GET", "/healthz", nil))
	s.audit.backend = backend
	if rr.Code != 200 || rr.Body.String() != `{"status":"ok","clockSkewMs":-40}`+"\n" {
		t.Fatalf("audit log's clock: %d %s", rr.Code, rr.Body)
	}
}

// skewAudit is an audit log with a database clock skew.
type skewAudit struct {
	store.AuditLog
	skew time.Duration
}

func (s skewAudit) ClockSkew(context.Context) (time.Duration, error) { return s.skew, nil }
