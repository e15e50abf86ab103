package authz

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync/atomic"
	"time"

	"github.com/fhirguard/fhirguard/internal/audit"
	"github.com/fhirguard/fhirguard/internal/authn"
	"github.com/fhirguard/fhirguard/internal/clock"
	"github.com/fhirguard/fhirguard/internal/httpx"
	"github.com/fhirguard/fhirguard/internal/keys"
)

// Paths of the authorization server under the server root {B}. Clients
// discover them from the two discovery documents.
const (
	PathSMARTConfig = "/.well-known/smart-configuration"  // under the FHIR base
	PathOIDCConfig  = "/.well-known/openid-configuration" // under the issuer (= FHIR base)
	PathPrefix      = "/auth"
	PathAuthorize   = PathPrefix + "/authorize"
	PathLogin       = PathPrefix + "/login"
	PathConsent     = PathPrefix + "/consent"
	PathPick        = PathPrefix + "/pick"
	PathPickEnc     = PathPrefix + "/pick-encounter"
	PathLogout      = PathPrefix + "/logout"
	PathToken       = PathPrefix + "/token"
	PathIntrospect  = PathPrefix + "/introspect"
	PathRevoke      = PathPrefix + "/revoke"
	PathRegister    = PathPrefix + "/register"
	PathUserinfo    = PathPrefix + "/userinfo"
	PathJWKS        = PathPrefix + "/jwks"
	PathStatic      = PathPrefix + "/static/"
)

// Options configures New.
type Options struct {
	Store     Store
	Resources Resources
	Keys      *keys.Service
	// Validator validates access tokens (introspection, userinfo);
	// Revocations is updated at once when this server revokes.
	Validator   *authn.Validator
	Revocations *authn.Revocations
	Clock       clock.Clock
	Logger      *slog.Logger
	// Root is the server root {B}; FHIRBase is {B}/fhir, which is also the
	// issuer and the audience of every access token.
	Root     string
	FHIRBase string
	// Dev opens dynamic registration (no initial access token needed).
	Dev bool
	// JWKSURIHosts is the allowlist of jwks_uri hosts; HTTPClient fetches
	// them (default: 5 s timeout, no redirects).
	JWKSURIHosts []string
	HTTPClient   *http.Client
	// Argon2 are the password hash parameters of users created through
	// this server (zero = DefaultArgon2).
	Argon2 Argon2Params
	// Audit receives every login, token and registration event (nil = not
	// recorded). A failing sink fails the request (fail closed).
	Audit audit.Sink
	// MaxLoginFailures and Lockout drive login throttling (defaults 5 and
	// 15 minutes).
	MaxLoginFailures int
	Lockout          time.Duration
	// SecureCookies marks cookies Secure (TLS deployments).
	SecureCookies bool
}

// Server is the authorization server.
type Server struct {
	o      Options
	clk    clock.Clock
	log    *slog.Logger
	admin  *Admin
	jwks   *jwksCache
	grants map[string]Grant
	pages  *pages
	// search lists a patient's encounters (nil when Resources cannot
	// search: no encounter picker then).
	search Searcher
	// lastPrune is when expired records were last deleted (Unix ns).
	lastPrune atomic.Int64
}

// pruneEvery is how often the token endpoint deletes expired codes,
// sessions, refresh tokens, jti records and revocations.
const pruneEvery = 10 * time.Minute

// maybePrune deletes expired auth records at most every pruneEvery; only
// the caller that claims the slot does the work, and a failure is only
// logged (the records are dead anyway: every check looks at expiry).
func (s *Server) maybePrune(ctx context.Context) {
	now := s.clk.Now()
	last := s.lastPrune.Load()
	if now.UnixNano()-last < int64(pruneEvery) || !s.lastPrune.CompareAndSwap(last, now.UnixNano()) {
		return
	}
	if err := s.o.Store.PruneAuth(ctx, now); err != nil {
		s.log.Warn("deleting expired authorization records failed", "err", err)
	}
}

