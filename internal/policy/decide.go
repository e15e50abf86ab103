package policy

import (
	"fmt"
	"net/url"
	"slices"
	"sort"

	"github.com/fhirguard/fhirguard/internal/fhir"
	"github.com/fhirguard/fhirguard/internal/fhir/searchparam"
	"github.com/fhirguard/fhirguard/internal/policy/scopes"
)

// Decide decides one interaction. It is pure and total: any input gives a
// Decision, and anything not positively granted is denied.
//
// Scope rules (SMART App Launch 2.2, v1 read = rs, write = cud, * = cruds):
// read, vread and instance history need r; searches and type/system history
// s; create c; update and patch u (update of a free id also c); delete d.
// A patient/ scope counts only for resources in the compartment of the
// token's patient (a Patient is in its own compartment); for writes both
// the stored target and the written body must be in it, and patient/
// scopes never create through update. A granular scope counts only for
// resources matching its constraints, checked on Facts.*Params for single
// resources and returned as Narrowing.Restrictions for searches. Scopes on
// the same type combine as a union.
func Decide(p Principal, r Request, f Facts) Decision {
	if r.Interaction == Capabilities {
		return Decision{Allow: true, Rule: RulePublic, Reason: "the capability statement is public"}
	}
	if !p.ExpiresAt.IsZero() && (f.Now.IsZero() || !f.Now.Before(p.ExpiresAt)) {
		return deny(RuleExpired, "the token has expired (or no decision time was given)")
	}
	res := p.Scopes.Resource()
	if len(res) == 0 {
		return deny(RuleNoScopes, "the token holds no resource scope")
	}
	d := decider{p: p, res: res}
	switch r.Interaction {
	case Batch, Transaction:
		return Decision{Allow: true, Rule: RuleEntries, Reason: "each entry is decided on its own"}
	case Read, VRead, HistoryInstance:
		if dec, bad := d.needTypeID(r); bad {
			return dec
		}
		return d.single(scopes.PermR, r.Type, r.ID, f.ResourcePatients, f.ResourceParams, false)
	case Create:
		if dec, bad := d.needType(r); bad {
			return dec
		}
		if r.Conditional {
			return d.conditional(r, scopes.PermC)
		}
		return d.single(scopes.PermC, r.Type, "", f.NewPatients, f.NewParams, false)
	case Update, Patch:
		return d.update(r, f)
	case Delete:
		if r.Conditional {
			if dec, bad := d.needType(r); bad {
				return dec
			}
			return d.conditional(r, scopes.PermD)
		}
		if dec, bad := d.needTypeID(r); bad {
			return dec
		}
		return d.single(scopes.PermD, r.Type, r.ID, f.ResourcePatients, f.ResourceParams, false)
	case SearchType, HistoryType:
		if dec, bad := d.needType(r); bad {
			return dec
		}
		return d.search([]string{r.Type}, true, scopes.PermS)
	case SearchSystem, HistorySystem:
		for _, t := range r.Types {
			if !fhir.IsResourceType(t) {
				return deny(RuleBadRequest, fmt.Sprintf("unknown resource type %q", t))
			}
		}
		if len(r.Types) > 0 {
			return d.search(r.Types, true, scopes.PermS)
		}
		return d.search(fhir.ResourceTypes(), false, scopes.PermS)
	case SearchCompartment:
		return d.compartment(r)
	case Operation:
		return deny(RuleInteraction, fmt.Sprintf("operation %q is not granted by scopes", r.Operation))
	default:
		return deny(RuleInteraction, fmt.Sprintf("unknown interaction %q", r.Interaction))
	}
}

func deny(rule Rule, reason string) Decision {
	return Decision{Rule: rule, Reason: reason}
}

// decider carries the principal and its resource scopes through one
// decision.
type decider struct {
	p   Principal
	res []scopes.Scope
	// members caches the Patient compartment member types (sorted).
	members []string
}

func (d *decider) needType(r Request) (Decision, bool) {
	if !fhir.IsResourceType(r.Type) {
		return deny(RuleBadRequest, fmt.Sprintf("unknown resource type %q", r.Type)), true
	}
	return Decision{}, false
}

func (d *decider) needTypeID(r Request) (Decision, bool) {
	if dec, bad := d.needType(r); bad {
		return dec, true
	}
	if r.ID == "" {
		return deny(RuleBadRequest, fmt.Sprintf("%s needs a target id", r.Interaction)), true
	}
	return Decision{}, false
}

// matching returns the resource scopes covering typ with every permission
// in perm.
func (d *decider) matching(typ string, perm scopes.Perm) []scopes.Scope {
	var out []scopes.Scope
	for _, s := range d.res {
		if (s.Type == "*" || s.Type == typ) && s.Perms.Has(perm) {
			out = append(out, s)
		}
	}
	return out
}

