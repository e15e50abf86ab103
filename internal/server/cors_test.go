package server_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/fhirguard/fhirguard/internal/config"
	"github.com/fhirguard/fhirguard/internal/server/servertest"
)

// TestCORS is RESIL-05's Verify line through the whole server: preflight
// from an allowlisted origin, none for evil or null origins, "*" on
// discovery and the JWKS, nothing on the login pages, rest.security.cors.
func TestCORS(t *testing.T) {
	t.Parallel()
	ts := servertest.Start(t, servertest.WithConfig(func(c *config.Config) {
		c.CORS.AllowedOrigins = []string{"https://app1.example"}
	}))
	do := func(method, u string, hdr map[string]string, c *http.Client) *http.Response {
		t.Helper()
		req, _ := http.NewRequest(method, u, nil)
		for k, v := range hdr {
			req.Header.Set(k, v)
		}
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp
	}
	preflight := func(origin string) map[string]string {
		return map[string]string{"Origin": origin, "Access-Control-Request-Method": "GET", "Access-Control-Request-Headers": "authorization"}
	}

	resp := do("OPTIONS", ts.FHIRBase+"/Patient", preflight("https://app1.example"), ts.Anonymous)
	if resp.StatusCode != 204 || resp.Header.Get("Access-Control-Allow-Origin") != "https://app1.example" ||
		!strings.Contains(strings.ToLower(resp.Header.Get("Access-Control-Allow-Headers")), "authorization") ||
		resp.Header.Get("Access-Control-Allow-Credentials") != "" || !strings.Contains(strings.Join(resp.Header.Values("Vary"), ","), "Origin") {
		t.Errorf("ok/preflight-app1: %d %v", resp.StatusCode, resp.Header)
	}
	for _, o := range []string{"https://evil.example", "null"} {
		if resp := do("OPTIONS", ts.FHIRBase+"/Patient", preflight(o), ts.Anonymous); resp.Header.Get("Access-Control-Allow-Origin") != "" {
			t.Errorf("fail/preflight-%s: allow-origin %q", o, resp.Header.Get("Access-Control-Allow-Origin"))
		}
	}
	// The real request: origin echoed, headers exposed; and a 401 too
	// (the app must be able to read the error).
	resp = do("GET", ts.FHIRBase+"/Patient", map[string]string{"Origin": "https://app1.example"}, ts.Client)
	if resp.StatusCode != 200 || resp.Header.Get("Access-Control-Allow-Origin") != "https://app1.example" ||
		!strings.Contains(resp.Header.Get("Access-Control-Expose-Headers"), "Location, Content-Location, ETag") ||
		!strings.Contains(resp.Header.Get("Access-Control-Expose-Headers"), "Retry-After, X-Progress") {
		t.Errorf("ok/get-app1: %d %v", resp.StatusCode, resp.Header)
	}
	resp = do("GET", ts.FHIRBase+"/Patient", map[string]string{"Origin": "https://app1.example"}, ts.Anonymous)
	if resp.StatusCode != 401 || resp.Header.Get("Access-Control-Allow-Origin") != "https://app1.example" {
		t.Errorf("ok/401-readable: %d %v", resp.StatusCode, resp.Header)
	}
	resp = do("GET", ts.FHIRBase+"/Patient", map[string]string{"Origin": "https://evil.example"}, ts.Client)
	if resp.Header.Get("Access-Control-Allow-Origin") != "" {
		t.Errorf("fail/get-evil: %v", resp.Header)
	}
	// Token endpoint: allowlisted (browser apps exchange codes with fetch).
	resp = do("OPTIONS", ts.URL+"/auth/token", map[string]string{"Origin": "https://app1.example", "Access-Control-Request-Method": "POST",
		"Access-Control-Request-Headers": "content-type"}, ts.Anonymous)
	if resp.Header.Get("Access-Control-Allow-Origin") != "https://app1.example" {
		t.Errorf("ok/token-preflight: %v", resp.Header)
	}
	// Discovery and the JWKS: "*" for any origin, never with credentials.
	for _, u := range []string{ts.FHIRBase + "/.well-known/smart-configuration", ts.FHIRBase + "/.well-known/openid-configuration", ts.URL + "/auth/jwks", ts.FHIRBase + "/metadata"} {
		resp := do("GET", u, map[string]string{"Origin": "https://evil.example"}, ts.Anonymous)
		if resp.StatusCode != 200 || resp.Header.Get("Access-Control-Allow-Origin") != "*" || resp.Header.Get("Access-Control-Allow-Credentials") != "" {
			t.Errorf("ok/public %s: %d %v", u, resp.StatusCode, resp.Header)
		}
	}
	// Pages: never CORS, whatever the origin.
	for _, u := range []string{ts.URL + "/auth/authorize?client_id=x", ts.URL + "/auth/login", ts.URL + "/auth/consent", ts.URL + "/auth/logout"} {
		for _, m := range []string{"GET", "OPTIONS"} {
			h := map[string]string{"Origin": "https://app1.example"}
			if m == "OPTIONS" {
				h = preflight("https://app1.example")
			}
			if resp := do(m, u, h, ts.Anonymous); resp.Header.Get("Access-Control-Allow-Origin") != "" {
				t.Errorf("fail/page-cors %s %s: %v", m, u, resp.Header)
			}
		}
	}
	if sec := capabilitySecurity(t, ts); sec["cors"] != true {
		t.Errorf("rest.security.cors = %v, want true", sec["cors"])
	}

	// Without cors.allowed_origins: no CORS on the API, cors false.
	off := servertest.Start(t)
	if resp := do("OPTIONS", off.FHIRBase+"/Patient", preflight("https://app1.example"), off.Anonymous); resp.Header.Get("Access-Control-Allow-Origin") != "" {
		t.Errorf("fail/off-preflight: %v", resp.Header)
	}
	if sec := capabilitySecurity(t, off); sec["cors"] != false {
		t.Errorf("rest.security.cors = %v, want false", sec["cors"])
	}
}

func capabilitySecurity(t *testing.T, ts *servertest.TestServer) map[string]any {
	t.Helper()
	resp, err := ts.Anonymous.Get(ts.FHIRBase + "/metadata")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var cs struct {
		Rest []struct {
			Security map[string]any `json:"security"`
		} `json:"rest"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&cs); err != nil || len(cs.Rest) == 0 {
		t.Fatalf("metadata: %v", err)
	}
	return cs.Rest[0].Security
}
