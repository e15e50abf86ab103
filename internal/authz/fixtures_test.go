package authz_test

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"html"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/fhirguard/fhirguard/internal/authz"
	"github.com/fhirguard/fhirguard/internal/server/servertest"
)

// fixture is a server with the requirement catalog's fixtures: patients
// pA (Alice Able) and pB (Bob Bee), practitioner drA, encounter e1, users
// alice (Patient/pA), drA (clinician) and erdoc (clinician + break-glass),
// public app1 (redirect http://127.0.0.1:9/cb, refresh allowed) and
// confidential app2.
type fixture struct {
	ts         *servertest.TestServer
	app2Secret string
	redirect   string
}

const (
	btgReason = "unconscious patient in the ED, no records reachable"
	alicePW   = "alice-password-1"
	drPW      = "dr-password-1"
)

func newFixture(t *testing.T, opts ...servertest.Option) *fixture {
	t.Helper()
	ts := servertest.Start(t, opts...)
	for _, r := range []string{
		`{"resourceType":"Patient","id":"pA","name":[{"family":"Able","given":["Alice"]}],"birthDate":"1980-01-01"}`,
		`{"resourceType":"Patient","id":"pB","name":[{"family":"Bee","given":["Bob"]}],"birthDate":"1990-02-02"}`,
		`{"resourceType":"Practitioner","id":"drA","name":[{"family":"Adams"}]}`,
		`{"resourceType":"Practitioner","id":"erdoc","name":[{"family":"Er"}]}`,
		`{"resourceType":"Encounter","id":"e1","status":"finished","class":{"code":"AMB"},"subject":{"reference":"Patient/pA"}}`,
	} {
		typ := strings.Split(strings.Split(r, `"resourceType":"`)[1], `"`)[0]
		id := strings.Split(strings.Split(r, `"id":"`)[1], `"`)[0]
		req, _ := http.NewRequest(http.MethodPut, ts.FHIRBase+"/"+typ+"/"+id, strings.NewReader(r))
		req.Header.Set("Content-Type", "application/fhir+json")
		resp, err := ts.Client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 201 && resp.StatusCode != 200 {
			t.Fatalf("seed %s/%s: %d %s", typ, id, resp.StatusCode, b)
		}
	}
	adm := ts.Server.Authz().Admin()
	adm.Argon2 = authz.Argon2Params{Memory: 1024, Time: 1, Threads: 1}
	ctx := context.Background()
	for _, u := range []authz.NewUser{
		{Username: "alice", Password: alicePW, FHIRUser: "Patient/pA"},
		{Username: "drA", Password: drPW, FHIRUser: "Practitioner/drA", Roles: []string{"clinician"}},
		{Username: "erdoc", Password: drPW, FHIRUser: "Practitioner/erdoc", Roles: []string{"clinician", "break-glass"}},
	} {
		if err := adm.AddUser(ctx, u); err != nil {
			t.Fatal(err)
		}
	}
	f := &fixture{ts: ts, redirect: "http://127.0.0.1:9/cb"}
	register(t, ts, map[string]any{"client_id": "app1", "client_name": "App One", "redirect_uris": []string{f.redirect},
		"token_endpoint_auth_method": "none", "grant_types": []string{"authorization_code", "refresh_token"}})
	reg := register(t, ts, map[string]any{"client_id": "app2", "client_name": "App Two", "redirect_uris": []string{f.redirect},
		"grant_types": []string{"authorization_code", "refresh_token"}})
	f.app2Secret = reg.ClientSecret
	return f
}

// pkce returns a verifier and its S256 challenge.
func pkce() (verifier, challenge string) {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	verifier = base64.RawURLEncoding.EncodeToString(b)
	sum := sha256.Sum256([]byte(verifier))
	return verifier, base64.RawURLEncoding.EncodeToString(sum[:])
}

// browser is a cookie-keeping HTTP client that does not follow redirects
// (so the redirect to the client can be inspected).
type browser struct {
	c *http.Client
}

func newBrowser() *browser {
	jar, _ := cookiejar.New(nil)
	return &browser{c: &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error {
		return http.ErrUseLastResponse
	}}}
}

type page struct {
	status   int
	body     string
	location string
	header   http.Header
}

