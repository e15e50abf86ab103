package authz_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lestrrat-go/jwx/v3/jwk"

	"github.com/fhirguard/fhirguard/internal/clock"
	"github.com/fhirguard/fhirguard/internal/config"
	"github.com/fhirguard/fhirguard/internal/server"
	"github.com/fhirguard/fhirguard/internal/server/servertest"
)

// TestJWKSURI: a backend client registered with an https jwks_uri on the
// allowlist; a key published there later is accepted without a restart
// (refetch for an unknown kid, rate-limited); fetches only go to the
// registered URL.
func TestJWKSURI(t *testing.T) {
	t.Parallel()
	first, second := newBackendKeys(t), newBackendKeys(t)
	var mu sync.Mutex
	published := first.publicJWKS(t)
	var fetches atomic.Int32
	keySrv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fetches.Add(1)
		mu.Lock()
		defer mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(published)
	}))
	t.Cleanup(keySrv.Close)
	host := strings.TrimPrefix(keySrv.URL, "https://")
	clk := clock.NewFake(time.Now())
	ts := servertest.Start(t,
		servertest.WithConfig(func(c *config.Config) { c.Auth.JWKSURIHosts = []string{host} }),
		servertest.WithServerOptions(server.WithClock(clk), server.WithJWKSClient(keySrv.Client())))

	// Registration through the endpoint (dev mode: open) with the jwks_uri.
	doc, _ := json.Marshal(map[string]any{"grant_types": []string{"client_credentials"}, "token_endpoint_auth_method": "private_key_jwt",
		"jwks_uri": keySrv.URL + "/jwks", "scope": "system/Observation.rs"})
	resp, err := ts.Anonymous.Post(ts.URL+"/auth/register", "application/json", strings.NewReader(string(doc)))
	if err != nil {
		t.Fatal(err)
	}
	var reg map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&reg)
	resp.Body.Close()
	id, _ := reg["client_id"].(string)
	if resp.StatusCode != 201 || id == "" {
		t.Fatalf("register with jwks_uri: %d %v", resp.StatusCode, reg)
	}
	tokenURL := ts.URL + "/auth/token"
	assertion := func(k *backendKeys, kid, jku string) string {
		now := clk.Now()
		return k.assertion(t, assertionOpts{iss: id, sub: id, aud: tokenURL, jti: randomJTI(), exp: now.Add(2 * time.Minute), iat: now, kid: kid, jku: jku})
	}
	form := func(a string) url.Values {
		return url.Values{"grant_type": {"client_credentials"}, "scope": {"system/Observation.rs"},
			"client_assertion_type": {"urn:ietf:params:oauth:client-assertion-type:jwt-bearer"}, "client_assertion": {a}}
	}
	if ans := postForm(t, ts.Anonymous, tokenURL, form(assertion(first, "ec1", "")), "", ""); ans.status != 200 {
		t.Fatalf("ok/jwks-uri-key: %d %v", ans.status, ans.body)
	}
	if ans := postForm(t, ts.Anonymous, tokenURL, form(assertion(first, "ec1", keySrv.URL+"/jwks")), "", ""); ans.status != 200 {
		t.Fatalf("ok/jku-equal-to-registered: %d %v", ans.status, ans.body)
	}
	if ans := postForm(t, ts.Anonymous, tokenURL, form(assertion(first, "ec1", "https://attacker.example/jwks")), "", ""); ans.status != 401 {
		t.Fatalf("fail/jku-attacker: %d %v", ans.status, ans.body)
	}

	// The client publishes a new key under a new kid.
	set := jwk.NewSet()
	k, _ := jwk.Import(&second.ec.PublicKey)
	_ = k.Set(jwk.KeyIDKey, "ec2")
	_ = set.AddKey(k)
	mu.Lock()
	published, _ = json.Marshal(set)
	mu.Unlock()
	before := fetches.Load()
	// Within the refetch limit an unknown kid is refused without a fetch.
	if ans := postForm(t, ts.Anonymous, tokenURL, form(assertion(second, "ec2", "")), "", ""); ans.status != 401 {
		t.Fatalf("unknown kid within the refetch limit: %d %v", ans.status, ans.body)
	}
	if fetches.Load() != before {
		t.Fatalf("an unknown kid must not trigger a fetch within 10 s (%d fetches)", fetches.Load()-before)
	}
	clk.Advance(11 * time.Second)
	if ans := postForm(t, ts.Anonymous, tokenURL, form(assertion(second, "ec2", "")), "", ""); ans.status != 200 {
		t.Fatalf("ok/new-key-without-restart: %d %v", ans.status, ans.body)
	}
}
