package fhirapi

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"

	"github.com/fhirguard/fhirguard/internal/audit"
	"github.com/fhirguard/fhirguard/internal/clock"
	"github.com/fhirguard/fhirguard/internal/fhir"
	"github.com/fhirguard/fhirguard/internal/fhir/validate"
	"github.com/fhirguard/fhirguard/internal/httpx"
	"github.com/fhirguard/fhirguard/internal/policy"
	"github.com/fhirguard/fhirguard/internal/search"
	"github.com/fhirguard/fhirguard/internal/store"
)

// BasePath is the path of the FHIR base under the server root.
const BasePath = "/fhir"

// DefaultMaxBundleEntries is the batch/transaction size limit when
// Options.MaxBundleEntries is 0.
const DefaultMaxBundleEntries = 1000

// Options configure an API.
type Options struct {
	Store     store.Store
	Validator *validate.Validator
	Clock     clock.Clock
	// BaseURL is the absolute FHIR base, e.g.
	// "http://127.0.0.1:8080/fhir", no trailing slash.
	BaseURL          string
	MaxBundleEntries int // default DefaultMaxBundleEntries
	Logger           *slog.Logger
	// AuditLog, when set, is served as read-only AuditEvent resources and
	// through Patient/{id}/$access-log (audit.go).
	AuditLog store.AuditStore
	// AuditSources, when set (with Enforce), accepts AuditEvents POSTed
	// by callers allowed to create them (external audit sources).
	AuditSources audit.ExternalSink
	// Provenance makes every create, update, patch and delete write a
	// Provenance in the same transaction (provenance.go).
	Provenance bool
	// Principal returns the request's authenticated caller (the
	// Provenance agent); nil = none known.
	Principal func(ctx context.Context) (*policy.Principal, bool)
	// Enforce decides every interaction with policy.Decide (enforce.go);
	// Indexer computes the patient compartment of bodies for it, DenyMode
	// is the answer to a denial ("403", default, or "404").
	Enforce  bool
	Indexer  store.Indexer
	DenyMode string
	// OAuth, when set, is advertised in the CapabilityStatement's
	// rest.security (capability_security.go).
	OAuth *OAuthURIs
	// SearchMaxCount is the largest search page (_count); 0 =
	// search.DefaultMaxCount.
	SearchMaxCount int
}

// API serves the FHIR REST interactions. Build it with New; it is safe for
// concurrent use.
type API struct {
	store      store.Store
	validator  *validate.Validator
	clock      clock.Clock
	base       string
	maxEntries int
	log        *slog.Logger
	capability []byte // CapabilityStatement JSON, built once
	auditLog   store.AuditStore
	auditSrc   audit.ExternalSink
	provenance bool
	principal  func(ctx context.Context) (*policy.Principal, bool)
	enforce    bool
	indexer    store.Indexer
	denyMode   string
	// newID returns server-assigned ids (resources and Bundles):
	// randomUUID, replaced only by this package's golden tests.
	newID func() string
	// Search (search.go): the paging cursor codec (nil when the store
	// cannot search), the page size limit and the _summary shaper.
	cursors  *search.CursorCodec
	maxCount int
	shaper   *shaper
}

