package authz_test

import (
	"context"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/fhirguard/fhirguard/internal/clock"
	"github.com/fhirguard/fhirguard/internal/server"
	"github.com/fhirguard/fhirguard/internal/server/servertest"
)

// logoutFixture adds app3: public, refresh allowed, a registered
// post_logout_redirect_uri.
func logoutFixture(t *testing.T, opts ...servertest.Option) (*fixture, string) {
	t.Helper()
	f := newFixture(t, opts...)
	bye := "http://127.0.0.1:9/bye"
	register(t, f.ts, map[string]any{"client_id": "app3", "client_name": "App Three", "redirect_uris": []string{f.redirect},
		"post_logout_redirect_uris": []string{bye}, "token_endpoint_auth_method": "none",
		"grant_types": []string{"authorization_code", "refresh_token"}})
	return f, bye
}

// signInTokens runs the code flow of app3 in browser b (its sign-in
// cookie kept) and returns the token response.
func (f *fixture) signInTokens(t *testing.T, b *browser, scope string) map[string]any {
	t.Helper()
	verifier, challenge := pkce()
	p := f.login(t, b, b.get(t, f.authorizeURL("app3", scope, "st1", challenge, nil)), "alice", alicePW)
	q := f.redirectParams(t, f.consent(t, b, p, "allow", nil))
	ans := postForm(t, f.ts.Anonymous, f.ts.URL+"/auth/token", url.Values{"grant_type": {"authorization_code"}, "code": {q.Get("code")},
		"code_verifier": {verifier}, "redirect_uri": {f.redirect}, "client_id": {"app3"}}, "", "")
	if ans.status != 200 || ans.body["refresh_token"] == nil {
		t.Fatalf("token: %d %v", ans.status, ans.body)
	}
	return ans.body
}

// refresh uses a refresh token of app3.
func (f *fixture) refresh(t *testing.T, rt string) tokenAnswer {
	t.Helper()
	return postForm(t, f.ts.Anonymous, f.ts.URL+"/auth/token", url.Values{"grant_type": {"refresh_token"},
		"refresh_token": {rt}, "client_id": {"app3"}}, "", "")
}

