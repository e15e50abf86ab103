package fhirapi

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/fhirguard/fhirguard/internal/fhir"
	"github.com/fhirguard/fhirguard/internal/policy"
	"github.com/fhirguard/fhirguard/internal/store"
)

// Provenance on writes (owned by the audit area): every create, update,
// patch and delete writes a Provenance resource in the same store
// transaction as the write, so one cannot exist without the other. A client
// may send its own Provenance in the X-Provenance header; the server fills
// in the target and the time and checks that the agent is the caller.

// HeaderXProvenance carries a client-authored Provenance for a write.
const HeaderXProvenance = "X-Provenance"

// maxXProvenance bounds the X-Provenance header.
const maxXProvenance = 16 << 10

// Code systems of the Provenance the server writes.
const (
	systemDataOperation = "http://terminology.hl7.org/CodeSystem/v3-DataOperation"
	systemProvAgentType = "http://terminology.hl7.org/CodeSystem/provenance-participant-type"
)

// activityCode is the v3-DataOperation code of a write interaction.
func activityCode(interaction string) (code, display string) {
	switch interaction {
	case Create:
		return "CREATE", "create"
	case Delete:
		return "DELETE", "delete"
	}
	return "UPDATE", "revise"
}

// parseXProvenance reads and checks the X-Provenance header of a write.
func (a *API) parseXProvenance(r *http.Request, q *Request) error {
	raw := r.Header.Get(HeaderXProvenance)
	if raw == "" || q == nil {
		return nil
	}
	switch q.Interaction {
	case Create, Update, Patch, Delete:
	default:
		return fhir.Errorf(fhir.IssueInvalid, "X-Provenance is only accepted on create, update, patch and delete")
	}
	if !a.provenance {
		return fhir.Errorf(fhir.IssueNotSupported, "X-Provenance is not supported on this server")
	}
	if len(raw) > maxXProvenance {
		return fhir.Errorf(fhir.IssueTooCostly, "X-Provenance is larger than %d bytes", maxXProvenance)
	}
	prov, err := fhir.ParseResource([]byte(raw))
	if err != nil {
		return fmt.Errorf("X-Provenance: %w", err)
	}
	if rt, _ := prov["resourceType"].(string); rt != "Provenance" {
		return fhir.Errorf(fhir.IssueInvalid, "X-Provenance must hold a Provenance resource")
	}
	// The server decides target, recorded and id.
	delete(prov, "id")
	delete(prov, "meta")
	prov["target"] = []any{map[string]any{"reference": q.Type + "/" + q.ID}}
	prov["recorded"] = instant(a.clock.Now())
	if err := a.validate("Provenance", prov); err != nil {
		return fmt.Errorf("X-Provenance: %w", err)
	}
	if err := a.checkProvenanceAgent(r.Context(), prov); err != nil {
		return err
	}
	q.xProvenance = prov
	return nil
}

// checkProvenanceAgent requires that an X-Provenance names the caller: at
// least one agent is the caller's fhirUser, and no agent is another user.
func (a *API) checkProvenanceAgent(ctx context.Context, prov map[string]any) error {
	p, ok := a.callerPrincipal(ctx)
	if !ok || p.FHIRUser == "" {
		return nil // no user identity to compare (dev mode, backend client)
	}
	agents, _ := prov["agent"].([]any)
	self := false
	for i, ag := range agents {
		m, _ := ag.(map[string]any)
		who, _ := m["who"].(map[string]any)
		ref, _ := who["reference"].(string)
		switch {
		case ref == p.FHIRUser:
			self = true
		case strings.HasPrefix(ref, "Practitioner/") || strings.HasPrefix(ref, "Patient/") ||
			strings.HasPrefix(ref, "RelatedPerson/") || strings.HasPrefix(ref, "PractitionerRole/"):
			return &fhir.Error{Code: fhir.IssueProcessing, Status: http.StatusUnprocessableEntity,
				Diag: fmt.Sprintf("X-Provenance agent %s is not the caller (%s)", ref, p.FHIRUser),
				Expr: []string{"Provenance.agent[" + strconv.Itoa(i) + "].who"}}
		}
	}
	if !self {
		return &fhir.Error{Code: fhir.IssueProcessing, Status: http.StatusUnprocessableEntity,
			Diag: "X-Provenance must name the caller " + p.FHIRUser + " as an agent", Expr: []string{"Provenance.agent"}}
	}
	return nil
}

func (a *API) callerPrincipal(ctx context.Context) (*policy.Principal, bool) {
	if a.principal == nil {
		return nil, false
	}
	p, ok := a.principal(ctx)
	return p, ok && p != nil
}

// preparedProvenance is a Provenance indexed and serialized before the
// write's transaction (store.Prepare), so the store's single writer only
// runs its SQL. It is valid only if the write produces Version.
type preparedProvenance struct {
	version int64
	w       store.Write
}

