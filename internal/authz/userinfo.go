package authz

import (
	"net/http"

	"github.com/fhirguard/fhirguard/internal/authn"
	"github.com/fhirguard/fhirguard/internal/policy/scopes"
)

// userinfo is the OpenID Connect UserInfo endpoint: for an access token
// holding openid, the user's sub and fhirUser.
func (s *Server) userinfo(w http.ResponseWriter, r *http.Request) error {
	if err := requireMethod(r, http.MethodGet, http.MethodPost); err != nil {
		return err
	}
	challenge := http.Header{"WWW-Authenticate": {`Bearer realm="fhirguard", error="invalid_token"`}}
	p, c, err := s.o.Validator.Validate(r.Context(), authn.BearerToken(r.Header.Get("Authorization")))
	if err != nil {
		return &Error{Code: ErrInvalidToken, Desc: "a valid access token is required", Status: http.StatusUnauthorized, Hdr: challenge}
	}
	if !p.Scopes.Has(scopes.OpenID) || c.FHIRUser == "" {
		return &Error{Code: "insufficient_scope", Desc: "the token does not hold openid for a user", Status: http.StatusForbidden,
			Hdr: http.Header{"WWW-Authenticate": {`Bearer realm="fhirguard", error="insufficient_scope", scope="openid"`}}}
	}
	out := map[string]string{"sub": c.Subject}
	if p.Scopes.Has(scopes.FHIRUser) || p.Scopes.Has(scopes.Profile) {
		out["fhirUser"] = s.o.FHIRBase + "/" + c.FHIRUser
	}
	return writeJSON(w, http.StatusOK, out)
}
