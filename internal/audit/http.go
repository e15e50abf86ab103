package audit

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"sync"

	"github.com/fhirguard/fhirguard/internal/fhir"
	"github.com/fhirguard/fhirguard/internal/httpx"
	"github.com/fhirguard/fhirguard/internal/policy"
	"github.com/fhirguard/fhirguard/internal/store"
)

// RecordAll records several events and returns once all are committed (nil)
// or any failed. They are queued together, so they usually share one
// commit.
func (r *Recorder) RecordAll(ctx context.Context, evs []Event) error {
	if len(evs) == 1 {
		return r.Record(ctx, evs[0])
	}
	ps := make([]*pending, len(evs))
	for i := range evs {
		enc, err := encode(&evs[i], r.src)
		if err != nil {
			r.failed.Add(1)
			return err
		}
		ps[i] = &pending{enc: enc, done: make(chan error, 1)}
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), r.timeout)
	defer cancel()
	r.mu.RLock()
	if r.closed {
		r.mu.RUnlock()
		return ErrClosed
	}
	for i, p := range ps {
		select {
		case r.queue <- p:
		default:
			r.mu.RUnlock()
			r.failed.Add(int64(len(ps) - i))
			// Those already queued are still recorded; the request fails.
			return ErrQueueFull
		}
	}
	r.mu.RUnlock()
	var errs []error
	for _, p := range ps {
		select {
		case err := <-p.done:
			if err != nil {
				errs = append(errs, err)
			}
		case <-ctx.Done():
			r.failed.Add(1)
			return fmt.Errorf("%w (%s)", ErrTimeout, r.timeout)
		}
	}
	if len(errs) > 0 {
		r.failed.Add(int64(len(errs)))
		return errors.Join(errs...)
	}
	return nil
}

// eventScratches hold the event of a request while it is recorded.
var eventScratches = sync.Pool{New: func() any { return new([1]Event) }}

// MultiSink records several events at once (*Recorder implements it).
// RecordAll must not keep evs (their slices are reused) once it returns.
type MultiSink interface {
	RecordAll(ctx context.Context, evs []Event) error
}

// TxAppender appends events inside a store transaction (*Recorder).
type TxAppender interface {
	AppendInTx(ctx context.Context, tx store.Tx, evs []Event) error
}

// Drainer waits until the events of committed writes are chained
// (*Recorder).
type Drainer interface {
	Drain(ctx context.Context) error
}

// TxAuditor appends the current request's AuditEvents (its own and, for a
// transaction, one per entry) inside the store transaction of its write,
// from the facts known there. The REST layer calls it (TxAuditorFrom) and
// then marks the request Audited, so the wrapper does not record it again.
type TxAuditor func(ctx context.Context, tx store.Tx, facts httpx.Facts, status int) error

// TxEntryAuditor appends the AuditEvent of one batch entry inside the
// entry's own store transaction. The REST layer then marks the entry's
// facts Audited, and the wrapper records the rest of the batch.
type TxEntryAuditor func(ctx context.Context, tx store.Tx, entry httpx.Facts) error

type txAuditorKey struct{}

type txAuditors struct {
	request TxAuditor
	entry   TxEntryAuditor
}

// TxAuditorFrom returns the request's TxAuditor (nil outside an audited
// request, or when the sink cannot append inside transactions).
func TxAuditorFrom(ctx context.Context) TxAuditor {
	a, _ := ctx.Value(txAuditorKey{}).(*txAuditors)
	if a == nil {
		return nil
	}
	return a.request
}

// TxEntryAuditorFrom returns the request's TxEntryAuditor (nil when
// TxAuditorFrom is nil).
func TxEntryAuditorFrom(ctx context.Context) TxEntryAuditor {
	a, _ := ctx.Value(txAuditorKey{}).(*txAuditors)
	if a == nil {
		return nil
	}
	return a.entry
}

// HTTP audits FHIR HTTP requests: Wrap buffers a handler's response, records
// the request's AuditEvents from its httpx.RequestInfo facts, and sends the
// response only when they are committed; otherwise the client gets a 503
// and none of the response (AUDIT-07).
type HTTP struct {
	Sink   MultiSink
	Source Source
	// Principal returns the request's authenticated caller (authn); nil
	// means every request is anonymous.
	Principal func(ctx context.Context) (*policy.Principal, bool)
	// ClientIP returns the requester's address (default: the peer address
	// of RemoteAddr; a trusted-proxy aware function replaces it).
	ClientIP func(r *http.Request) string
}