func TestLogoutEndsOnlineAccess(t *testing.T) {
	t.Parallel()
	f, bye := logoutFixture(t)
	m := wellKnown(t, f.ts, "openid-configuration")
	endSession, _ := m["end_session_endpoint"].(string)
	if endSession != f.ts.URL+"/auth/logout" {
		t.Fatalf("end_session_endpoint %q", endSession)
	}
	b := newBrowser()
	online := f.signInTokens(t, b, "openid fhirUser launch/patient online_access patient/*.rs")
	offline := f.signInTokens(t, b, "openid fhirUser launch/patient offline_access patient/*.rs")
	r := f.refresh(t, online["refresh_token"].(string))
	if r.status != 200 {
		t.Fatalf("online refresh while signed in: %d %v", r.status, r.body)
	}
	onlineRT, onlineAT := r.body["refresh_token"].(string), r.body["access_token"].(string)

	// GET without id_token_hint: a confirmation page, nothing ended yet.
	p := b.get(t, endSession+"?"+url.Values{"client_id": {"app3"}, "post_logout_redirect_uri": {bye}, "state": {"lo1"}}.Encode())
	if p.status != 200 || !strings.Contains(p.body, `name="confirm"`) || p.location != "" {
		t.Fatalf("confirmation page: %d %s", p.status, p.body)
	}
	if csp := p.header.Get("Content-Security-Policy"); !strings.Contains(csp, "frame-ancestors 'none'") {
		t.Errorf("logout page CSP %q", csp)
	}
	if r := f.refresh(t, onlineRT); r.status != 200 {
		t.Fatalf("a GET alone must not sign out: %d %v", r.status, r.body)
	} else {
		onlineRT, onlineAT = r.body["refresh_token"].(string), r.body["access_token"].(string)
	}
	// POST without the page's CSRF token: 403, still signed in.
	if q := b.post(t, endSession, url.Values{"confirm": {"yes"}}); q.status != 403 {
		t.Errorf("fail/logout-without-csrf: %d", q.status)
	}
	if q := b.post(t, endSession, url.Values{"confirm": {"yes"}, "csrf": {"wrong"}}); q.status != 403 {
		t.Errorf("fail/logout-wrong-csrf: %d", q.status)
	}
	// Unregistered post_logout_redirect_uri: an error page, no redirect.
	if q := b.post(t, endSession, url.Values{"confirm": {"yes"}, "csrf": {csrf(t, p)}, "client_id": {"app3"},
		"post_logout_redirect_uri": {"http://127.0.0.1:9/evil"}}); q.status != 400 || q.location != "" {
		t.Errorf("fail/unregistered-post-logout-redirect: %d %q", q.status, q.location)
	}
	// The confirmed POST signs out and redirects with state.
	q := b.post(t, endSession, url.Values{"confirm": {"yes"}, "csrf": {csrf(t, p)}, "client_id": {"app3"},
		"post_logout_redirect_uri": {bye}, "state": {"lo1"}})
	if q.status != 303 || q.location != bye+"?state=lo1" {
		t.Fatalf("logout: %d %q %s", q.status, q.location, q.body)
	}
	if sc := strings.Join(q.header.Values("Set-Cookie"), "\n"); !strings.Contains(sc, "fhirguard_signin=;") {
		t.Errorf("the sign-in cookie is not cleared: %s", sc)
	}

	// The online grant is dead (refresh and access token); offline lives.
	if r := f.refresh(t, onlineRT); r.status != 400 || r.body["error"] != "invalid_grant" {
		t.Fatalf("fail/online-refresh-after-logout: %d %v", r.status, r.body)
	}
	if code, _ := fhirGet(t, f.ts, onlineAT, f.ts.FHIRBase+"/Patient/pA"); code != 401 {
		t.Errorf("the online grant's access token after logout: %d", code)
	}
	if r := f.refresh(t, offline["refresh_token"].(string)); r.status != 200 {
		t.Fatalf("ok/offline-refresh-after-logout: %d %v", r.status, r.body)
	}
	// The logout is audited (DICOM 110123 Logout) without any token.
	if resp, err := f.ts.Client.Get(f.ts.FHIRBase + "/AuditEvent?_count=200"); err == nil {
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if !strings.Contains(string(body), `"code":"110123"`) || strings.Contains(string(body), onlineRT) {
			t.Errorf("the audit log lacks the logout, or holds a token")
		}
	} else {
		t.Fatal(err)
	}
	// A second logout has nothing to end and still answers.
	if q := b.get(t, endSession); q.status != 200 || !strings.Contains(q.body, "signed out") {
		t.Errorf("logout without a session: %d %s", q.status, q.body)
	}
}

func TestLogoutIDTokenHint(t *testing.T) {
	t.Parallel()
	f, bye := logoutFixture(t)
	b := newBrowser()
	online := f.signInTokens(t, b, "openid fhirUser launch/patient online_access patient/*.rs")
	idt, _ := online["id_token"].(string)
	endSession := f.ts.URL + "/auth/logout"

	for _, tc := range []struct{ name, hint, client, redirect string }{
		{"fail/garbage-hint", "not.a.jwt", "", ""},
		{"fail/tampered-hint", idt[:len(idt)-4] + "AAAA", "", ""},
		{"fail/hint-client-mismatch", idt, "app1", ""},
		{"fail/unregistered-redirect", idt, "", "http://127.0.0.1:9/cb"},
		{"fail/redirect-without-client", "", "", bye},
		{"fail/unknown-client", "", "nope", bye},
	} {
		v := url.Values{"post_logout_redirect_uri": {tc.redirect}, "client_id": {tc.client}, "id_token_hint": {tc.hint}}
		for k := range v {
			if v.Get(k) == "" {
				v.Del(k)
			}
		}
		if p := newBrowser().get(t, endSession+"?"+v.Encode()); p.status != 400 || p.location != "" {
			t.Errorf("%s: %d %q", tc.name, p.status, p.location)
		}
	}
	if r := f.refresh(t, online["refresh_token"].(string)); r.status != 200 {
		t.Fatalf("refused logouts end nothing: %d %v", r.status, r.body)
	}

	// An RP-initiated GET with id_token_hint from a browser without the
	// cookie (as a back-channel or another tab would): signed out at once.
	p := newBrowser().get(t, endSession+"?"+url.Values{"id_token_hint": {idt}, "post_logout_redirect_uri": {bye}, "state": {"x"}}.Encode())
	if p.status != 302 || p.location != bye+"?state=x" {
		t.Fatalf("logout with id_token_hint: %d %q %s", p.status, p.location, p.body)
	}
	r := f.refresh(t, online["refresh_token"].(string))
	if r.status != 400 || r.body["error"] != "invalid_grant" {
		t.Fatalf("fail/online-refresh-after-hint-logout: %d %v", r.status, r.body)
	}
	// A new login in the same browser starts a new session.
	again := f.signInTokens(t, b, "openid launch/patient online_access patient/*.rs")
	if r := f.refresh(t, again["refresh_token"].(string)); r.status != 200 {
		t.Fatalf("online refresh in a new sign-in session: %d %v", r.status, r.body)
	}
}

