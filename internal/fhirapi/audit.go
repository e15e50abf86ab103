package fhirapi

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/fhirguard/fhirguard/internal/audit"
	"github.com/fhirguard/fhirguard/internal/fhir"
	"github.com/fhirguard/fhirguard/internal/httpx"
	"github.com/fhirguard/fhirguard/internal/policy"
	"github.com/fhirguard/fhirguard/internal/store"
)

// This file is the REST layer's side of the audit trail (owned by the
// audit area): it fills the request's audit facts (httpx.RequestInfo.Facts)
// that the audit wrapper records, serves the audit log as read-only
// AuditEvent resources, and serves Patient/{id}/$access-log.

// OpAccessLog is the accounting-of-disclosures operation on Patient.
const OpAccessLog = "$access-log"

// knownOperation reports whether fhirapi serves operation op on an
// instance of typ.
func knownOperation(typ, op string) bool {
	return typ == "Patient" && op == OpAccessLog
}

// readOnlyType reports whether resources of typ are written only by the
// server itself (AuditEvent, Provenance): create/update/patch/delete
// through the API are refused with 405.
func readOnlyType(typ string) bool { return typ == "AuditEvent" || typ == "Provenance" }

// refuseReadOnly is the 405 for a write to a server-written type. A
// create of an AuditEvent passes when external audit sources are accepted
// (Options.AuditSources): auditSourceCreate decides it.
func (a *API) refuseReadOnly(q *Request) error {
	switch q.Interaction {
	case Create, Update, Patch, Delete:
		if q.Type == "AuditEvent" && q.Interaction == Create && a.auditSrc != nil && a.enforce {
			return nil
		}
		if readOnlyType(q.Type) {
			e := fhir.Errorf(fhir.IssueNotSupported, "%s resources are written only by the server and cannot be created, changed or deleted", q.Type)
			e.Status = http.StatusMethodNotAllowed
			e.Header = http.Header{"Allow": {"GET, HEAD"}}
			return e
		}
	}
	return nil
}

// auditSource is this server as the audit source/observer.
func (a *API) auditSource() audit.Source { return audit.Source{Observer: a.base} }

// auditEvents serves the AuditEvent type from the audit log.
func (a *API) auditEvents(ctx context.Context, q *Request) (*Response, error) {
	if a.auditLog == nil {
		return nil, errNotImplemented("the audit log is not available on this server")
	}
	switch q.Interaction {
	case Read, VRead:
		if q.Interaction == VRead && q.Version != 1 {
			return nil, fhir.Errorf(fhir.IssueNotFound, "AuditEvent/%s has only version 1", q.ID)
		}
		body, recorded, err := audit.ReadEvent(ctx, a.auditLog, q.ID)
		if err != nil {
			return nil, err
		}
		return &Response{Status: http.StatusOK, Body: body, VersionID: 1, LastModified: recorded}, nil
	case SearchType:
		res, err := audit.Search(ctx, a.auditLog, a.auditSource(), a.base, q.Query, a.clock.Now())
		if err != nil {
			return nil, err
		}
		addPatients(ctx, res.Patients...)
		return &Response{Status: http.StatusOK, Body: res.Bundle, Count: res.Count}, nil
	case Create:
		if a.auditSrc != nil && a.enforce {
			return a.auditSourceCreate(ctx, q)
		}
	}
	if err := a.refuseReadOnly(q); err != nil {
		return nil, err
	}
	return nil, fhir.Errorf(fhir.IssueNotSupported, "AuditEvent supports read and search only")
}

// auditSourceCreate stores an AuditEvent POSTed by an audit source: a
// caller whose grant allows creating AuditEvents (an ordinary client's does
// not: 403). It may not pose as this server (422). The event is appended
// to the hash chain as sent; the answer is 201 with the stored event.
func (a *API) auditSourceCreate(ctx context.Context, q *Request) (*Response, error) {
	p, err := a.principalOrDeny(ctx)
	if err != nil {
		return nil, err
	}
	var patients []string
	if entities, ok := q.Resource["entity"].([]any); ok {
		for _, e := range entities {
			m, _ := e.(map[string]any)
			what, _ := m["what"].(map[string]any)
			if ref, _ := what["reference"].(string); strings.HasPrefix(ref, "Patient/") {
				patients = append(patients, strings.TrimPrefix(ref, "Patient/"))
			}
		}
	}
	if dec := policy.Decide(*p, policyRequest(q), policy.Facts{Now: a.clock.Now(), NewPatients: patients}); !dec.Allow {
		return nil, a.denied(q, dec)
	}
	if err := audit.CheckExternal(q.Resource, a.auditSource()); err != nil {
		return nil, err
	}
	seq, err := a.auditSrc.RecordExternal(ctx, q.Resource)
	if err != nil {
		if fe, ok := fhir.AsError(err); ok {
			return nil, fe
		}
		return nil, audit.Unavailable(err)
	}
	id := strconv.FormatInt(seq, 10)
	q.ID = id
	addPatients(ctx, patients...)
	body, recorded, err := audit.ReadEvent(ctx, a.auditLog, id)
	if err != nil {
		return nil, fmt.Errorf("read back AuditEvent/%s: %w", id, err)
	}
	resp := &Response{Status: http.StatusCreated, Location: a.base + "/AuditEvent/" + id + "/_history/1",
		VersionID: 1, LastModified: recorded}
	if q.Return != ReturnMinimal {
		resp.Body = body
	}
	return resp, nil
}

