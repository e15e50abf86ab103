package httpx

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/fhirguard/fhirguard/internal/clock"
)

func echoBody(w http.ResponseWriter, r *http.Request) error {
	b, err := ReadBody(r)
	if err != nil {
		return err
	}
	SetInteraction(r, "create")
	w.WriteHeader(201)
	_, err = w.Write(b)
	return err
}

func TestChainRequestID(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		inbound string
		keep    bool
	}{
		{"ok/none", "", false},
		{"ok/safe-token", "abc-123_X.y", true},
		{"fail/too-long", strings.Repeat("a", 65), false},
		{"fail/unsafe-chars", "a b<script>", false},
		{"fail/newline", "a\nb", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var seen string
			h := Chain(Wrap(func(w http.ResponseWriter, r *http.Request) error {
				seen = Info(r.Context()).ID
				return nil
			}, nil), Options{})
			req := httptest.NewRequest("GET", "/x", nil)
			if tc.inbound != "" {
				req.Header[HeaderRequestID] = []string{tc.inbound}
			}
			rr := httptest.NewRecorder()
			h.ServeHTTP(rr, req)
			got := rr.Header().Get(HeaderRequestID)
			if got != seen || got == "" {
				t.Fatalf("header %q, handler saw %q", got, seen)
			}
			if tc.keep != (got == tc.inbound) {
				t.Errorf("inbound %q → %q (keep=%v)", tc.inbound, got, tc.keep)
			}
			if !safeRequestID(got) {
				t.Errorf("id %q is not a safe token", got)
			}
		})
	}
}

func TestChainSecurityHeaders(t *testing.T) {
	t.Parallel()
	h := Chain(Wrap(echoBody, nil), Options{})
	rr := httptest.NewRecorder()
	h.ServeHTTP(rr, httptest.NewRequest("POST", "/fhir/Patient", strings.NewReader("{}")))
	want := map[string]string{
		"X-Content-Type-Options": "nosniff",
		"Referrer-Policy":        "no-referrer",
		"Cache-Control":          "no-store",
		"X-Frame-Options":        "DENY",
	}
	for k, v := range want {
		if got := rr.Header().Get(k); got != v {
			t.Errorf("%s = %q, want %q", k, got, v)
		}
	}
	for _, k := range []string{"Server", "X-Powered-By"} {
		if v := rr.Header().Get(k); v != "" {
			t.Errorf("%s present: %q", k, v)
		}
	}
}

func TestChainMethods(t *testing.T) {
	t.Parallel()
	tests := []struct {
		method string
		want   int
	}{
		{"ok/GET", 201}, {"ok/POST", 201}, {"ok/PUT", 201}, {"ok/PATCH", 201}, {"ok/DELETE", 201},
		{"ok/OPTIONS", 201}, {"ok/HEAD", 201},
		{"fail/TRACE", 405}, {"fail/CONNECT", 405}, {"fail/PROPFIND", 405}, {"fail/TRACK", 405}, {"fail/get", 405},
	}
	for _, tc := range tests {
		t.Run(tc.method, func(t *testing.T) {
			t.Parallel()
			h := Chain(Wrap(echoBody, nil), Options{})
			rr := httptest.NewRecorder()
			_, m, _ := strings.Cut(tc.method, "/")
			h.ServeHTTP(rr, httptest.NewRequest(m, "/fhir/Patient", nil))
			if rr.Code != tc.want {
				t.Fatalf("%s → %d, want %d", m, rr.Code, tc.want)
			}
			if tc.want == 405 {
				o := decodeOO(t, rr.Body.Bytes())
				if o.Issue[0].Code != "not-supported" || rr.Header().Get("Allow") == "" {
					t.Errorf("405 outcome %+v, Allow %q", o, rr.Header().Get("Allow"))
				}
			}
		})
	}
}

func TestChainBodyLimit(t *testing.T) {
	t.Parallel()
	const limit = 1000
	tests := []struct {
		name      string
		body      []byte
		chunked   bool // hide the length: the limit must hit while reading
		want      int
		wantBytes int
	}{
		{"ok/under", bytes.Repeat([]byte("a"), limit), false, 201, limit},
		{"ok/under-chunked", bytes.Repeat([]byte("a"), limit), true, 201, limit},
		{"fail/content-length", bytes.Repeat([]byte("a"), limit+1), false, 413, 0},
		{"fail/chunked", bytes.Repeat([]byte("a"), limit+1), true, 413, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			h := Chain(Wrap(echoBody, nil), Options{MaxBodyBytes: limit})
			var body io.Reader = bytes.NewReader(tc.body)
			if tc.chunked {
				body = io.MultiReader(body) // unknown length
			}
			req := httptest.NewRequest("POST", "/fhir/Patient", body)
			if tc.chunked {
				req.ContentLength = -1
			}
			rr := httptest.NewRecorder()
			h.ServeHTTP(rr, req)
			if rr.Code != tc.want {
				t.Fatalf("status %d, want %d: %s", rr.Code, tc.want, rr.Body)
			}
			if tc.want == 413 {
				o := decodeOO(t, rr.Body.Bytes())
				if o.Issue[0].Code != "too-long" || !strings.Contains(o.Issue[0].Diagnostics, "1000 bytes") {
					t.Errorf("outcome %+v", o)
				}
			} else if rr.Body.Len() != tc.wantBytes {
				t.Errorf("echoed %d bytes", rr.Body.Len())
			}
		})
	}
}

