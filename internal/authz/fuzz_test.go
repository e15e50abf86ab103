package authz

import (
	"strings"
	"testing"
)

// FuzzParseMetadata: any registration document is accepted (then valid)
// or refused with an OAuth error whose description names nothing internal;
// never a panic.
func FuzzParseMetadata(f *testing.F) {
	for _, s := range []string{
		`{"redirect_uris":["https://a.example/cb"],"token_endpoint_auth_method":"none"}`,
		`{"grant_types":["client_credentials"],"jwks_uri":"https://keys.example/jwks","scope":"system/*.rs"}`,
		`{"redirect_uris":["http://evil.example/cb"]}`,
		`{"jwks":{"keys":[{"kty":"EC","crv":"P-384","x":"AA","y":"AA"}]}}`,
		`{"scope":"patient/Observation.rs?category=a|b"}`, `[]`, `{`, `null`,
		`{"redirect_uris":["https://a.example/cb"],"post_logout_redirect_uris":["https://a.example/bye","javascript:x"]}`,
	} {
		f.Add([]byte(s))
	}
	pol := RegistrationPolicy{JWKSURIHosts: []string{"keys.example"}}
	f.Fuzz(func(t *testing.T, doc []byte) {
		m, err := ParseMetadata(doc, pol)
		if err != nil {
			e := asError(err)
			if e == nil || (e.Code != ErrInvalidClientMetadata && e.Code != ErrInvalidRedirectURI) {
				t.Fatalf("error is not an RFC 7591 error: %v", err)
			}
			if strings.Contains(e.Desc, "json:") || strings.Contains(e.Desc, ".go:") {
				t.Fatalf("description leaks internals: %q", e.Desc)
			}
			return
		}
		if m.TokenEndpointAuthMethod == "" || len(m.GrantTypes) == 0 {
			t.Fatalf("accepted without defaults: %+v", m)
		}
		for _, u := range append(m.RedirectURIs, m.PostLogoutRedirectURIs...) {
			if checkRedirectURI(u) != nil {
				t.Fatalf("accepted a bad redirect_uri %q", u)
			}
		}
	})
}

// FuzzCheckPKCE: only the verifier whose S256 digest is the challenge
// matches; never a panic.
func FuzzCheckPKCE(f *testing.F) {
	f.Add("E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM", "dBjftJeZ4CVP-mJ92K9f_Anl7U9p3GZCNRl6mROGijL0")
	f.Add("", "")
	f.Fuzz(func(t *testing.T, challenge, verifier string) {
		if checkPKCE(challenge, verifier) && !validVerifier(verifier) {
			t.Fatal("an invalid verifier matched")
		}
	})
}
