package authz

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"strings"
	"testing"

	"github.com/go-jose/go-jose/v4"

	"github.com/fhirguard/fhirguard/internal/policy/scopes"
)

func jwksJSON(t *testing.T, keys ...any) string {
	t.Helper()
	var set jose.JSONWebKeySet
	for i, k := range keys {
		set.Keys = append(set.Keys, jose.JSONWebKey{Key: k, KeyID: string(rune('a' + i))})
	}
	b, err := json.Marshal(set)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestParseMetadata(t *testing.T) {
	t.Parallel()
	ec384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	ec256, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	rsa1k, _ := rsa.GenerateKey(rand.Reader, 1024)
	pubJWKS := jwksJSON(t, &ec384.PublicKey)
	pol := RegistrationPolicy{JWKSURIHosts: []string{"keys.example"}}
	for _, tc := range []struct {
		name, doc string
		pol       RegistrationPolicy
		code      string // "" = ok
		check     func(m *Metadata) bool
	}{
		{name: "ok/public", doc: `{"redirect_uris":["https://a.example/cb"],"token_endpoint_auth_method":"none"}`,
			check: func(m *Metadata) bool {
				return m.GrantTypes[0] == GrantCode && m.ResponseTypes[0] == "code" && m.Scope == defaultUserScope
			}},
		{name: "ok/default-secret-basic", doc: `{"redirect_uris":["http://127.0.0.1:8000/cb"]}`,
			check: func(m *Metadata) bool { return m.TokenEndpointAuthMethod == AuthSecretBasic }},
		{name: "ok/backend", doc: `{"grant_types":["client_credentials"],"jwks":` + pubJWKS + `,"scope":"system/Observation.rs"}`,
			check: func(m *Metadata) bool { return m.TokenEndpointAuthMethod == AuthPrivateKey && len(m.RedirectURIs) == 0 }},
		{name: "ok/jwks-uri-allowlisted", doc: `{"grant_types":["client_credentials"],"jwks_uri":"https://keys.example/jwks","scope":"system/*.rs"}`, pol: pol},
		{name: "ok/native-scheme", doc: `{"redirect_uris":["com.example.app:/cb"],"token_endpoint_auth_method":"none"}`},
		{name: "ok/client-id-by-admin", doc: `{"client_id":"app1","redirect_uris":["https://a.example/cb"]}`, pol: RegistrationPolicy{AllowClientID: true}},
		{name: "ok/post-logout-redirect", doc: `{"redirect_uris":["https://a.example/cb"],"post_logout_redirect_uris":["https://a.example/bye"]}`,
			check: func(m *Metadata) bool { return m.PostLogoutRedirectURIs[0] == "https://a.example/bye" }},
		{name: "fail/post-logout-redirect-http", doc: `{"redirect_uris":["https://a.example/cb"],"post_logout_redirect_uris":["http://evil.example/bye"]}`, code: ErrInvalidClientMetadata},
		{name: "fail/post-logout-redirect-backend", doc: `{"grant_types":["client_credentials"],"jwks":` + pubJWKS + `,"scope":"system/*.rs","post_logout_redirect_uris":["https://a.example/bye"]}`, code: ErrInvalidClientMetadata},
		{name: "fail/client-id-dynamic", doc: `{"client_id":"app1","redirect_uris":["https://a.example/cb"]}`, code: ErrInvalidClientMetadata},
		{name: "fail/http-redirect", doc: `{"redirect_uris":["http://evil.example/cb"]}`, code: ErrInvalidRedirectURI},
		{name: "fail/fragment", doc: `{"redirect_uris":["https://a.example/cb#x"]}`, code: ErrInvalidRedirectURI},
		{name: "fail/javascript", doc: `{"redirect_uris":["javascript:alert(1)"]}`, code: ErrInvalidRedirectURI},
		{name: "fail/relative", doc: `{"redirect_uris":["/cb"]}`, code: ErrInvalidRedirectURI},
		{name: "fail/no-redirect", doc: `{"token_endpoint_auth_method":"none"}`, code: ErrInvalidRedirectURI},
		{name: "fail/unknown-member", doc: `{"redirect_uris":["https://a.example/cb"],"color":"red"}`, code: ErrInvalidClientMetadata},
		{name: "fail/not-json", doc: `{`, code: ErrInvalidClientMetadata},
		{name: "fail/implicit", doc: `{"redirect_uris":["https://a.example/cb"],"grant_types":["implicit"]}`, code: ErrInvalidClientMetadata},
		{name: "fail/password-grant", doc: `{"redirect_uris":["https://a.example/cb"],"grant_types":["password"]}`, code: ErrInvalidClientMetadata},
		{name: "fail/response-token", doc: `{"redirect_uris":["https://a.example/cb"],"response_types":["token"]}`, code: ErrInvalidClientMetadata},
		{name: "fail/backend-secret", doc: `{"grant_types":["client_credentials"],"token_endpoint_auth_method":"client_secret_basic","scope":"system/*.rs"}`, code: ErrInvalidClientMetadata},
		{name: "fail/backend-no-scope", doc: `{"grant_types":["client_credentials"],"jwks":` + pubJWKS + `}`, code: ErrInvalidClientMetadata},
		{name: "fail/private-key-in-jwks", doc: `{"grant_types":["client_credentials"],"jwks":` + jwksJSON(t, ec384) + `,"scope":"system/*.rs"}`, code: ErrInvalidClientMetadata},
		{name: "fail/p256-key", doc: `{"grant_types":["client_credentials"],"jwks":` + jwksJSON(t, &ec256.PublicKey) + `,"scope":"system/*.rs"}`, code: ErrInvalidClientMetadata},
		{name: "fail/short-rsa", doc: `{"grant_types":["client_credentials"],"jwks":` + jwksJSON(t, &rsa1k.PublicKey) + `,"scope":"system/*.rs"}`, code: ErrInvalidClientMetadata},
		{name: "fail/jwks-uri-not-allowlisted", doc: `{"grant_types":["client_credentials"],"jwks_uri":"https://169.254.169.254/x","scope":"system/*.rs"}`, pol: pol, code: ErrInvalidClientMetadata},
		{name: "fail/jwks-uri-http", doc: `{"grant_types":["client_credentials"],"jwks_uri":"http://keys.example/jwks","scope":"system/*.rs"}`, pol: pol, code: ErrInvalidClientMetadata},
		{name: "fail/both-jwks", doc: `{"grant_types":["client_credentials"],"jwks":` + pubJWKS + `,"jwks_uri":"https://keys.example/jwks","scope":"system/*.rs"}`, pol: pol, code: ErrInvalidClientMetadata},
		{name: "fail/bad-scope", doc: `{"redirect_uris":["https://a.example/cb"],"scope":"patient/Observation.xyz"}`, code: ErrInvalidClientMetadata},
		{name: "fail/backend-lifetime", doc: `{"grant_types":["client_credentials"],"jwks":` + pubJWKS + `,"scope":"system/*.rs","access_token_lifetime":7200}`, code: ErrInvalidClientMetadata},
		{name: "fail/http-logo", doc: `{"redirect_uris":["https://a.example/cb"],"logo_uri":"http://a.example/l.png"}`, code: ErrInvalidClientMetadata},
	} {
		m, err := ParseMetadata([]byte(tc.doc), tc.pol)
		if tc.code == "" {
			if err != nil {
				t.Errorf("%s: %v", tc.name, err)
			} else if tc.check != nil && !tc.check(m) {
				t.Errorf("%s: unexpected metadata %+v", tc.name, m)
			}
			continue
		}
		e := asError(err)
		if e == nil || e.Code != tc.code {
			t.Errorf("%s: err %v, want %s", tc.name, err, tc.code)
			continue
		}
		if strings.Contains(e.Desc, "json:") || strings.Contains(e.Desc, ".go") {
			t.Errorf("%s: description leaks internals: %q", tc.name, e.Desc)
		}
	}
}

func TestPassword(t *testing.T) {
	t.Parallel()
	p := Argon2Params{Memory: 1024, Time: 1, Threads: 1}
	h, err := HashPassword("correct horse", p)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(h, "$argon2id$v=19$m=1024,t=1,p=1$") {
		t.Fatalf("PHC format: %s", h)
	}
	if ok, err := CheckPassword(h, "correct horse"); !ok || err != nil {
		t.Fatalf("ok/right-password: %v %v", ok, err)
	}
	if ok, _ := CheckPassword(h, "correct horsf"); ok {
		t.Fatal("fail/wrong-password accepted")
	}
	h2, _ := HashPassword("correct horse", p)
	if h2 == h {
		t.Fatal("salts must differ")
	}
	for _, bad := range []string{"", "$argon2i$v=19$m=1,t=1,p=1$a$b", "$argon2id$v=19$m=99999999,t=1,p=1$YQ$YQ", "$argon2id$v=19$m=1024,t=1,p=1$!!$YQ"} {
		if _, err := CheckPassword(bad, "x"); err == nil {
			t.Errorf("fail/malformed-hash %q accepted", bad)
		}
	}
	if _, err := HashPassword("", p); err == nil {
		t.Error("fail/empty-password hashed")
	}
	if !checkSecret(hashSecret("s3cret"), "s3cret") || checkSecret(hashSecret("s3cret"), "s3cres") || checkSecret("plain", "plain") {
		t.Error("client secret hashing")
	}
}

func TestRoleScopesParse(t *testing.T) {
	t.Parallel()
	for _, r := range Roles() {
		if raw := roleScopes[r]; raw != "" {
			if _, err := scopes.Parse(raw); err != nil {
				t.Errorf("role %s: %v", r, err)
			}
		}
	}
	if got := userAllowed("Patient/pA", nil).String(); got != "patient/*.cruds" {
		t.Errorf("patient default: %q", got)
	}
	if got := userAllowed("Patient/pA", []string{RoleClinician}).String(); got != "patient/*.cruds" {
		t.Errorf("a patient user never holds user/ scopes: %q", got)
	}
	if got := userAllowed("Practitioner/drA", []string{RoleBreakGlass}).String(); got != "user/*.cruds patient/*.cruds" {
		t.Errorf("break-glass alone keeps the clinician default: %q", got)
	}
}
