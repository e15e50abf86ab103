package authz

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/fhirguard/fhirguard/internal/keys"
	"github.com/fhirguard/fhirguard/internal/policy/scopes"
	"github.com/fhirguard/fhirguard/internal/store"
)

// Refresh token lifetimes (RESIL-07).
const (
	OfflineRefreshLifetime = 90 * 24 * time.Hour
	OnlineRefreshLifetime  = 8 * time.Hour
)

// refreshData is the payload of a refresh token: the grant it carries on
// (the original scope; a refresh may ask for less).
type refreshData struct {
	codeData
	Offline bool `json:"offline,omitempty"`
}

// userTokens issues the tokens of a user grant: the access token, a
// refresh token when offline_access or online_access was granted and the
// client may refresh (rotated, when set, is the refresh token a rotation
// already stored), an id_token for openid.
func (s *Server) userTokens(ctx context.Context, client *Client, grant string, cd *codeData, granted scopes.Set, rotated string) (*TokenResponse, error) {
	life := tokenLifetime(client, false)
	tok, claims, err := s.issueAccess(ctx, issue{client: client, subject: cd.Username, fhirUser: cd.FHIRUser,
		patient: cd.Patient, encounter: cd.Encounter, roles: cd.Roles, purpose: cd.Purpose, purposeText: cd.PurposeText, scope: granted,
		grant: grant, lifetime: life})
	if err != nil {
		return nil, err
	}
	resp := &TokenResponse{AccessToken: tok, TokenType: "Bearer", ExpiresIn: int64(life.Seconds()), Scope: granted.String(),
		Patient: cd.Patient, Encounter: cd.Encounter, PurposeOfUse: cd.Purpose}
	if cd.Patient != "" {
		b := cd.Banner
		resp.NeedPatientBanner = &b
		resp.SmartStyleURL = s.o.Root + PathStatic + "smart-style.json"
	}
	offline, online := granted.Has(scopes.OfflineAccess), granted.Has(scopes.OnlineAccess)
	if rotated != "" {
		resp.RefreshToken = rotated
	} else if (offline || online) && client.HasGrant(GrantRefresh) {
		rt := randomValue(32)
		now := s.clk.Now()
		expires := now.Add(OnlineRefreshLifetime)
		if offline {
			expires = now.Add(OfflineRefreshLifetime)
		} else if cd.SID != "" {
			// online_access: bound to the sign-in session (its expiry;
			// revoked at logout). A session that ended between consent
			// and this exchange ends the grant too.
			var live bool
			if expires, live, err = s.attachGrant(ctx, cd.SID, grant); err != nil {
				return nil, err
			}
			if !live {
				if err := s.revokeGrant(ctx, grant, now); err != nil {
					return nil, fmt.Errorf("ended sign-in session: %w", err)
				}
				return nil, oauthErr(ErrInvalidGrant, "the user's sign-in session has ended (online_access)")
			}
		}
		rd := refreshData{codeData: *cd, Offline: offline}
		rd.RedirectURI, rd.CodeChallenge, rd.Nonce = "", "", ""
		data, err := json.Marshal(rd)
		if err != nil {
			return nil, fmt.Errorf("encode refresh token: %w", err)
		}
		rec := store.AuthToken{Kind: store.TokenRefresh, Hash: hashValue(rt), Grant: grant, Data: data,
			CreatedAt: now, ExpiresAt: expires}
		if err := s.o.Store.PutToken(ctx, rec); err != nil {
			return nil, err
		}
		resp.RefreshToken = rt
	}
	if granted.Has(scopes.OpenID) {
		idt, err := s.idToken(ctx, client, cd, granted)
		if err != nil {
			return nil, err
		}
		resp.IDToken = idt
	}
	if err := s.record(ctx, s.tokenEvent(client, claims, GrantCode)); err != nil {
		return nil, err
	}
	return resp, nil
}

// idTokenClaims are the OpenID Connect id_token claims.
type idTokenClaims struct {
	Issuer   string `json:"iss"`
	Subject  string `json:"sub"`
	Audience string `json:"aud"`
	Expires  int64  `json:"exp"`
	IssuedAt int64  `json:"iat"`
	AuthTime int64  `json:"auth_time,omitempty"`
	Nonce    string `json:"nonce,omitempty"`
	SID      string `json:"sid,omitempty"`
	FHIRUser string `json:"fhirUser,omitempty"`
	Name     string `json:"name,omitempty"`
}

// idToken signs an RS256 id_token (kid in the JWKS) for the client.
func (s *Server) idToken(ctx context.Context, client *Client, cd *codeData, granted scopes.Set) (string, error) {
	now := s.clk.Now()
	c := idTokenClaims{Issuer: s.Issuer(), Subject: cd.Username, Audience: client.ClientID,
		Expires: now.Add(tokenLifetime(client, false)).Unix(), IssuedAt: now.Unix(), AuthTime: cd.AuthTime, Nonce: cd.Nonce, SID: cd.SID}
	if granted.Has(scopes.FHIRUser) || granted.Has(scopes.Profile) {
		c.FHIRUser = s.o.FHIRBase + "/" + cd.FHIRUser
	}
	if granted.Has(scopes.Profile) {
		c.Name = cd.Username
	}
	t, err := s.o.Keys.SignJWT(ctx, keys.RS256, keys.TypJWT, c)
	if err != nil {
		return "", fmt.Errorf("sign id_token: %w", err)
	}
	return t, nil
}
