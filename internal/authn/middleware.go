package authn

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"strconv"

	"github.com/fhirguard/fhirguard/internal/fhir"
	"github.com/fhirguard/fhirguard/internal/httpx"
	"github.com/fhirguard/fhirguard/internal/policy"
)

type principalKey struct{}

// WithPrincipal returns ctx carrying p.
func WithPrincipal(ctx context.Context, p *policy.Principal) context.Context {
	return context.WithValue(ctx, principalKey{}, p)
}

// FromContext returns the request's authenticated principal (false for an
// anonymous request to a public endpoint).
func FromContext(ctx context.Context) (*policy.Principal, bool) {
	p, ok := ctx.Value(principalKey{}).(*policy.Principal)
	return p, ok && p != nil
}

// Middleware authenticates every request to next: a valid bearer token
// puts its principal in the context; public(r) requests may come without
// a token (a token they carry must still be valid). Failures are one 401
// (an OperationOutcome rendered by enc) with WWW-Authenticate; a token in
// the query string is refused; an unreadable revocation list is a 503.
func (v *Validator) Middleware(next http.Handler, public func(*http.Request) bool, enc httpx.Encoder) http.Handler {
	return httpx.Wrap(func(w http.ResponseWriter, r *http.Request) error {
		if r.URL.Query().Has("access_token") {
			return v.unauthorized(r, "access_token in the query string", true)
		}
		h := r.Header.Get("Authorization")
		if h == "" {
			if public != nil && public(r) {
				next.ServeHTTP(w, r)
				return nil
			}
			return v.unauthorized(r, "no bearer token", false)
		}
		tok := BearerToken(h)
		if tok == "" {
			return v.unauthorized(r, "not a bearer token", true)
		}
		p, _, err := v.Validate(r.Context(), tok)
		switch {
		case errors.Is(err, ErrUnavailable):
			return &fhir.Error{Code: fhir.IssueTransient, Status: http.StatusServiceUnavailable,
				Diag: "authorization state is temporarily unavailable; retry later", Cause: err,
				Header: http.Header{"Retry-After": {strconv.Itoa(1)}}}
		case err != nil:
			return v.unauthorized(r, err.Error(), true)
		}
		next.ServeHTTP(w, r.WithContext(WithPrincipal(r.Context(), p)))
		return nil
	}, enc)
}

// authFailure is the one body of every authentication failure (the
// reason is logged, never sent, so the answers are identical).
const authFailure = "authentication required: send a valid access token as Authorization: Bearer"

func (v *Validator) unauthorized(r *http.Request, reason string, invalid bool) error {
	ch := `Bearer realm="` + v.o.Realm + `"`
	if invalid {
		ch += `, error="invalid_token"`
	}
	httpx.Logger(r.Context()).LogAttrs(r.Context(), slog.LevelDebug, "bearer token refused", slog.String("reason", reason))
	if v.o.OnRefused != nil {
		v.o.OnRefused(r, reason)
	}
	return &fhir.Error{Code: fhir.IssueLogin, Status: http.StatusUnauthorized, Diag: authFailure,
		Header: http.Header{"WWW-Authenticate": {ch}}}
}
