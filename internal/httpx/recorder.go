package httpx

import (
	"context"
	"crypto/rand"
	"log/slog"
	"net/http"
	"sync"
)

// recorder remembers what was written so that errors are never written
// twice and the access log and metrics see the final status.
type recorder struct {
	http.ResponseWriter
	status      int
	bytes       int64
	wroteHeader bool
	// logStatus, when non-zero, is what the access log records instead of
	// status (499 for a client that went away).
	logStatus int
}

func (w *recorder) WriteHeader(code int) {
	if !w.wroteHeader && code >= 200 {
		w.status = code
		w.wroteHeader = true
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *recorder) Write(p []byte) (int, error) {
	if !w.wroteHeader {
		w.status = http.StatusOK
		w.wroteHeader = true
	}
	n, err := w.ResponseWriter.Write(p)
	w.bytes += int64(n)
	return n, err
}

// Flush passes through to the underlying writer when it can flush.
func (w *recorder) Flush() {
	if !w.wroteHeader {
		w.status = http.StatusOK
		w.wroteHeader = true
	}
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// Unwrap lets http.ResponseController reach the underlying writer.
func (w *recorder) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// finalStatus is the status to log and count.
func (w *recorder) finalStatus() int {
	switch {
	case w.logStatus != 0:
		return w.logStatus
	case w.wroteHeader:
		return w.status
	default:
		return http.StatusOK // net/http sends 200 for an empty response
	}
}

// HeaderRequestID is the request id response (and accepted request) header.
const HeaderRequestID = "X-Request-Id"

// InteractionOther is the interaction label of requests no handler named.
const InteractionOther = "other"

// NewRequestID returns a fresh opaque request id (26 base32 characters from
// crypto/rand).
func NewRequestID() string { return rand.Text() }

// maxInboundIDLen bounds an accepted inbound X-Request-Id.
const maxInboundIDLen = 64

// safeRequestID reports whether an inbound request id is a short token of
// letters, digits, '-', '_' and '.', safe to echo and log.
func safeRequestID(s string) bool {
	if s == "" || len(s) > maxInboundIDLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '-', c == '_', c == '.':
		default:
			return false
		}
	}
	return true
}

type loggerKey struct{}

// reqLogger builds the request-scoped logger only when something logs:
// slog's With pre-formats attributes, too costly to do for every request.
type reqLogger struct {
	base *slog.Logger
	id   string
	once sync.Once
	l    *slog.Logger
}

func (r *reqLogger) get() *slog.Logger {
	r.once.Do(func() {
		r.l = r.base
		if r.id != "" {
			r.l = r.base.With(slog.String("request_id", r.id))
		}
	})
	return r.l
}

// WithLogger returns ctx carrying l as the request-scoped logger.
func WithLogger(ctx context.Context, l *slog.Logger) context.Context {
	return context.WithValue(ctx, loggerKey{}, &reqLogger{base: l})
}

// withRequestLogger returns ctx whose Logger is base with the request id.
func withRequestLogger(ctx context.Context, base *slog.Logger, id string) context.Context {
	return context.WithValue(ctx, loggerKey{}, &reqLogger{base: base, id: id})
}

// Logger returns the request-scoped logger the middleware installed (it
// carries the request id), or slog.Default() outside the middleware.
func Logger(ctx context.Context) *slog.Logger {
	if rl, ok := ctx.Value(loggerKey{}).(*reqLogger); ok && rl.base != nil {
		return rl.get()
	}
	return slog.Default()
}