// operation runs an instance operation.
func (a *API) operation(ctx context.Context, q *Request) (*Response, error) {
	if q.Type == "Patient" && q.Operation == OpAccessLog {
		if a.auditLog == nil {
			return nil, errNotImplemented("the audit log is not available on this server")
		}
		if _, err := a.store.Read(ctx, "Patient", q.ID); err != nil {
			return nil, storeErr(q, nil, err)
		}
		res, err := audit.AccessLog(ctx, a.auditLog, a.auditSource(), a.base, q.ID, q.Query, a.clock.Now())
		if err != nil {
			return nil, err
		}
		return &Response{Status: http.StatusOK, Body: res.Bundle, Count: res.Count}, nil
	}
	return nil, fhir.Errorf(fhir.IssueNotFound, "unknown operation %q on %s", q.Operation, q.Type)
}

// addPatients adds patient ids to the request's audit facts.
func addPatients(ctx context.Context, ids ...string) {
	if info := httpx.Info(ctx); info != nil {
		for _, id := range ids {
			if id != "" && !slices.Contains(info.Facts.Patients, id) {
				info.Facts.Patients = append(info.Facts.Patients, id)
			}
		}
	}
}

// patientsBefore returns the patients of the resource a delete is about to
// remove (afterwards its compartment rows are gone).
func (a *API) patientsBefore(ctx context.Context, q *Request) []string {
	if q == nil || q.Interaction != Delete || q.ID == "" {
		return nil
	}
	return a.patientsOf(ctx, q.Type, q.ID)
}

// patientsOf returns the ids of the patients whose compartment holds
// typ/id (a Patient is its own).
func (a *API) patientsOf(ctx context.Context, typ, id string) []string {
	if typ == "Patient" {
		return []string{id}
	}
	if typ == "" || id == "" || readOnlyType(typ) {
		return nil
	}
	facts, err := a.store.IndexFacts(ctx, typ, id)
	if err != nil || facts == nil {
		return nil
	}
	return facts.Patients
}

// facts describes what q touched, for its audit record.
func (a *API) facts(ctx context.Context, q *Request, resp *Response, failed bool, before []string) httpx.Facts {
	f := httpx.Facts{Results: -1}
	if q == nil {
		return f
	}
	f.Interaction, f.Type, f.ID, f.Operation = q.Interaction, q.Type, q.ID, q.Operation
	if q.Query != nil {
		f.Query = q.Query.Encode()
	}
	if resp != nil {
		f.Version = resp.VersionID
		if resp.Count > 0 || q.Interaction == SearchType || q.Interaction == SearchSystem ||
			q.Interaction == SearchCompart || q.Interaction == HistoryInstance ||
			q.Interaction == HistoryType || q.Interaction == HistorySystem || q.Interaction == Operation {
			f.Results = resp.Count
		}
	}
	if q.Interaction == SearchType || q.Interaction == SearchSystem || q.Interaction == SearchCompart {
		// BALP PatientQuery: the patient the query names (and the
		// token's patient context) is the query's patient, whether or
		// not anything matched.
		f.Patients = append(f.Patients, queryPatients(q)...)
		if p, ok := a.callerPrincipal(ctx); ok && p.Patient != "" {
			f.Patients = append(f.Patients, p.Patient)
		}
	}
	switch {
	case before != nil:
		f.Patients = append(f.Patients, before...)
	case q.Type == "Patient" && q.ID != "" && !(failed && q.Interaction == Create):
		f.Patients = []string{q.ID}
	case !failed && q.ID != "" && q.Interaction != Operation:
		f.Patients = a.patientsOf(ctx, q.Type, q.ID)
	}
	return f
}

// queryPatients returns the patient ids a search names in its patient or
// subject parameters.
func queryPatients(q *Request) []string {
	var out []string
	for name, vals := range q.Query {
		base, mod, _ := strings.Cut(name, ":")
		if (base != "patient" && base != "subject") || (mod != "" && mod != "Patient") {
			continue
		}
		for _, v := range vals {
			for _, one := range strings.Split(v, ",") {
				id, isRef := strings.CutPrefix(one, "Patient/")
				if base == "subject" && !isRef && mod == "" {
					continue // a subject may be a Group, a Device, …
				}
				if fhir.ValidID(id) && !slices.Contains(out, id) {
					out = append(out, id)
				}
			}
		}
	}
	slices.Sort(out)
	return out
}

