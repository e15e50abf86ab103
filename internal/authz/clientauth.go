package authz

import (
	"context"
	"net/http"
	"net/url"
	"strings"
)

// AssertionType is the RFC 7523 client assertion type.
const AssertionType = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"

// authenticateClient identifies and authenticates the client of a token,
// introspection or revocation request by exactly one method:
// private_key_jwt (client_assertion), client_secret_basic (Authorization:
// Basic) or none (client_id of a public client). A client must use the
// method it registered. Failures are invalid_client (401).
func (s *Server) authenticateClient(ctx context.Context, r *http.Request, form url.Values) (*Client, string, error) {
	assertion := form.Get("client_assertion")
	atype := form.Get("client_assertion_type")
	user, pass, basic := r.BasicAuth()
	hasAuthz := r.Header.Get("Authorization") != ""
	if hasAuthz && !basic {
		return nil, "", invalidClient("unsupported Authorization scheme for client authentication", nil, true)
	}
	if form.Has("client_secret") {
		return nil, "", invalidClient("client_secret in the body is not supported; use HTTP Basic", nil, true)
	}
	switch {
	case (assertion != "" || atype != "") && basic:
		return nil, "", oauthErr(ErrInvalidRequest, "use one client authentication method")
	case assertion != "" || atype != "":
		if atype != AssertionType {
			return nil, "", invalidClient("client_assertion_type must be "+AssertionType, nil, false)
		}
		if assertion == "" {
			return nil, "", invalidClient("client_assertion is required", nil, false)
		}
		c, err := s.verifyAssertion(ctx, assertion, form.Get("client_id"))
		if err != nil {
			return nil, "", err
		}
		return c, AuthPrivateKey, nil
	case basic:
		id, err1 := url.QueryUnescape(user)
		secret, err2 := url.QueryUnescape(pass)
		if err1 != nil || err2 != nil {
			return nil, "", invalidClient("malformed client credentials", nil, true)
		}
		if cid := form.Get("client_id"); cid != "" && cid != id {
			return nil, "", oauthErr(ErrInvalidRequest, "client_id does not match the authenticated client")
		}
		c, err := s.clientLookup(ctx, id, true)
		if err != nil {
			return nil, "", err
		}
		if c.TokenEndpointAuthMethod != AuthSecretBasic || !checkSecret(c.SecretHash, secret) {
			return nil, "", invalidClient("client authentication failed", nil, true)
		}
		return c, AuthSecretBasic, nil
	default:
		id := form.Get("client_id")
		if id == "" {
			return nil, "", invalidClient("client authentication is required", nil, true)
		}
		c, err := s.clientLookup(ctx, id, false)
		if err != nil {
			return nil, "", err
		}
		if c.TokenEndpointAuthMethod != AuthNone {
			return nil, "", invalidClient("this client must authenticate ("+strings.ReplaceAll(c.TokenEndpointAuthMethod, "_", " ")+")", nil, c.TokenEndpointAuthMethod == AuthSecretBasic)
		}
		return c, AuthNone, nil
	}
}
