package httpx

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestCORS(t *testing.T) {
	t.Parallel()
	next := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Reached", "yes")
		w.WriteHeader(http.StatusTeapot)
	})
	mode := func(p string) CORSMode {
		switch {
		case strings.HasPrefix(p, "/pub"):
			return CORSPublic
		case strings.HasPrefix(p, "/api"):
			return CORSAllowlist
		}
		return CORSNone
	}
	h := CORS(next, CORSOptions{AllowedOrigins: []string{"https://App1.example:443", "http://localhost:3000"}, Mode: mode})
	off := CORS(next, CORSOptions{Mode: mode})
	type hdr = map[string]string
	for _, tc := range []struct {
		name    string
		h       http.Handler
		method  string
		path    string
		req     hdr
		status  int
		want    hdr // "" = must be absent
		reached bool
	}{
		{"ok/preflight-allowlisted", h, "OPTIONS", "/api/Patient",
			hdr{"Origin": "https://app1.example", "Access-Control-Request-Method": "GET", "Access-Control-Request-Headers": "authorization, content-type"},
			204, hdr{"Access-Control-Allow-Origin": "https://app1.example", "Access-Control-Allow-Credentials": "", "Access-Control-Max-Age": "600"}, false},
		{"ok/preflight-port-normalized", h, "OPTIONS", "/api/Patient",
			hdr{"Origin": "http://LOCALHOST:3000", "Access-Control-Request-Method": "DELETE"},
			204, hdr{"Access-Control-Allow-Origin": "http://LOCALHOST:3000"}, false},
		{"fail/preflight-evil", h, "OPTIONS", "/api/Patient",
			hdr{"Origin": "https://evil.example", "Access-Control-Request-Method": "GET"},
			204, hdr{"Access-Control-Allow-Origin": "", "Access-Control-Allow-Methods": ""}, false},
		{"fail/preflight-null", h, "OPTIONS", "/api/Patient",
			hdr{"Origin": "null", "Access-Control-Request-Method": "GET"}, 204, hdr{"Access-Control-Allow-Origin": ""}, false},
		{"fail/preflight-odd-header", h, "OPTIONS", "/api/Patient",
			hdr{"Origin": "https://app1.example", "Access-Control-Request-Method": "GET", "Access-Control-Request-Headers": "x-evil"},
			204, hdr{"Access-Control-Allow-Origin": ""}, false},
		{"fail/preflight-odd-method", h, "OPTIONS", "/api/Patient",
			hdr{"Origin": "https://app1.example", "Access-Control-Request-Method": "TRACE"}, 204, hdr{"Access-Control-Allow-Origin": ""}, false},
		{"fail/origin-with-path", h, "GET", "/api/Patient", hdr{"Origin": "https://app1.example/x"}, 418, hdr{"Access-Control-Allow-Origin": ""}, true},
		{"ok/simple-allowlisted", h, "GET", "/api/Patient", hdr{"Origin": "https://app1.example"}, 418,
			hdr{"Access-Control-Allow-Origin": "https://app1.example", "Vary": "Origin",
				"Access-Control-Expose-Headers": "Location, Content-Location, ETag, Last-Modified, Retry-After, X-Progress, X-Request-Id, WWW-Authenticate"}, true},
		{"fail/simple-evil", h, "GET", "/api/Patient", hdr{"Origin": "https://evil.example"}, 418,
			hdr{"Access-Control-Allow-Origin": "", "Vary": "Origin", "Access-Control-Expose-Headers": ""}, true},
		{"ok/no-origin", h, "GET", "/api/Patient", nil, 418, hdr{"Access-Control-Allow-Origin": ""}, true},
		{"ok/options-without-preflight", h, "OPTIONS", "/api/Patient", hdr{"Origin": "https://app1.example"}, 418, nil, true},
		{"ok/public-any-origin", h, "GET", "/pub/jwks", hdr{"Origin": "https://evil.example"}, 418,
			hdr{"Access-Control-Allow-Origin": "*", "Access-Control-Allow-Credentials": "", "Vary": ""}, true},
		{"ok/public-preflight-get", h, "OPTIONS", "/pub/jwks", hdr{"Origin": "https://x.example", "Access-Control-Request-Method": "GET"},
			204, hdr{"Access-Control-Allow-Origin": "*", "Access-Control-Allow-Methods": "GET, HEAD"}, false},
		{"fail/public-preflight-post", h, "OPTIONS", "/pub/jwks", hdr{"Origin": "https://x.example", "Access-Control-Request-Method": "POST"},
			204, hdr{"Access-Control-Allow-Origin": ""}, false},
		{"ok/public-when-off", off, "GET", "/pub/jwks", hdr{"Origin": "https://x.example"}, 418, hdr{"Access-Control-Allow-Origin": "*"}, true},
		{"ok/none-page", h, "GET", "/auth/login", hdr{"Origin": "https://app1.example"}, 418,
			hdr{"Access-Control-Allow-Origin": "", "Vary": ""}, true},
		{"ok/none-page-preflight-reaches-handler", h, "OPTIONS", "/auth/login",
			hdr{"Origin": "https://app1.example", "Access-Control-Request-Method": "POST"}, 418, hdr{"Access-Control-Allow-Origin": ""}, true},
		{"ok/off-allowlist-path", off, "OPTIONS", "/api/Patient",
			hdr{"Origin": "https://app1.example", "Access-Control-Request-Method": "GET"}, 418, hdr{"Access-Control-Allow-Origin": "", "Vary": ""}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest(tc.method, tc.path, nil)
			for k, v := range tc.req {
				r.Header.Set(k, v)
			}
			w := httptest.NewRecorder()
			tc.h.ServeHTTP(w, r)
			if w.Code != tc.status {
				t.Errorf("status %d, want %d", w.Code, tc.status)
			}
			if got := w.Header().Get("X-Reached") == "yes"; got != tc.reached {
				t.Errorf("reached handler = %v", got)
			}
			for k, v := range tc.want {
				if got := w.Header().Get(k); got != v {
					t.Errorf("%s = %q, want %q", k, got, v)
				}
			}
			if strings.Contains(tc.name, "preflight-allowlisted") {
				if ah := w.Header().Get("Access-Control-Allow-Headers"); !strings.Contains(strings.ToLower(ah), "authorization") {
					t.Errorf("authorization not allowed: %q", ah)
				}
			}
		})
	}
}

