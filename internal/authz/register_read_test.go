package authz_test

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
)

// TestRegistrationRead is the RFC 7592 read: the registration access token
// reads its own client's registration, never the client_secret; every
// other attempt is one 401.
func TestRegistrationRead(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	get := func(u, token string) (int, http.Header, map[string]any, string) {
		t.Helper()
		req, _ := http.NewRequest(http.MethodGet, u, nil)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := f.ts.Anonymous.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		var m map[string]any
		_ = json.Unmarshal(b, &m)
		return resp.StatusCode, resp.Header, m, string(b)
	}
	// Dynamic registration through HTTP (--dev: open).
	req, _ := http.NewRequest(http.MethodPost, f.ts.URL+"/auth/register",
		strings.NewReader(`{"client_name":"Reg App","redirect_uris":["https://reg.example/cb"]}`))
	req.Header.Set("Content-Type", "application/json")
	resp, err := f.ts.Anonymous.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var reg map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&reg)
	resp.Body.Close()
	rat, _ := reg["registration_access_token"].(string)
	uri, _ := reg["registration_client_uri"].(string)
	id, _ := reg["client_id"].(string)
	if resp.StatusCode != 201 || rat == "" || uri != f.ts.URL+"/auth/register/"+id || reg["client_secret"] == nil {
		t.Fatalf("registration: %d %v", resp.StatusCode, reg)
	}

	code, hdr, m, body := get(uri, rat)
	if code != 200 || m["client_id"] != id || m["client_name"] != "Reg App" || m["registration_client_uri"] != uri ||
		hdr.Get("Cache-Control") != "no-store" {
		t.Fatalf("ok/read: %d %v", code, m)
	}
	for _, secret := range []string{"client_secret", "registration_access_token"} {
		if strings.Contains(body, secret+`"`) {
			t.Errorf("the read shows %s: %s", secret, body)
		}
	}
	if strings.Contains(body, reg["client_secret"].(string)) {
		t.Errorf("the read leaks the secret")
	}

	// app2 (confidential, registered through the server's Admin): its own
	// token reads it, without the secret.
	app2 := register(t, f.ts, map[string]any{"client_id": "app2b", "redirect_uris": []string{f.redirect}})
	if code, _, m, body := get(app2.RegistrationClientURI, app2.RegistrationAccessToken); code != 200 || m["client_id"] != "app2b" ||
		strings.Contains(body, "client_secret\"") || strings.Contains(body, app2.ClientSecret) {
		t.Errorf("ok/read-app2b: %d %s", code, body)
	}

	// One 401 for every failure.
	var first string
	for _, tc := range []struct{ name, u, token string }{
		{"fail/no-token", uri, ""},
		{"fail/wrong-token", uri, "nope"},
		{"fail/other-clients-token", app2.RegistrationClientURI, rat},
		{"fail/unknown-client", f.ts.URL + "/auth/register/ghost", rat},
		{"fail/malformed-id", f.ts.URL + "/auth/register/a%2Fb", rat},
		{"fail/initial-access-token-kind", uri, app2.ClientSecret},
		{"fail/oversized-token", uri, strings.Repeat("a", 5000)},
		{"fail/oversized-id", f.ts.URL + "/auth/register/" + strings.Repeat("a", 5000), rat},
		{"fail/encoded-dots", f.ts.URL + "/auth/register/%2E%2E", rat},
	} {
		code, hdr, m, body := get(tc.u, tc.token)
		if code != 401 || m["error"] != "invalid_token" || !strings.HasPrefix(hdr.Get("WWW-Authenticate"), "Bearer") {
			t.Errorf("%s: %d %v", tc.name, code, m)
		}
		if first == "" {
			first = body
		} else if body != first {
			t.Errorf("%s: the 401 bodies differ: %s vs %s", tc.name, body, first)
		}
	}
	// Query-string tokens are refused; update and delete are not offered.
	if code, _, _, _ := get(uri+"?access_token="+rat, ""); code != 401 {
		t.Errorf("fail/query-token: %d", code)
	}
	for _, method := range []string{http.MethodPut, http.MethodDelete} {
		req, _ := http.NewRequest(method, uri, strings.NewReader(`{}`))
		req.Header.Set("Authorization", "Bearer "+rat)
		req.Header.Set("Content-Type", "application/json")
		resp, err := f.ts.Anonymous.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 405 || resp.Header.Get("Allow") == "" {
			t.Errorf("fail/%s: %d", method, resp.StatusCode)
		}
	}
	// Discovery keeps pointing at the registration endpoint itself.
	if smartConfig(t, f.ts)["registration_endpoint"] != f.ts.URL+"/auth/register" {
		t.Errorf("registration_endpoint changed")
	}
}
