package authz

import (
	"encoding/json"
	"errors"
	"net/http"
	"strings"

	"github.com/fhirguard/fhirguard/internal/store"
)

// introspection is the RFC 7662 answer.
type introspection struct {
	Active    bool     `json:"active"`
	Scope     string   `json:"scope,omitempty"`
	ClientID  string   `json:"client_id,omitempty"`
	Username  string   `json:"username,omitempty"`
	TokenType string   `json:"token_type,omitempty"`
	Exp       int64    `json:"exp,omitempty"`
	Iat       int64    `json:"iat,omitempty"`
	Sub       string   `json:"sub,omitempty"`
	Aud       string   `json:"aud,omitempty"`
	Iss       string   `json:"iss,omitempty"`
	Jti       string   `json:"jti,omitempty"`
	FHIRUser  string   `json:"fhirUser,omitempty"`
	Patient   string   `json:"patient,omitempty"`
	Encounter string   `json:"encounter,omitempty"`
	Purpose   []string `json:"purpose_of_use,omitempty"`
}

// introspect is RFC 7662 token introspection. The caller must
// authenticate as a confidential client (client_secret_basic or
// private_key_jwt). Access tokens (signature, expiry, revocation) and
// refresh tokens can be introspected; anything else is {"active": false}.
func (s *Server) introspect(w http.ResponseWriter, r *http.Request) error {
	if err := requireMethod(r, http.MethodPost); err != nil {
		return err
	}
	form, err := readForm(r)
	if err != nil {
		return err
	}
	ctx := r.Context()
	_, method, err := s.authenticateClient(ctx, r, form)
	if err != nil {
		return err
	}
	if method == AuthNone {
		return invalidClient("introspection needs an authenticated (confidential) client", nil, true)
	}
	tok := form.Get("token")
	if tok == "" {
		return oauthErr(ErrInvalidRequest, "token is required")
	}
	if strings.Count(tok, ".") == 2 {
		if _, c, err := s.o.Validator.Validate(ctx, tok); err == nil {
			return writeJSON(w, http.StatusOK, introspection{Active: true, Scope: c.Scope, ClientID: c.ClientID,
				Username: c.Subject, TokenType: "Bearer", Exp: c.ExpiresAt, Iat: c.IssuedAt, Sub: c.Subject,
				Aud: s.o.FHIRBase, Iss: c.Issuer, Jti: c.ID, FHIRUser: c.FHIRUser, Patient: c.Patient,
				Encounter: c.Encounter, Purpose: c.Purpose})
		}
		return writeJSON(w, http.StatusOK, introspection{})
	}
	rec, err := s.o.Store.Token(ctx, store.TokenRefresh, hashValue(tok), s.clk.Now())
	if err != nil || !rec.UsedAt.IsZero() {
		if err != nil && !errors.Is(err, store.ErrNotFound) && !errors.Is(err, store.ErrExpired) {
			return err
		}
		return writeJSON(w, http.StatusOK, introspection{})
	}
	var rd refreshData
	if err := json.Unmarshal(rec.Data, &rd); err != nil {
		return writeJSON(w, http.StatusOK, introspection{})
	}
	return writeJSON(w, http.StatusOK, introspection{Active: true, Scope: rd.Scope, ClientID: rd.ClientID,
		Username: rd.Username, TokenType: "refresh_token", Exp: rec.ExpiresAt.Unix(), Iat: rec.CreatedAt.Unix(),
		Sub: rd.Username, FHIRUser: rd.FHIRUser, Patient: rd.Patient})
}
