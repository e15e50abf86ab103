// Package server owns the wiring of fhirguard: from a validated
// config.Config it opens the store, builds every area (the FHIR REST API,
// health, metrics) and mounts each one on a single mux in one place
// (routes.go), behind the one httpx middleware chain, on a listener it opens
// itself. It holds no request logic of its own.
package server

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"sync"
	"time"

	"github.com/fhirguard/fhirguard/internal/audit"
	"github.com/fhirguard/fhirguard/internal/clock"
	"github.com/fhirguard/fhirguard/internal/config"
	"github.com/fhirguard/fhirguard/internal/httpx"
	"github.com/fhirguard/fhirguard/internal/keys"
	"github.com/fhirguard/fhirguard/internal/store"
)

// DefaultShutdownTimeout bounds how long Serve lets in-flight requests
// finish after its context is cancelled.
const DefaultShutdownTimeout = 30 * time.Second

// ErrNotSupported marks configuration the server accepts but cannot run yet.
var ErrNotSupported = errors.New("not yet supported")

// Option adjusts a Server beyond its config (mostly for tests).
type Option func(*options)

type options struct {
	clock           clock.Clock
	shutdownTimeout time.Duration
	routes          []RouteFunc
	auditSink       func(audit.MultiSink) audit.MultiSink
	jwksClient      *http.Client
}

// RouteFunc mounts extra routes on the server's mux; wrap renders errors as
// OperationOutcomes.
type RouteFunc func(mux *http.ServeMux, wrap func(httpx.HandlerFunc) http.Handler)

// WithClock sets the clock every component uses (default clock.System).
func WithClock(c clock.Clock) Option { return func(o *options) { o.clock = c } }

// WithShutdownTimeout sets how long in-flight requests may take after
// shutdown starts (default 30 s).
func WithShutdownTimeout(d time.Duration) Option {
	return func(o *options) { o.shutdownTimeout = d }
}

// WithRoutes mounts extra routes (tests use it for slow or failing
// handlers).
func WithRoutes(fn RouteFunc) Option { return func(o *options) { o.routes = append(o.routes, fn) } }

// Server is one running fhirguard instance.
type Server struct {
	cfg     config.Config
	log     *slog.Logger
	clock   clock.Clock
	store   store.Store
	keys    *keys.Service
	metrics *httpx.Metrics
	audit   *auditParts // audit.go
	ln      net.Listener
	http    *http.Server
	tls     *tls.Config
	selfSig *x509.Certificate
	root    string
	auth    *authParts

	jwksClient      *http.Client
	shutdownTimeout time.Duration
	closeOnce       sync.Once
	closeErr        error
}

// New validates cfg, refuses configurations that would expose data
// (config.CheckExposure), opens the store, listens on cfg.Addr and builds
// the handler. Nothing is served until Serve. On error everything opened
// so far is closed again.
func New(ctx context.Context, cfg config.Config, logger *slog.Logger, opts ...Option) (_ *Server, err error) {
	o := options{clock: clock.System{}, shutdownTimeout: DefaultShutdownTimeout}
	for _, opt := range opts {
		opt(&o)
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("invalid configuration:\n%w", err)
	}
	if err := cfg.CheckExposure(); err != nil {
		return nil, err
	}
	if cfg.Store.Type == config.StorePostgres {
		return nil, fmt.Errorf("store.type postgres (--db postgres://…): %w; use the embedded SQLite store (the default)", ErrNotSupported)
	}
	if cfg.Redis.URL != "" {
		return nil, fmt.Errorf("redis (--redis): %w; a single instance keeps its state in the data directory", ErrNotSupported)
	}

	s := &Server{cfg: cfg, log: logger, clock: o.clock, shutdownTimeout: o.shutdownTimeout, jwksClient: o.jwksClient}
	defer func() {
		if err != nil {
			_ = s.Close()
		}
	}()

	if s.tls, s.selfSig, err = tlsConfig(cfg.TLS, cfg.Addr, o.clock); err != nil {
		return nil, err
	}
	if s.store, err = openStore(ctx, cfg, o.clock, logger); err != nil {
		return nil, err
	}
	var lc net.ListenConfig
	if s.ln, err = lc.Listen(ctx, "tcp", cfg.Addr); err != nil {
		return nil, fmt.Errorf("listen on %s: %w", cfg.Addr, err)
	}
	s.root = cfg.NormalizedBaseURL()
	if s.root == "" {
		s.root = deriveRoot(cfg.Addr, s.ln.Addr(), s.tls != nil)
	}
	// The key service signs tokens and the audit log's checkpoints.
	if s.keys, err = openKeys(ctx, s.store, s.clock, s.log); err != nil {
		return nil, err
	}
	if err := s.buildAudit(ctx, o.auditSink); err != nil {
		return nil, err
	}
	s.metrics = httpx.NewMetrics()
	if err := s.buildAuth(ctx); err != nil {
		return nil, err
	}

	mux, err := s.routes(o.routes)
	if err != nil {
		return nil, err
	}
	cors := httpx.CORS(mux, httpx.CORSOptions{AllowedOrigins: cfg.CORS.AllowedOrigins, Mode: corsMode})
	h := httpx.Chain(cors, httpx.Options{
		Logger:       logger,
		Clock:        o.clock,
		Metrics:      s.metrics,
		MaxBodyBytes: cfg.MaxBodyBytes,
		HSTS:         s.tls != nil,
	})
	s.http = httpx.NewHTTPServer(h, logger, s.tls)
	return s, nil
}

