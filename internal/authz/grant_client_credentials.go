package authz

import (
	"context"

	"github.com/fhirguard/fhirguard/internal/policy/scopes"
)

// clientCredentials is the SMART Backend Services grant: a private_key_jwt
// client asks for system/ scopes; the grant is what it asked ∩ what it
// registered; no refresh token; tokens live at most five minutes.
type clientCredentials struct{ s *Server }

func (g *clientCredentials) Type() string { return GrantClientCredentials }

func (g *clientCredentials) Token(ctx context.Context, req *TokenRequest) (*TokenResponse, error) {
	s := g.s
	if req.AuthMethod != AuthPrivateKey {
		return nil, oauthErr(ErrUnauthorizedClient, "client_credentials needs private_key_jwt client authentication")
	}
	raw := req.Form.Get("scope")
	if raw == "" {
		return nil, oauthErr(ErrInvalidScope, "scope is required")
	}
	asked, err := scopes.Parse(raw)
	if err != nil {
		return nil, oauthErr(ErrInvalidScope, "%v", err)
	}
	granted := scopes.Grant(asked, req.Client.Allowed, req.Client.Allowed).Filter(func(sc scopes.Scope) bool {
		return sc.Kind == scopes.Resource && sc.Context == scopes.ContextSystem
	})
	if granted.Len() == 0 {
		return nil, oauthErr(ErrInvalidScope, "none of the requested scopes is granted to this client (system/ scopes it registered)")
	}
	purpose, err := purposeParam(req.Form)
	if err != nil {
		return nil, err
	}
	life := tokenLifetime(req.Client, true)
	tok, c, err := s.issueAccess(ctx, issue{client: req.Client, subject: req.Client.ClientID, scope: granted,
		lifetime: life, purpose: purpose})
	if err != nil {
		return nil, err
	}
	if err := s.record(ctx, s.tokenEvent(req.Client, c, GrantClientCredentials)); err != nil {
		return nil, err
	}
	return &TokenResponse{AccessToken: tok, TokenType: "Bearer", ExpiresIn: int64(life.Seconds()),
		Scope: granted.String(), PurposeOfUse: purpose}, nil
}
