package authz

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/fhirguard/fhirguard/internal/store"
)

// loginFailed is the one message of every failed login: unknown user,
// wrong password and locked account look the same (AUTHN-15, RESIL-02).
const loginFailed = "The username or password is incorrect, or the account is temporarily locked."

// login checks the credentials posted by the login page, with throttling
// (a temporary lockout after MaxLoginFailures consecutive failures), then
// continues to the patient picker or the consent page.
func (s *Server) login(w http.ResponseWriter, r *http.Request) error {
	form, hash, sess, err := s.postedForm(r)
	if err != nil {
		return err
	}
	ctx := r.Context()
	client, err := s.clientLookup(ctx, sess.ClientID, false)
	if err != nil {
		return errSession
	}
	username := strings.TrimSpace(form.Get("username"))
	user, ok, err := s.checkLogin(ctx, username, form.Get("password"), client.ClientID)
	if err != nil {
		return err
	}
	if !ok {
		return s.pages.render(w, http.StatusUnauthorized, "login.html", pageData{Title: "Sign in", Action: PathLogin,
			CSRF: sess.CSRF, ClientName: displayName(client), Message: loginFailed}, formTarget(sess.RedirectURI))
	}
	if sess.Launch && sess.LaunchUser != user.Username {
		_ = s.endSession(ctx, w, hash)
		return redirectError(w, r, sess.RedirectURI, sess.State, ErrAccessDenied, "the launch was made for another user")
	}
	if sess.BTG && !hasRole(user.Roles, RoleBreakGlass) {
		_ = s.endSession(ctx, w, hash)
		return redirectError(w, r, sess.RedirectURI, sess.State, ErrAccessDenied, "break the glass needs the break-glass role")
	}
	sess.Username, sess.AuthTime = user.Username, s.clk.Now().Unix()
	if sess.SID, err = s.startSignIn(ctx, w, r, user.Username); err != nil {
		return err
	}
	if typ, id, _ := strings.Cut(user.FHIRUser, "/"); typ == "Patient" {
		sess.Patient = id // a patient user's own record is the context
	} else if sess.LaunchPatient != "" {
		sess.Patient = sess.LaunchPatient
	}
	// A new session id (and CSRF token) once the user is known: a session
	// planted before the login cannot ride on it.
	if _, err := s.o.Store.ConsumeToken(ctx, store.TokenSession, hash, s.clk.Now(), false, time.Time{}); err != nil {
		return errSession
	}
	hash, err = s.newSession(ctx, w, sess)
	if err != nil {
		return err
	}
	return s.next(ctx, w, hash, client, sess)
}

// dummyHash equalizes the time of a login for an unknown user with that
// of a wrong password.
var dummyHash = sync.OnceValue(func() string {
	h, _ := HashPassword("fhirguard-no-such-user", DefaultArgon2)
	return h
})

// checkLogin verifies a username and password. A locked account answers
// false without looking at the password; each failure counts towards the
// lockout (and the lockout itself is audited).
func (s *Server) checkLogin(ctx context.Context, username, password, clientID string) (*store.User, bool, error) {
	now := s.clk.Now()
	user, err := s.o.Store.User(ctx, username)
	if errors.Is(err, store.ErrNotFound) || (err == nil && user.Disabled) {
		_, _ = CheckPassword(dummyHash(), password)
		return nil, false, s.record(ctx, loginEvent(username, "", clientID, false, false))
	}
	if err != nil {
		return nil, false, err
	}
	if now.Before(user.LockedUntil) {
		_, _ = CheckPassword(dummyHash(), password)
		return nil, false, s.record(ctx, loginEvent(username, user.FHIRUser, clientID, false, false))
	}
	ok, err := CheckPassword(user.PasswordHash, password)
	if err != nil {
		return nil, false, err
	}
	locked := false
	err = s.o.Store.UpdateUser(ctx, username, func(old store.User) (store.User, error) {
		locked = false
		if ok {
			old.FailedLogins, old.LockedUntil = 0, time.Time{}
			return old, nil
		}
		old.FailedLogins++
		if old.FailedLogins >= s.o.MaxLoginFailures {
			old.FailedLogins, old.LockedUntil, locked = 0, now.Add(s.o.Lockout), true
		}
		old.UpdatedAt = now
		return old, nil
	})
	if err != nil {
		return nil, false, err
	}
	if err := s.record(ctx, loginEvent(username, user.FHIRUser, clientID, ok, false)); err != nil {
		return nil, false, err
	}
	if locked {
		s.log.Warn("account locked after repeated failed logins", "user", username)
		if err := s.record(ctx, loginEvent(username, user.FHIRUser, clientID, false, true)); err != nil {
			return nil, false, err
		}
	}
	return user, ok, nil
}
