package server

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"strings"

	"github.com/fhirguard/fhirguard/internal/authn"
	"github.com/fhirguard/fhirguard/internal/authz"
	"github.com/fhirguard/fhirguard/internal/clock"
	"github.com/fhirguard/fhirguard/internal/fhirapi"
	"github.com/fhirguard/fhirguard/internal/httpx"
	"github.com/fhirguard/fhirguard/internal/keys"
	"github.com/fhirguard/fhirguard/internal/store"
)

// authParts are the authorization server, the key service and bearer
// validation of one server.
type authParts struct {
	keys      *keys.Service
	revs      *authn.Revocations
	validator *authn.Validator
	az        *authz.Server
}

// buildAuth opens the key service and builds token validation and the
// authorization server on the server's store. The FHIR base is the token
// issuer and audience.
func (s *Server) buildAuth(ctx context.Context) error {
	st, err := AuthStore(s.store)
	if err != nil {
		return err
	}
	ks := s.keys
	revs := authn.NewRevocations(st, s.clock, s.log, 0)
	v, err := authn.NewValidator(authn.Options{Keys: ks, Issuer: s.FHIRBase(), Audience: s.FHIRBase(),
		Clock: s.clock, Revocations: revs})
	if err != nil {
		return err
	}
	az, err := authz.New(authz.Options{
		Store: st, Resources: s.store, Keys: ks, Validator: v, Revocations: revs,
		Clock: s.clock, Logger: s.log, Root: s.root, FHIRBase: s.FHIRBase(), Audit: s.AuditSink(),
		Dev: s.cfg.Dev, JWKSURIHosts: s.cfg.Auth.JWKSURIHosts, HTTPClient: s.jwksClient,
		SecureCookies: s.tls != nil || (len(s.root) > 8 && s.root[:8] == "https://"),
	})
	if err != nil {
		return fmt.Errorf("authorization server: %w", err)
	}
	s.auth = &authParts{keys: ks, revs: revs, validator: v, az: az}
	return nil
}

// openKeys opens the key service on st's key table.
func openKeys(ctx context.Context, st store.Store, clk clock.Clock, log *slog.Logger) (*keys.Service, error) {
	as, err := AuthStore(st)
	if err != nil {
		return nil, err
	}
	ks, err := keys.New(ctx, keys.Options{Store: as, Clock: clk, Logger: log})
	if err != nil {
		return nil, fmt.Errorf("signing keys: %w", err)
	}
	return ks, nil
}

// Authz is the authorization server (tests register clients through its
// Admin).
func (s *Server) Authz() *authz.Server { return s.auth.az }

// Keys is the server's key service (other areas sign with it).
func (s *Server) Keys() *keys.Service { return s.auth.keys }

// Clock is the clock every component of the server uses.
func (s *Server) Clock() clock.Clock { return s.clock }

// requireToken wraps the FHIR API: every request needs a valid access
// token except the CapabilityStatement (GET {B}/fhir/metadata).
func (s *Server) requireToken(h http.Handler) http.Handler {
	public := func(r *http.Request) bool {
		return (r.Method == http.MethodGet || r.Method == http.MethodHead) && r.URL.Path == fhirPath+"/metadata"
	}
	return s.auth.validator.Middleware(h, public, nil)
}

// WithJWKSClient sets the HTTP client that fetches client jwks_uri
// documents (tests trust their own TLS server with it).
func WithJWKSClient(c *http.Client) Option { return func(o *options) { o.jwksClient = c } }

// oauthURIs are the authorization server's endpoints for the
// CapabilityStatement (the same URLs as smart-configuration).
func (s *Server) oauthURIs() *fhirapi.OAuthURIs {
	u := s.auth.az.URIs()
	return &fhirapi.OAuthURIs{Authorize: u.Authorize, Token: u.Token, Register: u.Register,
		Introspect: u.Introspect, Revoke: u.Revoke, CORS: s.cfg.CORS.Enabled()}
}

// corsMode classifies a path for httpx.CORS: the authorization server
// decides for its own paths; the CapabilityStatement, public like the
// discovery documents, is readable from any origin; the rest of the FHIR
// API is allowlisted; everything else (health, metrics) has no CORS.
func corsMode(path string) httpx.CORSMode {
	if m := authz.CORSMode(fhirPath, path); m != httpx.CORSNone {
		return m
	}
	if path == fhirPath+"/metadata" {
		return httpx.CORSPublic
	}
	if path == fhirPath || strings.HasPrefix(path, fhirPath+"/") {
		return httpx.CORSAllowlist
	}
	return httpx.CORSNone
}