func TestNormalizeOrigin(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"https://App.Example:443": "https://app.example",
		"http://localhost:3000":   "http://localhost:3000",
		"http://[::1]:80":         "http://[::1]",
		"https://a.example/":      "https://a.example",
		"null":                    "",
		"file://x":                "",
		"https://u:p@a.example":   "",
		"https://a.example/p":     "",
		"https://a.example?":      "",
		"https://a.example#":      "",
		"":                        "",
	} {
		got, ok := NormalizeOrigin(in)
		if got != want || ok != (want != "") {
			t.Errorf("NormalizeOrigin(%q) = %q %v, want %q", in, got, ok, want)
		}
	}
}

// FuzzNormalizeOrigin: an accepted origin is canonical (normalizing it
// again changes nothing) and never carries a path, query or credentials.
func FuzzNormalizeOrigin(f *testing.F) {
	for _, s := range []string{"https://a.example", "HTTP://LOCALHOST:80", "http://[::1]:8080", "null", "https://u@x", "https://x/p?q#f", "https://x:99999"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		n, ok := NormalizeOrigin(s)
		if !ok {
			if n != "" {
				t.Fatalf("refused %q but returned %q", s, n)
			}
			return
		}
		again, ok2 := NormalizeOrigin(n)
		if !ok2 || again != n {
			t.Fatalf("%q → %q → %q %v", s, n, again, ok2)
		}
		if !strings.HasPrefix(n, "http://") && !strings.HasPrefix(n, "https://") {
			t.Fatalf("scheme of %q", n)
		}
		if strings.ContainsAny(strings.SplitN(n, "://", 2)[1], "/?#@") {
			t.Fatalf("%q has a path, query, fragment or credentials", n)
		}
	})
}
