package authz_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/fhirguard/fhirguard/internal/clock"
	"github.com/fhirguard/fhirguard/internal/config"
	"github.com/fhirguard/fhirguard/internal/server"
	"github.com/fhirguard/fhirguard/internal/server/servertest"
)

// smartConfig fetches the SMART discovery document.
func smartConfig(t *testing.T, ts *servertest.TestServer) map[string]any {
	t.Helper()
	return wellKnown(t, ts, "smart-configuration")
}

// wellKnown fetches the discovery document {FHIR base}/.well-known/name,
// which must be readable from any origin.
func wellKnown(t *testing.T, ts *servertest.TestServer, name string) map[string]any {
	t.Helper()
	resp, err := ts.Anonymous.Get(ts.FHIRBase + "/.well-known/" + name)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var m map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&m); err != nil || resp.StatusCode != 200 {
		t.Fatalf("%s: %d %v", name, resp.StatusCode, err)
	}
	if resp.Header.Get("Access-Control-Allow-Origin") != "*" {
		t.Errorf("%s must be readable from any origin", name)
	}
	return m
}

func TestDiscovery(t *testing.T) {
	t.Parallel()
	ts := servertest.Start(t)
	m := smartConfig(t, ts)
	for _, k := range []string{"issuer", "jwks_uri", "authorization_endpoint", "token_endpoint", "registration_endpoint",
		"introspection_endpoint", "revocation_endpoint", "scopes_supported"} {
		if s, _ := m[k].(string); s == "" && k != "scopes_supported" {
			t.Errorf("smart-configuration lacks %s", k)
		}
	}
	has := func(key string, want ...string) {
		list, _ := m[key].([]any)
		for _, w := range want {
			found := false
			for _, v := range list {
				found = found || v == w
			}
			if !found {
				t.Errorf("%s lacks %q: %v", key, w, list)
			}
		}
	}
	has("grant_types_supported", "authorization_code", "client_credentials")
	has("token_endpoint_auth_methods_supported", "private_key_jwt", "client_secret_basic", "none")
	has("token_endpoint_auth_signing_alg_values_supported", "RS384", "ES384")
	has("capabilities", "launch-ehr", "launch-standalone", "client-public", "client-confidential-symmetric",
		"client-confidential-asymmetric", "sso-openid-connect", "context-ehr-patient", "context-standalone-patient", "context-standalone-encounter",
		"permission-v1", "permission-v2", "permission-offline", "authorize-post")
	if cc, _ := m["code_challenge_methods_supported"].([]any); len(cc) != 1 || cc[0] != "S256" {
		t.Errorf("code_challenge_methods_supported = %v, want exactly [S256]", cc)
	}
	if m["issuer"] != ts.FHIRBase {
		t.Errorf("issuer %v", m["issuer"])
	}
	// OIDC discovery and the JWKS through go-oidc.
	if _, err := oidc.NewProvider(context.Background(), ts.FHIRBase); err != nil {
		t.Fatalf("go-oidc discovery: %v", err)
	}
	resp, err := ts.Anonymous.Get(m["jwks_uri"].(string))
	if err != nil {
		t.Fatal(err)
	}
	var set struct {
		Keys []map[string]any `json:"keys"`
	}
	_ = json.NewDecoder(resp.Body).Decode(&set)
	resp.Body.Close()
	algs := map[string]bool{}
	for _, k := range set.Keys {
		if k["kid"] == "" || k["d"] != nil {
			t.Errorf("JWKS key without kid or with private part: %v", k)
		}
		algs[k["alg"].(string)] = true
	}
	if !algs["ES256"] || !algs["RS256"] {
		t.Errorf("JWKS algorithms %v", algs)
	}

	// The CapabilityStatement declares SMART with the same endpoints.
	resp, err = ts.Anonymous.Get(ts.FHIRBase + "/metadata")
	if err != nil {
		t.Fatal(err)
	}
	var cs struct {
		Rest []struct {
			Security struct {
				Service []struct {
					Coding []struct{ System, Code string } `json:"coding"`
				} `json:"service"`
				Extension []struct {
					URL       string `json:"url"`
					Extension []struct {
						URL      string `json:"url"`
						ValueURI string `json:"valueUri"`
					} `json:"extension"`
				} `json:"extension"`
			} `json:"security"`
		} `json:"rest"`
	}
	_ = json.NewDecoder(resp.Body).Decode(&cs)
	resp.Body.Close()
	sec := cs.Rest[0].Security
	if len(sec.Service) != 1 || sec.Service[0].Coding[0].Code != "SMART-on-FHIR" ||
		sec.Service[0].Coding[0].System != "http://terminology.hl7.org/CodeSystem/restful-security-service" {
		t.Errorf("rest.security.service: %+v", sec.Service)
	}
	uris := map[string]string{}
	for _, e := range sec.Extension {
		if e.URL == "http://fhir-registry.smarthealthit.org/StructureDefinition/oauth-uris" {
			for _, x := range e.Extension {
				uris[x.URL] = x.ValueURI
			}
		}
	}
	for k, disc := range map[string]string{"authorize": "authorization_endpoint", "token": "token_endpoint",
		"register": "registration_endpoint", "introspect": "introspection_endpoint", "revoke": "revocation_endpoint"} {
		if uris[k] == "" || uris[k] != m[disc] {
			t.Errorf("oauth-uris %s = %q, smart-configuration %s = %v", k, uris[k], disc, m[disc])
		}
	}
}

