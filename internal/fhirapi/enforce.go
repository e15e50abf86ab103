package fhirapi

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"strings"

	"github.com/fhirguard/fhirguard/internal/fhir"
	"github.com/fhirguard/fhirguard/internal/policy"
	"github.com/fhirguard/fhirguard/internal/store"
)

// Enforcement: every interaction is decided by policy.Decide between
// parsing and executing (Options.Enforce). The REST layer only gathers the
// facts the decision needs (the stored target's and the written body's
// patient compartment, computed with the store's Indexer from the bodies
// themselves, so a decision inside a transaction sees the transaction's
// own writes) and turns a denial into the configured answer: 403
// forbidden, or (DenyMode "404") exactly the answer of an absent resource.
//
// Where the decision happens:
//   - Execute (top-level requests, batch entries, transaction reads
//     answered after the commit): every interaction; reads look the target
//     up first;
//   - write (inside the store transaction, for top-level writes and
//     transaction entries): create, update, delete, with the current
//     version read in the transaction; patch decides on the patched result
//     (checkPatched);
//   - txEntry reads: through authorizeRead with the transaction's reads.
//
// Searches and type/system history: a decision with a Narrowing that
// cannot be applied (no SQL narrowing in that code path yet) is a denial,
// never a leak. decisionFrom(ctx) hands the Narrowing to the search code.

// Deny modes.
const (
	DenyForbidden = "403"
	DenyNotFound  = "404"
)

type decisionKey struct{}

// decisionFrom returns the request's allowing decision (its Narrowing
// applies to searches).
func decisionFrom(ctx context.Context) (policy.Decision, bool) {
	d, ok := ctx.Value(decisionKey{}).(policy.Decision)
	return d, ok
}

// principalOrDeny returns the caller; none under enforcement is a denial.
func (a *API) principalOrDeny(ctx context.Context) (*policy.Principal, error) {
	p, ok := a.callerPrincipal(ctx)
	if !ok {
		return nil, &fhir.Error{Code: fhir.IssueLogin, Status: http.StatusUnauthorized, Diag: "authentication required"}
	}
	return p, nil
}

// policyRequest maps a parsed request to the policy engine's.
func policyRequest(q *Request) policy.Request {
	r := policy.Request{Interaction: policy.Interaction(q.Interaction), Type: q.Type, ID: q.ID,
		Conditional: q.Conditional || q.IfNoneExist != "", Operation: q.Operation}
	switch q.Interaction {
	case SearchSystem, HistorySystem:
		r.Type = ""
		if ts := q.Query.Get("_type"); ts != "" {
			r.Types = strings.Split(ts, ",")
		}
	case SearchCompart:
		r.Compartment = policy.Reference{Type: q.Type, ID: q.ID}
		r.Type, r.ID = "", ""
	case Operation:
		// $access-log lists the AuditEvents of a patient's compartment.
		if q.Operation == "$access-log" && q.Type == "Patient" {
			r = policy.Request{Interaction: policy.SearchCompartment, Type: "AuditEvent",
				Compartment: policy.Reference{Type: "Patient", ID: q.ID}}
		}
	case Create:
		r.Conditional = q.IfNoneExist != ""
	}
	return r
}