// Wrap returns h audited. Use it inside httpx.Wrap, so that the errors it
// returns are rendered by the one renderer.
func (a *HTTP) Wrap(h httpx.HandlerFunc) httpx.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		req := RESTRequest{Path: r.URL.Path, RawQuery: r.URL.RawQuery}
		if a.Principal != nil {
			if p, ok := a.Principal(r.Context()); ok {
				req.Principal = p
			}
		}
		if a.ClientIP != nil {
			req.ClientIP = a.ClientIP(r)
		} else {
			req.ClientIP = ClientIP(r.RemoteAddr)
		}
		// Reads write nothing, so they need no in-transaction auditor (a
		// GET that does write is still recorded below, before its
		// response).
		if ta, ok := a.Sink.(TxAppender); ok && r.Method != http.MethodGet && r.Method != http.MethodHead {
			base := req
			current := func(ctx context.Context) RESTRequest {
				rq := base
				if info := httpx.Info(ctx); info != nil {
					rq.RequestID, rq.Interaction = info.ID, info.Interaction
				}
				return rq
			}
			fns := &txAuditors{
				request: func(ctx context.Context, tx store.Tx, facts httpx.Facts, status int) error {
					rq := current(ctx)
					rq.Facts, rq.Status = facts, status
					return ta.AppendInTx(ctx, tx, RESTEvents(a.Source, rq))
				},
				entry: func(ctx context.Context, tx store.Tx, entry httpx.Facts) error {
					return ta.AppendInTx(ctx, tx, []Event{EntryEvent(a.Source, current(ctx), entry)})
				},
			}
			r = r.WithContext(context.WithValue(r.Context(), txAuditorKey{}, fns))
		}
		bw := bufferedWriters.Get().(*bufferedWriter)
		defer bw.release()
		bw.hold(w.Header())
		herr := h(bw, r)
		info := httpx.Info(r.Context())
		if info != nil {
			if info.Facts.Audited {
				// Recorded inside the write's own transaction (its
				// outbox): wait until the chain holds it, so that an
				// AuditEvent search right after the answer finds it. A
				// failure leaves it in the outbox for the next try.
				if d, ok := a.Sink.(Drainer); ok {
					_ = d.Drain(r.Context())
				}
				if herr != nil {
					// Failed after its committed events (a transaction's
					// read answered after the commit): the error is
					// rendered, not recorded a second time.
					bw.drop()
					return herr
				}
				return bw.flush(w)
			}
			req.RequestID, req.Interaction, req.Facts = info.ID, info.Interaction, info.Facts
		}
		if herr != nil {
			req.Status, req.Diag = errorStatus(herr)
		} else {
			req.Status = bw.statusOr200()
		}
		if d, ok := a.Sink.(Drainer); ok && slices.ContainsFunc(req.Facts.Entries, func(e httpx.Facts) bool { return e.Audited }) {
			// Batch entries recorded in their own transactions go into
			// the chain before the rest of the batch.
			_ = d.Drain(r.Context())
		}
		var evs []Event
		if len(req.Facts.Entries) == 0 {
			sc := eventScratches.Get().(*[1]Event)
			defer eventScratches.Put(sc)
			restEventInto(&sc[0], a.Source, req)
			evs = sc[:]
		} else {
			evs = RESTEvents(a.Source, req)
		}
		err := a.Sink.RecordAll(r.Context(), evs)
		if info := httpx.Info(r.Context()); info != nil {
			info.Facts.Audited = true // recorded, or answered 503: either way not again
		}
		if err != nil {
			bw.drop()
			return Unavailable(err)
		}
		if herr != nil {
			bw.drop() // the error is rendered afresh
			return herr
		}
		return bw.flush(w)
	}
}

// errorStatus is the status and client-visible text the renderer will
// give err.
func errorStatus(err error) (int, string) {
	if fe, ok := fhir.AsError(err); ok {
		return fe.HTTPStatus(), fe.Diag
	}
	if httpx.IsBodyTooLarge(err) {
		return http.StatusRequestEntityTooLarge, "request body too large"
	}
	return http.StatusInternalServerError, "internal server error"
}

