package authz

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/fhirguard/fhirguard/internal/policy/scopes"
	"github.com/fhirguard/fhirguard/internal/store"
)

// Client authentication methods (token_endpoint_auth_method).
const (
	AuthNone        = "none"
	AuthSecretBasic = "client_secret_basic"
	AuthPrivateKey  = "private_key_jwt"
)

// Grant types.
const (
	GrantCode              = "authorization_code"
	GrantRefresh           = "refresh_token"
	GrantClientCredentials = "client_credentials"
)

// AssertionAlgs are the client-assertion algorithms accepted (SMART Backend
// Services: RS384 and ES384).
var AssertionAlgs = []string{"RS384", "ES384"}

// Metadata is an RFC 7591 client registration document (and the stored
// registration). Unknown members are refused when registering, so a
// client never believes a setting took effect that did not.
type Metadata struct {
	ClientID     string   `json:"client_id,omitempty"`
	ClientName   string   `json:"client_name,omitempty"`
	ClientURI    string   `json:"client_uri,omitempty"`
	LogoURI      string   `json:"logo_uri,omitempty"`
	Contacts     []string `json:"contacts,omitempty"`
	RedirectURIs []string `json:"redirect_uris,omitempty"`
	// PostLogoutRedirectURIs are where the end_session_endpoint may send
	// the user after logout (OpenID Connect RP-Initiated Logout 1.0).
	PostLogoutRedirectURIs  []string         `json:"post_logout_redirect_uris,omitempty"`
	TokenEndpointAuthMethod string           `json:"token_endpoint_auth_method,omitempty"`
	GrantTypes              []string         `json:"grant_types,omitempty"`
	ResponseTypes           []string         `json:"response_types,omitempty"`
	Scope                   string           `json:"scope,omitempty"`
	JWKS                    *json.RawMessage `json:"jwks,omitempty"`
	JWKSURI                 string           `json:"jwks_uri,omitempty"`
	SoftwareID              string           `json:"software_id,omitempty"`
	SoftwareVersion         string           `json:"software_version,omitempty"`
	TOSURI                  string           `json:"tos_uri,omitempty"`
	PolicyURI               string           `json:"policy_uri,omitempty"`
	// AccessTokenLifetime is fhirguard's per-client access token lifetime
	// in seconds (0 = the server default; at most MaxUserTokenLifetime,
	// MaxBackendTokenLifetime for client_credentials).
	AccessTokenLifetime int `json:"access_token_lifetime,omitempty"`
}

// Token lifetimes (RESIL-06).
const (
	DefaultAccessTokenLifetime = 5 * time.Minute
	MaxBackendTokenLifetime    = 5 * time.Minute
	MaxUserTokenLifetime       = 60 * time.Minute
)

// Client is a registered client as the authorization server uses it.
type Client struct {
	Metadata
	SecretHash string
	Disabled   bool
	// CreatedAt is when the client was registered.
	CreatedAt time.Time
	// Allowed is the parsed registered scope.
	Allowed scopes.Set
	// Keys is the registered inline JWKS (nil when jwks_uri is used).
	Keys *jose.JSONWebKeySet
}

// Public reports whether the client has no credentials.
func (c *Client) Public() bool { return c.TokenEndpointAuthMethod == AuthNone }

// HasGrant reports whether the client registered grant type g.
func (c *Client) HasGrant(g string) bool { return slices.Contains(c.GrantTypes, g) }

// TokenLifetime is the client's access token lifetime.
func (c *Client) TokenLifetime() time.Duration {
	if c.AccessTokenLifetime > 0 {
		return time.Duration(c.AccessTokenLifetime) * time.Second
	}
	return DefaultAccessTokenLifetime
}