// noteFacts records the facts of the request q in its RequestInfo
// (keeping what the execution added: patients, entries).
func (a *API) noteFacts(ctx context.Context, q *Request, resp *Response, err error, before []string) {
	info := httpx.Info(ctx)
	if info == nil {
		return
	}
	if before == nil && len(info.Facts.Patients) > 0 {
		// Enforcement (or the execution) already named the patients:
		// no second compartment lookup.
		before = info.Facts.Patients
	}
	f := a.facts(ctx, q, resp, err != nil, before)
	f.Entries = info.Facts.Entries
	f.Audited = info.Facts.Audited // a transaction's events committed with it
	f.Interaction = ""
	info.Facts = f
}

// noteEntry records the facts of one batch/transaction entry.
func (a *API) noteEntry(ctx context.Context, q *Request, resp *Response, err error, before []string) {
	info := httpx.Info(ctx)
	if info == nil {
		return
	}
	f := a.facts(ctx, q, resp, err != nil, before)
	if resp != nil {
		f.Status = resp.Status
	}
	if err != nil {
		f.Status, f.Diag = http.StatusInternalServerError, "internal error in this entry"
		if fe, ok := fhir.AsError(err); ok {
			f.Status, f.Diag = fe.HTTPStatus(), fe.Diag
		}
	}
	info.Facts.Entries = append(info.Facts.Entries, f)
}

// noteTransactionEntries records the entries of a transaction: each with
// its own response when it committed, else with the failure of the whole.
func (a *API) noteTransactionEntries(ctx context.Context, b *BundleRequest, results []*Response, txErr error, before [][]string) {
	for i, e := range b.Entries {
		var resp *Response
		if txErr == nil {
			resp = results[i]
		}
		err := txErr
		if err == nil && resp == nil {
			err = errors.New("no response")
		}
		q := e.Req
		if q == nil {
			q = &Request{}
		}
		a.noteEntry(ctx, q, resp, err, before[i])
	}
}

// entryPatientsBefore returns, per entry, the patients of what a delete
// entry is about to remove.
func (a *API) entryPatientsBefore(ctx context.Context, b *BundleRequest) [][]string {
	out := make([][]string, len(b.Entries))
	for i, e := range b.Entries {
		if e.Err == nil {
			out[i] = a.patientsBefore(ctx, e.Req)
		}
	}
	return out
}

// capOperation is a CapabilityStatement.rest.resource.operation.
type capOperation struct {
	Name       string `json:"name"`
	Definition string `json:"definition"`
}

// auditCapability adjusts the capability of the types the audit area
// serves: AuditEvent and Provenance are read-only, AuditEvent is searched
// from the audit log, and Patient has $access-log.
func auditCapability(r *capResource) {
	switch r.Type {
	case "AuditEvent":
		r.Interaction = codes([]string{"read", "vread", "search-type", "create"}) // create: audit sources only
		r.ReadHistory, r.UpdateCreate = false, false
	case "Provenance":
		r.Interaction = codes([]string{"read", "vread", "history-instance", "history-type"})
		r.UpdateCreate = false
	case "Patient":
		r.Operation = append(r.Operation, capOperation{Name: "access-log",
			Definition: "https://fhirguard.dev/OperationDefinition/Patient-access-log"})
	}
}

// The AuditEvents of a write are appended inside the write's own store
// transaction (into the audit outbox), so a committed write always has its
// records and a 503 after a committed write cannot happen: a single write's
// event, a transaction's events (the Bundle's and one per entry, written at
// the end of the transaction), and each batch write entry's event (in the
// entry's own transaction; the rest of the batch is recorded after it).

type topKey struct{}

// topRequest is the request whose events the next write transaction
// appends: the request ServeFHIR runs, or a batch entry (entry: true).
type topRequest struct {
	q      *Request
	entry  bool
	before []string // a delete's patients, read before it runs
	inTx   bool     // its AuditEvent was appended inside its transaction
	// body are the patients of a create's or update's body, computed
	// before the transaction (off the store's single writer); nil = not
	// known yet.
	body []string
}

func markTop(ctx context.Context, q *Request, before []string) (context.Context, *topRequest) {
	t := &topRequest{q: q, before: before}
	return context.WithValue(ctx, topKey{}, t), t
}

// markEntry marks the batch entry q as the one whose event its write
// transaction appends.
func markEntry(ctx context.Context, q *Request, before []string) (context.Context, *topRequest) {
	t := &topRequest{q: q, entry: true, before: before}
	return context.WithValue(ctx, topKey{}, t), t
}