// TestOnlineBoundedBySession: an online_access refresh token dies with
// its sign-in session's lifetime; offline_access lives 90 days.
func TestOnlineBoundedBySession(t *testing.T) {
	t.Parallel()
	clk := clock.NewFake(time.Now())
	f, _ := logoutFixture(t, servertest.WithServerOptions(server.WithClock(clk)))
	b := newBrowser()
	online := f.signInTokens(t, b, "launch/patient online_access patient/*.rs")
	offline := f.signInTokens(t, b, "launch/patient offline_access patient/*.rs")
	clk.Advance(7 * time.Hour)
	r := f.refresh(t, online["refresh_token"].(string))
	if r.status != 200 {
		t.Fatalf("online refresh inside the session: %d %v", r.status, r.body)
	}
	clk.Advance(61 * time.Minute)
	if r := f.refresh(t, r.body["refresh_token"].(string)); r.status != 400 || r.body["error"] != "invalid_grant" {
		t.Fatalf("fail/online-after-session-expiry: %d %v", r.status, r.body)
	}
	clk.Advance(80 * 24 * time.Hour)
	r = f.refresh(t, offline["refresh_token"].(string))
	if r.status != 200 {
		t.Fatalf("offline refresh on day 80: %d %v", r.status, r.body)
	}
	clk.Advance(10 * 24 * time.Hour)
	if r := f.refresh(t, r.body["refresh_token"].(string)); r.status != 400 || r.body["error"] != "invalid_grant" {
		t.Fatalf("fail/offline-after-90-days: %d %v", r.status, r.body)
	}
}

// TestLogoutBadInput: malformed logout requests are 4xx pages, never a
// redirect or a 500; an expired id_token is still a valid hint.
func TestLogoutBadInput(t *testing.T) {
	t.Parallel()
	clk := clock.NewFake(time.Now())
	f, bye := logoutFixture(t, servertest.WithServerOptions(server.WithClock(clk)))
	endSession := f.ts.URL + "/auth/logout"
	b := newBrowser()
	for _, tc := range []struct {
		name   string
		page   func() page
		status int
	}{
		{"fail/oversized-hint", func() page {
			return b.get(t, endSession+"?id_token_hint="+strings.Repeat("a", 9000))
		}, 400},
		{"fail/oversized-form", func() page {
			return b.post(t, endSession, url.Values{"state": {strings.Repeat("s", 70000)}})
		}, 400},
		{"fail/repeated-parameter", func() page {
			return b.get(t, endSession+"?client_id=app3&client_id=app1&post_logout_redirect_uri="+url.QueryEscape(bye))
		}, 400},
		{"fail/json-body", func() page {
			req, _ := http.NewRequest(http.MethodPost, endSession, strings.NewReader(`{"confirm":"yes"}`))
			req.Header.Set("Content-Type", "application/json")
			return b.do(t, req)
		}, 400},
		{"fail/put", func() page {
			req, _ := http.NewRequest(http.MethodPut, endSession, nil)
			return b.do(t, req)
		}, 405},
	} {
		p := tc.page()
		if p.status != tc.status || p.location != "" || strings.Contains(p.body, "goroutine") {
			t.Errorf("%s: %d %q", tc.name, p.status, p.location)
		}
	}
	online := f.signInTokens(t, b, "openid launch/patient online_access patient/*.rs")
	clk.Advance(2 * time.Hour) // the id_token (5 min) has long expired; the session lives
	p := newBrowser().get(t, endSession+"?"+url.Values{"id_token_hint": {online["id_token"].(string)}, "post_logout_redirect_uri": {bye}}.Encode())
	if p.status != 302 || p.location != bye {
		t.Fatalf("ok/expired-hint: %d %q %s", p.status, p.location, p.body)
	}
	if r := f.refresh(t, online["refresh_token"].(string)); r.status != 400 || r.body["error"] != "invalid_grant" {
		t.Fatalf("online refresh after logout: %d %v", r.status, r.body)
	}
}

