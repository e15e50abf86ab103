package authz

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/fhirguard/fhirguard/internal/authn"
	"github.com/fhirguard/fhirguard/internal/store"
)

// RFC 7592 client configuration, read only: GET registration_client_uri
// ({B}/auth/register/{client_id}) with the registration access token
// issued at registration as a bearer token returns the registration —
// never the client_secret, which is shown once. Updating and deleting
// through the protocol are not offered (405); operators use the CLI.
const (
	// tokenRegistration is the AuthToken kind of a registration access
	// token.
	tokenRegistration = "registration"
	// RegistrationTokenLifetime is how long a registration access token
	// reads its client's registration.
	RegistrationTokenLifetime = 365 * 24 * time.Hour
)

// registrationData is the payload of a registration access token.
type registrationData struct {
	ClientID string `json:"client_id"`
}

var errRegistrationToken = &Error{Code: ErrInvalidToken, Status: http.StatusUnauthorized,
	Desc: "a valid registration access token for this client is required",
	Hdr:  http.Header{"WWW-Authenticate": {`Bearer realm="fhirguard", error="invalid_token"`}}}

// readRegistration serves the client configuration endpoint. An unknown
// client, a wrong or expired token and another client's token all answer
// the same 401 (nothing tells which clients exist).
func (s *Server) readRegistration(w http.ResponseWriter, r *http.Request) error {
	if err := requireMethod(r, http.MethodGet); err != nil {
		return err
	}
	id, err := url.PathUnescape(strings.TrimPrefix(r.URL.EscapedPath(), PathRegister+"/"))
	if err != nil || !validClientID(id) {
		return errRegistrationToken
	}
	rat := authn.BearerToken(r.Header.Get("Authorization"))
	if rat == "" || len(rat) > 256 || r.URL.Query().Has("access_token") {
		return errRegistrationToken
	}
	ctx := r.Context()
	tok, err := s.o.Store.Token(ctx, tokenRegistration, hashValue(rat), s.clk.Now())
	switch {
	case errors.Is(err, store.ErrNotFound), errors.Is(err, store.ErrExpired):
		return errRegistrationToken
	case err != nil:
		return fmt.Errorf("read registration access token: %w", err)
	}
	var rd registrationData
	if err := json.Unmarshal(tok.Data, &rd); err != nil {
		return fmt.Errorf("decode registration access token: %w", err)
	}
	if !tok.UsedAt.IsZero() || rd.ClientID != id {
		return errRegistrationToken
	}
	c, err := s.clientLookup(ctx, id, false)
	if err != nil {
		if asError(err) != nil { // unknown or disabled
			return errRegistrationToken
		}
		return err
	}
	reg := Registration{Metadata: c.Metadata, ClientIDIssuedAt: c.CreatedAt.Unix(),
		RegistrationClientURI: s.admin.RegistrationEndpoint + "/" + url.PathEscape(id)}
	return writeJSON(w, http.StatusOK, reg)
}
