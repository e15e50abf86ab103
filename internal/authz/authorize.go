package authz

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/fhirguard/fhirguard/internal/policy/scopes"
	"github.com/fhirguard/fhirguard/internal/store"
)

// authorize is the authorization endpoint (GET and POST, RFC 6749 §4.1.1,
// SMART App Launch 2.2). The client and redirect_uri are checked first:
// until both are valid, errors are shown on a page and nothing is
// redirected. After that every problem is redirected to the client as
// error=…&state=… (RFC 6749 §4.1.2.1), before any code exists: response_type
// must be code, aud the FHIR base, PKCE S256 mandatory, scope well formed,
// state present, a launch value valid for this client.
func (s *Server) authorize(w http.ResponseWriter, r *http.Request) error {
	if err := requireMethod(r, http.MethodGet, http.MethodPost); err != nil {
		return err
	}
	form, err := readForm(r)
	if err != nil {
		return err
	}
	ctx := r.Context()
	client, redirectURI, err := s.authorizeClient(ctx, form)
	if err != nil {
		return err
	}
	state := form.Get("state")
	fail := func(code, desc string) error { return redirectError(w, r, redirectURI, state, code, desc) }

	if rt := form.Get("response_type"); rt != "code" {
		if rt == "" {
			return fail(ErrInvalidRequest, "response_type is required")
		}
		return fail(ErrUnsupportedResponseType, "only response_type=code is supported")
	}
	if !client.HasGrant(GrantCode) {
		return fail(ErrUnauthorizedClient, "the client is not registered for the authorization code grant")
	}
	if state == "" {
		return fail(ErrInvalidRequest, "state is required")
	}
	if aud := strings.TrimRight(form.Get("aud"), "/"); aud != s.o.FHIRBase {
		return fail(ErrInvalidRequest, "aud must be this server's FHIR base URL "+s.o.FHIRBase)
	}
	switch form.Get("code_challenge_method") {
	case "S256":
	case "":
		return fail(ErrInvalidRequest, "PKCE is required: code_challenge_method=S256")
	default:
		return fail(ErrInvalidRequest, "code_challenge_method must be S256")
	}
	challenge := form.Get("code_challenge")
	if !validChallenge(challenge) {
		return fail(ErrInvalidRequest, "code_challenge must be the 43-character base64url SHA-256 of the code_verifier")
	}
	raw := form.Get("scope")
	asked, err := scopes.Parse(raw)
	if err != nil {
		return fail(ErrInvalidScope, err.Error())
	}
	if asked.Len() == 0 {
		return fail(ErrInvalidScope, "scope is required")
	}
	btg := false
	if p := form.Get("purpose_of_use"); p != "" {
		if p != PurposeBTG {
			return fail(ErrInvalidRequest, "purpose_of_use may only be BTG here")
		}
		btg = true
	}
	sess := &session{ClientID: client.ClientID, RedirectURI: redirectURI, State: state, Scope: asked.String(),
		CodeChallenge: challenge, Nonce: form.Get("nonce"), BTG: btg}
	if lv := form.Get("launch"); lv != "" {
		ld, err := s.consumeLaunch(ctx, lv, client.ClientID)
		if err != nil {
			return fail(ErrInvalidRequest, err.Error())
		}
		sess.Launch, sess.LaunchUser, sess.LaunchPatient, sess.LaunchEncounter = true, ld.Username, ld.Patient, ld.Encounter
	} else if asked.Has(scopes.Launch) {
		return fail(ErrInvalidRequest, "the launch scope needs a launch parameter (EHR launch)")
	}
	if _, err := s.newSession(ctx, w, sess); err != nil {
		return err
	}
	return s.pages.render(w, http.StatusOK, "login.html", pageData{Title: "Sign in", Action: PathLogin, CSRF: sess.CSRF,
		ClientName: displayName(client)}, formTarget(redirectURI))
}

// authorizeClient checks client_id and redirect_uri; their errors are
// never redirected.
func (s *Server) authorizeClient(ctx context.Context, form url.Values) (*Client, string, error) {
	id := form.Get("client_id")
	if id == "" {
		return nil, "", &Error{Code: ErrInvalidRequest, Desc: "client_id is required."}
	}
	c, err := s.clientLookup(ctx, id, false)
	if err != nil {
		if asError(err) != nil {
			return nil, "", &Error{Code: ErrInvalidClient, Desc: "The application is not registered with this server."}
		}
		return nil, "", err
	}
	ru := form.Get("redirect_uri")
	switch {
	case ru == "" && len(c.RedirectURIs) == 1:
		ru = c.RedirectURIs[0]
	case ru == "":
		return nil, "", &Error{Code: ErrInvalidRequest, Desc: "redirect_uri is required."}
	case !slices.Contains(c.RedirectURIs, ru):
		return nil, "", &Error{Code: ErrInvalidRequest, Desc: "The redirect_uri is not registered for this application."}
	}
	return c, ru, nil
}

func displayName(c *Client) string {
	if c.ClientName != "" {
		return c.ClientName
	}
	return c.ClientID
}

// redirectError sends the user agent back to the client with an RFC 6749
// §4.1.2.1 error.
func redirectError(w http.ResponseWriter, r *http.Request, redirectURI, state, code, desc string) error {
	q := url.Values{"error": {code}}
	if desc != "" {
		q.Set("error_description", desc)
	}
	if state != "" {
		q.Set("state", state)
	}
	return redirectTo(w, r, redirectURI, q)
}

// redirectTo redirects to redirectURI with q added to its query (302 for
// GET, 303 after a POST).
func redirectTo(w http.ResponseWriter, r *http.Request, redirectURI string, q url.Values) error {
	u, err := url.Parse(redirectURI)
	if err != nil {
		return &Error{Code: ErrInvalidRequest, Desc: "The redirect_uri is not valid."}
	}
	old := u.Query()
	for k, vs := range q {
		old[k] = vs
	}
	u.RawQuery = old.Encode()
	status := http.StatusFound
	if r.Method == http.MethodPost {
		status = http.StatusSeeOther
	}
	w.Header().Set("Location", u.String())
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	return nil
}

// consumeLaunch checks and uses up an EHR launch value of clientID.
func (s *Server) consumeLaunch(ctx context.Context, v, clientID string) (*launchData, error) {
	h := hashValue(v)
	now := s.clk.Now()
	tok, err := s.o.Store.Token(ctx, store.TokenLaunch, h, now)
	switch {
	case errors.Is(err, store.ErrNotFound), errors.Is(err, store.ErrExpired):
		return nil, errors.New("the launch value is unknown or expired")
	case err != nil:
		return nil, err
	}
	var ld launchData
	if err := json.Unmarshal(tok.Data, &ld); err != nil {
		return nil, err
	}
	if ld.ClientID != clientID {
		return nil, errors.New("the launch value belongs to another application")
	}
	if _, err := s.o.Store.ConsumeToken(ctx, store.TokenLaunch, h, now, false, time.Time{}); err != nil {
		if errors.Is(err, store.ErrUsed) || errors.Is(err, store.ErrExpired) {
			return nil, errors.New("the launch value was already used or expired")
		}
		return nil, err
	}
	return &ld, nil
}