// oauthConfig is app1 as a golang.org/x/oauth2 client, endpoints from
// discovery.
func (f *fixture) oauthConfig(t *testing.T, clientID, secret string, scopes ...string) *oauth2.Config {
	m := smartConfig(t, f.ts)
	style := oauth2.AuthStyleInParams
	if secret != "" {
		style = oauth2.AuthStyleInHeader
	}
	return &oauth2.Config{ClientID: clientID, ClientSecret: secret, RedirectURL: f.redirect, Scopes: scopes,
		Endpoint: oauth2.Endpoint{AuthURL: m["authorization_endpoint"].(string), TokenURL: m["token_endpoint"].(string), AuthStyle: style}}
}

// fhirGet reads a FHIR URL with a token.
func fhirGet(t *testing.T, ts *servertest.TestServer, token, u string) (int, string) {
	t.Helper()
	resp, err := ts.WithToken(token).Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestCodeFlowWithLibraries(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	ctx := context.Background()
	cfg := f.oauthConfig(t, "app1", "", "openid", "fhirUser", "launch/patient", "offline_access", "patient/*.rs")
	verifier := oauth2.GenerateVerifier()
	authURL := cfg.AuthCodeURL("st1", oauth2.S256ChallengeOption(verifier),
		oauth2.SetAuthURLParam("aud", f.ts.FHIRBase), oauth2.SetAuthURLParam("nonce", "n-123"))
	b := newBrowser()
	p := f.login(t, b, b.get(t, authURL), "alice", alicePW)
	if strings.Contains(p.body, "data-patient-id") {
		t.Fatal("a patient user gets no picker")
	}
	q := f.redirectParams(t, f.consent(t, b, p, "allow", nil))
	if q.Get("state") != "st1" || q.Get("iss") != f.ts.FHIRBase {
		t.Fatalf("redirect %v", q)
	}
	tok, err := cfg.Exchange(ctx, q.Get("code"), oauth2.VerifierOption(verifier))
	if err != nil {
		t.Fatalf("oauth2 Exchange: %v", err)
	}
	if tok.Extra("patient") != "pA" || tok.RefreshToken == "" || tok.TokenType != "Bearer" {
		t.Fatalf("token: patient %v refresh %q type %q", tok.Extra("patient"), tok.RefreshToken, tok.TokenType)
	}
	if nb, ok := tok.Extra("need_patient_banner").(bool); !ok || !nb {
		t.Errorf("need_patient_banner %v", tok.Extra("need_patient_banner"))
	}
	if tok.Extra("smart_style_url") == nil {
		t.Errorf("no smart_style_url")
	}
	if sc, _ := tok.Extra("scope").(string); sc != "openid fhirUser launch/patient offline_access patient/*.rs" {
		t.Errorf("granted scope %q", sc)
	}

	// go-oidc verifies the id_token against discovery and the JWKS.
	provider, err := oidc.NewProvider(ctx, f.ts.FHIRBase)
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := tok.Extra("id_token").(string)
	idt, err := provider.Verifier(&oidc.Config{ClientID: "app1"}).Verify(ctx, raw)
	if err != nil {
		t.Fatalf("go-oidc Verify: %v", err)
	}
	var claims struct {
		FHIRUser string `json:"fhirUser"`
	}
	_ = idt.Claims(&claims)
	if idt.Nonce != "n-123" || idt.Subject != "alice" || claims.FHIRUser != f.ts.FHIRBase+"/Patient/pA" {
		t.Fatalf("id_token: nonce %q sub %q fhirUser %q", idt.Nonce, idt.Subject, claims.FHIRUser)
	}
	// The token works on the FHIR API, and the fhirUser URL resolves.
	if code, body := fhirGet(t, f.ts, tok.AccessToken, claims.FHIRUser); code != 200 {
		t.Fatalf("GET fhirUser: %d %s", code, body)
	}

	// Refresh with rotation through the library.
	t2, err := cfg.TokenSource(ctx, &oauth2.Token{RefreshToken: tok.RefreshToken}).Token()
	if err != nil {
		t.Fatalf("refresh: %v", err)
	}
	if t2.RefreshToken == "" || t2.RefreshToken == tok.RefreshToken || t2.AccessToken == tok.AccessToken {
		t.Fatalf("refresh must rotate: %+v", t2)
	}
	// Reusing the old refresh token: invalid_grant, and its successor dies.
	ans := postForm(t, f.ts.Anonymous, cfg.Endpoint.TokenURL, url.Values{"grant_type": {"refresh_token"},
		"refresh_token": {tok.RefreshToken}, "client_id": {"app1"}}, "", "")
	if ans.status != 400 || ans.body["error"] != "invalid_grant" {
		t.Fatalf("fail/refresh-reuse: %d %v", ans.status, ans.body)
	}
	ans = postForm(t, f.ts.Anonymous, cfg.Endpoint.TokenURL, url.Values{"grant_type": {"refresh_token"},
		"refresh_token": {t2.RefreshToken}, "client_id": {"app1"}}, "", "")
	if ans.status != 400 || ans.body["error"] != "invalid_grant" {
		t.Fatalf("fail/successor-revoked: %d %v", ans.status, ans.body)
	}
	if code, _ := fhirGet(t, f.ts, t2.AccessToken, f.ts.FHIRBase+"/Patient/pA"); code != 401 {
		t.Fatalf("the family's access tokens are revoked: %d", code)
	}
}

func TestCodeReuseRevokes(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	verifier, challenge := pkce()
	code := f.codeFor(t, "app1", "patient/*.rs launch/patient", "alice", alicePW, challenge, nil)
	form := url.Values{"grant_type": {"authorization_code"}, "code": {code}, "code_verifier": {verifier},
		"redirect_uri": {f.redirect}, "client_id": {"app1"}}
	tokenURL := f.ts.URL + "/auth/token"
	first := postForm(t, f.ts.Anonymous, tokenURL, form, "", "")
	if first.status != 200 {
		t.Fatalf("first exchange: %d %v", first.status, first.body)
	}
	at := first.body["access_token"].(string)
	if code, _ := fhirGet(t, f.ts, at, f.ts.FHIRBase+"/Patient/pA"); code != 200 {
		t.Fatalf("token before reuse: %d", code)
	}
	second := postForm(t, f.ts.Anonymous, tokenURL, form, "", "")
	if second.status != 400 || second.body["error"] != "invalid_grant" {
		t.Fatalf("fail/code-reuse: %d %v", second.status, second.body)
	}
	if code, _ := fhirGet(t, f.ts, at, f.ts.FHIRBase+"/Patient/pA"); code != 401 {
		t.Fatalf("the first access token must be revoked after code reuse: %d", code)
	}
}

func TestAuthorizeBadInput(t *testing.T) {
	t.Parallel()
	clk := clock.NewFake(time.Now())
	f := newFixture(t, servertest.WithServerOptions(server.WithClock(clk)))
	tokenURL := f.ts.URL + "/auth/token"
	_, challenge := pkce()
	b := newBrowser()

	// Errors redirected to the client, no code.
	for _, tc := range []struct {
		name  string
		edit  url.Values
		error string
	}{
		{"fail/pkce-missing", url.Values{"code_challenge": {""}, "code_challenge_method": {""}}, "invalid_request"},
		{"fail/pkce-plain", url.Values{"code_challenge_method": {"plain"}}, "invalid_request"},
		{"fail/pkce-bad-challenge", url.Values{"code_challenge": {"short"}}, "invalid_request"},
		{"fail/wrong-aud", url.Values{"aud": {"https://evil.example/fhir"}}, "invalid_request"},
		{"fail/no-aud", url.Values{"aud": {""}}, "invalid_request"},
		{"fail/response-type-token", url.Values{"response_type": {"token"}}, "unsupported_response_type"},
		{"fail/malformed-scope", url.Values{"scope": {"patient/Observation.sr"}}, "invalid_scope"},
		{"fail/bad-scope-chars", url.Values{"scope": {"patient/Obs\"ervation.rs"}}, "invalid_scope"},
		{"fail/no-state", url.Values{"state": {""}}, "invalid_request"},
		{"fail/launch-scope-without-launch", url.Values{"scope": {"launch patient/*.rs"}}, "invalid_request"},
		{"fail/unknown-launch", url.Values{"launch": {"nope"}}, "invalid_request"},
		{"fail/btg-unknown-purpose", url.Values{"purpose_of_use": {"XYZ"}}, "invalid_request"},
	} {
		u := f.authorizeURL("app1", "patient/*.rs", "s-"+tc.name, challenge, tc.edit)
		p := b.get(t, u)
		q := f.redirectParams(t, p)
		if q.Get("error") != tc.error || q.Get("code") != "" {
			t.Errorf("%s: %v", tc.name, q)
		}
		if tc.name != "fail/no-state" && q.Get("state") != "s-"+tc.name {
			t.Errorf("%s: state not echoed: %v", tc.name, q)
		}
	}

	// Errors shown on a page: no redirect to an unregistered place.
	for _, tc := range []struct {
		name string
		u    string
	}{
		{"fail/redirect-mismatch", strings.Replace(f.authorizeURL("app1", "patient/*.rs", "s", challenge, nil),
			url.QueryEscape(f.redirect), url.QueryEscape("https://evil.example/cb"), 1)},
		{"fail/unknown-client", f.authorizeURL("nobody", "patient/*.rs", "s", challenge, nil)},
		{"fail/oversized-state", f.authorizeURL("app1", "patient/*.rs", strings.Repeat("s", 9000), challenge, nil)},
	} {
		p := b.get(t, tc.u)
		if p.status != 400 || p.location != "" || !strings.Contains(p.header.Get("Content-Type"), "text/html") {
			t.Errorf("%s: %d location %q", tc.name, p.status, p.location)
		}
	}

	// POST works like GET.
	q, _ := url.Parse(f.authorizeURL("app1", "patient/*.rs", "s", challenge, nil))
	if p := b.post(t, f.ts.URL+"/auth/authorize", q.Query()); p.status != 200 || !strings.Contains(p.body, `name="password"`) {
		t.Errorf("ok/authorize-post: %d", p.status)
	}

	// Wrong verifier, expired code, code of another client.
	verifier, challenge := pkce()
	code := f.codeFor(t, "app1", "patient/*.rs", "alice", alicePW, challenge, nil)
	bad := url.Values{"grant_type": {"authorization_code"}, "code": {code}, "code_verifier": {strings.Repeat("x", 43)},
		"redirect_uri": {f.redirect}, "client_id": {"app1"}}
	if ans := postForm(t, f.ts.Anonymous, tokenURL, bad, "", ""); ans.status != 400 || ans.body["error"] != "invalid_grant" {
		t.Errorf("fail/wrong-verifier: %d %v", ans.status, ans.body)
	}
	other := url.Values{"grant_type": {"authorization_code"}, "code": {code}, "code_verifier": {verifier}, "redirect_uri": {f.redirect}}
	if ans := postForm(t, f.ts.Anonymous, tokenURL, other, "app2", f.app2Secret); ans.status != 400 || ans.body["error"] != "invalid_grant" {
		t.Errorf("fail/code-of-other-client: %d %v", ans.status, ans.body)
	}
	noVerifier := url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {f.redirect}, "client_id": {"app1"}}
	if ans := postForm(t, f.ts.Anonymous, tokenURL, noVerifier, "", ""); ans.status != 400 || ans.body["error"] != "invalid_request" {
		t.Errorf("fail/no-verifier: %d %v", ans.status, ans.body)
	}
	clk.Advance(61 * time.Second)
	good := url.Values{"grant_type": {"authorization_code"}, "code": {code}, "code_verifier": {verifier}, "redirect_uri": {f.redirect}, "client_id": {"app1"}}
	if ans := postForm(t, f.ts.Anonymous, tokenURL, good, "", ""); ans.status != 400 || ans.body["error"] != "invalid_grant" {
		t.Errorf("fail/expired-code: %d %v", ans.status, ans.body)
	}

	// A broader refresh scope is invalid_scope; a narrower one is fine.
	verifier, challenge = pkce()
	code = f.codeFor(t, "app2", "patient/Patient.rs offline_access launch/patient", "alice", alicePW, challenge, nil)
	ans := postForm(t, f.ts.Anonymous, tokenURL, url.Values{"grant_type": {"authorization_code"}, "code": {code},
		"code_verifier": {verifier}, "redirect_uri": {f.redirect}}, "app2", f.app2Secret)
	rt, _ := ans.body["refresh_token"].(string)
	if ans.status != 200 || rt == "" {
		t.Fatalf("app2 exchange: %d %v", ans.status, ans.body)
	}
	if ans := postForm(t, f.ts.Anonymous, tokenURL, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt},
		"scope": {"patient/*.rs offline_access"}}, "app2", f.app2Secret); ans.status != 400 || ans.body["error"] != "invalid_scope" {
		t.Errorf("fail/broader-refresh-scope: %d %v", ans.status, ans.body)
	}
	ans = postForm(t, f.ts.Anonymous, tokenURL, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt},
		"scope": {"patient/Patient.r"}}, "app2", f.app2Secret)
	if ans.status != 200 || ans.body["scope"] != "patient/Patient.r" {
		t.Errorf("ok/narrower-refresh-scope: %d %v", ans.status, ans.body)
	}
}

