package httpx

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"runtime/debug"

	"github.com/fhirguard/fhirguard/internal/fhir"
)

// StatusClientClosedRequest is the (non-standard, nginx) status logged when
// the client went away before a response was written. It is never sent.
const StatusClientClosedRequest = 499

// Wrap turns h into an http.Handler that renders h's error with enc
// (OperationOutcome when enc is nil). It is the single exit for failures:
//
//   - a *fhir.Error (or an OAuthError), possibly wrapped, is shown with its
//     own status, message and headers; its Cause is only logged;
//   - an *http.MaxBytesError (request body over the limit) becomes 413;
//   - any other error, and a panic, becomes a 500 "exception" whose only
//     diagnostic is the request id; the cause (and the stack) is logged once;
//   - if the client went away (request context cancelled), nothing is
//     written and the request is logged as 499;
//   - if h already started the response, the error is logged and nothing
//     more is written.
func Wrap(h HandlerFunc, enc Encoder) http.Handler {
	if enc == nil {
		enc = OperationOutcome
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec, r := ensureRecorder(w, r)
		err := callRecovering(h, rec, r)
		if err != nil {
			renderError(rec, r, enc, err)
		}
	})
}

// panicError carries a recovered panic to the renderer.
type panicError struct {
	value any
	stack []byte
}

func (p *panicError) Error() string { return fmt.Sprintf("panic: %v", p.value) }

func callRecovering(h HandlerFunc, w http.ResponseWriter, r *http.Request) (err error) {
	defer func() {
		if p := recover(); p != nil {
			if p == http.ErrAbortHandler { //nolint:errorlint // sentinel panic value, compared as net/http does
				panic(p)
			}
			err = &panicError{value: p, stack: debug.Stack()}
		}
	}()
	return h(w, r)
}

// ensureRecorder returns the recorder installed by the middleware, or
// installs one (with a request id) when Wrap is used on its own.
func ensureRecorder(w http.ResponseWriter, r *http.Request) (*recorder, *http.Request) {
	rec, ok := w.(*recorder)
	if !ok {
		rec = &recorder{ResponseWriter: w}
	}
	if Info(r.Context()) == nil {
		info := &RequestInfo{ID: NewRequestID(), Interaction: InteractionOther}
		rec.Header().Set(HeaderRequestID, info.ID)
		ctx := WithInfo(r.Context(), info)
		r = r.WithContext(withRequestLogger(ctx, Logger(ctx), info.ID))
	}
	return rec, r
}

// renderError classifies err, logs it once and renders it with enc unless
// the client is gone or the response has already started.
func renderError(rec *recorder, r *http.Request, enc Encoder, err error) {
	ctx := r.Context()
	log := Logger(ctx)
	info := Info(ctx)
	reqID := ""
	if info != nil {
		reqID = info.ID
	}

	if errors.Is(ctx.Err(), context.Canceled) && !rec.wroteHeader {
		rec.logStatus = StatusClientClosedRequest
		log.LogAttrs(ctx, slog.LevelInfo, "client closed request",
			slog.String("error", err.Error()))
		return
	}

	safe, status := classify(err, reqID)
	var pe *panicError
	switch {
	case errors.As(err, &pe):
		log.LogAttrs(ctx, slog.LevelError, "handler panic",
			slog.Any("panic", pe.value), slog.String("stack", string(pe.stack)))
	case status >= 500:
		log.LogAttrs(ctx, slog.LevelError, "request failed",
			slog.Int("status", status), slog.String("error", err.Error()))
	default:
		log.LogAttrs(ctx, slog.LevelDebug, "request rejected",
			slog.Int("status", status), slog.String("error", err.Error()))
	}

	if rec.wroteHeader {
		log.LogAttrs(ctx, slog.LevelWarn, "error after the response had started; nothing more written")
		return
	}
	enc(rec, r, safe)
}

// classify returns the client-safe form of err and its status.
func classify(err error, reqID string) (error, int) {
	var pe *panicError
	if errors.As(err, &pe) {
		return internalError(reqID), http.StatusInternalServerError
	}
	if fe, ok := fhir.AsError(err); ok {
		return fe, fe.HTTPStatus()
	}
	if oe, ok := asOAuthError(err); ok {
		return oe, oe.HTTPStatus()
	}
	if IsBodyTooLarge(err) {
		fe := bodyTooLarge(err)
		return fe, fe.HTTPStatus()
	}
	return internalError(reqID), http.StatusInternalServerError
}

func internalError(reqID string) *fhir.Error {
	diag := "internal server error"
	if reqID != "" {
		diag += "; reference " + reqID
	}
	return &fhir.Error{Code: fhir.IssueException, Status: http.StatusInternalServerError, Diag: diag}
}

func asOAuthError(err error) (OAuthError, bool) {
	var oe OAuthError
	if errors.As(err, &oe) {
		return oe, true
	}
	return nil, false
}