// TestLogoutBeforeExchange: a code of an online_access authorization
// whose sign-in session ended before the exchange yields nothing; an
// offline_access one still works.
func TestLogoutBeforeExchange(t *testing.T) {
	t.Parallel()
	f, _ := logoutFixture(t)
	b := newBrowser()
	code := func(scope string) (string, string) {
		verifier, challenge := pkce()
		p := f.login(t, b, b.get(t, f.authorizeURL("app3", scope, "st1", challenge, nil)), "alice", alicePW)
		return f.redirectParams(t, f.consent(t, b, p, "allow", nil)).Get("code"), verifier
	}
	onlineCode, onlineVerifier := code("launch/patient online_access patient/*.rs")
	offlineCode, offlineVerifier := code("launch/patient offline_access patient/*.rs")
	p := b.get(t, f.ts.URL+"/auth/logout")
	if q := b.post(t, f.ts.URL+"/auth/logout", url.Values{"confirm": {"yes"}, "csrf": {csrf(t, p)}}); q.status != 200 {
		t.Fatalf("logout: %d %s", q.status, q.body)
	}
	exchange := func(code, verifier string) tokenAnswer {
		return postForm(t, f.ts.Anonymous, f.ts.URL+"/auth/token", url.Values{"grant_type": {"authorization_code"}, "code": {code},
			"code_verifier": {verifier}, "redirect_uri": {f.redirect}, "client_id": {"app3"}}, "", "")
	}
	if a := exchange(onlineCode, onlineVerifier); a.status != 400 || a.body["error"] != "invalid_grant" {
		t.Errorf("fail/online-code-after-logout: %d %v", a.status, a.body)
	}
	if a := exchange(offlineCode, offlineVerifier); a.status != 200 || a.body["refresh_token"] == nil {
		t.Errorf("ok/offline-code-after-logout: %d %v", a.status, a.body)
	}
}

// signInTokensAs runs the code flow of app3 for user in browser b (its
// sign-in cookie kept), through the pickers when they appear.
func (f *fixture) signInTokensAs(t *testing.T, b *browser, user, pw, scope string) map[string]any {
	t.Helper()
	verifier, challenge := pkce()
	p := f.login(t, b, b.get(t, f.authorizeURL("app3", scope, "st1", challenge, nil)), user, pw)
	if strings.Contains(p.body, "data-patient-id") {
		p = b.post(t, f.ts.URL+"/auth/pick", url.Values{"csrf": {csrf(t, p)}, "patient": {"pA"}})
	}
	if strings.Contains(p.body, "data-encounter-id") {
		p = b.post(t, f.ts.URL+"/auth/pick-encounter", url.Values{"csrf": {csrf(t, p)}, "encounter": {"e1"}})
	}
	q := f.redirectParams(t, f.consent(t, b, p, "allow", nil))
	ans := postForm(t, f.ts.Anonymous, f.ts.URL+"/auth/token", url.Values{"grant_type": {"authorization_code"}, "code": {q.Get("code")},
		"code_verifier": {verifier}, "redirect_uri": {f.redirect}, "client_id": {"app3"}}, "", "")
	if ans.status != 200 || ans.body["refresh_token"] == nil || ans.body["id_token"] == nil {
		t.Fatalf("token for %s: %d %v", user, ans.status, ans.body)
	}
	return ans.body
}

