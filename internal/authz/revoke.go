package authz

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/fhirguard/fhirguard/internal/audit"
	"github.com/fhirguard/fhirguard/internal/authn"
	"github.com/fhirguard/fhirguard/internal/store"
)

// revoke is RFC 7009 token revocation: the client authenticates (a public
// client by its client_id) and names an access or refresh token it holds.
// Revoking a refresh token revokes its whole grant (access tokens
// included). The answer is 200 whatever the token was (§2.2).
func (s *Server) revoke(w http.ResponseWriter, r *http.Request) error {
	if err := requireMethod(r, http.MethodPost); err != nil {
		return err
	}
	form, err := readForm(r)
	if err != nil {
		return err
	}
	ctx := r.Context()
	client, _, err := s.authenticateClient(ctx, r, form)
	if err != nil {
		return err
	}
	tok := form.Get("token")
	if tok == "" {
		return oauthErr(ErrInvalidRequest, "token is required")
	}
	now := s.clk.Now()
	revoked := false
	if strings.Count(tok, ".") == 2 {
		if _, c, err := s.o.Validator.Validate(ctx, tok); err == nil && c.ClientID == client.ClientID {
			until := time.Unix(c.ExpiresAt, 0).Add(authn.Skew)
			if err := s.o.Store.Revoke(ctx, store.RevokeJTI, c.ID, until); err != nil {
				return err
			}
			s.o.Revocations.Add(store.RevokeJTI, c.ID, until)
			revoked = true
		}
	} else if rec, err := s.o.Store.Token(ctx, store.TokenRefresh, hashValue(tok), now); err == nil && rec.Grant != "" {
		var rd refreshData
		if json.Unmarshal(rec.Data, &rd) == nil && rd.ClientID == client.ClientID {
			if err := s.revokeGrant(ctx, rec.Grant, now); err != nil {
				return err
			}
			revoked = true
		}
	}
	if revoked {
		if err := s.record(ctx, simpleEvent(subtypeRevoke, client.ClientID, audit.OutcomeSuccess, "token revoked", false)); err != nil {
			return err
		}
	}
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
	return nil
}

// revokeGrant revokes every refresh and access token of a user grant, in
// the store and in this process's revocation cache, for as long as a
// token issued under it can live.
func (s *Server) revokeGrant(ctx context.Context, grant string, now time.Time) error {
	until := now.Add(MaxUserTokenLifetime + authn.Skew)
	if err := s.o.Store.RevokeGrant(ctx, grant, now, until); err != nil {
		return fmt.Errorf("revoke grant: %w", err)
	}
	s.o.Revocations.Add(store.RevokeGrant, grant, until)
	return nil
}