func (b *browser) do(t *testing.T, req *http.Request) page {
	t.Helper()
	resp, err := b.c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return page{status: resp.StatusCode, body: string(body), location: resp.Header.Get("Location"), header: resp.Header}
}

func (b *browser) get(t *testing.T, u string) page {
	req, _ := http.NewRequest(http.MethodGet, u, nil)
	return b.do(t, req)
}

func (b *browser) post(t *testing.T, u string, form url.Values) page {
	req, _ := http.NewRequest(http.MethodPost, u, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return b.do(t, req)
}

var reCSRF = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

func csrf(t *testing.T, p page) string {
	t.Helper()
	m := reCSRF.FindStringSubmatch(p.body)
	if m == nil {
		t.Fatalf("no CSRF token in page %d:\n%s", p.status, p.body)
	}
	return html.UnescapeString(m[1])
}

// authorizeURL builds an authorize request.
func (f *fixture) authorizeURL(clientID, scope, state, challenge string, extra url.Values) string {
	q := url.Values{"response_type": {"code"}, "client_id": {clientID}, "redirect_uri": {f.redirect},
		"scope": {scope}, "state": {state}, "aud": {f.ts.FHIRBase},
		"code_challenge": {challenge}, "code_challenge_method": {"S256"}}
	for k, v := range extra {
		q[k] = v
	}
	return f.ts.URL + "/auth/authorize?" + q.Encode()
}

// login posts the login form of p.
func (f *fixture) login(t *testing.T, b *browser, p page, user, pw string) page {
	t.Helper()
	if p.status != 200 || !strings.Contains(p.body, `name="username"`) {
		t.Fatalf("not the login page: %d %s %s", p.status, p.location, p.body)
	}
	return b.post(t, f.ts.URL+"/auth/login", url.Values{"csrf": {csrf(t, p)}, "username": {user}, "password": {pw}})
}

// consent allows (keeping the listed scopes; nil = all) or denies.
func (f *fixture) consent(t *testing.T, b *browser, p page, decision string, keep []string) page {
	t.Helper()
	if !strings.Contains(p.body, `name="decision"`) {
		t.Fatalf("not the consent page: %d %s", p.status, p.body)
	}
	form := url.Values{"csrf": {csrf(t, p)}, "decision": {decision}}
	if strings.Contains(p.body, `name="reason"`) {
		form.Set("reason", btgReason)
	}
	if keep == nil {
		for _, m := range regexp.MustCompile(`name="scope" value="([^"]+)"`).FindAllStringSubmatch(p.body, -1) {
			form.Add("scope", html.UnescapeString(m[1]))
		}
	} else {
		form["scope"] = keep
	}
	return b.post(t, f.ts.URL+"/auth/consent", form)
}

// redirectParams parses the redirect to the client.
func (f *fixture) redirectParams(t *testing.T, p page) url.Values {
	t.Helper()
	if p.status != http.StatusSeeOther && p.status != http.StatusFound {
		t.Fatalf("want a redirect to the client, got %d %s", p.status, p.body)
	}
	if !strings.HasPrefix(p.location, f.redirect+"?") {
		t.Fatalf("redirect to %q, want %s", p.location, f.redirect)
	}
	u, _ := url.Parse(p.location)
	return u.Query()
}

// codeFor runs the whole browser part for user and returns the code.
func (f *fixture) codeFor(t *testing.T, clientID, scope, user, pw, challenge string, extra url.Values) string {
	t.Helper()
	b := newBrowser()
	p := f.login(t, b, b.get(t, f.authorizeURL(clientID, scope, "st1", challenge, extra)), user, pw)
	if strings.Contains(p.body, "data-patient-id") {
		p = b.post(t, f.ts.URL+"/auth/pick", url.Values{"csrf": {csrf(t, p)}, "patient": {"pA"}})
	}
	if strings.Contains(p.body, "data-encounter-id") {
		p = b.post(t, f.ts.URL+"/auth/pick-encounter", url.Values{"csrf": {csrf(t, p)}, "encounter": {"e1"}})
	}
	q := f.redirectParams(t, f.consent(t, b, p, "allow", nil))
	if q.Get("state") != "st1" || q.Get("code") == "" {
		t.Fatalf("redirect params %v", q)
	}
	return q.Get("code")
}