// prepareProvenance prepares q's Provenance for the version the write is
// expected to produce: 1 for a create, If-Match + 1, else the current
// version + 1. A different outcome (a concurrent write) falls back to
// building it inside the transaction.
func (a *API) prepareProvenance(ctx context.Context, q *Request) {
	if !a.provenance || q == nil || q.ID == "" || readOnlyType(q.Type) || q.Conditional || q.IfNoneExist != "" {
		return
	}
	var version int64
	switch {
	case q.Interaction == Create:
		version = 1
	case q.IfMatch > 0:
		version = q.IfMatch + 1
	default:
		cur, err := a.store.Read(ctx, q.Type, q.ID)
		switch {
		case err == nil && cur != nil:
			version = cur.VersionID + 1
		case isGone(err) && cur != nil:
			version = cur.VersionID + 1
		case errors.Is(err, store.ErrNotFound):
			version = 1
		default:
			return
		}
	}
	patients, ok := a.targetPatientsBefore(ctx, q)
	if !ok {
		return // known only inside the transaction
	}
	prov := a.provenanceDoc(ctx, q, version, a.clock.Now())
	w := store.Write{Type: "Provenance", ID: a.newID(), Data: prov, CreateOnly: true, Compartment: patients}
	if err := a.store.Prepare(&w); err != nil {
		return // built inside the transaction instead
	}
	q.provenance = &preparedProvenance{version: version, w: w}
}

// provenanceDoc is the Provenance of q's write producing version.
func (a *API) provenanceDoc(ctx context.Context, q *Request, version int64, recorded time.Time) map[string]any {
	code, display := activityCode(q.Interaction)
	target := q.Type + "/" + q.ID + "/_history/" + strconv.FormatInt(version, 10)
	prov := q.xProvenance
	if prov == nil {
		prov = map[string]any{
			"resourceType": "Provenance",
			"agent":        a.provenanceAgents(ctx),
		}
	} else {
		prov = cloneMap(prov)
	}
	prov["target"] = []any{map[string]any{"reference": target}}
	prov["recorded"] = instant(recorded)
	if _, ok := prov["activity"]; !ok {
		prov["activity"] = map[string]any{"coding": []any{map[string]any{
			"system": systemDataOperation, "code": code, "display": display}}}
	}
	return prov
}

// writeProvenance writes the Provenance of a committed-with-tx write.
func (a *API) writeProvenance(ctx context.Context, tx store.Tx, q *Request, resp *Response) error {
	if resp == nil || resp.VersionID <= 0 || readOnlyType(q.Type) {
		return nil
	}
	w := store.Write{}
	if p := q.provenance; p != nil && p.version == resp.VersionID {
		w = p.w
	} else {
		w = store.Write{Type: "Provenance", ID: a.newID(), CreateOnly: true,
			Data: a.provenanceDoc(ctx, q, resp.VersionID, resp.LastModified), Compartment: a.targetPatientsInTx(ctx, tx, q)}
	}
	if _, err := tx.Put(ctx, w); err != nil {
		return fmt.Errorf("write Provenance of %s/%s/_history/%d: %w", q.Type, q.ID, resp.VersionID, err)
	}
	return nil
}

// provenanceAgents are the agents of a server-written Provenance: the user
// (author) and the client app (performer, on behalf of the user) when
// known, else this server as the assembler.
func (a *API) provenanceAgents(ctx context.Context) []any {
	agentType := func(code, display string) map[string]any {
		return map[string]any{"coding": []any{map[string]any{"system": systemProvAgentType, "code": code, "display": display}}}
	}
	var out []any
	if p, ok := a.callerPrincipal(ctx); ok {
		{
			if p.FHIRUser != "" {
				out = append(out, map[string]any{"type": agentType("author", "Author"), "who": map[string]any{"reference": p.FHIRUser}})
			}
			if p.ClientID != "" {
				app := map[string]any{"type": agentType("performer", "Performer"),
					"who": map[string]any{"identifier": map[string]any{"value": p.ClientID}, "display": "client " + p.ClientID}}
				if p.FHIRUser != "" {
					// The app acted for the signed-in user (PROV-01).
					app["onBehalfOf"] = map[string]any{"reference": p.FHIRUser}
				}
				out = append(out, app)
			}
		}
	}
	if len(out) == 0 {
		out = append(out, map[string]any{"type": agentType("assembler", "Assembler"),
			"who": map[string]any{"identifier": map[string]any{"system": "urn:ietf:rfc:3986", "value": a.base}, "display": "fhirguard server"}})
	}
	return out
}

func cloneMap(m map[string]any) map[string]any {
	out := make(map[string]any, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

// targetPatientsBefore returns, before the write q runs, the patients
// whose compartments its Provenance joins (its target's: what the write's
// body names, or for a delete what the deleted version named); ok is false
// when only the transaction can tell (a patch).
func (a *API) targetPatientsBefore(ctx context.Context, q *Request) ([]string, bool) {
	switch {
	case q.Interaction == Delete:
		return a.patientsBefore(ctx, q), true
	case q.Resource != nil && (q.Interaction == Create || q.Interaction == Update) && a.indexer != nil:
		// The indexer's answer (a Patient: itself and the patients it
		// links to).
		ps, err := a.bodyPatientsOf(q)
		return ps, err == nil
	case q.Type == "Patient":
		return []string{q.ID}, true
	}
	return nil, false
}

// targetPatientsInTx returns the patients of the target of the write q as
// tx sees it after the write (a delete: as the last committed version
// named them).
func (a *API) targetPatientsInTx(ctx context.Context, tx store.Tx, q *Request) []string {
	if q.Interaction == Delete {
		if t, _ := ctx.Value(topKey{}).(*topRequest); t != nil && t.q == q && t.before != nil {
			return t.before // read before the transaction, for its AuditEvent
		}
		return a.patientsBefore(ctx, q)
	}
	if ps := a.patientsInTx(ctx, tx, q); ps != nil || q.Type != "Patient" {
		return ps
	}
	return []string{q.ID}
}
