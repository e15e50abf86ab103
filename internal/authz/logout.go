package authz

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"slices"

	"github.com/fhirguard/fhirguard/internal/audit"
	"github.com/fhirguard/fhirguard/internal/keys"
)

// logout is the OpenID Connect RP-Initiated Logout 1.0 end_session_endpoint
// (GET and POST). It ends the user's sign-in session server-side — which
// revokes every online_access grant issued under it — and clears the
// sign-in cookie.
//
//   - With a valid id_token_hint (an id_token of this server, expired ones
//     accepted), the session named by its sid ends at once, and so does
//     the browser's session when it is the hint's End-User's (same sid or
//     same username).
//   - Without one — or when the hint names another End-User than the one
//     signed in in this browser (RP-Initiated Logout 1.0 §3: the OP MUST
//     then ask) — the session of the browser's cookie ends only after the
//     user confirms on a page (a POST carrying the page's CSRF token), so a
//     cross-site link cannot sign anyone out. Until then the cookie stays.
//   - A hint without sid identifies no session of its own: with no session
//     of the hint's user in this browser nothing ends (the browser is
//     already signed out; nothing is audited).
//
// Only a logout that ends a live session is audited (one Logout
// AuditEvent per request); one whose sessions had already ended answers
// the same but records nothing, so every Logout event is a real end.
//
// post_logout_redirect_uri is followed (with state) only when it is
// registered in the client's post_logout_redirect_uris; the client is the
// id_token_hint's aud or client_id (which must agree). An unregistered one
// is refused on an error page before anything ends.
func (s *Server) logout(w http.ResponseWriter, r *http.Request) error {
	if err := requireMethod(r, http.MethodGet, http.MethodPost); err != nil {
		return err
	}
	form, err := readForm(r)
	if err != nil {
		return err
	}
	ctx := r.Context()
	var hint *idTokenClaims
	if raw := form.Get("id_token_hint"); raw != "" {
		if hint, err = s.parseIDTokenHint(ctx, raw); err != nil {
			return err
		}
	}
	clientID := form.Get("client_id")
	if hint != nil {
		if clientID != "" && clientID != hint.Audience {
			return &Error{Code: ErrInvalidRequest, Desc: "client_id does not match the id_token_hint."}
		}
		clientID = hint.Audience
	}
	redirect := form.Get("post_logout_redirect_uri")
	if redirect != "" {
		if clientID == "" {
			return &Error{Code: ErrInvalidRequest, Desc: "post_logout_redirect_uri needs client_id or id_token_hint."}
		}
		c, err := s.clientLookup(ctx, clientID, false)
		if err != nil {
			if asError(err) != nil {
				return &Error{Code: ErrInvalidClient, Desc: "The application is not registered with this server."}
			}
			return err
		}
		if !slices.Contains(c.PostLogoutRedirectURIs, redirect) {
			return &Error{Code: ErrInvalidRequest, Desc: "The post_logout_redirect_uri is not registered for this application."}
		}
	}
	state := form.Get("state")
	cookieSID, si, haveCookie, err := s.currentSignIn(ctx, r)
	if err != nil {
		return err
	}
	var ended []string
	// ask: the browser's signed-in user has not been identified as the
	// one to sign out, so they are asked (RP-Initiated Logout 1.0 §3).
	ask := false
	switch {
	case hint != nil:
		if hint.SID != "" {
			ended = append(ended, hint.SID)
		}
		if haveCookie {
			if cookieSID == hint.SID || si.Username == hint.Subject {
				ended = append(ended, cookieSID)
			} else {
				ask = true
			}
		}
	case haveCookie && r.Method == http.MethodPost && form.Get("confirm") == "yes":
		csrf := form.Get("csrf")
		if csrf == "" || subtle.ConstantTimeCompare([]byte(csrf), []byte(si.CSRF)) != 1 {
			return errCSRF
		}
		ended = append(ended, cookieSID)
	case haveCookie:
		ask = true
	}
	// live counts the live sessions this request ended: a session that
	// had already ended is not audited again (its logout was).
	live := 0
	for _, sid := range dedupe(ended) {
		ok, err := s.endSignIn(ctx, sid)
		if err != nil {
			return err
		}
		if ok {
			live++
		}
	}
	if !ask && (haveCookie || hint != nil) {
		s.clearSignInCookie(w)
	}
	if live > 0 {
		who := clientID
		if who == "" {
			who = "(user)"
		}
		if err := s.record(ctx, logoutEvent(hint, si, clip(who))); err != nil {
			return err
		}
	}
	if ask {
		return s.pages.render(w, http.StatusOK, "logout.html", pageData{Title: "Sign out", Action: PathLogout, CSRF: si.CSRF,
			Confirm: true, ClientID: clientID, PostLogoutRedirect: redirect, State: state}, formTarget(redirect))
	}
	if redirect != "" {
		q := url.Values{}
		if state != "" {
			q.Set("state", state)
		}
		return redirectTo(w, r, redirect, q)
	}
	return s.pages.render(w, http.StatusOK, "logout.html", pageData{Title: "Signed out"}, "")
}

// parseIDTokenHint verifies an id_token of this server (signature and
// issuer; an expired one is still a valid hint).
func (s *Server) parseIDTokenHint(ctx context.Context, raw string) (*idTokenClaims, error) {
	bad := &Error{Code: ErrInvalidRequest, Desc: "The id_token_hint is not a valid ID token of this server."}
	if len(raw) > maxParamBytes {
		return nil, bad
	}
	v, err := s.o.Keys.Verify(ctx, raw, keys.RS256)
	if err != nil {
		if errors.Is(err, keys.ErrInvalid) || errors.Is(err, keys.ErrUnknownKey) {
			return nil, bad
		}
		return nil, err
	}
	var c idTokenClaims
	if err := json.Unmarshal(v.Payload, &c); err != nil || c.Issuer != s.Issuer() || c.Audience == "" {
		return nil, bad
	}
	return &c, nil
}

// logoutEvent is the audit event of a logout.
func logoutEvent(hint *idTokenClaims, si *signIn, clientID string) audit.Event {
	name := ""
	switch {
	case hint != nil:
		name = hint.Subject
	case si != nil:
		name = si.Username
	}
	return audit.Event{Type: audit.TypeLogin, Subtypes: []audit.Coding{subtypeLogout}, Action: audit.ActionExecute,
		Outcome: audit.OutcomeSuccess, OutcomeDesc: "sign-in session ended; its online_access grants revoked",
		Agents: []audit.Agent{{Type: audit.AgentRecipient, Name: clip(name), Requestor: true},
			{Type: audit.AgentApp, WhoID: clientID}}}
}
