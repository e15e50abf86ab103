package server

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"

	"github.com/fhirguard/fhirguard/internal/audit"
	"github.com/fhirguard/fhirguard/internal/authn"
	"github.com/fhirguard/fhirguard/internal/httpx"
	"github.com/fhirguard/fhirguard/internal/store"
)

// auditParts are the audit trail's running pieces (owned by the audit
// area): the recorder over the store's audit log and the HTTP wrapper that
// records every FHIR request before its response leaves.
type auditParts struct {
	backend audit.Backend
	rec     *audit.Recorder
	http    *audit.HTTP
	// The SIEM stream (audit.stream), when configured.
	stopStream func()
	streamDone chan struct{}
	streamFile *os.File
}

// WithAuditSink wraps the sink FHIR requests are recorded through (tests
// use it to make recording fail and check that nothing is served).
func WithAuditSink(fn func(audit.MultiSink) audit.MultiSink) Option {
	return func(o *options) { o.auditSink = fn }
}

// buildAudit starts the recorder on the store's audit log. It needs the
// FHIR base URL (the audit source), so it runs after the listener exists.
func (s *Server) buildAudit(ctx context.Context, wrapSink func(audit.MultiSink) audit.MultiSink) error {
	be, ok := s.store.(audit.Backend)
	if !ok {
		return fmt.Errorf("audit: the %s store has no audit log", s.cfg.Store.Type)
	}
	// Checkpoints are signed by the key service; the log keeps the public
	// keys, so they verify for its whole retention.
	signer := audit.NewKeySigner(s.keys, be)
	src := audit.Source{Observer: s.FHIRBase(), Name: "fhirguard"}
	parts := &auditParts{backend: be}
	var stream *audit.Stream
	if dest := s.cfg.Audit.Stream; dest != "" {
		out := io.Writer(os.Stdout)
		if dest != "stdout" {
			f, err := os.OpenFile(dest, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
			if err != nil {
				return fmt.Errorf("audit.stream: %w", err)
			}
			parts.streamFile, out = f, f
		}
		stream = audit.NewStream(audit.StreamOptions{Backend: be, Out: out, Logger: s.log})
	}
	opts := audit.Options{Backend: be, Clock: s.clock, Source: src, Signer: signer, Logger: s.log}
	if stream != nil {
		opts.OnCommit = stream.Notify
	}
	rec, err := audit.NewRecorder(ctx, opts)
	if err != nil {
		if parts.streamFile != nil {
			_ = parts.streamFile.Close()
		}
		return err
	}
	if stream != nil {
		sctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
		parts.stopStream, parts.streamDone = cancel, make(chan struct{})
		go func() { defer close(parts.streamDone); stream.Run(sctx) }()
	}
	var sink audit.MultiSink = rec
	if wrapSink != nil {
		sink = wrapSink(rec)
	}
	parts.rec = rec
	parts.http = &audit.HTTP{Sink: sink, Source: src, Principal: authn.FromContext}
	s.audit = parts
	return nil
}

// AuditSink is where other areas (the authorization server) record their
// security events.
func (s *Server) AuditSink() audit.Sink { return s.audit.rec }

// auditWrap records every FHIR request handled through the returned wrap
// before its response is sent (AUDIT-01, AUDIT-07).
func (s *Server) auditWrap(wrap func(httpx.HandlerFunc) http.Handler) func(httpx.HandlerFunc) http.Handler {
	if s.audit == nil {
		return wrap
	}
	return func(h httpx.HandlerFunc) http.Handler { return wrap(s.audit.http.Wrap(h)) }
}

// auditOuter records the FHIR requests refused before an audited handler
// ran (bearer validation: 401).
func (s *Server) auditOuter(h http.Handler) http.Handler {
	if s.audit == nil {
		return h
	}
	return s.audit.http.Outer(h, func(r *http.Request, err error) {
		httpx.Logger(r.Context()).Error("audit record of a refused request not written", "error", err)
	})
}

// closeAudit commits what is queued and signs a last checkpoint; it runs
// before the store closes.
func (s *Server) closeAudit() error {
	if s.audit == nil || s.audit.rec == nil {
		return nil
	}
	var errs []error
	if err := s.audit.rec.Close(); err != nil && !errors.Is(err, audit.ErrClosed) {
		errs = append(errs, fmt.Errorf("close audit recorder: %w", err))
	}
	if s.audit.stopStream != nil {
		s.audit.stopStream() // a last pass forwards what the recorder committed
		<-s.audit.streamDone
	}
	if s.audit.streamFile != nil {
		if err := s.audit.streamFile.Close(); err != nil {
			errs = append(errs, fmt.Errorf("close audit stream file: %w", err))
		}
	}
	return errors.Join(errs...)
}

// AuditLog is the read side of the audit log (tests, admin views).
func (s *Server) AuditLog() store.AuditStore { return s.audit.backend }