// bufferedWriter holds a response until the audit record is committed.
// The handler sets its headers on the real writer's header map (nothing
// is sent before WriteHeader); status and body are held. If the record
// fails, drop puts the headers back as they were before the handler ran,
// so the 503 carries none of its headers. They are reused (every audited request needs one, and a
// response body is kilobytes).
type bufferedWriter struct {
	header http.Header
	before []headerField // the headers present before the handler ran
	status int
	body   bytes.Buffer
}

var bufferedWriters = sync.Pool{New: func() any { return &bufferedWriter{} }}

// headerField is one header's name and values.
type headerField struct {
	name string
	vals []string
}

// hold starts buffering a response whose headers go to h.
func (b *bufferedWriter) hold(h http.Header) {
	b.header = h
	for k, v := range h {
		// Set and Del replace or remove the slice, and Add appends past
		// len(v): v keeps the values as they are now.
		b.before = append(b.before, headerField{k, v[:len(v):len(v)]})
	}
}

// drop puts the headers back as they were before the handler ran: those
// it added go, those it changed or removed come back.
func (b *bufferedWriter) drop() {
	clear(b.header)
	for _, f := range b.before {
		b.header[f.name] = f.vals
	}
}

// maxPooledBody bounds the buffers kept for reuse.
const maxPooledBody = 64 << 10

// release returns b to the pool (after its response was sent or dropped;
// the header values handed to the real writer are not touched again).
func (b *bufferedWriter) release() {
	if b.body.Cap() > maxPooledBody {
		return
	}
	b.header, b.before = nil, b.before[:0]
	b.status = 0
	b.body.Reset()
	bufferedWriters.Put(b)
}

func (b *bufferedWriter) Header() http.Header { return b.header }

func (b *bufferedWriter) WriteHeader(code int) {
	if b.status == 0 && code >= 200 {
		b.status = code
	}
}

func (b *bufferedWriter) Write(p []byte) (int, error) {
	if b.status == 0 {
		b.status = http.StatusOK
	}
	return b.body.Write(p)
}

func (b *bufferedWriter) statusOr200() int {
	if b.status == 0 {
		return http.StatusOK
	}
	return b.status
}

// flush sends the held response.
func (b *bufferedWriter) flush(w http.ResponseWriter) error {
	w.WriteHeader(b.statusOr200())
	if b.body.Len() == 0 {
		return nil
	}
	if _, err := w.Write(b.body.Bytes()); err != nil {
		return fmt.Errorf("write response body: %w", err)
	}
	return nil
}

// Outer wraps the whole FHIR area (bearer validation included) and records
// the requests that never reached an audited handler: those refused before
// it (no or invalid token → 401, authorization state unavailable → 503).
// Such a response carries no data, so it is sent first and a failure to
// record it is logged, not turned into another answer.
func (a *HTTP) Outer(h http.Handler, onError func(r *http.Request, err error)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sw := &statusWriter{ResponseWriter: w}
		h.ServeHTTP(sw, r)
		info := httpx.Info(r.Context())
		if info == nil || info.Facts.Audited {
			return
		}
		info.Facts.Audited = true
		// Refused before the FHIR layer named the interaction (401), or
		// the handler never returned normally (a panic answered 500).
		interaction := info.Interaction
		if interaction == "" || interaction == httpx.InteractionOther {
			interaction = "unauthenticated"
		}
		req := RESTRequest{
			RequestID: info.ID, Interaction: interaction, Path: r.URL.Path, RawQuery: r.URL.RawQuery,
			Status: sw.statusOr200(), Facts: info.Facts,
		}
		if a.ClientIP != nil {
			req.ClientIP = a.ClientIP(r)
		} else {
			req.ClientIP = ClientIP(r.RemoteAddr)
		}
		req.Diag = "not processed: " + http.StatusText(req.Status)
		if err := a.Sink.RecordAll(r.Context(), []Event{restEvent(a.Source, req)}); err != nil && onError != nil {
			onError(r, err)
		}
	})
}

// statusWriter remembers the status written through it.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (s *statusWriter) WriteHeader(code int) {
	if s.status == 0 && code >= 200 {
		s.status = code
	}
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusWriter) Write(p []byte) (int, error) {
	if s.status == 0 {
		s.status = http.StatusOK
	}
	return s.ResponseWriter.Write(p)
}

func (s *statusWriter) statusOr200() int {
	if s.status == 0 {
		return http.StatusOK
	}
	return s.status
}

// Unwrap lets http.ResponseController reach the underlying writer.
func (s *statusWriter) Unwrap() http.ResponseWriter { return s.ResponseWriter }