// authorize decides q before it runs (see the file comment) and returns the
// context carrying the decision.
func (a *API) authorize(ctx context.Context, q *Request) (context.Context, error) {
	if !a.enforce || q.Interaction == Capabilities {
		return ctx, nil // the CapabilityStatement is public
	}
	p, err := a.principalOrDeny(ctx)
	if err != nil {
		return ctx, err
	}
	pr := policyRequest(q)
	facts := policy.Facts{Now: a.clock.Now()}
	switch q.Interaction {
	case Read, VRead, HistoryInstance:
		cur, err := a.readForDecision(ctx, q)
		if err != nil {
			return ctx, nil // absent or deleted: Execute answers 404/410 as for anyone
		}
		if facts.ResourcePatients, err = a.compartmentOf(ctx, cur); err != nil {
			return ctx, err
		}
		addPatients(ctx, facts.ResourcePatients...) // the audit record's patients (audit.go)
		if q.Interaction != HistoryInstance && cur != nil && !cur.Deleted {
			q.decided = cur
		}
	case Create, Update, Patch, Delete:
		// Decided inside the write transaction (write, checkPatched), with
		// the current version; a type-level refusal is answered now.
		pre := policy.Decide(*p, pr, policy.Facts{Now: facts.Now, Exists: true})
		if !pre.Allow && typeLevel(pre.Rule) {
			return ctx, a.denied(q, pre)
		}
		return ctx, nil
	}
	dec := policy.Decide(*p, pr, facts)
	if !dec.Allow {
		return ctx, a.denied(q, dec)
	}
	switch q.Interaction {
	case HistoryType, HistorySystem, SearchType, SearchSystem, SearchCompart, Operation:
		if !dec.Narrowing.IsZero() && !a.narrows(q) && !onlyTypes(dec.Narrowing, q.Type) {
			return ctx, a.denied(q, policy.Decision{Rule: policy.RuleCompartment,
				Reason: "the request cannot be narrowed to the token's rights"})
		}
	}
	return context.WithValue(ctx, decisionKey{}, dec), nil
}

// onlyTypes reports whether n only limits the types of what is returned,
// to types including typ: a search of typ that returns nothing else (an
// AuditEvent search) already meets it.
func onlyTypes(n policy.Narrowing, typ string) bool {
	rest := n
	rest.RestrictTypes, rest.AllowedTypes = false, nil
	return rest.IsZero() && slices.Contains(n.AllowedTypes, typ)
}

// narrows reports whether the code path of q applies a Narrowing:
// $access-log (one patient's compartment) and the searches the store runs
// (search.go; not AuditEvent, served from the audit log).
func (a *API) narrows(q *Request) bool {
	switch q.Interaction {
	case SearchType, SearchSystem, SearchCompart:
		return a.cursors != nil && q.Type != "AuditEvent"
	}
	return q.Interaction == Operation && q.Operation == "$access-log"
}

// typeLevel reports whether a denial does not depend on the target.
func typeLevel(r policy.Rule) bool {
	switch r {
	case policy.RuleNoScopes, policy.RuleInteraction, policy.RuleBadRequest, policy.RuleNotGranted, policy.RuleExpired:
		return true
	}
	return false
}

// readForDecision reads the version a read-type interaction targets.
func (a *API) readForDecision(ctx context.Context, q *Request) (*fhir.Resource, error) {
	if q.Type == "AuditEvent" {
		return nil, errors.New("audit events are not in the FHIR store")
	}
	if q.Interaction == VRead {
		return a.store.VRead(ctx, q.Type, q.ID, q.Version)
	}
	return a.store.Read(ctx, q.Type, q.ID)
}

// compartmentOf computes the patient compartment of a stored version.
func (a *API) compartmentOf(ctx context.Context, res *fhir.Resource) ([]string, error) {
	if res == nil || res.Deleted || len(res.Body) == 0 {
		return nil, nil
	}
	if res.Type == "Provenance" {
		// In its target's compartment, which its content does not say:
		// the store kept it when the Provenance was written.
		facts, err := a.store.IndexFacts(ctx, res.Type, res.ID)
		if err != nil || facts == nil {
			return nil, err
		}
		return facts.Patients, nil
	}
	data, err := fhir.ParseResource(res.Body)
	if err != nil {
		return nil, err
	}
	return a.patientsOfData(res.Type, data)
}

// bodyPatientsOf returns the compartment patients of q's body, computed
// once per request: its AuditEvent, its Provenance and the write's
// decision all need them. (Not kept for a Patient, whose id a create may
// still assign.)
func (a *API) bodyPatientsOf(q *Request) ([]string, error) {
	if q.bodyPatientsKnown {
		return q.bodyPatients, nil
	}
	ps, err := a.patientsOfData(q.Type, q.Resource)
	if err == nil && q.Type != "Patient" {
		q.bodyPatients, q.bodyPatientsKnown = ps, true
	}
	return ps, err
}

