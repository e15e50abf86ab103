package authz

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"time"

	"github.com/fhirguard/fhirguard/internal/store"
)

// The browser session of one authorization request (login → picker →
// consent), stored server-side under the hash of a random id kept in an
// HttpOnly, SameSite=Lax cookie. Each form carries the session's CSRF
// token; a POST without it is refused (403).
const (
	sessionCookie   = "fhirguard_authz"
	sessionLifetime = 10 * time.Minute
)

// session is the state of an authorization request.
type session struct {
	CSRF          string `json:"csrf"`
	ClientID      string `json:"client_id"`
	RedirectURI   string `json:"redirect_uri"`
	State         string `json:"state"`
	Scope         string `json:"scope"`
	CodeChallenge string `json:"code_challenge"`
	Nonce         string `json:"nonce,omitempty"`
	BTG           bool   `json:"btg,omitempty"`
	// EHR launch context (from the launch value).
	Launch          bool   `json:"launch,omitempty"`
	LaunchUser      string `json:"launch_user,omitempty"`
	LaunchPatient   string `json:"launch_patient,omitempty"`
	LaunchEncounter string `json:"launch_encounter,omitempty"`
	// Set as the flow proceeds.
	Username string `json:"username,omitempty"`
	AuthTime int64  `json:"auth_time,omitempty"`
	// SID is the user's sign-in session (signin.go).
	SID     string `json:"sid,omitempty"`
	Patient string `json:"patient,omitempty"`
	// Encounter is the encounter chosen in the standalone encounter
	// picker (encounter() is the context); EncounterAsked records that
	// the picker step was taken (possibly choosing none).
	Encounter      string `json:"encounter,omitempty"`
	EncounterAsked bool   `json:"encounter_asked,omitempty"`
}

// newSession stores sess and sets its cookie; it returns the stored
// session's hash.
func (s *Server) newSession(ctx context.Context, w http.ResponseWriter, sess *session) (string, error) {
	id := randomValue(24)
	sess.CSRF = randomValue(24)
	data, err := json.Marshal(sess)
	if err != nil {
		return "", fmt.Errorf("encode session: %w", err)
	}
	now := s.clk.Now()
	h := hashValue(id)
	if err := s.o.Store.PutToken(ctx, store.AuthToken{Kind: store.TokenSession, Hash: h, Data: data,
		CreatedAt: now, ExpiresAt: now.Add(sessionLifetime)}); err != nil {
		return "", fmt.Errorf("store session: %w", err)
	}
	http.SetCookie(w, &http.Cookie{Name: sessionCookie, Value: id, Path: PathPrefix, HttpOnly: true,
		Secure: s.o.SecureCookies, SameSite: http.SameSiteLaxMode, MaxAge: int(sessionLifetime.Seconds())})
	return h, nil
}

var errSession = &Error{Code: ErrAccessDenied, Status: http.StatusBadRequest,
	Desc: "Your sign-in session has expired or is not valid. Return to the application and start again."}

var errCSRF = &Error{Code: ErrAccessDenied, Status: http.StatusForbidden,
	Desc: "The form could not be verified (missing or wrong security token). Return to the application and start again."}

// loadSession reads the session of the request's cookie; for POST the
// form's csrf must match.
func (s *Server) loadSession(ctx context.Context, r *http.Request, csrf string, checkCSRF bool) (string, *session, error) {
	ck, err := r.Cookie(sessionCookie)
	if err != nil || ck.Value == "" || len(ck.Value) > 64 {
		if checkCSRF && csrf == "" {
			return "", nil, errCSRF
		}
		return "", nil, errSession
	}
	h := hashValue(ck.Value)
	tok, err := s.o.Store.Token(ctx, store.TokenSession, h, s.clk.Now())
	if err != nil {
		if errors.Is(err, store.ErrNotFound) || errors.Is(err, store.ErrExpired) {
			return "", nil, errSession
		}
		return "", nil, fmt.Errorf("read session: %w", err)
	}
	if !tok.UsedAt.IsZero() {
		return "", nil, errSession
	}
	var sess session
	if err := json.Unmarshal(tok.Data, &sess); err != nil {
		return "", nil, fmt.Errorf("decode session: %w", err)
	}
	if checkCSRF && (csrf == "" || subtle.ConstantTimeCompare([]byte(csrf), []byte(sess.CSRF)) != 1) {
		return "", nil, errCSRF
	}
	return h, &sess, nil
}

// saveSession writes sess back.
func (s *Server) saveSession(ctx context.Context, hash string, sess *session) error {
	data, err := json.Marshal(sess)
	if err != nil {
		return fmt.Errorf("encode session: %w", err)
	}
	err = s.o.Store.UpdateToken(ctx, store.TokenSession, hash, s.clk.Now(), func(old store.AuthToken) (store.AuthToken, error) {
		old.Data = data
		return old, nil
	})
	if errors.Is(err, store.ErrUsed) || errors.Is(err, store.ErrExpired) || errors.Is(err, store.ErrNotFound) {
		return errSession
	}
	return err
}

// endSession marks the session used (its code was issued, or it was
// refused) and drops the cookie.
func (s *Server) endSession(ctx context.Context, w http.ResponseWriter, hash string) error {
	http.SetCookie(w, &http.Cookie{Name: sessionCookie, Value: "", Path: PathPrefix, HttpOnly: true,
		Secure: s.o.SecureCookies, SameSite: http.SameSiteLaxMode, MaxAge: -1})
	_, err := s.o.Store.ConsumeToken(ctx, store.TokenSession, hash, s.clk.Now(), false, time.Time{})
	if err != nil && !errors.Is(err, store.ErrUsed) && !errors.Is(err, store.ErrExpired) {
		return fmt.Errorf("end session: %w", err)
	}
	return nil
}

// encounter is the session's encounter context: the EHR launch's, or the
// one chosen in the standalone encounter picker.
func (sess *session) encounter() string {
	if sess.Launch {
		return sess.LaunchEncounter
	}
	return sess.Encounter
}

// postedForm reads a page's POSTed form and the sign-in flow session it
// belongs to, checking the form's CSRF token against the session.
func (s *Server) postedForm(r *http.Request) (url.Values, string, *session, error) {
	if err := requireMethod(r, http.MethodPost); err != nil {
		return nil, "", nil, err
	}
	form, err := readForm(r)
	if err != nil {
		return nil, "", nil, err
	}
	hash, sess, err := s.loadSession(r.Context(), r, form.Get("csrf"), true)
	if err != nil {
		return nil, "", nil, err
	}
	return form, hash, sess, nil
}
