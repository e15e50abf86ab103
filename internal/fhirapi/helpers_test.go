package fhirapi

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/fhirguard/fhirguard/internal/clock"
	"github.com/fhirguard/fhirguard/internal/fhir/validate"
	"github.com/fhirguard/fhirguard/internal/httpx"
	"github.com/fhirguard/fhirguard/internal/index"
	"github.com/fhirguard/fhirguard/internal/store"
	"github.com/fhirguard/fhirguard/internal/store/sqlite"
)

const testBase = "http://fhir.test/fhir"

// leak matches what must never reach a client.
var leak = regexp.MustCompile(`goroutine|panic|\.go:|SELECT|sqlite|pgx`)

type harness struct {
	t     testing.TB
	api   *API
	store store.Store
	clock *clock.Fake
	h     http.Handler
}

// storeKinds are the backends every handler test runs on: the in-memory
// reference store and the real SQLite store.
var storeKinds = []string{"mem", "sqlite"}

// eachStore runs fn once per backend, in parallel subtests.
func eachStore(t *testing.T, fn func(t *testing.T, h *harness)) {
	t.Helper()
	for _, kind := range storeKinds {
		t.Run(kind, func(t *testing.T) {
			t.Parallel()
			fn(t, newHarness(t, kind))
		})
	}
}

func openStore(t testing.TB, kind string, clk clock.Clock) store.Store {
	t.Helper()
	switch kind {
	case "mem":
		return newMemStore(clk)
	case "sqlite":
		ix, err := index.New()
		if err != nil {
			t.Fatalf("index.New: %v", err)
		}
		st, err := sqlite.Open(context.Background(), sqlite.Options{
			Path: filepath.Join(t.TempDir(), "fhir.db"), Indexer: ix, Clock: clk,
			Logger: slog.New(slog.DiscardHandler), Synchronous: "NORMAL",
		})
		if err != nil {
			t.Fatalf("sqlite.Open: %v", err)
		}
		t.Cleanup(func() {
			if err := st.Close(); err != nil {
				t.Errorf("close store: %v", err)
			}
		})
		return st
	}
	t.Fatalf("unknown store kind %q", kind)
	return nil
}

func newHarness(t testing.TB, kind string) *harness {
	t.Helper()
	clk := clock.NewFake(time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC))
	st := openStore(t, kind, clk)
	api, err := New(Options{Store: st, Validator: testValidator(t), Clock: clk, BaseURL: testBase})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	mux := http.NewServeMux()
	api.Mount(mux, func(h httpx.HandlerFunc) http.Handler { return httpx.Wrap(h, nil) })
	h := httpx.Chain(mux, httpx.Options{Logger: slog.New(slog.NewTextHandler(tLog{t}, &slog.HandlerOptions{Level: slog.LevelWarn})), Clock: clk})
	return &harness{t: t, api: api, store: st, clock: clk, h: h}
}

type reply struct {
	Status int
	Header http.Header
	Body   []byte
}

func (r *reply) json(t testing.TB) map[string]any {
	t.Helper()
	var m map[string]any
	dec := json.NewDecoder(bytes.NewReader(r.Body))
	dec.UseNumber()
	if err := dec.Decode(&m); err != nil {
		t.Fatalf("response body is not JSON (%v): %q", err, r.Body)
	}
	return m
}

// do sends one request; hdr is "Name: value" pairs.
func (h *harness) do(method, path, body string, hdr ...string) *reply {
	h.t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req := httptest.NewRequest(method, path, rd)
	if body != "" {
		req.Header.Set("Content-Type", "application/fhir+json")
	}
	for _, kv := range hdr {
		k, v, _ := strings.Cut(kv, ":")
		req.Header.Set(strings.TrimSpace(k), strings.TrimSpace(v))
	}
	rec := httptest.NewRecorder()
	h.h.ServeHTTP(rec, req)
	res := &reply{Status: rec.Code, Header: rec.Header(), Body: rec.Body.Bytes()}
	if res.Status >= 400 {
		if leak.Match(res.Body) {
			h.t.Errorf("%s %s: error body leaks internals: %s", method, path, res.Body)
		}
		if res.Status >= 500 && res.Status != http.StatusNotImplemented && res.Status != http.StatusServiceUnavailable {
			h.t.Errorf("%s %s: status %d: %s", method, path, res.Status, res.Body)
		}
	}
	return res
}

// create POSTs body and returns the new id.
func (h *harness) create(typ, body string) string {
	h.t.Helper()
	r := h.do("POST", "/fhir/"+typ, body)
	if r.Status != http.StatusCreated {
		h.t.Fatalf("create %s: status %d: %s", typ, r.Status, r.Body)
	}
	id, _ := r.json(h.t)["id"].(string)
	return id
}

// issue returns the first issue's code and diagnostics of an
// OperationOutcome body.
func issue(t testing.TB, r *reply) (code, diag string, expr []string) {
	t.Helper()
	m := r.json(t)
	if m["resourceType"] != "OperationOutcome" {
		t.Fatalf("not an OperationOutcome: %s", r.Body)
	}
	is, _ := m["issue"].([]any)
	if len(is) == 0 {
		t.Fatalf("OperationOutcome without issue: %s", r.Body)
	}
	first, _ := is[0].(map[string]any)
	code, _ = first["code"].(string)
	diag, _ = first["diagnostics"].(string)
	for _, x := range asSlice(first["expression"]) {
		s, _ := x.(string)
		expr = append(expr, s)
	}
	return code, diag, expr
}

func asSlice(v any) []any { s, _ := v.([]any); return s }

const patientJSON = `{"resourceType":"Patient","name":[{"family":"Shaw","given":["Amy"]}],"gender":"female","birthDate":"1987-02-20"}`

// tLog sends log records to the test log.
type tLog struct{ t testing.TB }

func (l tLog) Write(p []byte) (int, error) {
	l.t.Helper()
	l.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

func jsonNum(n int) json.Number { return json.Number(strconv.Itoa(n)) }

func testValidator(t testing.TB) *validate.Validator {
	t.Helper()
	v, err := validate.New()
	if err != nil {
		t.Fatalf("validate.New: %v", err)
	}
	return v
}