// New checks opts and builds the API.
func New(opts Options) (*API, error) {
	var errs []error
	if opts.Store == nil {
		errs = append(errs, errors.New("fhirapi: Options.Store is required"))
	}
	if opts.Validator == nil {
		errs = append(errs, errors.New("fhirapi: Options.Validator is required"))
	}
	if opts.Clock == nil {
		errs = append(errs, errors.New("fhirapi: Options.Clock is required"))
	}
	base := strings.TrimRight(opts.BaseURL, "/")
	if base == "" || !(strings.HasPrefix(base, "http://") || strings.HasPrefix(base, "https://")) {
		errs = append(errs, fmt.Errorf("fhirapi: Options.BaseURL %q must be an absolute http(s) URL", opts.BaseURL))
	}
	if opts.MaxBundleEntries < 0 {
		errs = append(errs, fmt.Errorf("fhirapi: Options.MaxBundleEntries %d must not be negative", opts.MaxBundleEntries))
	}
	switch opts.DenyMode {
	case "", DenyForbidden, DenyNotFound:
	default:
		errs = append(errs, fmt.Errorf("fhirapi: Options.DenyMode %q must be 403 or 404", opts.DenyMode))
	}
	if opts.Enforce && (opts.Principal == nil || opts.Indexer == nil) {
		errs = append(errs, errors.New("fhirapi: Options.Enforce needs Principal and Indexer"))
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	a := &API{
		store:      opts.Store,
		validator:  opts.Validator,
		clock:      opts.Clock,
		base:       base,
		maxEntries: opts.MaxBundleEntries,
		log:        opts.Logger,
		newID:      randomUUID,
		auditLog:   opts.AuditLog,
		auditSrc:   opts.AuditSources,
		provenance: opts.Provenance,
		principal:  opts.Principal,
		enforce:    opts.Enforce,
		indexer:    opts.Indexer,
		denyMode:   opts.DenyMode,
	}
	if a.maxEntries == 0 {
		a.maxEntries = DefaultMaxBundleEntries
	}
	if a.log == nil {
		a.log = slog.New(slog.DiscardHandler)
	}
	if err := a.setupSearch(opts); err != nil {
		return nil, err
	}
	capability, err := buildCapability(a.base, a.clock.Now(), securityOf(opts.OAuth), a.cursors != nil)
	if err != nil {
		return nil, fmt.Errorf("fhirapi: build CapabilityStatement: %w", err)
	}
	a.capability = capability
	return a, nil
}

// Mount registers the FHIR base (BasePath and everything under it) on mux.
// wrap turns each handler into an http.Handler (the httpx middleware chain
// with the OperationOutcome encoder). More specific patterns registered by
// other packages under BasePath (operations, SMART discovery) take
// precedence over this catch-all.
func (a *API) Mount(mux *http.ServeMux, wrap func(httpx.HandlerFunc) http.Handler) {
	h := wrap(a.ServeFHIR)
	mux.Handle(BasePath, h)
	mux.Handle(BasePath+"/", h)
}

// ServeFHIR is the single handler for the FHIR base: it parses the request
// into a Request and executes it.
func (a *API) ServeFHIR(w http.ResponseWriter, r *http.Request) error {
	q, err := a.ParseHTTP(r)
	if q != nil && err != nil {
		if rerr := a.refuseReadOnly(q); rerr != nil {
			err = rerr // 405 before any complaint about the body
		}
	}
	if q != nil && q.Interaction != "" {
		httpx.SetInteraction(r, q.Interaction)
	}
	if err != nil {
		a.noteFacts(r.Context(), q, nil, err, nil)
		return err
	}
	if err := a.parseXProvenance(r, q); err != nil {
		a.noteFacts(r.Context(), q, nil, err, nil)
		return err
	}
	before := a.patientsBefore(r.Context(), q)
	ctx, top := markTop(r.Context(), q, before)
	a.prepareAuditPatients(ctx, q)
	resp, err := a.Execute(ctx, q)
	a.noteFacts(ctx, q, resp, err, before)
	top.done(ctx, err)
	if err != nil {
		return err
	}
	return resp.write(w, r)
}

// Execute runs one parsed Request against the store.
func (a *API) Execute(ctx context.Context, q *Request) (*Response, error) {
	if err := a.refuseReadOnly(q); err != nil {
		return nil, err
	}
	ctx, err := a.authorize(ctx, q)
	if err != nil {
		return nil, err
	}
	if q.Type == "AuditEvent" {
		return a.auditEvents(ctx, q)
	}
	switch q.Interaction {
	case Capabilities:
		return &Response{Status: http.StatusOK, Body: a.capability}, nil
	case Read:
		return a.read(ctx, q)
	case VRead:
		return a.vread(ctx, q)
	case Create, Update, Patch, Delete:
		if err := a.prepareWrite(q); err != nil {
			return nil, err
		}
		a.prepareProvenance(ctx, q)
		var resp *Response
		err := a.store.Tx(ctx, func(tx store.Tx) error {
			var err error
			resp, err = a.write(ctx, tx, q)
			return err
		})
		if err != nil {
			return nil, err
		}
		return resp, nil
	case HistoryInstance, HistoryType, HistorySystem:
		return a.history(ctx, q)
	case Batch:
		return a.batch(ctx, q)
	case Transaction:
		return a.transaction(ctx, q)
	case SearchType, SearchSystem, SearchCompart:
		return a.search(ctx, q)
	case Operation:
		return a.operation(ctx, q)
	default:
		return nil, fhir.Errorf(fhir.IssueNotSupported, "interaction %q is not supported", q.Interaction)
	}
}

// parseResource strictly parses a resource body (fhir.ParseResource).
func (a *API) parseResource(body []byte) (map[string]any, error) {
	res, err := fhir.ParseResource(body)
	if err != nil {
		return nil, fmt.Errorf("parse resource: %w", err)
	}
	return res, nil
}

// validate checks res structurally as a resource of type typ.
func (a *API) validate(typ string, res map[string]any) error {
	if err := a.validator.Validate(typ, res); err != nil {
		return fmt.Errorf("validate %s: %w", typ, err)
	}
	return nil
}

// write runs a create, update, patch or delete inside tx.
func (a *API) write(ctx context.Context, tx store.Tx, q *Request) (*Response, error) {
	switch q.Interaction {
	case Create, Update, Patch, Delete:
	default:
		return nil, fmt.Errorf("fhirapi: %q is not a write", q.Interaction)
	}
	if q.Conditional || q.IfNoneExist != "" {
		// Resolve the condition (search_conditional.go) into a target id,
		// or an answer when nothing is to be written.
		if resp, done, err := a.resolveConditional(ctx, tx, q); err != nil || done {
			return resp, err
		}
	}
	if q.Interaction != Patch {
		if err := a.checkWrite(ctx, tx, q); err != nil {
			return nil, err
		}
	}
	var resp *Response
	var err error
	switch q.Interaction {
	case Create:
		resp, err = a.create(ctx, tx, q)
	case Update:
		resp, err = a.update(ctx, tx, q)
	case Patch:
		resp, err = a.patch(ctx, tx, q)
	case Delete:
		resp, err = a.delete(ctx, tx, q)
	}
	if err == nil && a.provenance {
		err = a.writeProvenance(ctx, tx, q, resp)
	}
	if err == nil {
		err = a.auditInTx(ctx, tx, q, resp)
	}
	return resp, err
}