// loadClient turns a stored client into a Client.
func loadClient(rec *store.Client) (*Client, error) {
	var m Metadata
	if err := json.Unmarshal(rec.Metadata, &m); err != nil {
		return nil, fmt.Errorf("client %s: stored metadata: %w", rec.ID, err)
	}
	m.ClientID = rec.ID
	c := &Client{Metadata: m, SecretHash: rec.SecretHash, Disabled: rec.Disabled, CreatedAt: rec.CreatedAt}
	set, err := scopes.Parse(m.Scope)
	if err != nil {
		return nil, fmt.Errorf("client %s: stored scope: %w", rec.ID, err)
	}
	c.Allowed = set
	if m.JWKS != nil {
		var ks jose.JSONWebKeySet
		if err := json.Unmarshal(*m.JWKS, &ks); err != nil {
			return nil, fmt.Errorf("client %s: stored jwks: %w", rec.ID, err)
		}
		c.Keys = &ks
	}
	return c, nil
}

// defaultUserScope is what a user-facing client registered without a
// scope may ask for: every SMART scope; the user's roles and consent limit
// the grant.
const defaultUserScope = "launch launch/patient launch/encounter openid fhirUser profile offline_access online_access patient/*.cruds user/*.cruds"

// RegistrationPolicy says what registration accepts beyond RFC 7591.
type RegistrationPolicy struct {
	// AllowClientID lets the document choose its client_id (the admin
	// CLI); dynamic registration always issues one.
	AllowClientID bool
	// JWKSURIHosts are the hosts whose jwks_uri is accepted (SSRF guard).
	JWKSURIHosts []string
}

// metadataError is an invalid_client_metadata / invalid_redirect_uri.
func metadataError(code, format string, args ...any) *Error {
	return oauthErr(code, format, args...)
}

