package httpx

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync"
	"testing"

	"github.com/fhirguard/fhirguard/internal/fhir"
)

// leakRE matches what must never reach a client (RESIL-08).
var leakRE = regexp.MustCompile(`goroutine|panic|\.go:|SELECT|sqlite|pgx`)

// syncBuffer is a goroutine-safe log sink.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func newLogger() (*slog.Logger, *syncBuffer) {
	buf := &syncBuffer{}
	return slog.New(slog.NewJSONHandler(buf, &slog.HandlerOptions{Level: slog.LevelDebug})), buf
}

type oo struct {
	ResourceType string `json:"resourceType"`
	Issue        []struct {
		Severity    string   `json:"severity"`
		Code        string   `json:"code"`
		Diagnostics string   `json:"diagnostics"`
		Expression  []string `json:"expression"`
	} `json:"issue"`
}

func decodeOO(t *testing.T, body []byte) oo {
	t.Helper()
	var o oo
	if err := json.Unmarshal(body, &o); err != nil {
		t.Fatalf("body is not JSON: %v: %s", err, body)
	}
	if o.ResourceType != "OperationOutcome" || len(o.Issue) != 1 {
		t.Fatalf("not a one-issue OperationOutcome: %s", body)
	}
	return o
}

// driverError imitates an error from a database driver.
type driverError struct{ msg string }

func (e *driverError) Error() string { return e.msg }

type testOAuthError struct {
	code, desc string
	status     int
}

func (e *testOAuthError) Error() string            { return e.code + ": " + e.desc }
func (e *testOAuthError) OAuthCode() string        { return e.code }
func (e *testOAuthError) OAuthDescription() string { return e.desc }
func (e *testOAuthError) HTTPStatus() int          { return e.status }
func (e *testOAuthError) Header() http.Header {
	return http.Header{"Www-Authenticate": {`Basic realm="token"`}}
}

