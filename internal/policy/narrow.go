package policy

import (
	"fmt"
	"net/url"
	"reflect"
	"slices"

	"github.com/fhirguard/fhirguard/internal/fhir"
	"github.com/fhirguard/fhirguard/internal/fhir/searchparam"
	"github.com/fhirguard/fhirguard/internal/policy/scopes"
)

// typeGrant is what the scopes give on one type for one permission.
type typeGrant struct {
	ok bool
	// upper: granted by user/ or system/ scopes (not confined to a
	// compartment); otherwise by patient/ scopes.
	upper bool
	// alts are the granular alternatives (OR); nil = unrestricted.
	alts  []url.Values
	basis []string
	// rule says why not ok; typ and perm are kept to word the reason
	// only when it is needed.
	rule Rule
	typ  string
	perm scopes.Perm
}

func (g typeGrant) reason() string {
	switch g.rule {
	case RuleNoPatient:
		return reasonNoPatient
	case RuleCompartment:
		return fmt.Sprintf("%s is not in the Patient compartment", g.typ)
	default:
		return fmt.Sprintf("no scope grants %s on %s", g.perm, g.typ)
	}
}

// grantFor evaluates the scopes on typ for perm. When both user/system and
// patient/ scopes match, the user/system ones decide (they are not
// confined); if those are granular while a patient/ one is not, the patient
// share is not added: the narrowing may grant less than the union, never
// more.
func (d *decider) grantFor(typ string, perm scopes.Perm) typeGrant {
	// One pass without allocating: most types of a search's universe are
	// not granted at all.
	var nUpper, nLower int
	for i := range d.res {
		s := &d.res[i]
		if (s.Type == "*" || s.Type == typ) && s.Perms.Has(perm) {
			if s.Context == scopes.ContextPatient {
				nLower++
			} else {
				nUpper++
			}
		}
	}
	g := typeGrant{ok: true, upper: true}
	switch {
	case nUpper+nLower == 0:
		return typeGrant{rule: RuleNotGranted, typ: typ, perm: perm}
	case nUpper == 0 && d.p.Patient == "":
		return typeGrant{rule: RuleNoPatient, typ: typ, perm: perm}
	case nUpper == 0 && !d.member(typ):
		return typeGrant{rule: RuleCompartment, typ: typ, perm: perm}
	case nUpper == 0:
		g.upper = false
	}
	for i := range d.res {
		s := &d.res[i]
		if !(s.Type == "*" || s.Type == typ) || !s.Perms.Has(perm) || (s.Context == scopes.ContextPatient) == g.upper {
			continue
		}
		if !s.Granular() {
			g.alts = nil
			g.basis = []string{s.Raw}
			return g
		}
		g.basis = appendNew(g.basis, s.Raw)
		if !containsValues(g.alts, s.Query) {
			g.alts = append(g.alts, s.Query)
		}
	}
	return g
}

// anyScope reports whether some resource scope covers typ with perm.
func (d *decider) anyScope(typ string, perm scopes.Perm) bool {
	for i := range d.res {
		if s := &d.res[i]; (s.Type == "*" || s.Type == typ) && s.Perms.Has(perm) {
			return true
		}
	}
	return false
}

// member reports whether typ is a Patient compartment member type (Patient
// included), loading the sorted list once per decision.
func (d *decider) member(typ string) bool {
	if d.members == nil {
		d.members = searchparam.CompartmentTypes("Patient")
	}
	_, found := slices.BinarySearch(d.members, typ)
	return found || typ == "Patient"
}

func containsValues(list []url.Values, q url.Values) bool {
	for _, v := range list {
		if reflect.DeepEqual(v, q) {
			return true
		}
	}
	return false
}

// search decides a search over types (strict: each must be granted;
// otherwise at least one, the others are left out) and builds its
// narrowing.
//
// The narrowing covers every type the search may return (matches and
// _include/_revinclude, chain and _has targets), so AllowedTypes lists all
// types granted perm, not only the searched ones. The searched types are
// kept exact: when one of them is granted through patient/ scopes,
// RestrictPatients confines every compartment member type (also those a
// user/ scope would grant wider); when none is, compartment member types
// granted only through patient/ scopes are left out of AllowedTypes.
func (d *decider) search(types []string, strict bool, perm scopes.Perm) Decision {
	grants := make(map[string]typeGrant, len(types))
	var main []string
	var firstFail *typeGrant
	for _, t := range types {
		g := d.grantFor(t, perm)
		if !g.ok {
			if strict {
				return deny(g.rule, g.reason())
			}
			if firstFail == nil || (firstFail.rule == RuleNotGranted && g.rule != RuleNotGranted) {
				firstFail = &g
			}
			continue
		}
		grants[t] = g
		main = append(main, t)
	}
	if len(main) == 0 {
		if firstFail != nil && firstFail.rule != RuleNotGranted {
			return deny(firstFail.rule, firstFail.reason())
		}
		return deny(RuleNotGranted, fmt.Sprintf("no scope grants %s on any of the searched types", perm))
	}
	mainPatient := false
	var basis []string
	for _, t := range main {
		mainPatient = mainPatient || !grants[t].upper
		basis = appendNew(basis, grants[t].basis...)
	}

	universe := fhir.ResourceTypes()
	var n Narrowing
	allowed := make([]string, 0, len(universe))
	for _, t := range universe {
		g, ok := grants[t]
		if !ok {
			if !d.anyScope(t, perm) {
				continue
			}
			g = d.grantFor(t, perm)
		}
		if !g.ok || (!mainPatient && !g.upper) {
			continue
		}
		allowed = append(allowed, t)
		if g.alts != nil {
			n.Restrictions = append(n.Restrictions, Restriction{Type: t, AnyOf: cloneAlts(g.alts)})
		}
	}
	if mainPatient {
		n.RestrictPatients = true
		n.Patients = []string{d.p.Patient}
	}
	if len(allowed) < len(universe) {
		n.RestrictTypes = true
		n.AllowedTypes = allowed
	}
	reason := fmt.Sprintf("%s on %s granted", perm, main[0])
	if len(main) > 1 {
		reason = fmt.Sprintf("%s granted on %d types", perm, len(main))
	}
	return Decision{Allow: true, Rule: RuleScope, Reason: reason, Basis: basis, Narrowing: n}
}

func cloneAlts(alts []url.Values) []url.Values {
	out := make([]url.Values, len(alts))
	for i, q := range alts {
		c := make(url.Values, len(q))
		for k, v := range q {
			c[k] = append([]string(nil), v...)
		}
		out[i] = c
	}
	return out
}
