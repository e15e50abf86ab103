package authz

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/fhirguard/fhirguard/internal/store"
)

// The sign-in session: the user's login at this server, which outlives
// one authorization request. Refresh tokens issued with online_access are
// bound to it (RESIL-07): they stop working when it ends — by logout
// (logout.go) or after SignInLifetime — and logout revokes their grants.
// Every authorization still asks for the password; the sign-in session is
// the lifetime anchor of online access, not single sign-on.
//
// It is stored under the hash of a public session id (sid, also the
// id_token's sid claim, so an RP can name it in id_token_hint) with the
// hash of a secret; the cookie holds "sid.secret". Ending it marks the
// record used.
const (
	signInCookie = "fhirguard_signin"
	// tokenSignIn is the AuthToken kind of a sign-in session.
	tokenSignIn = "signin"
	// SignInLifetime bounds a sign-in session and so every online_access
	// refresh token issued under it.
	SignInLifetime = OnlineRefreshLifetime
	// maxSignInGrants bounds the grants a sign-in session remembers for
	// revocation at logout (beyond it the refresh-time check still ends
	// them).
	maxSignInGrants = 200
)

// signIn is the stored state of a sign-in session.
type signIn struct {
	Username   string `json:"username"`
	SecretHash string `json:"secret_hash"`
	// CSRF protects the logout confirmation form.
	CSRF string `json:"csrf"`
	// Grants are the grants of the online_access refresh tokens issued
	// under the session.
	Grants []string `json:"grants,omitempty"`
}

// currentSignIn returns the sid and state of the request's live sign-in
// session (ok false when there is none).
func (s *Server) currentSignIn(ctx context.Context, r *http.Request) (sid string, si *signIn, ok bool, err error) {
	ck, cerr := r.Cookie(signInCookie)
	if cerr != nil || len(ck.Value) > 100 {
		return "", nil, false, nil
	}
	sid, secret, found := strings.Cut(ck.Value, ".")
	if !found || sid == "" || secret == "" {
		return "", nil, false, nil
	}
	si, live, err := s.loadSignIn(ctx, sid)
	if err != nil || !live {
		return "", nil, false, err
	}
	if subtle.ConstantTimeCompare([]byte(hashValue(secret)), []byte(si.SecretHash)) != 1 {
		return "", nil, false, nil
	}
	return sid, si, true, nil
}

// loadSignIn reads a sign-in session by sid; live is false when it is
// unknown, ended or expired.
func (s *Server) loadSignIn(ctx context.Context, sid string) (*signIn, bool, error) {
	tok, err := s.o.Store.Token(ctx, tokenSignIn, hashValue(sid), s.clk.Now())
	switch {
	case errors.Is(err, store.ErrNotFound), errors.Is(err, store.ErrExpired):
		return nil, false, nil
	case err != nil:
		return nil, false, fmt.Errorf("read sign-in session: %w", err)
	}
	var si signIn
	if err := json.Unmarshal(tok.Data, &si); err != nil {
		return nil, false, fmt.Errorf("decode sign-in session: %w", err)
	}
	return &si, tok.UsedAt.IsZero(), nil
}

// signInLive reports whether the sign-in session sid is still live.
func (s *Server) signInLive(ctx context.Context, sid string) (bool, error) {
	_, live, err := s.loadSignIn(ctx, sid)
	return live, err
}

// startSignIn is called after a successful login: the browser's live
// sign-in session is kept when it is the same user's; one of another user
// ends (one browser, one signed-in user); otherwise a new one starts.
func (s *Server) startSignIn(ctx context.Context, w http.ResponseWriter, r *http.Request, username string) (string, error) {
	sid, si, ok, err := s.currentSignIn(ctx, r)
	if err != nil {
		return "", err
	}
	if ok && si.Username == username {
		return sid, nil
	}
	if ok {
		if _, err := s.endSignIn(ctx, sid); err != nil {
			return "", err
		}
	}
	sid, secret := randomValue(18), randomValue(24)
	data, err := json.Marshal(signIn{Username: username, SecretHash: hashValue(secret), CSRF: randomValue(24)})
	if err != nil {
		return "", fmt.Errorf("encode sign-in session: %w", err)
	}
	now := s.clk.Now()
	if err := s.o.Store.PutToken(ctx, store.AuthToken{Kind: tokenSignIn, Hash: hashValue(sid), Data: data,
		CreatedAt: now, ExpiresAt: now.Add(SignInLifetime)}); err != nil {
		return "", fmt.Errorf("store sign-in session: %w", err)
	}
	http.SetCookie(w, &http.Cookie{Name: signInCookie, Value: sid + "." + secret, Path: PathPrefix, HttpOnly: true,
		Secure: s.o.SecureCookies, SameSite: http.SameSiteLaxMode, MaxAge: int(SignInLifetime.Seconds())})
	return sid, nil
}

// clearSignInCookie drops the sign-in cookie.
func (s *Server) clearSignInCookie(w http.ResponseWriter) {
	http.SetCookie(w, &http.Cookie{Name: signInCookie, Value: "", Path: PathPrefix, HttpOnly: true,
		Secure: s.o.SecureCookies, SameSite: http.SameSiteLaxMode, MaxAge: -1})
}

// attachGrant records an online_access grant under the sign-in session
// sid and returns the session's expiry (the refresh token's); ok is false
// when the session has ended (then no online refresh token is issued).
func (s *Server) attachGrant(ctx context.Context, sid, grant string) (expires time.Time, ok bool, err error) {
	err = s.o.Store.UpdateToken(ctx, tokenSignIn, hashValue(sid), s.clk.Now(), func(old store.AuthToken) (store.AuthToken, error) {
		var si signIn
		if err := json.Unmarshal(old.Data, &si); err != nil {
			return old, fmt.Errorf("decode sign-in session: %w", err)
		}
		if len(si.Grants) < maxSignInGrants {
			si.Grants = append(si.Grants, grant)
		}
		data, err := json.Marshal(si)
		if err != nil {
			return old, fmt.Errorf("encode sign-in session: %w", err)
		}
		old.Data, expires = data, old.ExpiresAt
		return old, nil
	})
	switch {
	case errors.Is(err, store.ErrUsed), errors.Is(err, store.ErrExpired), errors.Is(err, store.ErrNotFound):
		return time.Time{}, false, nil
	case err != nil:
		return time.Time{}, false, fmt.Errorf("bind grant to sign-in session: %w", err)
	}
	return expires, true, nil
}

// endSignIn ends the sign-in session sid and revokes the grants of the
// online_access refresh tokens issued under it (their refresh and access
// tokens). ended reports whether a live session ended here: ending an
// ended, expired or unknown session does nothing and reports false.
func (s *Server) endSignIn(ctx context.Context, sid string) (ended bool, err error) {
	now := s.clk.Now()
	tok, err := s.o.Store.ConsumeToken(ctx, tokenSignIn, hashValue(sid), now, false, time.Time{})
	switch {
	case errors.Is(err, store.ErrUsed), errors.Is(err, store.ErrExpired), errors.Is(err, store.ErrNotFound):
		return false, nil
	case err != nil:
		return false, fmt.Errorf("end sign-in session: %w", err)
	}
	var si signIn
	if err := json.Unmarshal(tok.Data, &si); err != nil {
		return true, fmt.Errorf("decode sign-in session: %w", err)
	}
	for _, g := range si.Grants {
		if err := s.revokeGrant(ctx, g, now); err != nil {
			return true, fmt.Errorf("end sign-in session: %w", err)
		}
	}
	return true, nil
}