func (a *API) patientsOfData(typ string, data map[string]any) ([]string, error) {
	if a.indexer == nil || data == nil {
		return nil, nil
	}
	e, err := a.indexer.Index(typ, data)
	if err != nil {
		return nil, err
	}
	return e.Patients, nil
}

// checkWrite decides a create, update or delete inside its transaction.
func (a *API) checkWrite(ctx context.Context, tx store.Tx, q *Request) error {
	if !a.enforce {
		return nil
	}
	p, err := a.principalOrDeny(ctx)
	if err != nil {
		return err
	}
	facts := policy.Facts{Now: a.clock.Now()}
	if q.Interaction == Update || q.Interaction == Delete {
		cur, err := tx.Read(ctx, q.Type, q.ID)
		switch {
		case err == nil:
			facts.Exists = true
			if facts.ResourcePatients, err = a.compartmentOf(ctx, cur); err != nil {
				return err
			}
		case errors.Is(err, store.ErrNotFound), errors.Is(err, store.ErrGone):
			if q.Interaction == Delete {
				return nil // nothing to delete: answered as for anyone
			}
		default:
			return err
		}
	}
	if q.Interaction != Delete {
		if facts.NewPatients, err = a.bodyPatientsOf(q); err != nil {
			return err
		}
	}
	pr := policyRequest(q)
	pr.Conditional = false
	if dec := policy.Decide(*p, pr, facts); !dec.Allow {
		return a.denied(q, dec)
	}
	return nil
}

// checkPatched decides a patch on the stored version and its result.
func (a *API) checkPatched(ctx context.Context, q *Request, cur *fhir.Resource, patched map[string]any) error {
	if !a.enforce {
		return nil
	}
	p, err := a.principalOrDeny(ctx)
	if err != nil {
		return err
	}
	facts := policy.Facts{Now: a.clock.Now(), Exists: true}
	if facts.ResourcePatients, err = a.compartmentOf(ctx, cur); err != nil {
		return err
	}
	if facts.NewPatients, err = a.patientsOfData(q.Type, patched); err != nil {
		return err
	}
	if q.Type != "Patient" {
		// The body this patch writes (bodyPatientsOf, patientsInTx).
		q.bodyPatients, q.bodyPatientsKnown = facts.NewPatients, true
	}
	pr := policyRequest(q)
	pr.Conditional = false
	if dec := policy.Decide(*p, pr, facts); !dec.Allow {
		return a.denied(q, dec)
	}
	return nil
}

// authorizeRead decides a read answered inside a transaction.
func (a *API) authorizeRead(ctx context.Context, q *Request, cur *fhir.Resource) error {
	if !a.enforce {
		return nil
	}
	p, err := a.principalOrDeny(ctx)
	if err != nil {
		return err
	}
	facts := policy.Facts{Now: a.clock.Now()}
	if facts.ResourcePatients, err = a.compartmentOf(ctx, cur); err != nil {
		return err
	}
	if dec := policy.Decide(*p, policyRequest(q), facts); !dec.Allow {
		return a.denied(q, dec)
	}
	return nil
}

// denied is the client's answer to a denial: 403 forbidden (naming
// nothing hidden), or in 404 mode exactly what an absent target answers.
// The reason is logged, never sent.
func (a *API) denied(q *Request, dec policy.Decision) error {
	a.log.Debug("access denied", "interaction", q.Interaction, "type", q.Type, "rule", string(dec.Rule), "reason", dec.Reason)
	if a.denyMode == DenyNotFound && q.ID != "" {
		return storeErr(q, nil, store.ErrNotFound)
	}
	return &fhir.Error{Code: fhir.IssueForbidden, Status: http.StatusForbidden,
		Diag: "the access token does not permit this " + strings.ReplaceAll(q.Interaction, "-", " ") + forWhat(q)}
}

func forWhat(q *Request) string {
	if q.Type == "" {
		return ""
	}
	return " on " + q.Type
}