func TestLoginConsentPages(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	_, challenge := pkce()
	b := newBrowser()
	start := b.get(t, f.authorizeURL("app1", "patient/*.rs patient/Observation.rs launch/patient", "s1", challenge, nil))
	csp := start.header.Get("Content-Security-Policy")
	for _, want := range []string{"default-src 'none'", "frame-ancestors 'none'", "form-action 'self' http://127.0.0.1:9"} {
		if !strings.Contains(csp, want) {
			t.Errorf("login page CSP %q lacks %q", csp, want)
		}
	}
	if strings.Contains(start.body, "<script") || strings.Contains(start.body, "style=") || !strings.Contains(start.body, `<label for="password">`) {
		t.Errorf("login page: inline script/style or missing labels")
	}
	var cookie string
	for _, c := range start.header.Values("Set-Cookie") {
		cookie += c
	}
	if !strings.Contains(cookie, "HttpOnly") || !strings.Contains(cookie, "SameSite=Lax") {
		t.Errorf("session cookie attributes: %s", cookie)
	}
	// Unknown user and wrong password: the same page.
	p1 := b.post(t, f.ts.URL+"/auth/login", url.Values{"csrf": {csrf(t, start)}, "username": {"nobody"}, "password": {"x"}})
	p2 := b.post(t, f.ts.URL+"/auth/login", url.Values{"csrf": {csrf(t, start)}, "username": {"alice"}, "password": {"x"}})
	if p1.status != 401 || p1.body != p2.body {
		t.Errorf("fail/login: unknown user and wrong password must look identical (%d/%d)", p1.status, p2.status)
	}
	// Login without CSRF token → 403.
	if p := b.post(t, f.ts.URL+"/auth/login", url.Values{"username": {"alice"}, "password": {alicePW}}); p.status != 403 {
		t.Errorf("fail/login-without-csrf: %d", p.status)
	}
	authURL, _ := url.Parse(f.ts.URL + "/auth/")
	before := b.c.Jar.Cookies(authURL)
	consent := f.login(t, b, start, "alice", alicePW)
	authzCookie := func(cs []*http.Cookie) string {
		for _, c := range cs {
			if c.Name == "fhirguard_authz" {
				return c.Value
			}
		}
		return ""
	}
	if after := b.c.Jar.Cookies(authURL); len(before) != 1 || authzCookie(after) == "" || authzCookie(before) == authzCookie(after) {
		t.Errorf("the session id must change at login: %v → %v", before, after)
	}
	if !strings.Contains(consent.body, "App One") || !strings.Contains(consent.body, "Alice Able") ||
		!strings.Contains(consent.body, "Read and search Observation records for the selected patient") {
		t.Errorf("consent page must name the app and the scopes in words:\n%s", consent.body)
	}
	if !strings.Contains(consent.header.Get("Content-Security-Policy"), "form-action 'self' http://127.0.0.1:9") {
		t.Errorf("consent CSP must allow the redirect to the client: %s", consent.header.Get("Content-Security-Policy"))
	}
	// Consent without CSRF token → 403.
	if p := b.post(t, f.ts.URL+"/auth/consent", url.Values{"decision": {"allow"}}); p.status != 403 {
		t.Errorf("fail/consent-without-csrf: %d %s", p.status, p.body)
	}
	if p := b.post(t, f.ts.URL+"/auth/consent", url.Values{"decision": {"allow"}, "csrf": {"forged"}}); p.status != 403 {
		t.Errorf("fail/consent-forged-csrf: %d", p.status)
	}
	// Untick patient/Observation.rs: the grant lacks it.
	p := f.consent(t, b, consent, "allow", []string{"patient/*.rs"})
	q := f.redirectParams(t, p)
	if q.Get("code") == "" {
		t.Fatalf("no code: %v", q)
	}

	// Deny → access_denied with state.
	b2 := newBrowser()
	c2 := f.login(t, b2, b2.get(t, f.authorizeURL("app1", "patient/*.rs", "s2", challenge, nil)), "alice", alicePW)
	q = f.redirectParams(t, f.consent(t, b2, c2, "deny", nil))
	if q.Get("error") != "access_denied" || q.Get("state") != "s2" || q.Get("code") != "" {
		t.Errorf("fail/deny: %v", q)
	}
}