// Reasons shared by equal situations, so a hidden and an absent target
// decide identically.
const (
	reasonCompartment = "the target is not in the compartment of the token's patient"
	reasonGranular    = "the target does not match the constraints of the granular scopes"
	reasonNoPatient   = "patient/ scopes need a patient in context"
)

// single decides one resource (the stored target or a written body) for
// perm. noPatientTier makes patient/ scopes fail as out of compartment
// (update-as-create).
func (d *decider) single(perm scopes.Perm, typ, id string, patients []string, params map[string][]string, noPatientTier bool) Decision {
	m := d.matching(typ, perm)
	if len(m) == 0 {
		return deny(RuleNotGranted, fmt.Sprintf("no scope grants %s on %s", perm, typ))
	}
	// Every matching scope fails for one of three reasons; the most
	// specific one is reported.
	var compFail, granFail bool
	for _, s := range m {
		if s.Context == scopes.ContextPatient {
			switch {
			case noPatientTier:
				compFail = true
				continue
			case d.p.Patient == "":
				continue
			case !inCompartment(d.p.Patient, typ, id, patients):
				compFail = true
				continue
			}
		}
		if !matchQuery(s.Query, params) {
			granFail = true
			continue
		}
		return Decision{Allow: true, Rule: RuleScope, Reason: fmt.Sprintf("%s on %s granted", perm, typ), Basis: []string{s.Raw}}
	}
	switch {
	case compFail:
		return deny(RuleCompartment, reasonCompartment)
	case granFail:
		return deny(RuleGranular, reasonGranular)
	default:
		return deny(RuleNoPatient, reasonNoPatient)
	}
}

// inCompartment reports whether patient's compartment holds the resource.
func inCompartment(patient, typ, id string, patients []string) bool {
	if typ == "Patient" && id == patient {
		return true
	}
	return slices.Contains(patients, patient)
}

// update decides update and patch: the stored target and the new body must
// both be writable; an update of a free id is a create as well.
func (d *decider) update(r Request, f Facts) Decision {
	if dec, bad := d.needType(r); bad {
		return dec
	}
	if r.Conditional {
		return d.conditional(r, scopes.PermU)
	}
	if r.ID == "" {
		return deny(RuleBadRequest, fmt.Sprintf("%s needs a target id", r.Interaction))
	}
	if r.Interaction == Update && !f.Exists {
		c := d.single(scopes.PermC, r.Type, r.ID, f.NewPatients, f.NewParams, true)
		if !c.Allow {
			return createOnUpdateDenied(c)
		}
		u := d.single(scopes.PermU, r.Type, r.ID, f.NewPatients, f.NewParams, true)
		if !u.Allow {
			return createOnUpdateDenied(u)
		}
		return Decision{Allow: true, Rule: RuleScope, Reason: "update creating the resource granted (c and u)",
			Basis: appendNew(c.Basis, u.Basis...)}
	}
	old := d.single(scopes.PermU, r.Type, r.ID, f.ResourcePatients, f.ResourceParams, false)
	if !old.Allow {
		return old
	}
	nw := d.single(scopes.PermU, r.Type, r.ID, f.NewPatients, f.NewParams, false)
	if !nw.Allow {
		nw.Reason = "the new content: " + nw.Reason
		return nw
	}
	return Decision{Allow: true, Rule: RuleScope, Reason: fmt.Sprintf("u on %s granted for the stored and the new content", r.Type),
		Basis: appendNew(old.Basis, nw.Basis...)}
}

// createOnUpdateDenied turns a failed create-through-update check into the
// decision for it. Patient/ scopes answer exactly as for a hidden target,
// so the answer is no existence oracle.
func createOnUpdateDenied(dec Decision) Decision {
	if dec.Rule == RuleCompartment {
		return dec
	}
	dec.Rule = RuleCreateOnWrite
	dec.Reason = "update creating the resource: " + dec.Reason
	return dec
}

