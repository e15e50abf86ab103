package authn_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fhirguard/fhirguard/internal/authn"
	"github.com/fhirguard/fhirguard/internal/clock"
	"github.com/fhirguard/fhirguard/internal/keys"
	"github.com/fhirguard/fhirguard/internal/policy/scopes"
	"github.com/fhirguard/fhirguard/internal/store"
	"github.com/fhirguard/fhirguard/internal/store/sqlite"
	"github.com/fhirguard/fhirguard/internal/store/sqlstore"
	"github.com/fhirguard/fhirguard/internal/store/storetest"
)

const base = "https://fhir.example/fhir"

type env struct {
	clk  *clock.Fake
	keys *keys.Service
	auth *sqlstore.Auth
	revs *authn.Revocations
	v    *authn.Validator
}

func newEnv(t testing.TB, src authn.RevocationSource) *env {
	t.Helper()
	st, err := sqlite.Open(context.Background(), sqlite.Options{Path: filepath.Join(t.TempDir(), "a.db"),
		Indexer: storetest.Indexer(), Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	e := &env{clk: clock.NewFake(time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)), auth: st.Auth()}
	if e.keys, err = keys.New(context.Background(), keys.Options{Store: e.auth, Clock: e.clk}); err != nil {
		t.Fatal(err)
	}
	if src == nil {
		src = e.auth
	}
	e.revs = authn.NewRevocations(src, e.clk, nil, time.Second)
	if e.v, err = authn.NewValidator(authn.Options{Keys: e.keys, Issuer: base, Audience: base, Clock: e.clk, Revocations: e.revs}); err != nil {
		t.Fatal(err)
	}
	return e
}

func (e *env) token(t testing.TB, edit func(c *authn.Claims)) string {
	t.Helper()
	now := e.clk.Now()
	c := authn.Claims{Issuer: base, Subject: "alice", Audience: authn.Audience{base}, ClientID: "app1",
		Scope: "patient/*.rs launch/patient", IssuedAt: now.Unix(), ExpiresAt: now.Add(5 * time.Minute).Unix(),
		ID: fmt.Sprintf("jti-%d", now.UnixNano()), Grant: "g1", FHIRUser: "Patient/pA", Patient: "pA"}
	if edit != nil {
		edit(&c)
	}
	tok, err := e.keys.SignJWT(context.Background(), keys.ES256, keys.TypAccess, c)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func TestValidate(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	ctx := context.Background()
	good := e.token(t, nil)
	p, c, err := e.v.Validate(ctx, good)
	if err != nil || p.Patient != "pA" || p.FHIRUser != "Patient/pA" || p.TokenID != c.ID || !p.Scopes.Has(scopes.LaunchPatient) {
		t.Fatalf("ok/valid: %+v %v", p, err)
	}
	idTok, _ := e.keys.SignJWT(ctx, keys.RS256, keys.TypJWT, map[string]any{"iss": base, "aud": base, "exp": e.clk.Now().Add(time.Hour).Unix()})
	for _, tc := range []struct {
		name  string
		token string
		want  error
	}{
		{"fail/empty", "", authn.ErrNoToken},
		{"fail/foreign-aud", e.token(t, func(c *authn.Claims) { c.Audience = authn.Audience{"https://other.example/fhir"} }), authn.ErrInvalid},
		{"fail/foreign-iss", e.token(t, func(c *authn.Claims) { c.Issuer = "https://as.example" }), authn.ErrInvalid},
		{"fail/expired", e.token(t, func(c *authn.Claims) { c.ExpiresAt = e.clk.Now().Add(-2 * time.Minute).Unix() }), authn.ErrExpired},
		{"fail/no-jti", e.token(t, func(c *authn.Claims) { c.ID = "" }), authn.ErrInvalid},
		{"fail/future-iat", e.token(t, func(c *authn.Claims) { c.IssuedAt = e.clk.Now().Add(10 * time.Minute).Unix() }), authn.ErrInvalid},
		{"fail/bad-scope", e.token(t, func(c *authn.Claims) { c.Scope = "patient/Observation.xyz" }), authn.ErrInvalid},
		{"fail/id-token-not-access-token", idTok, authn.ErrInvalid},
		{"fail/too-long", strings.Repeat("a", authn.MaxTokenBytes+1), authn.ErrInvalid},
		{"fail/garbage", "x.y.z", authn.ErrInvalid},
	} {
		if _, _, err := e.v.Validate(ctx, tc.token); !errors.Is(err, tc.want) {
			t.Errorf("%s: err %v, want %v", tc.name, err, tc.want)
		}
	}
	// Cached tokens still expire and are still revoked.
	e.clk.Advance(5*time.Minute + authn.Skew)
	if _, _, err := e.v.Validate(ctx, good); !errors.Is(err, authn.ErrExpired) {
		t.Errorf("fail/cached-expired: %v", err)
	}
}

func TestRevocation(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	ctx := context.Background()
	tok := e.token(t, nil)
	if _, _, err := e.v.Validate(ctx, tok); err != nil {
		t.Fatal(err)
	}
	_, c, _ := e.v.Validate(ctx, tok)
	// Another process revokes in the store: seen after the poll interval.
	if err := e.auth.Revoke(ctx, store.RevokeJTI, c.ID, e.clk.Now().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	e.clk.Advance(1100 * time.Millisecond)
	if _, _, err := e.v.Validate(ctx, tok); !errors.Is(err, authn.ErrRevoked) {
		t.Fatalf("fail/revoked-elsewhere: %v", err)
	}
	// In-process revocation of a grant is immediate.
	other := e.token(t, func(c *authn.Claims) { c.ID, c.Grant = "other", "g2" })
	if _, _, err := e.v.Validate(ctx, other); err != nil {
		t.Fatal(err)
	}
	e.revs.Add(store.RevokeGrant, "g2", e.clk.Now().Add(time.Hour))
	if _, _, err := e.v.Validate(ctx, other); !errors.Is(err, authn.ErrRevoked) {
		t.Fatalf("fail/grant-revoked: %v", err)
	}
}

// failingSource fails on demand.
type failingSource struct{ fail atomic.Bool }

func (f *failingSource) RevokedSince(ctx context.Context, after int64, now time.Time) ([]store.Revocation, error) {
	if f.fail.Load() {
		return nil, errors.New("database down")
	}
	return nil, nil
}

func TestRevocationsFailClosed(t *testing.T) {
	t.Parallel()
	src := &failingSource{}
	e := newEnv(t, src)
	ctx := context.Background()
	tok := e.token(t, nil)
	if _, _, err := e.v.Validate(ctx, tok); err != nil {
		t.Fatal(err)
	}
	src.fail.Store(true)
	e.clk.Advance(2 * time.Second)
	if _, _, err := e.v.Validate(ctx, tok); !errors.Is(err, authn.ErrUnavailable) {
		t.Fatalf("fail/store-down: %v", err)
	}
	src.fail.Store(false)
	e.clk.Advance(2 * time.Second)
	if _, _, err := e.v.Validate(ctx, tok); err != nil {
		t.Fatalf("ok/recovered: %v", err)
	}
}

func TestMiddleware(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	var refused atomic.Int32
	v, err := authn.NewValidator(authn.Options{Keys: e.keys, Issuer: base, Audience: base, Clock: e.clk, Revocations: e.revs,
		OnRefused: func(r *http.Request, reason string) { refused.Add(1) }})
	if err != nil {
		t.Fatal(err)
	}
	e.v = v
	var seen string
	next := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if p, ok := authn.FromContext(r.Context()); ok {
			seen = p.Subject
		} else {
			seen = "anonymous"
		}
	})
	h := e.v.Middleware(next, func(r *http.Request) bool { return r.URL.Path == "/fhir/metadata" }, nil)
	tok := e.token(t, nil)
	for _, tc := range []struct {
		name, path, auth string
		status           int
		seen, challenge  string
	}{
		{"ok/bearer", "/fhir/Patient/pA", "Bearer " + tok, 200, "alice", ""},
		{"ok/lowercase-scheme", "/fhir/Patient/pA", "bearer " + tok, 200, "alice", ""},
		{"ok/public-anonymous", "/fhir/metadata", "", 200, "anonymous", ""},
		{"fail/public-with-bad-token", "/fhir/metadata", "Bearer bad", 401, "", `error="invalid_token"`},
		{"fail/no-token", "/fhir/Patient/pA", "", 401, "", `Bearer realm="fhirguard"`},
		{"fail/basic", "/fhir/Patient/pA", "Basic YTpi", 401, "", `error="invalid_token"`},
		{"fail/query-token", "/fhir/Patient/pA?access_token=" + tok, "", 401, "", `error="invalid_token"`},
	} {
		seen = ""
		req := httptest.NewRequest(http.MethodGet, tc.path, nil)
		if tc.auth != "" {
			req.Header.Set("Authorization", tc.auth)
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != tc.status || seen != tc.seen || !strings.Contains(rec.Header().Get("WWW-Authenticate"), tc.challenge) {
			t.Errorf("%s: %d seen %q challenge %q", tc.name, rec.Code, seen, rec.Header().Get("WWW-Authenticate"))
		}
	}
	if n := refused.Load(); n != 4 {
		t.Errorf("OnRefused called %d times, want 4 (one per 401)", n)
	}
}