func TestWrapErrors(t *testing.T) {
	t.Parallel()
	sqlCause := errors.New(`sqlite: SELECT body FROM versions WHERE id = 'x': database is locked (internal/store/sqlite/read.go:42)`)
	tests := []struct {
		name       string
		handler    HandlerFunc
		wantStatus int
		wantCode   string
		wantDiag   string // exact, or "" to check the opaque reference form
		wantExpr   []string
		wantHeader map[string]string
		wantLog    string // must appear in the log
	}{
		{
			name: "fail/fhir-not-found",
			handler: func(w http.ResponseWriter, r *http.Request) error {
				return &fhir.Error{Code: fhir.IssueNotFound, Diag: "Patient/x is not known", Cause: sqlCause}
			},
			wantStatus: 404, wantCode: "not-found", wantDiag: "Patient/x is not known",
		},
		{
			name: "fail/fhir-wrapped-with-expression-and-header",
			handler: func(w http.ResponseWriter, r *http.Request) error {
				fe := &fhir.Error{Code: fhir.IssueThrottled, Diag: "slow down", Expr: []string{"Patient.name[0].given"},
					Header: http.Header{"Retry-After": {"3"}}}
				return fmt.Errorf("layer two: %w", fmt.Errorf("layer one: %w", fe))
			},
			wantStatus: 429, wantCode: "throttled", wantDiag: "slow down",
			wantExpr: []string{"Patient.name[0].given"}, wantHeader: map[string]string{"Retry-After": "3"},
		},
		{
			name: "fail/fhir-status-override",
			handler: func(w http.ResponseWriter, r *http.Request) error {
				return &fhir.Error{Code: fhir.IssueNotSupported, Status: 415, Diag: "XML is not supported"}
			},
			wantStatus: 415, wantCode: "not-supported", wantDiag: "XML is not supported",
		},
		{
			name: "fail/sql-error",
			handler: func(w http.ResponseWriter, r *http.Request) error {
				return sqlCause
			},
			wantStatus: 500, wantCode: "exception", wantLog: "database is locked",
		},
		{
			name: "fail/wrapped-driver-error",
			handler: func(w http.ResponseWriter, r *http.Request) error {
				return fmt.Errorf("store read: %w", &driverError{msg: "pgx: conn closed; SELECT 1 at /src/pgx/conn.go:99"})
			},
			wantStatus: 500, wantCode: "exception", wantLog: "pgx: conn closed",
		},
		{
			name: "fail/sql-no-rows",
			handler: func(w http.ResponseWriter, r *http.Request) error {
				return fmt.Errorf("sqlite: %w", sql.ErrNoRows)
			},
			wantStatus: 500, wantCode: "exception", wantLog: "no rows",
		},
		{
			name: "fail/panic-string",
			handler: func(w http.ResponseWriter, r *http.Request) error {
				panic("boom in SELECT handler")
			},
			wantStatus: 500, wantCode: "exception", wantLog: "goroutine",
		},
		{
			name: "fail/panic-error-value",
			handler: func(w http.ResponseWriter, r *http.Request) error {
				var m map[string]int
				m["x"] = 1 // nil map write: a runtime panic
				return nil
			},
			wantStatus: 500, wantCode: "exception", wantLog: "assignment to entry in nil map",
		},
		{
			name: "fail/body-too-large",
			handler: func(w http.ResponseWriter, r *http.Request) error {
				return fmt.Errorf("decode: %w", &http.MaxBytesError{Limit: 10})
			},
			wantStatus: 413, wantCode: "too-long", wantDiag: "the request body is larger than the limit of 10 bytes",
		},
		{
			name: "fail/oauth-error-as-outcome",
			handler: func(w http.ResponseWriter, r *http.Request) error {
				return &testOAuthError{code: "invalid_client", desc: "unknown client", status: 401}
			},
			wantStatus: 401, wantCode: "login", wantDiag: "invalid_client: unknown client",
			wantHeader: map[string]string{"Www-Authenticate": `Basic realm="token"`},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			log, logs := newLogger()
			h := Chain(Wrap(tc.handler, OperationOutcome), Options{Logger: log})
			rr := httptest.NewRecorder()
			h.ServeHTTP(rr, httptest.NewRequest("GET", "/fhir/Patient/x", nil))
			body := rr.Body.Bytes()
			if rr.Code != tc.wantStatus {
				t.Fatalf("status = %d, want %d; body %s", rr.Code, tc.wantStatus, body)
			}
			if leakRE.Match(body) {
				t.Fatalf("body leaks internals: %s", body)
			}
			if ct := rr.Header().Get("Content-Type"); ct != ContentTypeFHIR {
				t.Errorf("Content-Type = %q", ct)
			}
			o := decodeOO(t, body)
			is := o.Issue[0]
			if is.Code != tc.wantCode || is.Severity != "error" {
				t.Errorf("issue = %+v, want code %s", is, tc.wantCode)
			}
			reqID := rr.Header().Get(HeaderRequestID)
			if reqID == "" {
				t.Fatal("no X-Request-Id")
			}
			if tc.wantDiag != "" {
				if is.Diagnostics != tc.wantDiag {
					t.Errorf("diagnostics = %q, want %q", is.Diagnostics, tc.wantDiag)
				}
			} else if is.Diagnostics != "internal server error; reference "+reqID {
				t.Errorf("diagnostics = %q, want the opaque reference %s", is.Diagnostics, reqID)
			}
			if strings.Join(is.Expression, "|") != strings.Join(tc.wantExpr, "|") {
				t.Errorf("expression = %v, want %v", is.Expression, tc.wantExpr)
			}
			for k, v := range tc.wantHeader {
				if got := rr.Header().Get(k); got != v {
					t.Errorf("header %s = %q, want %q", k, got, v)
				}
			}
			if tc.wantLog != "" {
				l := logs.String()
				if !strings.Contains(l, tc.wantLog) {
					t.Errorf("log lacks %q:\n%s", tc.wantLog, l)
				}
				if !strings.Contains(l, reqID) {
					t.Errorf("log lacks the request id %s", reqID)
				}
				var errorRecords int
				for line := range strings.SplitSeq(strings.TrimSpace(l), "\n") {
					if strings.Contains(line, `"level":"ERROR"`) {
						errorRecords++
					}
				}
				if errorRecords != 1 {
					t.Errorf("want the cause logged exactly once at ERROR, got %d records:\n%s", errorRecords, l)
				}
			}
		})
	}
}