func TestUntickedScopeNotGranted(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	verifier, challenge := pkce()
	b := newBrowser()
	consent := f.login(t, b, b.get(t, f.authorizeURL("app1", "launch/patient patient/Patient.rs patient/Observation.rs", "s", challenge, nil)), "alice", alicePW)
	q := f.redirectParams(t, f.consent(t, b, consent, "allow", []string{"patient/Patient.rs"}))
	ans := postForm(t, f.ts.Anonymous, f.ts.URL+"/auth/token", url.Values{"grant_type": {"authorization_code"}, "code": {q.Get("code")},
		"code_verifier": {verifier}, "redirect_uri": {f.redirect}, "client_id": {"app1"}}, "", "")
	if ans.status != 200 || ans.body["scope"] != "launch/patient patient/Patient.rs" {
		t.Fatalf("granted %v", ans.body)
	}
}

func TestLockout(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	_, challenge := pkce()
	b := newBrowser()
	start := b.get(t, f.authorizeURL("app1", "patient/*.rs", "s", challenge, nil))
	tok := csrf(t, start)
	var first string
	for i := range 5 {
		p := b.post(t, f.ts.URL+"/auth/login", url.Values{"csrf": {tok}, "username": {"alice"}, "password": {"wrong"}})
		if i == 0 {
			first = p.body
		}
	}
	p := b.post(t, f.ts.URL+"/auth/login", url.Values{"csrf": {tok}, "username": {"alice"}, "password": {alicePW}})
	if p.status != 401 || p.body != first {
		t.Fatalf("fail/locked: the right password within the lockout must fail with the same page: %d", p.status)
	}
}

