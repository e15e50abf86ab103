package httpx

import (
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"runtime/debug"
	"strings"

	"github.com/fhirguard/fhirguard/internal/clock"
	"github.com/fhirguard/fhirguard/internal/fhir"
)

// Options configures Chain.
type Options struct {
	// Logger receives the access log and error records (required).
	Logger *slog.Logger
	// Clock measures request durations; nil = clock.System.
	Clock clock.Clock
	// Metrics, when set, counts every request.
	Metrics *Metrics
	// MaxBodyBytes limits request bodies; 0 = DefaultMaxBodyBytes.
	MaxBodyBytes int64
	// Encoder renders the errors the chain itself produces (405, 413, a
	// panic outside Wrap); nil = OperationOutcome.
	Encoder Encoder
	// HSTS sends Strict-Transport-Security (max-age one year); set it when
	// the server speaks TLS itself (TRANSPORT-04).
	HSTS bool
}

// allowedMethod reports whether m is one of the only methods any fhirguard
// endpoint answers; anything else (TRACE, CONNECT, PROPFIND, …) is refused
// before routing.
func allowedMethod(m string) bool {
	switch m {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut,
		http.MethodPatch, http.MethodDelete, http.MethodOptions:
		return true
	}
	return false
}

const allowHeader = "GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS"

// Chain wraps next in the one middleware stack every request passes, in
// this order:
//
//  1. request id (a fresh one, or a short safe inbound X-Request-Id), sent
//     back as X-Request-Id and attached to the request-scoped logger;
//  2. access log line and metrics, recorded when the request is done;
//  3. panic recovery (500 with an opaque reference; stack only logged);
//  4. security headers (nosniff, no-referrer, no-store, a deny-all CSP for
//     API responses; handlers may override);
//  5. method filter: unknown or odd methods → 405;
//  6. request body limit: a declared Content-Length over the limit → 413
//     at once; otherwise the body is limited and reading past it fails
//     with an error Wrap/ReadBody turn into 413.
func Chain(next http.Handler, o Options) http.Handler {
	clk := o.Clock
	if clk == nil {
		clk = clock.System{}
	}
	enc := o.Encoder
	if enc == nil {
		enc = OperationOutcome
	}
	limit := o.MaxBodyBytes
	if limit <= 0 {
		limit = DefaultMaxBodyBytes
	}
	base := o.Logger
	if base == nil {
		base = slog.New(slog.DiscardHandler)
	}

	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := clk.Now()

		// 1. Request id and request-scoped logger.
		id := r.Header.Get(HeaderRequestID)
		if !safeRequestID(id) {
			id = NewRequestID()
		}
		info := &RequestInfo{ID: id, Interaction: InteractionOther}
		ctx := withRequestLogger(WithInfo(r.Context(), info), base, id)
		r = r.WithContext(ctx)
		raw := w
		rec := &recorder{ResponseWriter: w}
		rec.Header().Set(HeaderRequestID, id)

		// 2. Access log and metrics, after everything else (incl. recovery).
		defer func() {
			status := rec.finalStatus()
			d := clk.Now().Sub(start)
			if o.Metrics != nil {
				o.Metrics.observe(info.Interaction, status, d)
			}
			base.LogAttrs(ctx, slog.LevelInfo, "http request",
				slog.String("request_id", id),
				slog.String("method", r.Method),
				slog.String("path", truncate(r.URL.Path, 512)),
				slog.String("query", maskQuery(r.URL.RawQuery)),
				slog.Int("status", status),
				slog.Float64("duration_ms", float64(d.Microseconds())/1000),
				slog.Int64("bytes", rec.bytes),
				slog.String("interaction", info.Interaction),
				slog.String("remote", remoteIP(r.RemoteAddr)),
			)
		}()

		// 3. Panic recovery for everything below (Wrap recovers its own).
		defer func() {
			if p := recover(); p != nil {
				if p == http.ErrAbortHandler { //nolint:errorlint // sentinel panic value
					panic(p)
				}
				Logger(ctx).LogAttrs(ctx, slog.LevelError, "handler panic",
					slog.Any("panic", p), slog.String("stack", string(debug.Stack())))
				if !rec.wroteHeader {
					enc(rec, r, internalError(id))
				} else {
					rec.logStatus = http.StatusInternalServerError
				}
			}
		}()

		// 4. Security headers.
		h := rec.Header()
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("Cache-Control", "no-store")
		h.Set("Content-Security-Policy", "default-src 'none'; frame-ancestors 'none'")
		h.Set("X-Frame-Options", "DENY")
		if o.HSTS {
			h.Set("Strict-Transport-Security", "max-age=31536000")
		}

		// 5. Method filter.
		if !allowedMethod(r.Method) {
			enc(rec, r, &fhir.Error{
				Code: fhir.IssueNotSupported, Status: http.StatusMethodNotAllowed,
				Diag:   "method not allowed",
				Header: http.Header{"Allow": {allowHeader}},
			})
			return
		}

		// 6. Body limit.
		if r.ContentLength > limit {
			rec.Header().Set("Connection", "close")
			enc(rec, r, tooLarge(limit, nil))
			return
		}
		if r.Body != nil && r.Body != http.NoBody {
			// The raw writer lets net/http close the connection once the
			// limit is hit.
			r.Body = http.MaxBytesReader(raw, r.Body, limit)
		}

		next.ServeHTTP(rec, r)
	})
}

// maskQuery keeps the parameter names of a query and hides every value
// (OPS-04: query values of data requests may hold PHI).
func maskQuery(raw string) string {
	if raw == "" {
		return ""
	}
	var b strings.Builder
	for i, part := range strings.Split(raw, "&") {
		if i > 0 {
			b.WriteByte('&')
		}
		if i >= 32 {
			b.WriteString("…")
			break
		}
		name, _, hasValue := strings.Cut(part, "=")
		if n, err := url.QueryUnescape(name); err == nil {
			name = n
		}
		b.WriteString(truncate(name, 64))
		if hasValue {
			b.WriteString("=***")
		}
	}
	return b.String()
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

func remoteIP(addr string) string {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return addr
	}
	return host
}
