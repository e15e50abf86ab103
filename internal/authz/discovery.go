package authz

import (
	"net/http"
)

// Capabilities are the SMART capabilities advertised (each has a test).
var Capabilities = []string{
	"launch-ehr", "launch-standalone",
	"client-public", "client-confidential-symmetric", "client-confidential-asymmetric",
	"context-ehr-patient", "context-ehr-encounter",
	"context-standalone-patient", "context-standalone-encounter",
	"context-banner", "context-style",
	"permission-offline", "permission-online", "permission-patient", "permission-user",
	"permission-v1", "permission-v2",
	"sso-openid-connect", "authorize-post",
}

// scopesSupported are the scopes advertised (examples of each kind; any
// well-formed SMART scope is accepted).
var scopesSupported = []string{
	"openid", "fhirUser", "profile", "launch", "launch/patient", "launch/encounter",
	"offline_access", "online_access",
	"patient/*.cruds", "patient/*.rs", "patient/*.read", "patient/*.write", "patient/*.*",
	"user/*.cruds", "user/*.rs", "user/*.read", "user/*.write", "user/*.*",
	"system/*.cruds", "system/*.rs", "system/*.read",
}

// OAuthURIs are the endpoint URLs, for the CapabilityStatement's
// oauth-uris extension.
type OAuthURIs struct {
	Authorize, Token, Register, Introspect, Revoke string
}

// URIs returns the endpoint URLs.
func (s *Server) URIs() OAuthURIs {
	return OAuthURIs{
		Authorize:  s.o.Root + PathAuthorize,
		Token:      s.o.Root + PathToken,
		Register:   s.o.Root + PathRegister,
		Introspect: s.o.Root + PathIntrospect,
		Revoke:     s.o.Root + PathRevoke,
	}
}

type smartConfig struct {
	Issuer                            string   `json:"issuer"`
	JWKSURI                           string   `json:"jwks_uri"`
	AuthorizationEndpoint             string   `json:"authorization_endpoint"`
	TokenEndpoint                     string   `json:"token_endpoint"`
	RegistrationEndpoint              string   `json:"registration_endpoint"`
	IntrospectionEndpoint             string   `json:"introspection_endpoint"`
	RevocationEndpoint                string   `json:"revocation_endpoint"`
	UserinfoEndpoint                  string   `json:"userinfo_endpoint,omitempty"`
	GrantTypesSupported               []string `json:"grant_types_supported"`
	TokenEndpointAuthMethodsSupported []string `json:"token_endpoint_auth_methods_supported"`
	TokenEndpointAuthSigningAlgs      []string `json:"token_endpoint_auth_signing_alg_values_supported"`
	ScopesSupported                   []string `json:"scopes_supported"`
	ResponseTypesSupported            []string `json:"response_types_supported"`
	CodeChallengeMethodsSupported     []string `json:"code_challenge_methods_supported"`
	Capabilities                      []string `json:"capabilities,omitempty"`
	// OIDC-only members.
	SubjectTypesSupported            []string `json:"subject_types_supported,omitempty"`
	IDTokenSigningAlgValuesSupported []string `json:"id_token_signing_alg_values_supported,omitempty"`
	ClaimsSupported                  []string `json:"claims_supported,omitempty"`
	ResponseModesSupported           []string `json:"response_modes_supported,omitempty"`
	EndSessionEndpoint               string   `json:"end_session_endpoint,omitempty"`
}

func (s *Server) config(oidc bool) smartConfig {
	u := s.URIs()
	c := smartConfig{
		Issuer:                            s.Issuer(),
		JWKSURI:                           s.o.Root + PathJWKS,
		AuthorizationEndpoint:             u.Authorize,
		TokenEndpoint:                     u.Token,
		RegistrationEndpoint:              u.Register,
		IntrospectionEndpoint:             u.Introspect,
		RevocationEndpoint:                u.Revoke,
		UserinfoEndpoint:                  s.o.Root + PathUserinfo,
		GrantTypesSupported:               []string{GrantCode, GrantClientCredentials, GrantRefresh},
		TokenEndpointAuthMethodsSupported: []string{AuthPrivateKey, AuthSecretBasic, AuthNone},
		TokenEndpointAuthSigningAlgs:      AssertionAlgs,
		ScopesSupported:                   scopesSupported,
		ResponseTypesSupported:            []string{"code"},
		CodeChallengeMethodsSupported:     []string{"S256"},
	}
	if oidc {
		c.SubjectTypesSupported = []string{"public"}
		c.IDTokenSigningAlgValuesSupported = []string{"RS256"}
		c.ClaimsSupported = []string{"iss", "sub", "aud", "exp", "iat", "auth_time", "nonce", "sid", "fhirUser", "name"}
		c.ResponseModesSupported = []string{"query"}
		c.EndSessionEndpoint = s.o.Root + PathLogout
	} else {
		c.Capabilities = Capabilities
	}
	return c
}

// discoveryHeaders: public documents, readable by any origin, cacheable
// briefly.
func discoveryHeaders(w http.ResponseWriter) {
	w.Header().Set("Access-Control-Allow-Origin", "*")
}

func (s *Server) smartConfiguration(w http.ResponseWriter, r *http.Request) error {
	if err := requireMethod(r, http.MethodGet); err != nil {
		return err
	}
	discoveryHeaders(w)
	return writeJSON(w, http.StatusOK, s.config(false))
}

func (s *Server) openidConfiguration(w http.ResponseWriter, r *http.Request) error {
	if err := requireMethod(r, http.MethodGet); err != nil {
		return err
	}
	discoveryHeaders(w)
	return writeJSON(w, http.StatusOK, s.config(true))
}

func (s *Server) serveJWKS(w http.ResponseWriter, r *http.Request) error {
	if err := requireMethod(r, http.MethodGet); err != nil {
		return err
	}
	discoveryHeaders(w)
	return writeJSON(w, http.StatusOK, s.o.Keys.JWKS(r.Context()))
}