func TestEHRLaunch(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	adm := f.ts.Server.Authz().Admin()
	ctx := context.Background()
	launch, err := adm.NewLaunch(ctx, "app1", "drA", "pA", "e1")
	if err != nil {
		t.Fatal(err)
	}
	verifier, challenge := pkce()
	code := f.codeFor(t, "app1", "launch openid fhirUser patient/*.rs", "drA", drPW, challenge, url.Values{"launch": {launch}})
	ans := postForm(t, f.ts.Anonymous, f.ts.URL+"/auth/token", url.Values{"grant_type": {"authorization_code"}, "code": {code},
		"code_verifier": {verifier}, "redirect_uri": {f.redirect}, "client_id": {"app1"}}, "", "")
	if ans.status != 200 || ans.body["patient"] != "pA" || ans.body["encounter"] != "e1" ||
		ans.body["scope"] != "launch openid fhirUser patient/*.rs" || ans.body["id_token"] == nil {
		t.Fatalf("ok/ehr-launch: %d %v", ans.status, ans.body)
	}
	if nb, ok := ans.body["need_patient_banner"].(bool); !ok || nb {
		t.Errorf("an EHR launch needs no banner: %v", ans.body["need_patient_banner"])
	}
	// Reused, or by another client.
	b := newBrowser()
	p := b.get(t, f.authorizeURL("app1", "launch patient/*.rs", "s", challenge, url.Values{"launch": {launch}}))
	if q := f.redirectParams(t, p); q.Get("error") != "invalid_request" {
		t.Errorf("fail/launch-reused: %v", q)
	}
	l2, _ := adm.NewLaunch(ctx, "app1", "drA", "pA", "")
	p = b.get(t, f.authorizeURL("app2", "launch patient/*.rs", "s", challenge, url.Values{"launch": {l2}}))
	if q := f.redirectParams(t, p); q.Get("error") != "invalid_request" {
		t.Errorf("fail/launch-other-client: %v", q)
	}
}