// ParseMetadata decodes and validates a registration document and fills
// the defaults: token_endpoint_auth_method (private_key_jwt with keys,
// client_secret_basic otherwise, as RFC 7591), grant_types
// (authorization_code), response_types (code for authorization_code).
func ParseMetadata(doc []byte, pol RegistrationPolicy) (*Metadata, error) {
	dec := json.NewDecoder(bytes.NewReader(doc))
	dec.DisallowUnknownFields()
	var m Metadata
	if err := dec.Decode(&m); err != nil {
		return nil, metadataError(ErrInvalidClientMetadata, "the registration document is not valid JSON of known client metadata: %s", safeJSONErr(err))
	}
	if dec.More() {
		return nil, metadataError(ErrInvalidClientMetadata, "trailing data after the registration document")
	}
	if m.ClientID != "" {
		if !pol.AllowClientID {
			return nil, metadataError(ErrInvalidClientMetadata, "client_id is issued by the server")
		}
		if !validClientID(m.ClientID) {
			return nil, metadataError(ErrInvalidClientMetadata, "client_id must be 1-64 characters of A-Z a-z 0-9 . _ -")
		}
	}
	if len(m.GrantTypes) == 0 {
		m.GrantTypes = []string{GrantCode}
	}
	for _, g := range m.GrantTypes {
		switch g {
		case GrantCode, GrantRefresh, GrantClientCredentials:
		default:
			return nil, metadataError(ErrInvalidClientMetadata, "grant type %q is not supported (authorization_code, refresh_token, client_credentials)", clip(g))
		}
	}
	m.GrantTypes = dedupe(m.GrantTypes)
	code := slices.Contains(m.GrantTypes, GrantCode)
	if slices.Contains(m.GrantTypes, GrantRefresh) && !code {
		return nil, metadataError(ErrInvalidClientMetadata, "refresh_token needs authorization_code")
	}
	if len(m.ResponseTypes) == 0 && code {
		m.ResponseTypes = []string{"code"}
	}
	for _, rt := range m.ResponseTypes {
		if rt != "code" || !code {
			return nil, metadataError(ErrInvalidClientMetadata, "response_types may only be [\"code\"], with authorization_code")
		}
	}
	hasKeys := m.JWKS != nil || m.JWKSURI != ""
	if m.TokenEndpointAuthMethod == "" {
		m.TokenEndpointAuthMethod = AuthSecretBasic
		if hasKeys {
			m.TokenEndpointAuthMethod = AuthPrivateKey
		}
	}
	switch m.TokenEndpointAuthMethod {
	case AuthNone, AuthSecretBasic:
		if hasKeys {
			return nil, metadataError(ErrInvalidClientMetadata, "jwks and jwks_uri are only for private_key_jwt")
		}
	case AuthPrivateKey:
		if m.JWKS != nil && m.JWKSURI != "" {
			return nil, metadataError(ErrInvalidClientMetadata, "give jwks or jwks_uri, not both")
		}
		if !hasKeys {
			return nil, metadataError(ErrInvalidClientMetadata, "private_key_jwt needs jwks or jwks_uri")
		}
	default:
		return nil, metadataError(ErrInvalidClientMetadata, "token_endpoint_auth_method %q is not supported (none, client_secret_basic, private_key_jwt)", clip(m.TokenEndpointAuthMethod))
	}
	if slices.Contains(m.GrantTypes, GrantClientCredentials) && m.TokenEndpointAuthMethod != AuthPrivateKey {
		return nil, metadataError(ErrInvalidClientMetadata, "client_credentials needs private_key_jwt (SMART Backend Services)")
	}
	if code && len(m.RedirectURIs) == 0 {
		return nil, metadataError(ErrInvalidRedirectURI, "authorization_code needs at least one redirect_uri")
	}
	for _, u := range m.RedirectURIs {
		if err := checkRedirectURI(u); err != nil {
			return nil, metadataError(ErrInvalidRedirectURI, "redirect_uri %q: %v", clip(u), err)
		}
	}
	if len(m.PostLogoutRedirectURIs) > 0 && !code {
		return nil, metadataError(ErrInvalidClientMetadata, "post_logout_redirect_uris need authorization_code")
	}
	for _, u := range m.PostLogoutRedirectURIs {
		if err := checkRedirectURI(u); err != nil {
			return nil, metadataError(ErrInvalidClientMetadata, "post_logout_redirect_uri %q: %v", clip(u), err)
		}
	}
	if len(m.RedirectURIs) > 20 || len(m.PostLogoutRedirectURIs) > 20 {
		return nil, metadataError(ErrInvalidClientMetadata, "at most 20 redirect_uris and 20 post_logout_redirect_uris")
	}
	if m.JWKS != nil {
		if _, err := parseClientJWKS(*m.JWKS); err != nil {
			return nil, metadataError(ErrInvalidClientMetadata, "jwks: %v", err)
		}
	}
	if m.JWKSURI != "" {
		if err := checkJWKSURI(m.JWKSURI, pol.JWKSURIHosts); err != nil {
			return nil, metadataError(ErrInvalidClientMetadata, "jwks_uri: %v", err)
		}
	}
	if m.Scope == "" && code {
		m.Scope = defaultUserScope
	}
	set, err := scopes.Parse(m.Scope)
	if err != nil {
		return nil, metadataError(ErrInvalidClientMetadata, "scope: %v", err)
	}
	if slices.Contains(m.GrantTypes, GrantClientCredentials) {
		if len(set.Resource()) == 0 {
			return nil, metadataError(ErrInvalidClientMetadata, "a client_credentials client must register the system/ scopes it may ask for")
		}
	}
	for _, u := range []struct{ name, v string }{{"client_uri", m.ClientURI}, {"logo_uri", m.LogoURI}, {"tos_uri", m.TOSURI}, {"policy_uri", m.PolicyURI}} {
		if u.v != "" {
			if pu, err := url.Parse(u.v); err != nil || pu.Scheme != "https" || pu.Host == "" {
				return nil, metadataError(ErrInvalidClientMetadata, "%s must be an https URL", u.name)
			}
		}
	}
	if len(m.ClientName) > 200 {
		return nil, metadataError(ErrInvalidClientMetadata, "client_name is longer than 200 characters")
	}
	if m.AccessTokenLifetime < 0 {
		return nil, metadataError(ErrInvalidClientMetadata, "access_token_lifetime must be positive")
	}
	maxLife := MaxUserTokenLifetime
	if slices.Contains(m.GrantTypes, GrantClientCredentials) {
		maxLife = MaxBackendTokenLifetime
	}
	if time.Duration(m.AccessTokenLifetime)*time.Second > maxLife {
		return nil, metadataError(ErrInvalidClientMetadata, "access_token_lifetime is at most %d seconds for this client", int(maxLife.Seconds()))
	}
	return &m, nil
}

