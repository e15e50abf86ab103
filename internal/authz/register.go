package authz

import (
	"errors"
	"io"
	"mime"
	"net/http"
	"time"

	"github.com/fhirguard/fhirguard/internal/audit"
	"github.com/fhirguard/fhirguard/internal/authn"
	"github.com/fhirguard/fhirguard/internal/httpx"
	"github.com/fhirguard/fhirguard/internal/store"
)

// maxRegistrationBytes bounds a registration document.
const maxRegistrationBytes = 64 << 10

// register is RFC 7591 dynamic client registration. Outside --dev the
// request needs an initial access token (`fhirguard client token`) as a
// bearer token; each one registers one client. The server issues the
// client_id (and a client_secret for client_secret_basic, shown once).
func (s *Server) register(w http.ResponseWriter, r *http.Request) error {
	if err := requireMethod(r, http.MethodPost); err != nil {
		return err
	}
	ctx := r.Context()
	if !s.o.Dev {
		iat := authn.BearerToken(r.Header.Get("Authorization"))
		if iat == "" || len(iat) > 256 {
			return &Error{Code: ErrInvalidToken, Desc: "an initial access token is required", Status: http.StatusUnauthorized,
				Hdr: http.Header{"WWW-Authenticate": {`Bearer realm="fhirguard", error="invalid_token"`}}}
		}
		if _, err := s.o.Store.ConsumeToken(ctx, store.TokenIAT, hashValue(iat), s.clk.Now(), false, time.Time{}); err != nil {
			if errors.Is(err, store.ErrNotFound) || errors.Is(err, store.ErrUsed) || errors.Is(err, store.ErrExpired) {
				return &Error{Code: ErrInvalidToken, Desc: "the initial access token is not valid", Status: http.StatusUnauthorized,
					Hdr: http.Header{"WWW-Authenticate": {`Bearer realm="fhirguard", error="invalid_token"`}}}
			}
			return err
		}
	}
	if ct, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || ct != "application/json" {
		return oauthErr(ErrInvalidClientMetadata, "the registration document must be application/json")
	}
	doc, err := io.ReadAll(io.LimitReader(r.Body, maxRegistrationBytes+1))
	if err != nil {
		if httpx.IsBodyTooLarge(err) {
			return oauthErr(ErrInvalidClientMetadata, "the registration document is too large")
		}
		return oauthErr(ErrInvalidRequest, "the request body could not be read")
	}
	if len(doc) > maxRegistrationBytes {
		return oauthErr(ErrInvalidClientMetadata, "the registration document is larger than 64 KiB")
	}
	reg, err := s.admin.Register(ctx, doc, RegistrationPolicy{JWKSURIHosts: s.o.JWKSURIHosts})
	if err != nil {
		return err
	}
	if err := s.record(ctx, simpleEvent(subtypeRegister, reg.ClientID, audit.OutcomeSuccess, "client registered", false)); err != nil {
		return err
	}
	return writeJSON(w, http.StatusCreated, reg)
}