func TestWrapWithoutChain(t *testing.T) {
	t.Parallel()
	h := Wrap(func(w http.ResponseWriter, r *http.Request) error {
		if Info(r.Context()) == nil {
			t.Error("Wrap alone must still provide a RequestInfo")
		}
		return errors.New("SELECT failed")
	}, nil)
	rr := httptest.NewRecorder()
	h.ServeHTTP(rr, httptest.NewRequest("GET", "/x", nil))
	id := rr.Header().Get(HeaderRequestID)
	if rr.Code != 500 || id == "" {
		t.Fatalf("status %d id %q", rr.Code, id)
	}
	if o := decodeOO(t, rr.Body.Bytes()); !strings.HasSuffix(o.Issue[0].Diagnostics, id) {
		t.Errorf("diagnostics %q lacks id %s", o.Issue[0].Diagnostics, id)
	}
}

func TestWrapOK(t *testing.T) {
	t.Parallel()
	h := Chain(Wrap(func(w http.ResponseWriter, r *http.Request) error {
		w.Header().Set("Content-Type", ContentTypeFHIR)
		w.WriteHeader(201)
		_, err := w.Write([]byte(`{"resourceType":"Patient"}`))
		return err
	}, OperationOutcome), Options{})
	rr := httptest.NewRecorder()
	h.ServeHTTP(rr, httptest.NewRequest("POST", "/fhir/Patient", strings.NewReader("{}")))
	if rr.Code != 201 || rr.Body.String() != `{"resourceType":"Patient"}` {
		t.Fatalf("got %d %s", rr.Code, rr.Body)
	}
}

func TestWrapNothingWrittenTwice(t *testing.T) {
	t.Parallel()
	log, logs := newLogger()
	h := Chain(Wrap(func(w http.ResponseWriter, r *http.Request) error {
		w.WriteHeader(200)
		_, _ = w.Write([]byte(`{"partial":`))
		return errors.New("stream broke")
	}, OperationOutcome), Options{Logger: log})
	rr := httptest.NewRecorder()
	h.ServeHTTP(rr, httptest.NewRequest("GET", "/x", nil))
	if rr.Code != 200 || rr.Body.String() != `{"partial":` {
		t.Fatalf("second write happened: %d %q", rr.Code, rr.Body)
	}
	if !strings.Contains(logs.String(), "error after the response had started") {
		t.Errorf("late error not logged:\n%s", logs)
	}
}

func TestWrapClientGone(t *testing.T) {
	t.Parallel()
	log, logs := newLogger()
	ctx, cancel := context.WithCancel(context.Background())
	h := Chain(Wrap(func(w http.ResponseWriter, r *http.Request) error {
		cancel() // the client disconnects while we work
		<-r.Context().Done()
		return fmt.Errorf("store: %w", r.Context().Err())
	}, OperationOutcome), Options{Logger: log})
	rr := httptest.NewRecorder()
	h.ServeHTTP(rr, httptest.NewRequest("GET", "/x", nil).WithContext(ctx))
	if rr.Body.Len() != 0 {
		t.Fatalf("wrote a body for a gone client: %q", rr.Body)
	}
	if !strings.Contains(logs.String(), `"status":499`) {
		t.Errorf("access log lacks 499:\n%s", logs)
	}
	if strings.Contains(logs.String(), `"level":"ERROR"`) {
		t.Errorf("a gone client is not an error:\n%s", logs)
	}
}

func TestOAuthJSON(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		err        error
		wantStatus int
		wantBody   string
	}{
		{"fail/oauth-error", &testOAuthError{code: "invalid_grant", desc: "code expired", status: 400}, 400,
			`{"error":"invalid_grant","error_description":"code expired"}`},
		{"fail/fhir-error", fhir.Errorf(fhir.IssueInvalid, "missing grant_type"), 400,
			`{"error":"invalid_request","error_description":"missing grant_type"}`},
		{"fail/internal", errors.New("SELECT * FROM clients"), 500,
			`{"error":"server_error","error_description":"internal server error; reference ID"}`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			h := Wrap(func(w http.ResponseWriter, r *http.Request) error { return tc.err }, OAuthJSON)
			rr := httptest.NewRecorder()
			h.ServeHTTP(rr, httptest.NewRequest("POST", "/token", nil))
			want := strings.ReplaceAll(tc.wantBody, "ID", rr.Header().Get(HeaderRequestID))
			if rr.Code != tc.wantStatus || strings.TrimSpace(rr.Body.String()) != want {
				t.Fatalf("got %d %s, want %d %s", rr.Code, rr.Body, tc.wantStatus, want)
			}
			if rr.Header().Get("Cache-Control") != "no-store" || !strings.HasPrefix(rr.Header().Get("Content-Type"), "application/json") {
				t.Errorf("headers %v", rr.Header())
			}
		})
	}
}
