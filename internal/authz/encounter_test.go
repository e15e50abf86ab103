package authz_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
)

// putResource stores a FHIR resource through the API (the fixture's
// admin client).
func (f *fixture) putResource(t *testing.T, typ, id, body string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPut, f.ts.FHIRBase+"/"+typ+"/"+id, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/fhir+json")
	resp, err := f.ts.Client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 && resp.StatusCode != 201 {
		t.Fatalf("PUT %s/%s: %d", typ, id, resp.StatusCode)
	}
}

// exchangeCode trades a code of app1 for tokens.
func (f *fixture) exchangeCode(t *testing.T, code, verifier string) tokenAnswer {
	t.Helper()
	return postForm(t, f.ts.Anonymous, f.ts.URL+"/auth/token", url.Values{"grant_type": {"authorization_code"}, "code": {code},
		"code_verifier": {verifier}, "redirect_uri": {f.redirect}, "client_id": {"app1"}}, "", "")
}

// TestStandaloneEncounterPicker: a standalone launch asking
// launch/encounter picks one of the patient's encounters after the
// patient; a patient without encounters goes on without one.
func TestStandaloneEncounterPicker(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	f.putResource(t, "Encounter", "e2", `{"resourceType":"Encounter","id":"e2","status":"in-progress","class":{"code":"IMP"},`+
		`"type":[{"text":"Cardiology admission"}],"period":{"start":"2026-11-01T08:00:00Z"},"subject":{"reference":"Patient/pA"}}`)
	const scope = "launch/patient launch/encounter openid fhirUser patient/*.rs"

	t.Run("ok/practitioner picks patient then encounter", func(t *testing.T) {
		verifier, challenge := pkce()
		b := newBrowser()
		p := f.login(t, b, b.get(t, f.authorizeURL("app1", scope, "s", challenge, nil)), "drA", drPW)
		p = b.post(t, f.ts.URL+"/auth/pick", url.Values{"csrf": {csrf(t, p)}, "patient": {"pA"}})
		if p.status != 200 || !strings.Contains(p.body, `data-encounter-id="e1"`) || !strings.Contains(p.body, `data-encounter-id="e2"`) ||
			!strings.Contains(p.body, "Cardiology admission") || !strings.Contains(p.body, "Alice Able") {
			t.Fatalf("encounter picker: %d %s", p.status, p.body)
		}
		if strings.Index(p.body, `data-encounter-id="e2"`) > strings.Index(p.body, `data-encounter-id="e1"`) {
			t.Errorf("newest encounter first")
		}
		if csp := p.header.Get("Content-Security-Policy"); !strings.Contains(csp, "frame-ancestors 'none'") || strings.Contains(csp, "script-src") {
			t.Errorf("picker CSP %q", csp)
		}
		if q := b.post(t, f.ts.URL+"/auth/pick-encounter", url.Values{"encounter": {"e2"}}); q.status != 403 {
			t.Errorf("fail/encounter-without-csrf: %d", q.status)
		}
		if q := b.post(t, f.ts.URL+"/auth/pick-encounter", url.Values{"csrf": {csrf(t, p)}, "encounter": {"nope"}}); q.status != 400 {
			t.Errorf("fail/unknown-encounter: %d", q.status)
		}
		if q := b.post(t, f.ts.URL+"/auth/pick-encounter", url.Values{"csrf": {csrf(t, p)}, "encounter": {"bad id!"}}); q.status != 400 {
			t.Errorf("fail/malformed-encounter: %d", q.status)
		}
		p = b.post(t, f.ts.URL+"/auth/pick-encounter", url.Values{"csrf": {csrf(t, p)}, "encounter": {"e2"}})
		if !strings.Contains(p.body, "in the encounter <strong>Cardiology admission</strong>") {
			t.Errorf("the consent page names the encounter: %s", p.body)
		}
		ans := f.exchangeCode(t, f.redirectParams(t, f.consent(t, b, p, "allow", nil)).Get("code"), verifier)
		if ans.status != 200 || ans.body["patient"] != "pA" || ans.body["encounter"] != "e2" {
			t.Fatalf("token: %d %v", ans.status, ans.body)
		}
		if sc, _ := ans.body["scope"].(string); !strings.Contains(sc, "launch/encounter") {
			t.Errorf("granted scope %q lacks launch/encounter", sc)
		}
		intro := postForm(t, f.ts.Anonymous, f.ts.URL+"/auth/introspect", url.Values{"token": {ans.body["access_token"].(string)}}, "app2", f.app2Secret)
		if intro.body["encounter"] != "e2" {
			t.Errorf("the access token carries the encounter: %v", intro.body)
		}
	})

	t.Run("fail/another patient's encounter", func(t *testing.T) {
		_, challenge := pkce()
		b := newBrowser()
		p := f.login(t, b, b.get(t, f.authorizeURL("app1", scope, "s", challenge, nil)), "drA", drPW)
		f.putResource(t, "Encounter", "eB", `{"resourceType":"Encounter","id":"eB","status":"finished","class":{"code":"AMB"},"subject":{"reference":"Patient/pB"}}`)
		p = b.post(t, f.ts.URL+"/auth/pick", url.Values{"csrf": {csrf(t, p)}, "patient": {"pB"}})
		if !strings.Contains(p.body, `data-encounter-id="eB"`) || strings.Contains(p.body, `data-encounter-id="e1"`) {
			t.Fatalf("pB's picker lists only pB's encounters: %s", p.body)
		}
		if q := b.post(t, f.ts.URL+"/auth/pick-encounter", url.Values{"csrf": {csrf(t, p)}, "encounter": {"e1"}}); q.status != 400 ||
			!strings.Contains(q.body, "Choose one of the listed encounters") {
			t.Errorf("fail/foreign-encounter: %d %s", q.status, q.body)
		}
	})

	t.Run("ok/patient user continues without an encounter", func(t *testing.T) {
		verifier, challenge := pkce()
		b := newBrowser()
		p := f.login(t, b, b.get(t, f.authorizeURL("app1", scope, "s", challenge, nil)), "alice", alicePW)
		if !strings.Contains(p.body, `data-encounter-id="e1"`) || !strings.Contains(p.body, `id="no-encounter"`) {
			t.Fatalf("a patient user gets the picker for her own encounters: %s", p.body)
		}
		p = b.post(t, f.ts.URL+"/auth/pick-encounter", url.Values{"csrf": {csrf(t, p)}, "encounter": {""}})
		ans := f.exchangeCode(t, f.redirectParams(t, f.consent(t, b, p, "allow", nil)).Get("code"), verifier)
		if ans.status != 200 || ans.body["patient"] != "pA" || ans.body["encounter"] != nil {
			t.Fatalf("token: %d %v", ans.status, ans.body)
		}
		if sc, _ := ans.body["scope"].(string); strings.Contains(sc, "launch/encounter") {
			t.Errorf("no encounter chosen, but launch/encounter granted: %q", sc)
		}
	})

	t.Run("ok/patient without encounters goes straight to consent", func(t *testing.T) {
		f.putResource(t, "Patient", "pC", `{"resourceType":"Patient","id":"pC","name":[{"family":"Cee","given":["Carl"]}]}`)
		verifier, challenge := pkce()
		b := newBrowser()
		p := f.login(t, b, b.get(t, f.authorizeURL("app1", scope, "s", challenge, nil)), "drA", drPW)
		p = b.post(t, f.ts.URL+"/auth/pick", url.Values{"csrf": {csrf(t, p)}, "patient": {"pC"}})
		if strings.Contains(p.body, "data-encounter-id") || !strings.Contains(p.body, `name="decision"`) {
			t.Fatalf("want the consent page: %s", p.body)
		}
		ans := f.exchangeCode(t, f.redirectParams(t, f.consent(t, b, p, "allow", nil)).Get("code"), verifier)
		if ans.status != 200 || ans.body["patient"] != "pC" || ans.body["encounter"] != nil {
			t.Fatalf("token: %d %v", ans.status, ans.body)
		}
	})

	t.Run("ok/no launch/encounter, no picker", func(t *testing.T) {
		_, challenge := pkce()
		b := newBrowser()
		p := f.login(t, b, b.get(t, f.authorizeURL("app1", "launch/patient patient/*.rs", "s", challenge, nil)), "alice", alicePW)
		if strings.Contains(p.body, "data-encounter-id") {
			t.Fatalf("picker without launch/encounter")
		}
	})

	t.Run("fail/pick-encounter before login", func(t *testing.T) {
		b := newBrowser()
		if p := b.post(t, f.ts.URL+"/auth/pick-encounter", url.Values{"csrf": {"x"}, "encounter": {"e1"}}); p.status != 400 {
			t.Errorf("no session: %d", p.status)
		}
		if p := b.get(t, f.ts.URL+"/auth/pick-encounter"); p.status != 405 {
			t.Errorf("GET: %d", p.status)
		}
	})
}