func appendNew(list []string, more ...string) []string {
	out := slices.Clone(list)
	for _, s := range more {
		if !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	return out
}

// conditional checks the type-level grant of a conditional interaction and
// returns the narrowing for the search resolving its condition.
func (d *decider) conditional(r Request, perm scopes.Perm) Decision {
	dec := d.search([]string{r.Type}, true, perm)
	if dec.Allow {
		dec.Reason = fmt.Sprintf("conditional %s: the condition is searched with this narrowing; decide again for the resolved resource", r.Interaction)
	}
	return dec
}

// compartment decides Patient/{id}/{type} searches.
func (d *decider) compartment(r Request) Decision {
	if r.Compartment.Type != "Patient" || r.Compartment.ID == "" {
		return deny(RuleBadRequest, "a compartment search needs a Patient compartment")
	}
	var dec Decision
	if r.Type == "" || r.Type == "*" {
		dec = d.search(searchparam.CompartmentTypes("Patient"), false, scopes.PermS)
	} else {
		if bad, isBad := d.needType(r); isBad {
			return bad
		}
		dec = d.search([]string{r.Type}, true, scopes.PermS)
	}
	if dec.Allow && dec.Narrowing.RestrictPatients && !slices.Contains(dec.Narrowing.Patients, r.Compartment.ID) {
		return deny(RuleCompartment, "the compartment is not the token's patient's")
	}
	return dec
}

// matchQuery reports whether a resource with these index values satisfies
// every constraint of a granular scope (nil q: always). Constraints it cannot
// evaluate here (modifiers, chains, escapes) do not match: fail closed.
func matchQuery(q url.Values, params map[string][]string) bool {
	for name, wants := range q {
		if !evaluable(name) {
			return false
		}
		have := params[name]
		for _, want := range wants {
			if !matchValue(want, have) {
				return false
			}
		}
	}
	return true
}

func evaluable(name string) bool {
	for i := 0; i < len(name); i++ {
		if name[i] == ':' || name[i] == '.' {
			return false
		}
	}
	return true
}

// matchValue applies one search value (commas = OR) to the resource's
// values with token semantics: "system|code", "code" (any system),
// "system|" (any code of the system), "|code" (no system).
func matchValue(want string, have []string) bool {
	if want == "" || containsByte(want, '\\') {
		return false
	}
	for _, alt := range splitComma(want) {
		for _, h := range have {
			if tokenMatch(alt, h) {
				return true
			}
		}
	}
	return false
}

func tokenMatch(want, have string) bool {
	hsys, hcode := splitToken(have)
	wsys, wcode, hasBar := cutByte(want, '|')
	switch {
	case !hasBar:
		return want != "" && hcode == want
	case wsys == "" && wcode == "":
		return false
	case wcode == "":
		return hsys == wsys
	case wsys == "":
		return hsys == "" && hcode == wcode
	default:
		return hsys == wsys && hcode == wcode
	}
}

func splitToken(v string) (system, code string) {
	s, c, ok := cutByte(v, '|')
	if !ok {
		return "", v
	}
	return s, c
}

func cutByte(s string, b byte) (before, after string, found bool) {
	for i := 0; i < len(s); i++ {
		if s[i] == b {
			return s[:i], s[i+1:], true
		}
	}
	return s, "", false
}

func containsByte(s string, b byte) bool {
	_, _, ok := cutByte(s, b)
	return ok
}

func splitComma(s string) []string {
	var out []string
	for {
		before, after, ok := cutByte(s, ',')
		if before != "" {
			out = append(out, before)
		}
		if !ok {
			return out
		}
		s = after
	}
}

// Needs are the facts Decide will read for a request (so the caller loads
// only those).
type Needs struct {
	// ResourcePatients / NewPatients: the compartment of the stored target /
	// of the written body.
	ResourcePatients bool
	NewPatients      bool
	// Exists: whether an update's target exists.
	Exists bool
	// Params are the search parameter codes to load into ResourceParams
	// (stored target) and NewParams (written body), sorted.
	Params []string
}

// NeedsFor lists the facts Decide(p, r, ·) reads.
func NeedsFor(p Principal, r Request) Needs {
	var n Needs
	if r.Conditional {
		return n
	}
	var perm scopes.Perm
	old, nw := false, false
	switch r.Interaction {
	case Read, VRead, HistoryInstance:
		perm, old = scopes.PermR, true
	case Create:
		perm, nw = scopes.PermC, true
	case Update:
		perm, old, nw = scopes.PermU|scopes.PermC, true, true
		n.Exists = true
	case Patch:
		perm, old, nw = scopes.PermU, true, true
	case Delete:
		perm, old = scopes.PermD, true
	default:
		return n
	}
	d := decider{p: p, res: p.Scopes.Resource()}
	names := map[string]bool{}
	for bit := scopes.Perm(1); bit <= scopes.PermAll; bit <<= 1 {
		if perm&bit == 0 {
			continue
		}
		for _, s := range d.matching(r.Type, bit) {
			if s.Context == scopes.ContextPatient {
				n.ResourcePatients = n.ResourcePatients || old
				n.NewPatients = n.NewPatients || nw
			}
			for k := range s.Query {
				names[k] = true
			}
		}
	}
	for k := range names {
		n.Params = append(n.Params, k)
	}
	sort.Strings(n.Params)
	return n
}
