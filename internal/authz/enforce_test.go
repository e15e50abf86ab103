package authz_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/fhirguard/fhirguard/internal/authz"
	"github.com/fhirguard/fhirguard/internal/clock"
	"github.com/fhirguard/fhirguard/internal/config"
	"github.com/fhirguard/fhirguard/internal/server"
	"github.com/fhirguard/fhirguard/internal/server/servertest"
)

// userToken runs the code flow for user with scope and returns the access
// token.
func (f *fixture) userToken(t *testing.T, scope, user, pw string) string {
	t.Helper()
	verifier, challenge := pkce()
	code := f.codeFor(t, "app1", scope, user, pw, challenge, nil)
	ans := postForm(t, f.ts.Anonymous, f.ts.URL+"/auth/token", url.Values{"grant_type": {"authorization_code"}, "code": {code},
		"code_verifier": {verifier}, "redirect_uri": {f.redirect}, "client_id": {"app1"}}, "", "")
	tok, _ := ans.body["access_token"].(string)
	if ans.status != 200 || tok == "" {
		t.Fatalf("token for %s %q: %d %v", user, scope, ans.status, ans.body)
	}
	return tok
}

// call sends one FHIR request with a token ("" = none).
func call(t *testing.T, ts *servertest.TestServer, token, method, path, body string) (int, http.Header, string) {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, _ := http.NewRequest(method, ts.FHIRBase+path, rd)
	if body != "" {
		req.Header.Set("Content-Type", "application/fhir+json")
		if method == http.MethodPatch {
			req.Header.Set("Content-Type", "application/json-patch+json")
		}
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := ts.Anonymous.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, string(b)
}

func seedObservations(t *testing.T, f *fixture) {
	t.Helper()
	for _, r := range []struct{ id, patient string }{{"o1", "pA"}, {"o2", "pB"}} {
		body := `{"resourceType":"Observation","id":"` + r.id + `","status":"final","code":{"text":"hr"},"subject":{"reference":"Patient/` + r.patient + `"}}`
		if code, _, b := call(t, f.ts, mustSystemToken(t, f.ts), http.MethodPut, "/Observation/"+r.id, body); code != 201 {
			t.Fatalf("seed %s: %d %s", r.id, code, b)
		}
	}
}

func mustSystemToken(t *testing.T, ts *servertest.TestServer) string {
	t.Helper()
	tok, err := ts.Backend.Token(servertest.DefaultScope)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func obs(id, patient string) string {
	return `{"resourceType":"Observation"` + idPart(id) + `,"status":"final","code":{"text":"hr"},"subject":{"reference":"Patient/` + patient + `"}}`
}

func idPart(id string) string {
	if id == "" {
		return ""
	}
	return `,"id":"` + id + `"`
}

func TestEnforcementPatientScopes(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	seedObservations(t, f)
	read := f.userToken(t, "launch/patient patient/Observation.rs", "alice", alicePW)
	v1 := f.userToken(t, "launch/patient patient/Observation.read", "alice", alicePW)
	cruds := f.userToken(t, "launch/patient patient/Observation.cruds", "alice", alicePW)
	idOnly := f.userToken(t, "openid fhirUser", "alice", alicePW)
	for _, tc := range []struct {
		name, token, method, path, body string
		want                            int
	}{
		{"ok/read-own", read, "GET", "/Observation/o1", "", 200},
		{"ok/v1-read-own", v1, "GET", "/Observation/o1", "", 200},
		{"ok/vread-own", read, "GET", "/Observation/o1/_history/1", "", 200},
		{"fail/read-other-patient", read, "GET", "/Observation/o2", "", 403},
		{"fail/vread-other-patient", read, "GET", "/Observation/o2/_history/1", "", 403},
		{"fail/history-other-patient", read, "GET", "/Observation/o2/_history", "", 403},
		{"fail/unscoped-type", read, "GET", "/Patient/pA", "", 403},
		{"fail/create-without-c", read, "POST", "/Observation", obs("", "pA"), 403},
		{"fail/v1-read-no-create", v1, "POST", "/Observation", obs("", "pA"), 403},
		{"fail/identity-only", idOnly, "GET", "/Observation/o1", "", 403},
		{"fail/type-history-patient-scope", read, "GET", "/Observation/_history", "", 403},
		{"fail/system-history-patient-scope", read, "GET", "/_history", "", 403},
		{"fail/create-for-other-patient", cruds, "POST", "/Observation", obs("", "pB"), 403},
		{"ok/create-for-own", cruds, "POST", "/Observation", obs("", "pA"), 201},
		{"fail/update-move-to-other", cruds, "PUT", "/Observation/o1", obs("o1", "pB"), 403},
		{"fail/update-other", cruds, "PUT", "/Observation/o2", obs("o2", "pA"), 403},
		{"fail/update-as-create", cruds, "PUT", "/Observation/never-was", obs("never-was", "pA"), 403},
		{"fail/patch-move-to-other", cruds, "PATCH", "/Observation/o1", `[{"op":"replace","path":"/subject/reference","value":"Patient/pB"}]`, 403},
		{"fail/delete-other", cruds, "DELETE", "/Observation/o2", "", 403},
		{"ok/metadata-without-token", "", "GET", "/metadata", "", 200},
	} {
		code, _, body := call(t, f.ts, tc.token, tc.method, tc.path, tc.body)
		if code != tc.want {
			t.Errorf("%s: %d (want %d) %s", tc.name, code, tc.want, body)
		}
		if code == 403 && (strings.Contains(body, "pB") || !strings.Contains(body, `"forbidden"`)) {
			t.Errorf("%s: a 403 names nothing hidden and says forbidden: %s", tc.name, body)
		}
	}
	// The failed patch changed nothing.
	_, _, body := call(t, f.ts, read, "GET", "/Observation/o1", "")
	if !strings.Contains(body, "Patient/pA") || !strings.Contains(body, `"versionId":"1"`) {
		t.Errorf("o1 after a refused patch: %s", body)
	}
	// update-as-create answers exactly like an update of a hidden target.
	_, _, a := call(t, f.ts, cruds, "PUT", "/Observation/never-was", obs("never-was", "pA"))
	_, _, b := call(t, f.ts, cruds, "PUT", "/Observation/o2", obs("o2", "pA"))
	if strings.ReplaceAll(a, "never-was", "X") != strings.ReplaceAll(b, "o2", "X") {
		t.Errorf("update-as-create is an existence oracle:\n%s\n%s", a, b)
	}

	// Batch entries are decided one by one.
	batch := `{"resourceType":"Bundle","type":"batch","entry":[
{"request":{"method":"GET","url":"Observation/o1"}},
{"request":{"method":"GET","url":"Observation/o2"}}]}`
	code, _, body := call(t, f.ts, read, "POST", "", batch)
	if code != 200 {
		t.Fatalf("batch: %d %s", code, body)
	}
	var bundle struct {
		Entry []struct {
			Response struct {
				Status string `json:"status"`
			} `json:"response"`
		} `json:"entry"`
	}
	_ = json.Unmarshal([]byte(body), &bundle)
	if len(bundle.Entry) != 2 || !strings.HasPrefix(bundle.Entry[0].Response.Status, "200") || !strings.HasPrefix(bundle.Entry[1].Response.Status, "403") {
		t.Errorf("batch entries: %+v", bundle.Entry)
	}
	// A transaction with a forbidden entry fails as a whole.
	tx := `{"resourceType":"Bundle","type":"transaction","entry":[
{"fullUrl":"urn:uuid:7f3e4d5c-0000-4000-8000-000000000001","resource":` + obs("", "pA") + `,"request":{"method":"POST","url":"Observation"}},
{"fullUrl":"urn:uuid:7f3e4d5c-0000-4000-8000-000000000002","resource":` + obs("", "pB") + `,"request":{"method":"POST","url":"Observation"}}]}`
	if code, _, body := call(t, f.ts, cruds, "POST", "", tx); code != 403 {
		t.Errorf("fail/transaction-with-forbidden-entry: %d %s", code, body)
	}
}

func TestEnforcementDenyMode404(t *testing.T) {
	t.Parallel()
	f := newFixture(t, servertest.WithConfig(func(c *config.Config) { c.DenyMode = "404" }))
	seedObservations(t, f)
	read := f.userToken(t, "launch/patient patient/Observation.rs", "alice", alicePW)
	c1, h1, hidden := call(t, f.ts, read, "GET", "/Observation/o2", "")
	c2, h2, absent := call(t, f.ts, read, "GET", "/Observation/zz", "")
	if c1 != 404 || c2 != 404 {
		t.Fatalf("404 mode: %d %d", c1, c2)
	}
	if strings.ReplaceAll(hidden, "o2", "X") != strings.ReplaceAll(absent, "zz", "X") {
		t.Errorf("a denial-404 must equal a real 404:\n%s\n%s", hidden, absent)
	}
	for _, k := range []string{"Content-Type", "Cache-Control", "WWW-Authenticate"} {
		if h1.Get(k) != h2.Get(k) {
			t.Errorf("header %s differs: %q vs %q", k, h1.Get(k), h2.Get(k))
		}
	}
}

func TestBearerFailures(t *testing.T) {
	t.Parallel()
	clk := clock.NewFake(time.Now())
	f := newFixture(t, servertest.WithServerOptions(server.WithClock(clk)))
	good := f.userToken(t, "launch/patient patient/*.rs", "alice", alicePW)
	parts := strings.Split(good, ".")
	none := `eyJhbGciOiJub25lIiwidHlwIjoiYXQrand0In0.` + parts[1] + `.`
	var bodies []string
	check := func(name string, code int, h http.Header, body string, invalid bool) {
		t.Helper()
		ch := h.Get("WWW-Authenticate")
		if code != 401 || !strings.HasPrefix(ch, `Bearer realm="`) || (invalid && !strings.Contains(ch, `error="invalid_token"`)) {
			t.Errorf("%s: %d %q %s", name, code, ch, body)
		}
		bodies = append(bodies, body)
	}
	code, h, body := call(t, f.ts, "", "GET", "/Patient/pA", "")
	check("fail/no-token", code, h, body, false)
	code, h, body = call(t, f.ts, none, "GET", "/Patient/pA", "")
	check("fail/alg-none", code, h, body, true)
	code, h, body = call(t, f.ts, parts[0]+"."+parts[1]+".AAAA", "GET", "/Patient/pA", "")
	check("fail/bad-signature", code, h, body, true)
	code, h, body = call(t, f.ts, "garbage", "GET", "/Patient/pA", "")
	check("fail/garbage", code, h, body, true)
	req, _ := http.NewRequest("GET", f.ts.FHIRBase+"/Patient/pA?access_token="+url.QueryEscape(good), nil)
	resp, err := f.ts.Anonymous.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	check("fail/query-string-token", resp.StatusCode, resp.Header, string(b), true)
	for _, p := range []string{"/Patient", "/Observation/x", "/_history"} {
		code, h, body = call(t, f.ts, "", "GET", p, "")
		check("fail/no-token"+p, code, h, body, false)
	}
	if code, _, _ := call(t, f.ts, good, "GET", "/Patient/pA", ""); code != 200 {
		t.Fatalf("ok/valid: %d", code)
	}
	clk.Advance(5*time.Minute + 61*time.Second)
	code, h, body = call(t, f.ts, good, "GET", "/Patient/pA", "")
	check("fail/expired", code, h, body, true)
	re := regexp.MustCompile(`[0-9a-f-]{36}`)
	for i := range bodies {
		if re.ReplaceAllString(bodies[i], "") != re.ReplaceAllString(bodies[0], "") {
			t.Errorf("401 bodies differ: %s vs %s", bodies[i], bodies[0])
		}
	}
}

// TestRoleLimitsUserScopes: user/ scopes are cut down to the user's roles
// (AUTHZ-08): a front-desk user asking user/*.cruds may read patients but
// no Observation.
func TestRoleLimitsUserScopes(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	seedObservations(t, f)
	adm := f.ts.Server.Authz().Admin()
	if err := adm.AddUser(context.Background(), authz.NewUser{Username: "fd1", Password: drPW, FHIRUser: "Practitioner/drA",
		Roles: []string{"front-desk"}}); err != nil {
		t.Fatal(err)
	}
	verifier, challenge := pkce()
	code := f.codeFor(t, "app1", "user/*.cruds", "fd1", drPW, challenge, nil)
	ans := postForm(t, f.ts.Anonymous, f.ts.URL+"/auth/token", url.Values{"grant_type": {"authorization_code"}, "code": {code},
		"code_verifier": {verifier}, "redirect_uri": {f.redirect}, "client_id": {"app1"}}, "", "")
	scope, _ := ans.body["scope"].(string)
	if ans.status != 200 || !strings.Contains(scope, "user/Patient.rs") || strings.Contains(scope, "*") || strings.Contains(scope, "Observation") {
		t.Fatalf("front-desk grant: %d %q", ans.status, scope)
	}
	tok := ans.body["access_token"].(string)
	if c, _, b := call(t, f.ts, tok, "GET", "/Patient/pA", ""); c != 200 {
		t.Errorf("ok/front-desk-reads-patient: %d %s", c, b)
	}
	if c, _, _ := call(t, f.ts, tok, "GET", "/Observation/o1", ""); c != 403 {
		t.Errorf("fail/front-desk-reads-observation: %d", c)
	}
}
