package sqlstore

import (
	"slices"
	"strings"

	"github.com/fhirguard/fhirguard/internal/fhir"
	"github.com/fhirguard/fhirguard/internal/fhir/searchparam"
	"github.com/fhirguard/fhirguard/internal/search"
)

// The policy's narrowing as predicates on a resource alias (see
// search.Narrowing for where the compiler applies it; contained
// resources: containedNarrowing).

// narrowing returns the policy predicates on resource alias a, whose type
// is one of types (nil = any type).
func (b *builder) narrowing(a string, types []string) ([]string, error) {
	n := b.narrow
	if n == nil || n.IsZero() {
		return nil, nil
	}
	if b.d.isContained() {
		return b.containedNarrowing(a, types)
	}
	known := len(types) > 0
	allIn := func(set []string) bool { return allOf(types, set) }
	noneIn := func(set []string) bool {
		if !known {
			return false
		}
		for _, t := range types {
			if slices.Contains(set, t) {
				return false
			}
		}
		return true
	}
	var out []string
	if n.RestrictTypes && !allIn(n.AllowedTypes) {
		out = append(out, in(b, a+".type", n.AllowedTypes))
	}
	if n.RestrictPatients {
		members := searchparam.CompartmentTypes("Patient")
		if !noneIn(members) {
			member := "1 = 0"
			if len(n.Patients) > 0 {
				member = "EXISTS (SELECT 1 FROM compartment nc WHERE nc.rid = " + a + ".rid AND " + in(b, "nc.patient_id", n.Patients) + ")"
			}
			if allIn(members) {
				out = append(out, member)
			} else {
				out = append(out, "("+a+".type NOT IN "+list(b, members)+" OR "+member+")")
			}
		}
	}
	rs, err := b.restrictionConds(a, types)
	if err != nil {
		return nil, err
	}
	out = append(out, rs...)
	if len(n.ExcludeLabels) > 0 {
		var ors []string
		for _, l := range n.ExcludeLabels {
			ors = append(ors, "nl.system = "+b.arg(l.System)+" AND nl.code = "+b.arg(l.Code))
		}
		out = append(out, "NOT EXISTS (SELECT 1 FROM labels nl WHERE nl.rid = "+a+".rid AND ("+orJoin(ors)+"))")
	}
	if len(n.ExcludeIDs) > 0 {
		byType := map[string][]string{}
		var order []string
		for _, ref := range n.ExcludeIDs {
			t, id, ok := strings.Cut(ref, "/")
			if !ok || known && !slices.Contains(types, t) {
				continue
			}
			if _, seen := byType[t]; !seen {
				order = append(order, t)
			}
			byType[t] = append(byType[t], id)
		}
		for _, t := range order {
			out = append(out, "NOT ("+a+".type = "+b.arg(t)+" AND "+in(b, a+".id", byType[t])+")")
		}
	}
	return out, nil
}

// allOf reports whether types is known (not empty) and each is in set.
func allOf(types, set []string) bool {
	if len(types) == 0 {
		return false
	}
	for _, t := range types {
		if !slices.Contains(set, t) {
			return false
		}
	}
	return true
}

// restrictionConds compiles the narrowing's Restrictions on alias a (of
// one of types; nil = any type).
func (b *builder) restrictionConds(a string, types []string) ([]string, error) {
	known := len(types) > 0
	var out []string
	for _, r := range b.narrow.Restrictions {
		if known && !slices.Contains(types, r.Type) {
			continue
		}
		var alts []string
		open := false
		for _, cs := range r.AnyOf {
			if len(cs) == 0 {
				open = true
				break
			}
			if b.d.isContained() && slices.ContainsFunc(cs, func(c search.Clause) bool { return c.Kind() == search.KindHas }) {
				// _has cannot select a contained resource: the
				// alternative allows none.
				alts = append(alts, "1 = 0")
				continue
			}
			conds, err := b.restrictionClauses(a, r.Type, cs)
			if err != nil {
				return nil, err
			}
			alts = append(alts, strings.Join(conds, " AND "))
		}
		if open {
			continue
		}
		cond := "1 = 0"
		if len(alts) > 0 {
			cond = orJoin(alts)
		}
		if known && len(types) == 1 {
			out = append(out, "("+cond+")")
		} else {
			out = append(out, "("+a+".type <> "+b.arg(r.Type)+" OR ("+cond+"))")
		}
	}
	return out, nil
}

// restrictionClauses compiles the clauses of one alternative of a
// Restriction on alias a (all filters; the narrowing is not re-applied to
// the alias itself, but is to chain and _has targets).
func (b *builder) restrictionClauses(a, typ string, cs []search.Clause) ([]string, error) {
	b.depth++
	defer func() { b.depth-- }()
	if b.depth > maxFilterDepth {
		return nil, &fhir.Error{Code: fhir.IssueTooCostly, Diag: "search too complex: too many nested chains, _has and restrictions"}
	}
	out := make([]string, 0, len(cs))
	for i := range cs {
		s, _, err := b.clause(a, []string{typ}, &cs[i], false)
		if err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	return out, nil
}
