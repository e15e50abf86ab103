package authz_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/lestrrat-go/jwx/v3/jwa"
	"github.com/lestrrat-go/jwx/v3/jwk"
	"github.com/lestrrat-go/jwx/v3/jws"
	"github.com/lestrrat-go/jwx/v3/jwt"

	"github.com/fhirguard/fhirguard/internal/authz"
	"github.com/fhirguard/fhirguard/internal/server/servertest"
)

// backendKeys are a backend client's keys, built and used with jwx (a JOSE
// library production does not use).
type backendKeys struct {
	ec  *ecdsa.PrivateKey
	rsa *rsa.PrivateKey
}

func newBackendKeys(t *testing.T) *backendKeys {
	t.Helper()
	ec, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	rk, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	return &backendKeys{ec: ec, rsa: rk}
}

// publicJWKS renders the public keys as a JWKS (kid ec1 / rsa1).
func (k *backendKeys) publicJWKS(t *testing.T) json.RawMessage {
	t.Helper()
	set := jwk.NewSet()
	for kid, raw := range map[string]any{"ec1": &k.ec.PublicKey, "rsa1": &k.rsa.PublicKey} {
		key, err := jwk.Import(raw)
		if err != nil {
			t.Fatal(err)
		}
		_ = key.Set(jwk.KeyIDKey, kid)
		_ = set.AddKey(key)
	}
	b, err := json.Marshal(set)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

type assertionOpts struct {
	iss, sub, aud, jti string
	exp, iat           time.Time
	noJTI, noExp       bool
	alg                string // ES384 (default) or RS384
	kid                string
	jku                string
}

// assertion signs a client assertion with jwx.
func (k *backendKeys) assertion(t *testing.T, o assertionOpts) string {
	t.Helper()
	b := jwt.NewBuilder().Issuer(o.iss).Subject(o.sub).Audience([]string{o.aud}).IssuedAt(o.iat)
	if !o.noExp {
		b = b.Expiration(o.exp)
	}
	if !o.noJTI {
		b = b.JwtID(o.jti)
	}
	tok, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	alg, raw, kid := jwa.ES384(), any(k.ec), "ec1"
	if o.alg == "RS384" {
		alg, raw, kid = jwa.RS384(), any(k.rsa), "rsa1"
	}
	if o.kid != "" {
		kid = o.kid
	}
	key, err := jwk.Import(raw)
	if err != nil {
		t.Fatal(err)
	}
	_ = key.Set(jwk.KeyIDKey, kid)
	hdr := jws.NewHeaders()
	if o.jku != "" {
		_ = hdr.Set(jws.JWKSetURLKey, o.jku)
	}
	signed, err := jwt.Sign(tok, jwt.WithKey(alg, key, jws.WithProtectedHeaders(hdr)))
	if err != nil {
		t.Fatal(err)
	}
	return string(signed)
}

// handmade builds a compact JWS with an arbitrary header, signed with
// HMAC-SHA256 under secret (nil = no signature).
func handmade(header, claims map[string]any, secret []byte) string {
	h, _ := json.Marshal(header)
	c, _ := json.Marshal(claims)
	in := base64.RawURLEncoding.EncodeToString(h) + "." + base64.RawURLEncoding.EncodeToString(c)
	if secret == nil {
		return in + "."
	}
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(in))
	return in + "." + base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

type tokenAnswer struct {
	status int
	header http.Header
	body   map[string]any
}

func postForm(t *testing.T, c *http.Client, u string, form url.Values, basicUser, basicPass string) tokenAnswer {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, u, strings.NewReader(form.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if basicUser != "" {
		req.SetBasicAuth(url.QueryEscape(basicUser), url.QueryEscape(basicPass))
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var m map[string]any
	if len(b) > 0 {
		if err := json.Unmarshal(b, &m); err != nil {
			t.Fatalf("%s: not JSON: %s", u, b)
		}
	}
	return tokenAnswer{status: resp.StatusCode, header: resp.Header, body: m}
}

func register(t *testing.T, ts *servertest.TestServer, doc map[string]any) *authz.Registration {
	t.Helper()
	b, _ := json.Marshal(doc)
	reg, err := ts.Server.Authz().Admin().Register(context.Background(), b, authz.RegistrationPolicy{AllowClientID: true})
	if err != nil {
		t.Fatalf("register %v: %v", doc["client_id"], err)
	}
	return reg
}

func TestBackendServices(t *testing.T) {
	t.Parallel()
	ts := servertest.Start(t)
	keys := newBackendKeys(t)
	register(t, ts, map[string]any{"client_id": "bk1", "grant_types": []string{"client_credentials"},
		"jwks": keys.publicJWKS(t), "scope": "system/Observation.rs"})
	register(t, ts, map[string]any{"client_id": "app1", "redirect_uris": []string{"http://127.0.0.1:9/cb"},
		"token_endpoint_auth_method": "none"})
	app2 := register(t, ts, map[string]any{"client_id": "app2", "redirect_uris": []string{"https://app2.example/cb"}})
	tokenURL := ts.URL + "/auth/token"
	now := time.Now()
	good := func() assertionOpts {
		return assertionOpts{iss: "bk1", sub: "bk1", aud: tokenURL, jti: randomJTI(), exp: now.Add(4 * time.Minute), iat: now}
	}
	ccForm := func(a string, scope string) url.Values {
		return url.Values{"grant_type": {"client_credentials"}, "scope": {scope},
			"client_assertion_type": {authz.AssertionType}, "client_assertion": {a}}
	}

	// ok: ES384 and RS384, scope cut down to the registration.
	for _, alg := range []string{"ES384", "RS384"} {
		o := good()
		o.alg = alg
		ans := postForm(t, ts.Anonymous, tokenURL, ccForm(keys.assertion(t, o), "system/*.rs"), "", "")
		if ans.status != 200 {
			t.Fatalf("ok/%s: %d %v", alg, ans.status, ans.body)
		}
		if ans.body["token_type"] != "Bearer" || ans.body["scope"] != "system/Observation.rs" {
			t.Errorf("ok/%s: body %v", alg, ans.body)
		}
		if exp, ok := ans.body["expires_in"].(float64); !ok || exp <= 0 || exp > 300 {
			t.Errorf("ok/%s: expires_in %v", alg, ans.body["expires_in"])
		}
		if ans.header.Get("Cache-Control") != "no-store" || ans.header.Get("Pragma") != "no-cache" {
			t.Errorf("ok/%s: cache headers %v", alg, ans.header)
		}
		if _, ok := ans.body["refresh_token"]; ok {
			t.Errorf("ok/%s: a backend token has no refresh token", alg)
		}
	}

	// The token works on the FHIR API, within its scope.
	o := good()
	ans := postForm(t, ts.Anonymous, tokenURL, ccForm(keys.assertion(t, o), "system/Observation.rs"), "", "")
	tok, _ := ans.body["access_token"].(string)
	c := ts.WithToken(tok)
	if resp, err := c.Get(ts.FHIRBase + "/Observation/none"); err != nil || resp.StatusCode != 404 {
		t.Fatalf("token on the FHIR API: %v %v", resp.StatusCode, err)
	}

	// Replay of the same assertion.
	replayed := keys.assertion(t, o)
	_ = postForm(t, ts.Anonymous, tokenURL, ccForm(replayed, "system/Observation.rs"), "", "")

	pubDER, _ := x509.MarshalPKIXPublicKey(&keys.rsa.PublicKey)
	pubPEM := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pubDER})
	claims := map[string]any{"iss": "bk1", "sub": "bk1", "aud": tokenURL, "jti": randomJTI(), "exp": now.Add(time.Minute).Unix()}
	edit := func(f func(o *assertionOpts)) string {
		o := good()
		f(&o)
		return keys.assertion(t, o)
	}
	other := newBackendKeys(t)
	for _, tc := range []struct {
		name      string
		assertion string
	}{
		{"fail/wrong-aud", edit(func(o *assertionOpts) { o.aud = "https://evil.example/token" })},
		{"fail/exp-10-min-ahead", edit(func(o *assertionOpts) { o.exp = now.Add(10 * time.Minute) })},
		{"fail/expired", edit(func(o *assertionOpts) { o.exp = now.Add(-5 * time.Minute); o.iat = now.Add(-10 * time.Minute) })},
		{"fail/no-exp", edit(func(o *assertionOpts) { o.noExp = true })},
		{"fail/future-iat", edit(func(o *assertionOpts) { o.iat = now.Add(3 * time.Minute) })},
		{"fail/iss-not-sub", edit(func(o *assertionOpts) { o.sub = "someone" })},
		{"fail/no-jti", edit(func(o *assertionOpts) { o.noJTI = true })},
		{"fail/replayed-jti", replayed},
		{"fail/unknown-kid", edit(func(o *assertionOpts) { o.kid = "nope" })},
		{"fail/kid-of-other-alg", edit(func(o *assertionOpts) { o.kid = "rsa1" })},
		{"fail/jku-not-registered", edit(func(o *assertionOpts) { o.jku = "https://attacker.example/jwks" })},
		{"fail/unknown-client", edit(func(o *assertionOpts) { o.iss, o.sub = "nobody", "nobody" })},
		{"fail/alg-none", handmade(map[string]any{"alg": "none", "kid": "ec1"}, claims, nil)},
		{"fail/hs256-with-public-key", handmade(map[string]any{"alg": "HS256", "kid": "rsa1"}, claims, pubPEM)},
		{"fail/bad-signature", other.assertion(t, good())},
		{"fail/garbage", "not.a.jwt"},
	} {
		ans := postForm(t, ts.Anonymous, tokenURL, ccForm(tc.assertion, "system/Observation.rs"), "", "")
		if ans.status != http.StatusUnauthorized || ans.body["error"] != "invalid_client" {
			t.Errorf("%s: %d %v", tc.name, ans.status, ans.body)
		}
	}

	for _, tc := range []struct {
		name       string
		form       url.Values
		user, pass string
		status     int
		code       string
	}{
		{"fail/unsupported-grant-password", url.Values{"grant_type": {"password"}, "username": {"a"}, "password": {"b"}, "client_id": {"app1"}}, "", "", 400, "unsupported_grant_type"},
		{"fail/unsupported-grant-implicit", url.Values{"grant_type": {"implicit"}, "client_id": {"app1"}}, "", "", 400, "unsupported_grant_type"},
		{"fail/no-grant-type", url.Values{"client_id": {"app1"}}, "", "", 400, "invalid_request"},
		{"fail/public-client-credentials", url.Values{"grant_type": {"client_credentials"}, "client_id": {"app1"}, "scope": {"system/*.rs"}}, "", "", 400, "unauthorized_client"},
		{"fail/wrong-secret", url.Values{"grant_type": {"authorization_code"}, "code": {"x"}}, "app2", "wrong", 401, "invalid_client"},
		{"fail/confidential-without-secret", url.Values{"grant_type": {"authorization_code"}, "client_id": {"app2"}, "code": {"x"}}, "", "", 401, "invalid_client"},
		{"fail/secret-in-body", url.Values{"grant_type": {"authorization_code"}, "client_id": {"app2"}, "client_secret": {app2.ClientSecret}}, "", "", 401, "invalid_client"},
		{"fail/bad-code-right-secret", url.Values{"grant_type": {"authorization_code"}, "code": {"x"}, "code_verifier": {strings.Repeat("a", 43)}}, "app2", app2.ClientSecret, 400, "invalid_grant"},
		{"fail/repeated-parameter", url.Values{"grant_type": {"client_credentials", "client_credentials"}}, "", "", 400, "invalid_request"},
		{"fail/oversized-parameter", url.Values{"grant_type": {"client_credentials"}, "scope": {strings.Repeat("a", 9000)}}, "", "", 400, "invalid_request"},
		{"fail/malformed-scope", ccForm(keys.assertion(t, good()), "system/Observation.xyz"), "", "", 400, "invalid_scope"},
		{"fail/scope-not-registered", ccForm(keys.assertion(t, good()), "system/Patient.rs"), "", "", 400, "invalid_scope"},
	} {
		ans := postForm(t, ts.Anonymous, tokenURL, tc.form, tc.user, tc.pass)
		if ans.status != tc.status || ans.body["error"] != tc.code {
			t.Errorf("%s: %d %v (want %d %s)", tc.name, ans.status, ans.body, tc.status, tc.code)
		}
		if ans.header.Get("Cache-Control") != "no-store" {
			t.Errorf("%s: errors must not be cached", tc.name)
		}
	}
}

func randomJTI() string {
	b := make([]byte, 12)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}