func TestPickerAndBTG(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	verifier, challenge := pkce()
	b := newBrowser()
	p := f.login(t, b, b.get(t, f.authorizeURL("app1", "launch/patient patient/*.rs", "s", challenge, nil)), "drA", drPW)
	if !strings.Contains(p.body, `data-patient-id="pA"`) || !strings.Contains(p.body, `data-patient-id="pB"`) || !strings.Contains(p.body, "Bob Bee") {
		t.Fatalf("picker: %s", p.body)
	}
	if q := b.post(t, f.ts.URL+"/auth/pick", url.Values{"patient": {"pB"}}); q.status != 403 {
		t.Errorf("fail/pick-without-csrf: %d", q.status)
	}
	p = b.post(t, f.ts.URL+"/auth/pick", url.Values{"csrf": {csrf(t, p)}, "patient": {"pB"}})
	q := f.redirectParams(t, f.consent(t, b, p, "allow", nil))
	ans := postForm(t, f.ts.Anonymous, f.ts.URL+"/auth/token", url.Values{"grant_type": {"authorization_code"}, "code": {q.Get("code")},
		"code_verifier": {verifier}, "redirect_uri": {f.redirect}, "client_id": {"app1"}}, "", "")
	if ans.body["patient"] != "pB" {
		t.Fatalf("ok/picker: %v", ans.body)
	}

	// Break the glass: erdoc holds the role, drA does not.
	verifier, challenge = pkce()
	code := f.codeFor(t, "app1", "user/*.rs", "erdoc", drPW, challenge, url.Values{"purpose_of_use": {"BTG"}})
	ans = postForm(t, f.ts.Anonymous, f.ts.URL+"/auth/token", url.Values{"grant_type": {"authorization_code"}, "code": {code},
		"code_verifier": {verifier}, "redirect_uri": {f.redirect}, "client_id": {"app1"}}, "", "")
	if pu, _ := ans.body["purpose_of_use"].([]any); len(pu) != 1 || pu[0] != "BTG" {
		t.Fatalf("ok/btg: %v", ans.body)
	}
	intro := postForm(t, f.ts.Anonymous, f.ts.URL+"/auth/introspect", url.Values{"token": {ans.body["access_token"].(string)}}, "app2", f.app2Secret)
	if pu, _ := intro.body["purpose_of_use"].([]any); len(pu) != 1 || pu[0] != "BTG" {
		t.Errorf("the token carries the purpose: %v", intro.body)
	}
	// The reason is required, shown after the warning, and audited with
	// each access made with the token.
	b = newBrowser()
	p = f.login(t, b, b.get(t, f.authorizeURL("app1", "user/*.rs", "s", challenge, url.Values{"purpose_of_use": {"BTG"}})), "erdoc", drPW)
	if !strings.Contains(p.body, "break the glass") || !strings.Contains(p.body, `<label for="reason">`) {
		t.Fatalf("BTG consent page: %s", p.body)
	}
	if q := b.post(t, f.ts.URL+"/auth/consent", url.Values{"csrf": {csrf(t, p)}, "decision": {"allow"}, "reason": {"  "}}); q.status != 400 || !strings.Contains(q.body, "Give the reason") {
		t.Errorf("fail/btg-empty-reason: %d", q.status)
	}
	if code, _ := fhirGet(t, f.ts, ans.body["access_token"].(string), f.ts.FHIRBase+"/Patient/pA"); code != 200 {
		t.Fatalf("BTG token read: %d", code)
	}
	if resp, err := f.ts.Client.Get(f.ts.FHIRBase + "/AuditEvent?_count=200"); err == nil {
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if !strings.Contains(string(body), btgReason) || !strings.Contains(string(body), `"code":"BTG"`) {
			t.Errorf("the AuditEvents of the BTG access lack the purpose and reason")
		}
	}
	b = newBrowser()
	p = f.login(t, b, b.get(t, f.authorizeURL("app1", "user/*.rs", "s", challenge, url.Values{"purpose_of_use": {"BTG"}})), "drA", drPW)
	if q := f.redirectParams(t, p); q.Get("error") != "access_denied" {
		t.Errorf("fail/btg-without-role: %v", q)
	}
}