func safeJSONErr(err error) string {
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	switch {
	case errors.As(err, &se):
		return fmt.Sprintf("syntax error at offset %d", se.Offset)
	case errors.As(err, &te):
		return fmt.Sprintf("member %q has the wrong type", te.Field)
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		return "unknown member " + strings.TrimPrefix(err.Error(), "json: unknown field ")
	}
	return "malformed"
}

func clip(s string) string {
	if len(s) > 80 {
		return s[:80] + "..."
	}
	return s
}

func dedupe(list []string) []string {
	var out []string
	for _, s := range list {
		if !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	return out
}

func validClientID(id string) bool {
	if len(id) == 0 || len(id) > 64 {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

// checkRedirectURI accepts https URLs, http only on a loopback host
// (native apps, RFC 8252 §7.3), and private-use schemes with a dot
// (com.example.app:/cb, RFC 8252 §7.1); never a fragment.
func checkRedirectURI(s string) error {
	u, err := url.Parse(s)
	if err != nil || !u.IsAbs() {
		return errors.New("must be an absolute URI")
	}
	if u.Fragment != "" || strings.Contains(s, "#") {
		return errors.New("must not contain a fragment")
	}
	switch u.Scheme {
	case "https":
		if u.Host == "" {
			return errors.New("needs a host")
		}
	case "http":
		if !isLoopback(u.Hostname()) {
			return errors.New("http is only allowed for a loopback host; use https")
		}
	case "javascript", "data", "file", "vbscript":
		return errors.New("scheme not allowed")
	default:
		if !strings.Contains(u.Scheme, ".") {
			return errors.New("a private-use scheme must be a reversed domain name (com.example.app)")
		}
	}
	return nil
}

func isLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// parseClientJWKS parses a client's public keys: RSA ≥ 2048 bits or EC
// P-384 (the assertion algorithms RS384 and ES384), never private keys.
func parseClientJWKS(raw []byte) (*jose.JSONWebKeySet, error) {
	var ks jose.JSONWebKeySet
	if err := json.Unmarshal(raw, &ks); err != nil {
		return nil, errors.New("not a JSON Web Key Set")
	}
	if len(ks.Keys) == 0 {
		return nil, errors.New("no keys")
	}
	if len(ks.Keys) > 20 {
		return nil, errors.New("more than 20 keys")
	}
	for i, k := range ks.Keys {
		if !k.IsPublic() {
			return nil, fmt.Errorf("key %d is a private key; register public keys only", i)
		}
		switch p := k.Key.(type) {
		case *rsa.PublicKey:
			if p.N.BitLen() < 2048 {
				return nil, fmt.Errorf("key %d: RSA keys need at least 2048 bits", i)
			}
		case *ecdsa.PublicKey:
			if p.Curve != elliptic.P384() {
				return nil, fmt.Errorf("key %d: EC keys must be P-384 (ES384)", i)
			}
		default:
			return nil, fmt.Errorf("key %d: only RSA and EC P-384 keys", i)
		}
		if k.Algorithm != "" && !slices.Contains(AssertionAlgs, k.Algorithm) {
			return nil, fmt.Errorf("key %d: alg %q is not accepted (RS384, ES384)", i, clip(k.Algorithm))
		}
	}
	return &ks, nil
}

// checkJWKSURI accepts https URLs on an allowlisted host.
func checkJWKSURI(s string, hosts []string) error {
	u, err := url.Parse(s)
	if err != nil || u.Scheme != "https" || u.Host == "" || u.User != nil || u.Fragment != "" {
		return errors.New("must be an https URL without credentials or fragment")
	}
	if !slices.Contains(hosts, strings.ToLower(u.Host)) && !slices.Contains(hosts, strings.ToLower(u.Hostname())) {
		return errors.New("host is not on the server's jwks_uri allowlist")
	}
	return nil
}
