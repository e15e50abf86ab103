package httpx

import (
	"net/http"
	"net/url"
	"slices"
	"strings"
)

// CORSMode is how a path answers cross-origin requests (RESIL-05).
type CORSMode int

const (
	// CORSNone: no CORS headers at all (login, consent and other pages a
	// browser must only reach by navigation; operations endpoints).
	CORSNone CORSMode = iota
	// CORSPublic: readable from any origin ("*", never with credentials):
	// discovery documents and the JWKS.
	CORSPublic
	// CORSAllowlist: the request's Origin is echoed only when it is in
	// the configured allowlist (the FHIR API, the token endpoint and the
	// other endpoints browser apps call).
	CORSAllowlist
)

// CORSOptions configures CORS.
type CORSOptions struct {
	// AllowedOrigins are the exact origins (scheme://host[:port]) browser
	// apps may call from. Empty = CORS is off for allowlisted paths.
	AllowedOrigins []string
	// Mode classifies a request path.
	Mode func(path string) CORSMode
}

// CORS headers.
const (
	corsAllowMethods = "GET, HEAD, POST, PUT, PATCH, DELETE"
	// corsPublicMethods are the methods of public paths.
	corsPublicMethods = "GET, HEAD"
	corsAllowHeaders  = "Authorization, Content-Type, Accept, If-Match, If-None-Match, If-None-Exist, If-Modified-Since, Prefer, X-Request-Id, Category"
	// corsExpose are the response headers a browser app may read besides
	// the CORS-safelisted ones.
	corsExpose = "Location, Content-Location, ETag, Last-Modified, Retry-After, X-Progress, X-Request-Id, WWW-Authenticate"
	corsMaxAge = "600"
)

// CORS answers preflight requests and adds the CORS response headers per
// path mode: "*" for public paths, the echoed Origin (with Vary: Origin)
// for allowlisted origins on allowlisted paths, nothing otherwise.
// Access-Control-Allow-Credentials is never sent: the API takes bearer
// tokens, not cookies, and "*" is never combined with credentials. A
// preflight that is refused gets 204 without any Access-Control-Allow-*
// header, so the browser blocks the real request.
func CORS(next http.Handler, o CORSOptions) http.Handler {
	allowed := make(map[string]bool, len(o.AllowedOrigins))
	for _, a := range o.AllowedOrigins {
		if n, ok := NormalizeOrigin(a); ok {
			allowed[n] = true
		}
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mode := CORSNone
		if o.Mode != nil {
			mode = o.Mode(r.URL.Path)
		}
		if mode == CORSNone || (mode == CORSAllowlist && len(allowed) == 0) {
			next.ServeHTTP(w, r)
			return
		}
		h := w.Header()
		origin := r.Header.Get("Origin")
		// Public: any origin, answered "*", reads only.
		ok, allowOrigin, methods, methodList := origin != "", "*", corsPublicMethods, corsPublicMethodList
		if mode == CORSAllowlist {
			h.Add("Vary", "Origin")
			n, valid := NormalizeOrigin(origin)
			ok, allowOrigin, methods, methodList = valid && allowed[n], origin, corsAllowMethods, corsAllowMethodList
		}
		if r.Method != http.MethodOptions || r.Header.Get("Access-Control-Request-Method") == "" {
			if ok {
				h.Set("Access-Control-Allow-Origin", allowOrigin)
				h.Set("Access-Control-Expose-Headers", corsExpose)
			}
			next.ServeHTTP(w, r)
			return
		}
		// Preflight: answered here, never reaching authentication.
		h.Add("Vary", "Access-Control-Request-Method")
		h.Add("Vary", "Access-Control-Request-Headers")
		if ok && slices.Contains(methodList, r.Header.Get("Access-Control-Request-Method")) &&
			allowedHeaders(r.Header.Values("Access-Control-Request-Headers")) {
			h.Set("Access-Control-Allow-Origin", allowOrigin)
			h.Set("Access-Control-Allow-Methods", methods)
			h.Set("Access-Control-Allow-Headers", corsAllowHeaders)
			h.Set("Access-Control-Max-Age", corsMaxAge)
		}
		w.WriteHeader(http.StatusNoContent)
	})
}

// The allowed methods and request headers as lists.
var (
	corsAllowMethodList  = strings.Split(corsAllowMethods, ", ")
	corsPublicMethodList = strings.Split(corsPublicMethods, ", ")
	corsAllowHeaderList  = strings.Split(corsAllowHeaders, ", ")
)

// allowedHeaders reports whether every requested header is allowed.
func allowedHeaders(vals []string) bool {
	for _, v := range vals {
		for _, name := range strings.Split(v, ",") {
			name = strings.TrimSpace(name)
			if name != "" && !slices.ContainsFunc(corsAllowHeaderList, func(a string) bool { return strings.EqualFold(a, name) }) {
				return false
			}
		}
	}
	return true
}

// NormalizeOrigin returns the canonical form of a web origin
// (lower-case scheme://host[:port], default ports dropped); ok is false
// for anything else ("null", paths, queries, fragments, credentials,
// other schemes). Configured origins are checked with it too.
func NormalizeOrigin(s string) (string, bool) {
	if s == "" || s == "null" || len(s) > 300 || strings.ContainsAny(s, "?#") {
		return "", false
	}
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil ||
		(u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" || u.Opaque != "" {
		return "", false
	}
	host := strings.ToLower(u.Hostname())
	if host == "" || strings.ContainsAny(host, "/?#@%") {
		return "", false
	}
	port := u.Port()
	if (u.Scheme == "https" && port == "443") || (u.Scheme == "http" && port == "80") {
		port = ""
	}
	out := u.Scheme + "://"
	if strings.Contains(host, ":") {
		out += "[" + host + "]"
	} else {
		out += host
	}
	if port != "" {
		out += ":" + port
	}
	return out, true
}
