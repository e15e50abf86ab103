package authz

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/fhirguard/fhirguard/internal/authn"
	"github.com/fhirguard/fhirguard/internal/policy/scopes"
	"github.com/fhirguard/fhirguard/internal/store"
)

// authCode is the authorization_code grant: the code is single use (a
// second use is invalid_grant AND revokes every token issued from it),
// bound to the client, the redirect_uri and the PKCE verifier, and lives
// CodeLifetime.
type authCode struct{ s *Server }

func (g *authCode) Type() string { return GrantCode }

func (g *authCode) Token(ctx context.Context, req *TokenRequest) (*TokenResponse, error) {
	s := g.s
	code := req.Form.Get("code")
	if code == "" {
		return nil, oauthErr(ErrInvalidRequest, "code is required")
	}
	verifier := req.Form.Get("code_verifier")
	if verifier == "" {
		return nil, oauthErr(ErrInvalidRequest, "code_verifier is required (PKCE)")
	}
	h := hashValue(code)
	now := s.clk.Now()
	tok, err := s.o.Store.Token(ctx, store.TokenCode, h, now)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return nil, oauthErr(ErrInvalidGrant, "the code is not valid")
	case errors.Is(err, store.ErrExpired):
		return nil, oauthErr(ErrInvalidGrant, "the code has expired")
	case err != nil:
		return nil, err
	}
	var cd codeData
	if err := json.Unmarshal(tok.Data, &cd); err != nil {
		return nil, fmt.Errorf("decode code: %w", err)
	}
	if cd.ClientID != req.Client.ClientID {
		return nil, oauthErr(ErrInvalidGrant, "the code was issued to another client")
	}
	if req.Form.Get("redirect_uri") != cd.RedirectURI {
		return nil, oauthErr(ErrInvalidGrant, "redirect_uri does not match the authorization request")
	}
	if !checkPKCE(cd.CodeChallenge, verifier) {
		return nil, oauthErr(ErrInvalidGrant, "code_verifier does not match the code_challenge")
	}
	revokeUntil := now.Add(MaxUserTokenLifetime + authn.Skew)
	if _, err := s.o.Store.ConsumeToken(ctx, store.TokenCode, h, now, true, revokeUntil); err != nil {
		switch {
		case errors.Is(err, store.ErrUsed):
			s.o.Revocations.Add(store.RevokeGrant, tok.Grant, revokeUntil)
			if rerr := s.record(ctx, simpleEvent(subtypeReuse, req.Client.ClientID, "4", "authorization code reused; tokens issued from it revoked", true)); rerr != nil {
				return nil, rerr
			}
			return nil, oauthErr(ErrInvalidGrant, "the code was already used; tokens issued from it are revoked")
		case errors.Is(err, store.ErrExpired):
			return nil, oauthErr(ErrInvalidGrant, "the code has expired")
		}
		return nil, err
	}
	granted, err := scopes.Parse(cd.Scope)
	if err != nil {
		return nil, fmt.Errorf("stored scope: %w", err)
	}
	return s.userTokens(ctx, req.Client, tok.Grant, &cd, granted, "")
}
