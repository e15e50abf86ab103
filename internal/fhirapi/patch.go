package fhirapi

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	jsonpatch "github.com/evanphx/json-patch/v5"

	"github.com/fhirguard/fhirguard/internal/fhir"
	"github.com/fhirguard/fhirguard/internal/store"
)

// maxPatchOps bounds the number of operations in one JSON Patch.
const maxPatchOps = 1000

// maxPatchCopyBytes bounds how much "copy" operations may grow a resource.
const maxPatchCopyBytes = 1 << 20

// checkPatchDoc checks that body is a well-formed RFC 6902 JSON Patch.
func checkPatchDoc(body []byte) error {
	if len(body) == 0 {
		return fhir.Errorf(fhir.IssueRequired, "the request body is empty; a JSON Patch document is required")
	}
	if _, err := fhir.ParseJSON(body); err != nil {
		return err
	}
	p, err := jsonpatch.DecodePatch(body)
	if err != nil {
		return &fhir.Error{Code: fhir.IssueStructure, Cause: err,
			Diag: "the body is not a valid JSON Patch: an array of operations (op, path, and value or from as the op needs)"}
	}
	if len(p) == 0 {
		return fhir.Errorf(fhir.IssueInvalid, "the JSON Patch has no operations")
	}
	if len(p) > maxPatchOps {
		return &fhir.Error{Code: fhir.IssueTooCostly,
			Diag: fmt.Sprintf("the JSON Patch has %d operations; at most %d are allowed", len(p), maxPatchOps)}
	}
	return nil
}

// patch runs PATCH [type]/[id] inside tx: apply the patch to the current
// version, then re-parse and re-validate the result as an update would
// (resourceType and id cannot change), then write it conditioned on the
// version patched.
func (a *API) patch(ctx context.Context, tx store.Tx, q *Request) (*Response, error) {
	cur, err := tx.Read(ctx, q.Type, q.ID)
	if err != nil {
		return nil, storeErr(q, cur, err)
	}
	if q.IfMatch > 0 && cur.VersionID != q.IfMatch {
		return nil, storeErr(q, cur, store.ErrConflict)
	}
	patched, err := applyJSONPatch(cur.Body, q.PatchDoc)
	if err != nil {
		return nil, err
	}
	res, err := a.parseResource(patched)
	if err != nil {
		return nil, err
	}
	if rt, _ := res["resourceType"].(string); rt != q.Type {
		return nil, &fhir.Error{Code: fhir.IssueInvalid, Status: http.StatusUnprocessableEntity,
			Expr: []string{q.Type + ".resourceType"}, Diag: "a patch cannot change resourceType"}
	}
	if id, _ := res["id"].(string); id != q.ID {
		return nil, &fhir.Error{Code: fhir.IssueInvalid, Status: http.StatusUnprocessableEntity,
			Expr: []string{q.Type + ".id"}, Diag: "a patch cannot change the resource id"}
	}
	if err := a.validate(q.Type, res); err != nil {
		return nil, err
	}
	pq := *q
	pq.IfMatch = cur.VersionID
	if err := a.checkPatched(ctx, q, cur, res); err != nil {
		return nil, err
	}
	wr, err := tx.Put(ctx, store.Write{Type: q.Type, ID: q.ID, Data: res, IfMatch: cur.VersionID})
	if err != nil {
		return nil, storeErr(&pq, nil, err)
	}
	return a.writeResponse(q, http.StatusOK, wr.Resource, "patched"), nil
}

// applyJSONPatch applies doc's operations one by one to body, so a failure
// names the operation.
func applyJSONPatch(body, doc []byte) ([]byte, error) {
	p, err := jsonpatch.DecodePatch(doc)
	if err != nil {
		return nil, &fhir.Error{Code: fhir.IssueStructure, Cause: err, Diag: "the body is not a valid JSON Patch"}
	}
	opts := jsonpatch.NewApplyOptions()
	opts.SupportNegativeIndices = false
	opts.AccumulatedCopySizeLimit = maxPatchCopyBytes
	opts.EscapeHTML = false
	out := body
	for i, op := range p {
		next, err := jsonpatch.Patch{op}.ApplyWithOptions(out, opts)
		if err != nil {
			path, _ := op.Path()
			what := "cannot be applied: the path does not exist or does not fit the resource"
			if errors.Is(err, jsonpatch.ErrTestFailed) {
				what = "failed: the test did not match"
			}
			return nil, &fhir.Error{Code: fhir.IssueProcessing, Cause: err,
				Expr: []string{fmt.Sprintf("operation[%d]", i)},
				Diag: fmt.Sprintf("JSON Patch operation %d (%s %s) %s", i, op.Kind(), truncate(path, 200), what)}
		}
		out = next
	}
	return out, nil
}