// Addr is the address the server listens on (useful with port 0).
func (s *Server) Addr() net.Addr { return s.ln.Addr() }

// URL is the server root {B} (no trailing slash).
func (s *Server) URL() string { return s.root }

// FHIRBase is the FHIR base URL {B}/fhir.
func (s *Server) FHIRBase() string { return s.root + fhirPath }

// SelfSignedCert is the generated certificate with tls.self_signed, else
// nil (tests add it to a client's roots).
func (s *Server) SelfSignedCert() *x509.Certificate { return s.selfSig }

// Metrics is the server's metrics registry holder.
func (s *Server) Metrics() *httpx.Metrics { return s.metrics }

// Serve serves until ctx is cancelled, then shuts down gracefully: it stops
// accepting, lets in-flight requests finish (bounded by the shutdown
// timeout), and closes the store. It returns nil after a clean shutdown.
func (s *Server) Serve(ctx context.Context) error {
	s.logStart()
	errc := make(chan error, 1)
	go func() {
		if s.tls != nil {
			errc <- s.http.ServeTLS(s.ln, "", "")
		} else {
			// Plain HTTP: refuse ambiguous framing below net/http.
			errc <- s.http.Serve(httpx.GuardListener(s.ln, s.log))
		}
	}()

	select {
	case err := <-errc:
		cerr := s.Close()
		if errors.Is(err, http.ErrServerClosed) {
			return cerr
		}
		return errors.Join(fmt.Errorf("serve: %w", err), cerr)
	case <-ctx.Done():
	}

	s.log.Info("shutting down: no new connections; waiting for in-flight requests",
		slog.Duration("timeout", s.shutdownTimeout))
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.shutdownTimeout)
	defer cancel()
	var errs []error
	if err := s.http.Shutdown(sctx); err != nil {
		s.log.Warn("in-flight requests did not finish in time; closing their connections", slog.Any("error", err))
		_ = s.http.Close()
	}
	if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
		errs = append(errs, fmt.Errorf("serve: %w", err))
	}
	if err := s.Close(); err != nil {
		errs = append(errs, err)
	}
	if len(errs) == 0 {
		s.log.Info("stopped cleanly; store closed")
	}
	return errors.Join(errs...)
}

// Close stops serving at once (open connections are closed) and closes the
// store. It is safe to call more than once and after Serve returned.
func (s *Server) Close() error {
	s.closeOnce.Do(func() {
		var errs []error
		if s.http != nil {
			if err := s.http.Close(); err != nil {
				errs = append(errs, fmt.Errorf("close http server: %w", err))
			}
		}
		if s.ln != nil {
			// Already closed by http.Close once Serve ran; ignore that.
			if err := s.ln.Close(); err != nil && !errors.Is(err, net.ErrClosed) {
				errs = append(errs, fmt.Errorf("close listener: %w", err))
			}
		}
		if err := s.closeAudit(); err != nil {
			errs = append(errs, err)
		}
		if s.store != nil {
			if err := s.store.Close(); err != nil {
				errs = append(errs, fmt.Errorf("close store: %w", err))
			}
		}
		s.closeErr = errors.Join(errs...)
	})
	return s.closeErr
}

func (s *Server) logStart() {
	attrs := []any{
		slog.String("addr", s.ln.Addr().String()),
		slog.String("url", s.root),
		slog.String("fhir_base", s.FHIRBase()),
		slog.Bool("tls", s.tls != nil),
		slog.Bool("dev", s.cfg.Dev),
		slog.String("store", s.cfg.Store.Type),
	}
	s.log.Info("serving", attrs...)
	if s.tls == nil && !config.IsLoopbackHost(hostOf(s.cfg.Addr)) {
		s.log.Warn("plain HTTP on a non-loopback address (--insecure-http): traffic, tokens and health data are readable on the network; use TLS")
	}
	if s.cfg.Dev {
		s.log.Warn("development mode: open client registration (no initial access token needed) on " + s.ln.Addr().String())
	}
}

// deriveRoot builds http(s)://host:port from the configured address, with
// the real port (port 0 picks one) and, for an unspecified host, the
// listener's address.
func deriveRoot(cfgAddr string, actual net.Addr, useTLS bool) string {
	scheme := "http"
	if useTLS {
		scheme = "https"
	}
	host := hostOf(cfgAddr)
	_, port, err := net.SplitHostPort(actual.String())
	if err != nil {
		port = ""
	}
	if ip, err := netip.ParseAddr(host); host == "" || (err == nil && ip.IsUnspecified()) {
		if ta, ok := actual.(*net.TCPAddr); ok {
			host = ta.IP.String()
		}
	}
	if p, err := strconv.Atoi(port); err == nil {
		return scheme + "://" + net.JoinHostPort(host, strconv.Itoa(p))
	}
	return scheme + "://" + host
}

func hostOf(addr string) string {
	h, _, err := net.SplitHostPort(addr)
	if err != nil {
		return addr
	}
	return h
}