func TestIntrospectRevoke(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	verifier, challenge := pkce()
	code := f.codeFor(t, "app1", "launch/patient openid fhirUser patient/*.rs offline_access", "alice", alicePW, challenge, nil)
	tokenURL := f.ts.URL + "/auth/token"
	ans := postForm(t, f.ts.Anonymous, tokenURL, url.Values{"grant_type": {"authorization_code"}, "code": {code},
		"code_verifier": {verifier}, "redirect_uri": {f.redirect}, "client_id": {"app1"}}, "", "")
	at, rt := ans.body["access_token"].(string), ans.body["refresh_token"].(string)
	intro := func(tok string) map[string]any {
		return postForm(t, f.ts.Anonymous, f.ts.URL+"/auth/introspect", url.Values{"token": {tok}}, "app2", f.app2Secret).body
	}
	m := intro(at)
	if m["active"] != true || m["client_id"] != "app1" || m["sub"] != "alice" || m["fhirUser"] != "Patient/pA" ||
		m["patient"] != "pA" || m["scope"] == nil || m["exp"] == nil {
		t.Fatalf("ok/introspect: %v", m)
	}
	if m := intro(rt); m["active"] != true || m["token_type"] != "refresh_token" {
		t.Errorf("ok/introspect-refresh: %v", m)
	}
	if m := intro("garbage.token.value"); len(m) != 1 || m["active"] != false {
		t.Errorf("fail/introspect-garbage: %v", m)
	}
	// A public client may not introspect.
	if ans := postForm(t, f.ts.Anonymous, f.ts.URL+"/auth/introspect", url.Values{"token": {at}, "client_id": {"app1"}}, "", ""); ans.status != 401 {
		t.Errorf("fail/introspect-public-client: %d", ans.status)
	}
	// Revocation: always 200; the access token is dead at once.
	rev := postForm(t, f.ts.Anonymous, f.ts.URL+"/auth/revoke", url.Values{"token": {at}, "client_id": {"app1"}}, "", "")
	if rev.status != 200 {
		t.Fatalf("revoke: %d", rev.status)
	}
	if m := intro(at); m["active"] != false {
		t.Errorf("after revocation: %v", m)
	}
	if code, _ := fhirGet(t, f.ts, at, f.ts.FHIRBase+"/Patient/pA"); code != 401 {
		t.Errorf("revoked token on the FHIR API: %d", code)
	}
	if rev := postForm(t, f.ts.Anonymous, f.ts.URL+"/auth/revoke", url.Values{"token": {"unknown"}, "client_id": {"app1"}}, "", ""); rev.status != 200 {
		t.Errorf("revoking an unknown token is 200: %d", rev.status)
	}
	// Revoking the refresh token ends the grant.
	_ = postForm(t, f.ts.Anonymous, f.ts.URL+"/auth/revoke", url.Values{"token": {rt}, "client_id": {"app1"}}, "", "")
	if ans := postForm(t, f.ts.Anonymous, tokenURL, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}, "client_id": {"app1"}}, "", ""); ans.body["error"] != "invalid_grant" {
		t.Errorf("refresh after revocation: %v", ans.body)
	}
	// Userinfo.
	req, _ := http.NewRequest(http.MethodGet, f.ts.URL+"/auth/userinfo", nil)
	req.Header.Set("Authorization", "Bearer "+at)
	if resp, err := f.ts.Anonymous.Do(req); err != nil || resp.StatusCode != 401 {
		t.Errorf("userinfo with a revoked token: %v", resp.StatusCode)
	}
}

