package server

import (
	"context"
	"errors"
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

// healthz answers 200 {"status":"ok"} when the store answers, 503 with an
// OperationOutcome otherwise.
func (s *Server) healthz(w http.ResponseWriter, r *http.Request) error {
	httpx.SetInteraction(r, "healthz")
	if err := onlyGet(r); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(r.Context(), healthTimeout)
	defer cancel()
	if err := probeStore(ctx, s.store); err != nil {
		return &fhir.Error{Code: fhir.IssueTransient, Status: http.StatusServiceUnavailable,
			Diag: "the store is not answering", Cause: err, Header: http.Header{"Retry-After": {"5"}}}
	}
	w.Header().Set("Content-Type", "application/json")
	_, err := w.Write([]byte(`{"status":"ok"}` + "\n"))
	return err
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
