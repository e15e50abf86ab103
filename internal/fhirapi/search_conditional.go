package fhirapi

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/fhirguard/fhirguard/internal/fhir"
	"github.com/fhirguard/fhirguard/internal/policy"
	"github.com/fhirguard/fhirguard/internal/search"
	"github.com/fhirguard/fhirguard/internal/store"
)

// Conditional create (If-None-Exist), update, patch and delete (owned by
// the search area). The condition is a search run inside the write
// transaction (store.SearchTx), so deciding and writing are atomic: two
// concurrent conditional creates cannot both create. Under enforcement
// the search is narrowed like any search of the caller.
//
//	             no match                  one match             several
//	create       create                    200, the match        412
//	update       create (body id or new)   update the match      412
//	patch        404                       patch the match       412
//	delete       200, nothing deleted      delete the match      412

// condState keeps what a conditional write decided on its first run (the
// store may run a transaction function again).
type condState struct {
	bodyID string // the id in the body of a conditional update
	newID  string // the id a conditional update creates when nothing matches
}

// conditionParams returns the search of a conditional interaction.
func conditionParams(q *Request) (url.Values, error) {
	if q.IfNoneExist == "" {
		params := url.Values{}
		for k, vs := range q.Query {
			switch k {
			case "_format", "_pretty", "_summary", "_elements":
				continue
			}
			params[k] = vs
		}
		return params, nil
	}
	raw := q.IfNoneExist
	if i := strings.IndexByte(raw, '?'); i >= 0 {
		raw = raw[i+1:] // "Patient?identifier=x" and "?identifier=x" forms
	}
	params, err := url.ParseQuery(raw)
	if err != nil || len(params) == 0 {
		return nil, fhir.Errorf(fhir.IssueInvalid, "If-None-Exist must hold search parameters, e.g. identifier=http://example.org|123")
	}
	return params, nil
}

// conditionMatches runs the condition of q inside tx and returns up to
// two matches.
func (a *API) conditionMatches(ctx context.Context, tx store.Tx, q *Request) ([]*fhir.Resource, error) {
	params, err := conditionParams(q)
	if err != nil {
		return nil, err
	}
	for k := range params {
		switch strings.SplitN(k, ":", 2)[0] {
		case "_sort", "_count", "_include", "_revinclude", "_total", "_cursor", "_contained", "_containedType":
			return nil, fhir.Errorf(fhir.IssueInvalid, "parameter %s cannot be part of the condition of a conditional %s", quote(k), q.Interaction)
		}
	}
	sq, _, err := search.Parse(q.Type, params, a.searchOptions(false))
	if err != nil {
		return nil, err
	}
	sq.Count, sq.Total, sq.Sort = 2, search.TotalNone, nil
	st, ok := tx.(store.SearchTx)
	if !ok {
		return nil, errNotImplemented("conditional %s needs search, which this store does not support", q.Interaction)
	}
	if a.enforce {
		p, err := a.principalOrDeny(ctx)
		if err != nil {
			return nil, err
		}
		pr := policyRequest(q)
		pr.Conditional = true
		dec := policy.Decide(*p, pr, policy.Facts{Now: a.clock.Now(), Exists: true})
		if !dec.Allow {
			return nil, a.denied(q, dec)
		}
		if sq.Narrow, err = a.toSearchNarrowing(dec.Narrowing); err != nil {
			return nil, err
		}
	}
	res, err := st.Search(ctx, sq, nil)
	if err != nil {
		return nil, searchErr(err)
	}
	return res.Matches, nil
}

func errMultipleMatches(q *Request) error {
	return &fhir.Error{Code: fhir.IssueMultiple, Status: http.StatusPreconditionFailed,
		Diag: fmt.Sprintf("the condition of this conditional %s matches more than one %s", q.Interaction, q.Type)}
}

// resolveConditional turns a conditional interaction into a plain one
// inside tx (setting q.ID), or answers it (done) when nothing is to be
// written.
func (a *API) resolveConditional(ctx context.Context, tx store.Tx, q *Request) (resp *Response, done bool, err error) {
	if q.cond == nil {
		q.cond = &condState{}
		if q.Interaction == Update && q.Resource != nil {
			q.cond.bodyID, _ = q.Resource["id"].(string)
		}
	}
	matches, err := a.conditionMatches(ctx, tx, q)
	if err != nil {
		return nil, false, err
	}
	if len(matches) > 1 {
		return nil, false, errMultipleMatches(q)
	}
	var match *fhir.Resource
	if len(matches) == 1 {
		match = matches[0]
	}
	switch q.Interaction {
	case Create:
		if match == nil {
			return nil, false, nil
		}
		if err := a.authorizeRead(ctx, &Request{Interaction: Read, Type: match.Type, ID: match.ID}, match); err != nil {
			return nil, false, err
		}
		return a.writeResponse(q, http.StatusOK, match, "found"), true, nil
	case Update:
		switch {
		case match != nil:
			if q.cond.bodyID != "" && q.cond.bodyID != match.ID {
				return nil, false, &fhir.Error{Code: fhir.IssueInvalid, Expr: []string{q.Type + ".id"},
					Diag: fmt.Sprintf("the resource id %s does not match the %s the condition found", quote(q.cond.bodyID), q.Type)}
			}
			q.ID = match.ID
		case q.cond.bodyID != "":
			q.ID = q.cond.bodyID
		default:
			if q.cond.newID == "" {
				q.cond.newID = a.newID()
			}
			q.ID = q.cond.newID
		}
		q.Resource["id"] = q.ID
		q.prepared = nil
		return nil, false, nil
	case Patch:
		if match == nil {
			return nil, false, fhir.Errorf(fhir.IssueNotFound, "no %s matches the condition of this conditional patch", q.Type)
		}
		q.ID = match.ID
		return nil, false, nil
	case Delete:
		if match == nil {
			return &Response{Status: http.StatusOK, IsOutcome: true,
				Body: outcome("information", fhir.IssueNotFound, fmt.Sprintf("no %s matches the condition; nothing was deleted", q.Type))}, true, nil
		}
		q.ID = match.ID
		return nil, false, nil
	}
	return nil, false, fmt.Errorf("fhirapi: %q is not a conditional interaction", q.Interaction)
}