// New builds the authorization server.
func New(o Options) (*Server, error) {
	if o.Store == nil || o.Resources == nil || o.Keys == nil || o.Validator == nil || o.Revocations == nil {
		return nil, errors.New("authz: Store, Resources, Keys, Validator and Revocations are required")
	}
	if o.Root == "" || o.FHIRBase == "" {
		return nil, errors.New("authz: Root and FHIRBase are required")
	}
	if o.Clock == nil {
		o.Clock = clock.System{}
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.MaxLoginFailures <= 0 {
		o.MaxLoginFailures = 5
	}
	if o.Lockout <= 0 {
		o.Lockout = 15 * time.Minute
	}
	for i, h := range o.JWKSURIHosts {
		o.JWKSURIHosts[i] = strings.ToLower(h)
	}
	s := &Server{o: o, clk: o.Clock, log: o.Logger.With("component", "authz")}
	s.admin = &Admin{Store: o.Store, Resources: o.Resources, Clock: o.Clock, Argon2: o.Argon2,
		RegistrationEndpoint: o.Root + PathRegister}
	s.jwks = newJWKSCache(o.HTTPClient, o.Clock, o.JWKSURIHosts)
	if se, ok := o.Resources.(Searcher); ok {
		s.search = se
	}
	s.grants = map[string]Grant{}
	for _, g := range []Grant{&clientCredentials{s}, &authCode{s}, &refreshGrant{s}} {
		s.grants[g.Type()] = g
	}
	p, err := newPages()
	if err != nil {
		return nil, err
	}
	s.pages = p
	return s, nil
}

// Issuer is the issuer of tokens and the OIDC discovery base.
func (s *Server) Issuer() string { return s.o.FHIRBase }

// TokenURL is the token endpoint (the aud of client assertions).
func (s *Server) TokenURL() string { return s.o.Root + PathToken }

// Admin returns the admin operations on this server's stores.
func (s *Server) Admin() *Admin { return s.admin }

// Mount registers every endpoint. oauth renders RFC 6749 JSON errors,
// fhirWrap OperationOutcomes (discovery), page the HTML error page.
func (s *Server) Mount(mux *http.ServeMux, fhirPath string) {
	oauth := func(h httpx.HandlerFunc) http.Handler { return httpx.Wrap(h, httpx.OAuthJSON) }
	mux.Handle(fhirPath+PathSMARTConfig, oauth(s.smartConfiguration))
	mux.Handle(fhirPath+PathOIDCConfig, oauth(s.openidConfiguration))
	mux.Handle(PathJWKS, oauth(s.serveJWKS))
	tokenLim, loginLim := newLimiter(limitToken, s.clk), newLimiter(limitLogin, s.clk)
	mux.Handle(PathToken, oauth(limited(tokenLim, s.token)))
	mux.Handle(PathIntrospect, oauth(limited(tokenLim, s.introspect)))
	mux.Handle(PathRevoke, oauth(limited(tokenLim, s.revoke)))
	regLim := newLimiter(limitRegister, s.clk)
	mux.Handle(PathRegister, oauth(limited(regLim, s.register)))
	mux.Handle(PathRegister+"/", oauth(limited(tokenLim, s.readRegistration)))
	mux.Handle(PathUserinfo, oauth(s.userinfo))
	page := func(h httpx.HandlerFunc) http.Handler { return httpx.Wrap(h, s.pages.errorEncoder) }
	mux.Handle(PathAuthorize, page(s.authorize))
	mux.Handle(PathLogin, page(limited(loginLim, s.login)))
	mux.Handle(PathConsent, page(limited(loginLim, s.consent)))
	mux.Handle(PathPick, page(limited(loginLim, s.pick)))
	mux.Handle(PathPickEnc, page(limited(loginLim, s.pickEncounter)))
	mux.Handle(PathLogout, page(limited(loginLim, s.logout)))
	mux.Handle(PathStatic, page(s.static))
	mux.Handle(PathPrefix+"/", oauth(func(w http.ResponseWriter, r *http.Request) error {
		return &Error{Code: ErrInvalidRequest, Desc: "no such endpoint", Status: http.StatusNotFound}
	}))
}

// record hands an event to the audit sink (if any).
func (s *Server) record(ctx context.Context, ev audit.Event) error {
	if s.o.Audit == nil {
		return nil
	}
	if err := s.o.Audit.Record(ctx, ev); err != nil {
		return &Error{Code: ErrTemporarilyUnavailable, Desc: "the request could not be recorded; retry later",
			Status: http.StatusServiceUnavailable, Cause: fmt.Errorf("audit: %w", err),
			Hdr: http.Header{"Retry-After": {"1"}}}
	}
	return nil
}

// requireMethod refuses other methods with 405.
func requireMethod(r *http.Request, methods ...string) error {
	for _, m := range methods {
		if r.Method == m || (m == http.MethodGet && r.Method == http.MethodHead) {
			return nil
		}
	}
	return &Error{Code: ErrInvalidRequest, Desc: "method not allowed", Status: http.StatusMethodNotAllowed,
		Hdr: http.Header{"Allow": {strings.Join(methods, ", ")}}}
}

// CORSMode says how a path of the authorization server answers
// cross-origin requests (RESIL-05): discovery and the JWKS are public
// ("*"); the endpoints browser apps call with fetch (token, revocation,
// introspection, userinfo, registration) follow the origin allowlist; the
// authorize, login, consent, picker and logout pages — reached only by
// navigation — and everything else get no CORS headers (CORSNone).
func CORSMode(fhirPath, path string) httpx.CORSMode {
	switch path {
	case fhirPath + PathSMARTConfig, fhirPath + PathOIDCConfig, PathJWKS:
		return httpx.CORSPublic
	case PathToken, PathRevoke, PathIntrospect, PathUserinfo, PathRegister:
		return httpx.CORSAllowlist
	}
	if strings.HasPrefix(path, PathRegister+"/") {
		return httpx.CORSAllowlist
	}
	return httpx.CORSNone
}