func TestRegistration(t *testing.T) {
	t.Parallel()
	ts := servertest.Start(t, servertest.WithConfig(func(c *config.Config) { c.Dev = false }))
	reg := func(token, doc string) tokenAnswer {
		req, _ := http.NewRequest(http.MethodPost, ts.URL+"/auth/register", strings.NewReader(doc))
		req.Header.Set("Content-Type", "application/json")
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := ts.Anonymous.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var m map[string]any
		_ = json.NewDecoder(resp.Body).Decode(&m)
		return tokenAnswer{status: resp.StatusCode, header: resp.Header, body: m}
	}
	good := `{"client_name":"New App","redirect_uris":["https://new.example/cb"]}`
	if a := reg("", good); a.status != 401 || a.body["error"] != "invalid_token" {
		t.Errorf("fail/no-initial-token: %d %v", a.status, a.body)
	}
	iat, _, err := ts.Server.Authz().Admin().NewInitialAccessToken(context.Background(), time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if a := reg(iat, `{"redirect_uris":["http://evil.example/cb"]}`); a.status != 400 || a.body["error"] != "invalid_redirect_uri" {
		t.Errorf("fail/http-redirect: %d %v", a.status, a.body)
	}
	iat2, _, _ := ts.Server.Authz().Admin().NewInitialAccessToken(context.Background(), time.Hour)
	a := reg(iat2, good)
	if a.status != 201 || a.body["client_id"] == "" || a.body["client_secret"] == "" || a.body["token_endpoint_auth_method"] != "client_secret_basic" {
		t.Fatalf("ok/register: %d %v", a.status, a.body)
	}
	if a := reg(iat2, good); a.status != 401 {
		t.Errorf("fail/initial-token-reused: %d", a.status)
	}
	if a := reg(iat, good); a.status != 401 {
		t.Errorf("fail/initial-token-burnt-by-failed-attempt: %d", a.status)
	}
	iat3, _, _ := ts.Server.Authz().Admin().NewInitialAccessToken(context.Background(), time.Hour)
	if a := reg(iat3, `{"client_id":"mine","redirect_uris":["https://x.example/cb"]}`); a.status != 400 {
		t.Errorf("fail/client-chooses-id: %d %v", a.status, a.body)
	}
}
