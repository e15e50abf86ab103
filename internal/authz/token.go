package authz

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"time"

	"github.com/fhirguard/fhirguard/internal/audit"
	"github.com/fhirguard/fhirguard/internal/authn"
	"github.com/fhirguard/fhirguard/internal/keys"
	"github.com/fhirguard/fhirguard/internal/policy/scopes"
)

// Grant is one token endpoint flow: Type is matched against grant_type
// (unknown → unsupported_grant_type); Token runs it for an authenticated
// client that registered the grant type.
type Grant interface {
	Type() string
	Token(ctx context.Context, req *TokenRequest) (*TokenResponse, error)
}

// TokenRequest is a token request after client authentication.
type TokenRequest struct {
	Form   url.Values
	Client *Client
	// AuthMethod is how the client authenticated (AuthNone for a public
	// client identified by client_id).
	AuthMethod string
}

// TokenResponse is the RFC 6749 §5.1 answer with the SMART launch context
// (SMART App Launch 2.2 §"Response to token request").
type TokenResponse struct {
	AccessToken       string   `json:"access_token"`
	TokenType         string   `json:"token_type"`
	ExpiresIn         int64    `json:"expires_in"`
	Scope             string   `json:"scope"`
	RefreshToken      string   `json:"refresh_token,omitempty"`
	IDToken           string   `json:"id_token,omitempty"`
	Patient           string   `json:"patient,omitempty"`
	Encounter         string   `json:"encounter,omitempty"`
	NeedPatientBanner *bool    `json:"need_patient_banner,omitempty"`
	SmartStyleURL     string   `json:"smart_style_url,omitempty"`
	PurposeOfUse      []string `json:"purpose_of_use,omitempty"`
}

// token is the token endpoint (RFC 6749 §3.2).
func (s *Server) token(w http.ResponseWriter, r *http.Request) error {
	if err := requireMethod(r, http.MethodPost); err != nil {
		return err
	}
	form, err := readForm(r)
	if err != nil {
		return err
	}
	gt := form.Get("grant_type")
	if gt == "" {
		return oauthErr(ErrInvalidRequest, "grant_type is required")
	}
	g := s.grants[gt]
	if g == nil {
		return oauthErr(ErrUnsupportedGrantType, "grant_type %q is not supported", clip(gt))
	}
	ctx := r.Context()
	client, method, err := s.authenticateClient(ctx, r, form)
	if err != nil {
		return s.refused(ctx, form, gt, err)
	}
	if !client.HasGrant(gt) {
		return s.refused(ctx, form, gt, oauthErr(ErrUnauthorizedClient, "the client is not registered for %s", gt))
	}
	resp, err := g.Token(ctx, &TokenRequest{Form: form, Client: client, AuthMethod: method})
	if err != nil {
		return s.refused(ctx, form, gt, err)
	}
	s.maybePrune(ctx)
	return writeJSON(w, http.StatusOK, resp)
}

// issue describes an access token to mint.
type issue struct {
	client    *Client
	subject   string
	fhirUser  string
	patient   string
	encounter string
	roles     []string
	purpose   []string
	// purposeText is the break-the-glass reason the user gave.
	purposeText string
	scope       scopes.Set
	grant       string
	lifetime    time.Duration
}

// issueAccess signs an access token (ES256 JWT, typ at+jwt, aud = the
// FHIR base).
func (s *Server) issueAccess(ctx context.Context, in issue) (token string, c *authn.Claims, err error) {
	now := s.clk.Now()
	c = &authn.Claims{
		Issuer: s.Issuer(), Subject: in.subject, Audience: authn.Audience{s.o.FHIRBase},
		ClientID: in.client.ClientID, Scope: in.scope.String(),
		IssuedAt: now.Unix(), ExpiresAt: now.Add(in.lifetime).Unix(), ID: randomValue(16),
		Grant: in.grant, FHIRUser: in.fhirUser, Patient: in.patient, Encounter: in.encounter,
		Roles: in.roles, Purpose: in.purpose, PurposeText: in.purposeText,
	}
	token, err = s.o.Keys.SignJWT(ctx, keys.ES256, keys.TypAccess, c)
	if err != nil {
		return "", nil, fmt.Errorf("sign access token: %w", err)
	}
	return token, c, nil
}

// clientLookup loads a client; unknown and disabled clients are
// invalid_client.
func (s *Server) clientLookup(ctx context.Context, id string, basic bool) (*Client, error) {
	if id == "" || len(id) > 256 {
		return nil, invalidClient("unknown client", nil, basic)
	}
	rec, err := s.o.Store.Client(ctx, id)
	if err != nil {
		if isNotFound(err) {
			return nil, invalidClient("unknown client", nil, basic)
		}
		return nil, fmt.Errorf("read client: %w", err)
	}
	c, err := loadClient(rec)
	if err != nil {
		return nil, err
	}
	if c.Disabled {
		return nil, invalidClient("the client is disabled", nil, basic)
	}
	return c, nil
}

// tokenLifetime is the client's access token lifetime, capped for the
// grant (backend tokens ≤ 5 min, user tokens ≤ 60 min).
func tokenLifetime(c *Client, backend bool) time.Duration {
	d := c.TokenLifetime()
	if backend && d > MaxBackendTokenLifetime {
		d = MaxBackendTokenLifetime
	}
	if d > MaxUserTokenLifetime {
		d = MaxUserTokenLifetime
	}
	return d
}

// refused records a refused token request (a failed client
// authentication or grant) in the audit and returns err; if the record
// cannot be written, the answer is that failure instead (fail closed).
func (s *Server) refused(ctx context.Context, form url.Values, grantType string, err error) error {
	e := asError(err)
	if e == nil {
		return err // a server failure, logged by the renderer
	}
	clientID := form.Get("client_id")
	if clientID == "" {
		clientID = "(unidentified)"
	}
	ev := simpleEvent(subtypeTokenRefused, clip(clientID), audit.OutcomeMinor, grantType+": "+e.Code, e.Code == ErrInvalidClient)
	if rerr := s.record(ctx, ev); rerr != nil {
		return rerr
	}
	return err
}