// prepareAuditPatients computes, before the write transaction, the
// patients a create's or update's AuditEvent names (from the parsed body).
func (a *API) prepareAuditPatients(ctx context.Context, q *Request) {
	t, _ := ctx.Value(topKey{}).(*topRequest)
	if t == nil || t.q != q || a.indexer == nil || q.Resource == nil || q.Type == "Patient" {
		return
	}
	if q.Interaction != Create && q.Interaction != Update {
		return
	}
	if ps, err := a.bodyPatientsOf(q); err == nil {
		t.body = append([]string{}, ps...)
	}
}

// done marks the request audited when its event committed with it.
func (t *topRequest) done(ctx context.Context, err error) {
	if err != nil || !t.inTx {
		return
	}
	if info := httpx.Info(ctx); info != nil {
		info.Facts.Audited = true
	}
}

// auditInTx appends the write's AuditEvent inside tx (when the request, or
// the batch entry, is audited by a sink that can do so).
func (a *API) auditInTx(ctx context.Context, tx store.Tx, q *Request, resp *Response) error {
	t, _ := ctx.Value(topKey{}).(*topRequest)
	if t == nil || t.q != q || resp == nil {
		return nil
	}
	var err error
	if t.entry {
		rec := audit.TxEntryAuditorFrom(ctx)
		if rec == nil {
			return nil
		}
		f := a.facts(ctx, q, resp, false, a.writePatientsInTx(ctx, tx, q, t))
		f.Status = resp.Status
		err = rec(ctx, tx, f)
	} else {
		rec := audit.TxAuditorFrom(ctx)
		if rec == nil {
			return nil
		}
		f := httpx.Facts{Type: q.Type, ID: q.ID, Version: resp.VersionID, Results: -1}
		if q.Query != nil {
			f.Query = q.Query.Encode()
		}
		f.Patients = a.writePatientsInTx(ctx, tx, q, t)
		err = rec(ctx, tx, f, resp.Status)
	}
	if err != nil {
		return audit.Unavailable(err)
	}
	t.inTx = true
	return nil
}

// writePatientsInTx returns the patients the event of the write q names,
// as tx sees them (never nil: an empty list means none).
func (a *API) writePatientsInTx(ctx context.Context, tx store.Tx, q *Request, t *topRequest) []string {
	var ps []string
	switch {
	case q.Type == "Patient":
		ps = []string{q.ID}
	case q.Interaction == Delete:
		ps = t.before
	case t.body != nil:
		ps = t.body
	default:
		ps = a.patientsInTx(ctx, tx, q)
	}
	if ps == nil {
		ps = []string{}
	}
	return ps
}

// auditTransactionInTx appends, at the end of the transaction q inside
// its tx, the events of the Bundle and of every entry (entries answered
// after the commit are recorded with what is known before it: no result
// count). It returns the entries' facts (nil when not audited here).
func (a *API) auditTransactionInTx(ctx context.Context, tx store.Tx, q *Request, results []*Response, before [][]string) ([]httpx.Facts, error) {
	t, _ := ctx.Value(topKey{}).(*topRequest)
	if t == nil || t.q != q || t.entry {
		return nil, nil
	}
	rec := audit.TxAuditorFrom(ctx)
	if rec == nil {
		return nil, nil
	}
	b := q.Bundle
	entries := make([]httpx.Facts, len(b.Entries))
	for i, e := range b.Entries {
		resp := results[i]
		ps := before[i]
		if ps == nil && e.Req.ID != "" && e.Req.Interaction != Operation {
			// As the transaction sees it (its own writes included).
			ps = a.writePatientsInTx(ctx, tx, e.Req, &topRequest{})
		}
		f := a.facts(ctx, e.Req, resp, false, ps)
		f.Status = http.StatusOK
		if resp != nil {
			f.Status = resp.Status
		}
		entries[i] = f
	}
	bf := a.facts(ctx, q, nil, false, nil)
	bf.Entries = entries
	if err := rec(ctx, tx, bf, http.StatusOK); err != nil {
		return nil, audit.Unavailable(err)
	}
	t.inTx = true
	return entries, nil
}

// patientsInTx returns the compartment patients of the version q just
// wrote, as the transaction sees it.
func (a *API) patientsInTx(ctx context.Context, tx store.Tx, q *Request) []string {
	if a.indexer == nil {
		return nil
	}
	if q.bodyPatientsKnown && q.Interaction != Delete {
		return q.bodyPatients // the body just written, indexed already
	}
	cur, err := tx.Read(ctx, q.Type, q.ID)
	if err != nil || cur == nil || len(cur.Body) == 0 {
		return nil
	}
	data, err := fhir.ParseResource(cur.Body)
	if err != nil {
		return nil
	}
	ps, err := a.patientsOfData(q.Type, data)
	if err != nil {
		return nil
	}
	return ps
}