// TestLogoutHintOfAnotherUser: an id_token_hint naming another user than
// the browser's signed-in one does not end (or pretend to end) the
// browser's session: the browser's user is asked to confirm (RP-Initiated
// Logout 1.0 §3); a session the hint names by sid ends at once.
func TestLogoutHintOfAnotherUser(t *testing.T) {
	t.Parallel()
	f, bye := logoutFixture(t)
	endSession := f.ts.URL + "/auth/logout"
	alice := newBrowser()
	online := f.signInTokens(t, alice, "openid fhirUser launch/patient online_access patient/*.rs")
	rt := online["refresh_token"].(string)
	stillSignedIn := func(name string) {
		t.Helper()
		r := f.refresh(t, rt)
		if r.status != 200 {
			t.Fatalf("%s: alice's online grant ended: %d %v", name, r.status, r.body)
		}
		rt = r.body["refresh_token"].(string)
	}
	confirmPage := func(name string, p page) {
		t.Helper()
		if p.status != 200 || p.location != "" || !strings.Contains(p.body, `name="confirm"`) {
			t.Fatalf("%s: want the confirmation page, got %d %q %s", name, p.status, p.location, p.body)
		}
		if sc := strings.Join(p.header.Values("Set-Cookie"), "\n"); strings.Contains(sc, "fhirguard_signin=;") {
			t.Fatalf("%s: the sign-in cookie is cleared while its session lives: %s", name, sc)
		}
	}

	// An id_token of drA without sid (as issued before sign-in sessions).
	now := time.Now()
	noSID, err := f.ts.Server.Keys().SignJWT(context.Background(), "RS256", "JWT", map[string]any{
		"iss": f.ts.FHIRBase, "aud": "app3", "sub": "drA", "iat": now.Unix(), "exp": now.Add(5 * time.Minute).Unix()})
	if err != nil {
		t.Fatal(err)
	}
	p := alice.get(t, endSession+"?"+url.Values{"id_token_hint": {noSID}, "post_logout_redirect_uri": {bye}, "state": {"s1"}}.Encode())
	confirmPage("fail/other-user-hint-without-sid", p)
	stillSignedIn("fail/other-user-hint-without-sid")

	// drA's real id_token (with sid, signed in in another browser): his
	// session ends at once; alice is still asked.
	dr := newBrowser()
	drTokens := f.signInTokensAs(t, dr, "drA", drPW, "openid fhirUser online_access user/*.rs")
	p = alice.get(t, endSession+"?"+url.Values{"id_token_hint": {drTokens["id_token"].(string)},
		"post_logout_redirect_uri": {bye}, "state": {"s2"}}.Encode())
	confirmPage("ok/other-user-hint-with-sid", p)
	stillSignedIn("ok/other-user-hint-with-sid")
	if r := f.refresh(t, drTokens["refresh_token"].(string)); r.status != 400 || r.body["error"] != "invalid_grant" {
		t.Fatalf("fail/hinted-session-not-ended: %d %v", r.status, r.body)
	}

	// Alice confirms: her session ends and the RP gets its redirect.
	q := alice.post(t, endSession, url.Values{"confirm": {"yes"}, "csrf": {csrf(t, p)}, "client_id": {"app3"},
		"post_logout_redirect_uri": {bye}, "state": {"s2"}})
	if q.status != 303 || q.location != bye+"?state=s2" {
		t.Fatalf("confirmed logout: %d %q %s", q.status, q.location, q.body)
	}
	if r := f.refresh(t, rt); r.status != 400 || r.body["error"] != "invalid_grant" {
		t.Fatalf("fail/online-refresh-after-confirmed-logout: %d %v", r.status, r.body)
	}
}

// logoutEvents counts the Logout (DICOM 110123) AuditEvents.
func (f *fixture) logoutEvents(t *testing.T) int {
	t.Helper()
	resp, err := f.ts.Client.Get(f.ts.FHIRBase + "/AuditEvent?_count=500")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		t.Fatalf("AuditEvent search: %d %s", resp.StatusCode, body)
	}
	return strings.Count(string(body), `"code":"110123"`)
}

// TestLogoutAuditsOnlyRealEnds: a logout that ends no live session (its
// session already ended) is not audited again.
func TestLogoutAuditsOnlyRealEnds(t *testing.T) {
	t.Parallel()
	f, bye := logoutFixture(t)
	endSession := f.ts.URL + "/auth/logout"
	online := f.signInTokens(t, newBrowser(), "openid fhirUser launch/patient online_access patient/*.rs")
	hint := url.Values{"id_token_hint": {online["id_token"].(string)}, "post_logout_redirect_uri": {bye}}.Encode()
	if n := f.logoutEvents(t); n != 0 {
		t.Fatalf("logout events before any logout: %d", n)
	}
	for i, want := range []int{1, 1, 1} {
		if p := newBrowser().get(t, endSession+"?"+hint); p.status != 302 || p.location != bye {
			t.Fatalf("logout %d: %d %q %s", i+1, p.status, p.location, p.body)
		}
		if n := f.logoutEvents(t); n != want {
			t.Errorf("after logout %d: %d logout AuditEvents, want %d", i+1, n, want)
		}
	}
}
