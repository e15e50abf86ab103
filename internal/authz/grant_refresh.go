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

// refreshGrant is the refresh_token grant with rotation: each use returns
// a new refresh token and retires the old one; using a retired one again
// revokes the whole family (every refresh and access token of the grant).
// The scope may stay or narrow, never widen; a disabled user or client
// cannot refresh.
type refreshGrant struct{ s *Server }

func (g *refreshGrant) Type() string { return GrantRefresh }

func (g *refreshGrant) Token(ctx context.Context, req *TokenRequest) (*TokenResponse, error) {
	s := g.s
	rt := req.Form.Get("refresh_token")
	if rt == "" {
		return nil, oauthErr(ErrInvalidRequest, "refresh_token is required")
	}
	var narrower *scopes.Set
	if raw := req.Form.Get("scope"); raw != "" {
		set, err := scopes.Parse(raw)
		if err != nil {
			return nil, oauthErr(ErrInvalidScope, "%v", err)
		}
		narrower = &set
	}
	h := hashValue(rt)
	now := s.clk.Now()
	revokeUntil := now.Add(MaxUserTokenLifetime + authn.Skew)
	old, err := s.o.Store.Token(ctx, store.TokenRefresh, h, now)
	switch {
	case errors.Is(err, store.ErrNotFound), errors.Is(err, store.ErrExpired):
		return nil, oauthErr(ErrInvalidGrant, "the refresh token is not valid")
	case err != nil:
		return nil, err
	}
	var rd refreshData
	if err := json.Unmarshal(old.Data, &rd); err != nil {
		return nil, fmt.Errorf("decode refresh token: %w", err)
	}
	if rd.ClientID != req.Client.ClientID {
		return nil, oauthErr(ErrInvalidGrant, "the refresh token was issued to another client")
	}
	granted, err := scopes.Parse(rd.Scope)
	if err != nil {
		return nil, fmt.Errorf("stored scope: %w", err)
	}
	if narrower != nil {
		if !scopes.Narrower(*narrower, granted) {
			return nil, oauthErr(ErrInvalidScope, "the requested scope is broader than the original grant")
		}
		granted = *narrower
	}
	if user, err := s.o.Store.User(ctx, rd.Username); err != nil || user.Disabled {
		return nil, oauthErr(ErrInvalidGrant, "the user can no longer be authorized")
	}
	if !rd.Offline && rd.SID != "" {
		live, err := s.signInLive(ctx, rd.SID)
		if err != nil {
			return nil, err
		}
		if !live {
			return nil, oauthErr(ErrInvalidGrant, "the user's sign-in session has ended (online_access)")
		}
	}
	// Rotation: the new refresh token is stored in the same transaction
	// that retires the old one; it keeps the original scope and expiry.
	nextValue := randomValue(32)
	next := store.AuthToken{Kind: store.TokenRefresh, Hash: hashValue(nextValue), Grant: old.Grant, Data: old.Data,
		CreatedAt: now, ExpiresAt: old.ExpiresAt}
	_, err = s.o.Store.RotateToken(ctx, store.TokenRefresh, h, now, revokeUntil, nil, next)
	switch {
	case errors.Is(err, store.ErrUsed):
		s.o.Revocations.Add(store.RevokeGrant, old.Grant, revokeUntil)
		if rerr := s.record(ctx, simpleEvent(subtypeReuse, req.Client.ClientID, "4", "refresh token reused; its family revoked", true)); rerr != nil {
			return nil, rerr
		}
		return nil, oauthErr(ErrInvalidGrant, "the refresh token was already used; its family is revoked")
	case errors.Is(err, store.ErrExpired), errors.Is(err, store.ErrNotFound):
		return nil, oauthErr(ErrInvalidGrant, "the refresh token is not valid")
	case err != nil:
		return nil, err
	}
	// The family continues (original scope) even when this access token
	// is narrower.
	cd := rd.codeData
	return s.userTokens(ctx, req.Client, old.Grant, &cd, granted, nextValue)
}
