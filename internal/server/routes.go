package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/fhirguard/fhirguard/internal/fhir"
	"github.com/fhirguard/fhirguard/internal/httpx"
	"github.com/fhirguard/fhirguard/internal/store"
)

// healthTimeout bounds the store probe of /healthz.
const healthTimeout = 2 * time.Second

// routes is the one place where every area is mounted. The encoder is
// chosen here, per area: OperationOutcome for the FHIR API and everything
// else so far (OAuth endpoints will use httpx.OAuthJSON).
func (s *Server) routes(extra []RouteFunc) (*http.ServeMux, error) {
	wrapFHIR := func(h httpx.HandlerFunc) http.Handler { return httpx.Wrap(h, httpx.OperationOutcome) }
	mux := http.NewServeMux()

	// FHIR REST API under {B}/fhir.
	if err := s.mountFHIR(mux, wrapFHIR); err != nil {
		return nil, err
	}

	// The authorization server: discovery under the FHIR base, OAuth
	// endpoints under {B}/auth (RFC 6749 JSON errors, HTML pages).
	s.auth.az.Mount(mux, fhirPath)

	// Operations.
	mux.Handle("/healthz", wrapFHIR(s.healthz))
	mux.Handle("/metrics", wrapFHIR(s.serveMetrics))

	for _, fn := range extra {
		fn(mux, wrapFHIR)
	}

	// Everything else: a 404 OperationOutcome (never net/http's text page).
	mux.Handle("/", wrapFHIR(notFound))
	return mux, nil
}

func notFound(w http.ResponseWriter, r *http.Request) error {
	return &fhir.Error{Code: fhir.IssueNotFound, Diag: "no such endpoint"}
}

func onlyGet(r *http.Request) error {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		return &fhir.Error{Code: fhir.IssueNotSupported, Status: http.StatusMethodNotAllowed,
			Diag: "method not allowed", Header: http.Header{"Allow": {"GET, HEAD"}}}
	}
	return nil
}

// clockSkewWarn is the database clock skew above which /healthz reports
// "warn" (audit records and lastUpdated would disagree by that much).
const clockSkewWarn = time.Second

// clockSkewer is implemented by stores and audit logs whose database keeps
// a clock of its own (PostgreSQL): how far it is ahead of the server's.
type clockSkewer interface {
	ClockSkew(ctx context.Context) (time.Duration, error)
}

// health is the body of /healthz.
type health struct {
	Status string `json:"status"` // ok | warn
	// ClockSkewMs is the database clock minus the server clock, when the
	// database has a clock of its own.
	ClockSkewMs *int64 `json:"clockSkewMs,omitempty"`
	Warning     string `json:"warning,omitempty"`
}

// healthz answers 200 {"status":"ok"} when the store answers, 503 with an
// OperationOutcome otherwise. On a database with a clock of its own it
// adds clockSkewMs, and status "warn" (still 200: the server works) when
// the skew is over clockSkewWarn.
func (s *Server) healthz(w http.ResponseWriter, r *http.Request) error {
	httpx.SetInteraction(r, "healthz")
	if err := onlyGet(r); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(r.Context(), healthTimeout)
	defer cancel()
	unavailable := func(diag string, err error) error {
		return &fhir.Error{Code: fhir.IssueTransient, Status: http.StatusServiceUnavailable,
			Diag: diag, Cause: err, Header: http.Header{"Retry-After": {"5"}}}
	}
	if err := probeStore(ctx, s.store); err != nil {
		return unavailable("the store is not answering", err)
	}
	h := health{Status: "ok"}
	if cs := s.clockSkewer(); cs != nil {
		skew, err := cs.ClockSkew(ctx)
		if err != nil {
			return unavailable("the database clock cannot be read", err)
		}
		ms := skew.Milliseconds()
		h.ClockSkewMs = &ms
		if skew > clockSkewWarn || skew < -clockSkewWarn {
			h.Status = "warn"
			h.Warning = fmt.Sprintf("the database clock differs from the server clock by more than %s", clockSkewWarn)
		}
	}
	w.Header().Set("Content-Type", "application/json")
	return json.NewEncoder(w).Encode(h)
}

// clockSkewer returns the store, or else the audit log, when it can
// measure the database's clock skew (nil: neither can).
func (s *Server) clockSkewer() clockSkewer {
	if cs, ok := s.store.(clockSkewer); ok {
		return cs
	}
	if s.audit != nil {
		if cs, ok := s.audit.backend.(clockSkewer); ok {
			return cs
		}
	}
	return nil
}

// pinger is implemented by stores with a cheap liveness check.
type pinger interface {
	Ping(ctx context.Context) error
}

// probeStore checks that the store answers a query: Ping when the store
// has one, else a read of an id that never exists (not found = healthy).
func probeStore(ctx context.Context, st store.Store) error {
	if p, ok := st.(pinger); ok {
		return p.Ping(ctx)
	}
	_, err := st.Read(ctx, "Basic", "healthz-probe")
	if err == nil || errors.Is(err, store.ErrNotFound) || errors.Is(err, store.ErrGone) {
		return nil
	}
	return err
}

func (s *Server) serveMetrics(w http.ResponseWriter, r *http.Request) error {
	httpx.SetInteraction(r, "metrics")
	if err := onlyGet(r); err != nil {
		return err
	}
	s.metrics.Handler().ServeHTTP(w, r)
	return nil
}