func TestChainPanicOutsideWrap(t *testing.T) {
	t.Parallel()
	log, logs := newLogger()
	h := Chain(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		panic("raw handler panic at main.go:12")
	}), Options{Logger: log})
	rr := httptest.NewRecorder()
	h.ServeHTTP(rr, httptest.NewRequest("GET", "/metrics", nil))
	if rr.Code != 500 || leakRE.Match(rr.Body.Bytes()) {
		t.Fatalf("got %d %s", rr.Code, rr.Body)
	}
	decodeOO(t, rr.Body.Bytes())
	if !strings.Contains(logs.String(), "goroutine") {
		t.Error("stack not logged")
	}
	if !strings.Contains(logs.String(), `"status":500`) {
		t.Errorf("access log lacks the 500:\n%s", logs)
	}
}

func TestChainAccessLogAndMetrics(t *testing.T) {
	t.Parallel()
	log, logs := newLogger()
	m := NewMetrics()
	clk := clock.NewFake(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC))
	h := Chain(Wrap(func(w http.ResponseWriter, r *http.Request) error {
		clk.Advance(250 * time.Millisecond)
		if r.Method == "POST" {
			return echoBody(w, r)
		}
		SetInteraction(r, "read")
		w.WriteHeader(200)
		return nil
	}, nil), Options{Logger: log, Metrics: m, Clock: clk})

	req := httptest.NewRequest("GET", "/fhir/Patient?name=Smith&birthdate=1970-01-01&_count", nil)
	req.Header.Set("Authorization", "Bearer canary-token-123")
	h.ServeHTTP(httptest.NewRecorder(), req)
	h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("POST", "/fhir/Patient", strings.NewReader("{}")))
	h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("POST", "/fhir/Patient", strings.NewReader("{}")))
	h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("TRACE", "/", nil))

	l := logs.String()
	for _, bad := range []string{"Smith", "1970-01-01", "canary-token-123", "Authorization"} {
		if strings.Contains(l, bad) {
			t.Errorf("log contains %q:\n%s", bad, l)
		}
	}
	var first map[string]any
	if err := json.Unmarshal([]byte(strings.SplitN(l, "\n", 2)[0]), &first); err != nil {
		t.Fatal(err)
	}
	if first["msg"] != "http request" || first["method"] != "GET" || first["path"] != "/fhir/Patient" ||
		first["query"] != "name=***&birthdate=***&_count" || first["status"] != float64(200) ||
		first["duration_ms"] != float64(250) || first["interaction"] != "read" || first["request_id"] == "" {
		t.Errorf("access log record %v", first)
	}

	rr := httptest.NewRecorder()
	m.Handler().ServeHTTP(rr, httptest.NewRequest("GET", "/metrics", nil))
	text := rr.Body.String()
	for _, want := range []string{
		`fhirguard_http_requests_total{code="200",interaction="read"} 1`,
		`fhirguard_http_requests_total{code="201",interaction="create"} 2`,
		`fhirguard_http_requests_total{code="405",interaction="other"} 1`,
		`fhirguard_http_request_duration_seconds_sum{code="200",interaction="read"} 0.25`,
		`go_goroutines `,
	} {
		if !strings.HasSuffix(want, " ") {
			want += "\n" // the whole line
		}
		if !strings.Contains(text, want) {
			t.Errorf("metrics lack %q:\n%s", want, grep(text, "fhirguard_"))
		}
	}
	if strings.Contains(text, "go_info") || strings.Contains(text, "go1.") {
		t.Errorf("metrics name the Go version:\n%s", grep(text, "go1."))
	}
	// A second instance has its own registry (no global state).
	rr = httptest.NewRecorder()
	NewMetrics().Handler().ServeHTTP(rr, httptest.NewRequest("GET", "/metrics", nil))
	if strings.Contains(rr.Body.String(), "fhirguard_http_requests_total{") {
		t.Errorf("a fresh instance shares counters:\n%s", grep(rr.Body.String(), "fhirguard_"))
	}
}

func grep(s, sub string) string {
	var out []string
	for line := range strings.SplitSeq(s, "\n") {
		if strings.Contains(line, sub) {
			out = append(out, line)
		}
	}
	return strings.Join(out, "\n")
}

func TestMaskQuery(t *testing.T) {
	t.Parallel()
	tests := []struct{ name, in, want string }{
		{"ok/empty", "", ""},
		{"ok/values-hidden", "name=Smith&_count=10", "name=***&_count=***"},
		{"ok/no-value", "_summary", "_summary"},
		{"ok/escaped-name", "subject%3APatient.name=x", "subject:Patient.name=***"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := maskQuery(tc.in); got != tc.want {
				t.Errorf("maskQuery(%q) = %q, want %q", tc.in, got, tc.want)
			}
		})
	}
}
