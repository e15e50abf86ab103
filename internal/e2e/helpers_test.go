package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strings"
	"testing"

	"github.com/fhirguard/fhirguard/internal/server/servertest"
)

// leak matches what must never reach a client in an error body.
var leak = regexp.MustCompile(`goroutine|panic|\.go:|SELECT|sqlite|pgx`)

type client struct {
	t  testing.TB
	ts *servertest.TestServer
}

func start(t testing.TB) *client {
	t.Helper()
	return &client{t: t, ts: servertest.Start(t)}
}

type reply struct {
	Status int
	Header http.Header
	Body   []byte
}

// do sends method to FHIRBase+path (path starts with "/" or "?" or is
// empty) and checks the invariants of every answer: no 5xx other than 501,
// no internals in an error body. hdr holds "Name: value" pairs; a JSON
// Content-Type is set when body is non-nil unless hdr sets one.
func (c *client) do(method, path string, body io.Reader, hdr ...string) *reply {
	c.t.Helper()
	r, err := c.try(method, path, body, hdr...)
	if err != nil {
		c.t.Fatalf("%s %s: %v", method, path, err)
	}
	if r.Status >= 500 && r.Status != http.StatusNotImplemented {
		c.t.Errorf("%s %s: server error %d: %s", method, path, r.Status, r.Body)
	}
	if r.Status >= 400 && leak.Match(r.Body) {
		c.t.Errorf("%s %s: error body leaks internals: %s", method, path, r.Body)
	}
	return r
}

// try is do without the checks, safe to call from any goroutine.
func (c *client) try(method, path string, body io.Reader, hdr ...string) (*reply, error) {
	req, err := http.NewRequest(method, c.ts.FHIRBase+path, body)
	if err != nil {
		return nil, fmt.Errorf("new request: %w", err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/fhir+json")
	}
	for _, kv := range hdr {
		k, v, _ := strings.Cut(kv, ":")
		req.Header.Set(strings.TrimSpace(k), strings.TrimSpace(v))
	}
	resp, err := c.ts.Client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("send: %w", err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("read body: %w", err)
	}
	return &reply{Status: resp.StatusCode, Header: resp.Header, Body: b}, nil
}

func (c *client) doJSON(method, path, body string, hdr ...string) *reply {
	c.t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	return c.do(method, path, rd, hdr...)
}

// decode parses a JSON body keeping numbers' text.
func decode(t testing.TB, b []byte) map[string]any {
	t.Helper()
	var m map[string]any
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	if err := dec.Decode(&m); err != nil {
		t.Fatalf("body is not a JSON object (%v): %.300s", err, b)
	}
	return m
}

// outcome checks that r is an OperationOutcome and returns its first
// issue's code, diagnostics and expressions.
func outcome(t testing.TB, r *reply) (code, diag string, expr []string) {
	t.Helper()
	if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/fhir+json") {
		t.Errorf("Content-Type %q, want application/fhir+json", ct)
	}
	m := decode(t, r.Body)
	if m["resourceType"] != "OperationOutcome" {
		t.Fatalf("not an OperationOutcome: %.300s", r.Body)
	}
	is, _ := m["issue"].([]any)
	if len(is) == 0 {
		t.Fatalf("OperationOutcome without issue: %s", r.Body)
	}
	first, _ := is[0].(map[string]any)
	code, _ = first["code"].(string)
	diag, _ = first["diagnostics"].(string)
	xs, _ := first["expression"].([]any)
	for _, x := range xs {
		s, _ := x.(string)
		expr = append(expr, s)
	}
	return code, diag, expr
}

// idFromLocation returns the id in {base}/Type/id/_history/n.
func idFromLocation(t testing.TB, loc, typ string) string {
	t.Helper()
	i := strings.Index(loc, "/"+typ+"/")
	if i < 0 {
		t.Fatalf("Location %q does not name a %s", loc, typ)
	}
	rest := loc[i+len(typ)+2:]
	id, _, _ := strings.Cut(rest, "/")
	return id
}

// total returns Bundle.total of GET path.
func (c *client) total(path string) string {
	c.t.Helper()
	r := c.doJSON("GET", path, "")
	if r.Status != http.StatusOK {
		c.t.Fatalf("GET %s: %d %s", path, r.Status, r.Body)
	}
	n, _ := decode(c.t, r.Body)["total"].(json.Number)
	return n.String()
}

func bytesReader(b []byte) io.Reader { return bytes.NewReader(b) }
