package authz_test

import (
	"io"
	"net/url"
	"strings"
	"testing"
)

// TestAuthEventsAudited: logins, issued tokens and refused token requests
// reach the audit log (read back as AuditEvents through the FHIR API).
func TestAuthEventsAudited(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	tok := f.userToken(t, "launch/patient patient/*.rs", "alice", alicePW)
	ans := postForm(t, f.ts.Anonymous, f.ts.URL+"/auth/token", url.Values{"grant_type": {"authorization_code"},
		"code": {"nope"}, "code_verifier": {strings.Repeat("a", 43)}}, "app2", "wrong-secret")
	if ans.status != 401 {
		t.Fatalf("refused request: %d", ans.status)
	}
	resp, err := f.ts.Client.Get(f.ts.FHIRBase + "/AuditEvent?_count=200")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	body := string(b)
	if resp.StatusCode != 200 {
		t.Fatalf("AuditEvent search: %d %s", resp.StatusCode, body)
	}
	for _, want := range []string{`"code":"110114"`, `"code":"token"`, `"code":"token-refused"`} {
		if !strings.Contains(body, want) {
			t.Errorf("the audit log lacks %s", want)
		}
	}
	for _, secret := range []string{alicePW, "wrong-secret", tok, strings.Split(tok, ".")[2]} {
		if strings.Contains(body, secret) {
			t.Errorf("a secret reached the audit log")
		}
	}
}
