package sqlstore

import (
	"slices"
	"strings"

	"github.com/fhirguard/fhirguard/internal/fhir"
	"github.com/fhirguard/fhirguard/internal/fhir/searchparam"
)

// Not every parameter needs rows of its own. Many R4 parameters select
// exactly what others already select, and writing the same values twice
// would double the index work of every write:
//
//   - unions: Observation.combo-code is "Observation.code |
//     Observation.component.code", the rows of code and component-code;
//   - restrictions: Observation.patient is "Observation.subject.where(
//     resolve() is Patient)", the subject rows that point to a Patient;
//   - duplicates: Patient.phonetic has the expression of Patient.name;
//   - composites on the resource itself (Observation.code-value-quantity:
//     the code and the value of the one Observation) are the conjunction
//     of their components' own parameters; composites over a union
//     (combo-code-value-quantity) are the union of the composites over
//     each part.
//
// The plan records, per parameter, whether it is stored, and if not, where
// its rows are found. The compiler asks the plan for the rows of a
// parameter, so a query never depends on how a parameter is kept.

// source is one place a parameter's rows are kept: the rows of stored
// parameter code, restricted to references to targetType when set.
type source struct {
	code       string
	targetType string
}

// paramPlan says how one parameter of one type is kept.
type paramPlan struct {
	// stored: the parameter has rows of its own (composites: one row per
	// component and combination, grp > 0).
	stored bool
	// sources: otherwise, the stored parameters whose rows are its rows.
	sources []source
	// virtual: a composite on the resource itself; each component matches
	// its own parameter's rows.
	virtual bool
	// composites: a composite over a union: the composites (virtual or
	// stored) whose matches together are its matches.
	composites []string
}

// exprParts splits a FHIRPath expression at its top-level unions and
// strips the parentheses around each part.
func exprParts(e string) []string {
	var parts []string
	depth, start := 0, 0
	for i := 0; i < len(e); i++ {
		switch e[i] {
		case '(':
			depth++
		case ')':
			depth--
		case '\'':
			for i++; i < len(e) && e[i] != '\''; i++ {
				if e[i] == '\\' {
					i++
				}
			}
		case '|':
			if depth == 0 {
				parts = append(parts, e[start:i])
				start = i + 1
			}
		}
	}
	parts = append(parts, e[start:])
	for i, p := range parts {
		p = strings.TrimSpace(p)
		for len(p) >= 2 && p[0] == '(' && p[len(p)-1] == ')' && balanced(p[1:len(p)-1]) {
			p = strings.TrimSpace(p[1 : len(p)-1])
		}
		parts[i] = p
	}
	return parts
}

// balanced reports whether the parentheses of s match.
func balanced(s string) bool {
	d := 0
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '(':
			d++
		case ')':
			d--
			if d < 0 {
				return false
			}
		}
	}
	return d == 0
}

// restricted recognizes "E.where(resolve() is T)".
func restricted(part string) (base, target string, ok bool) {
	const marker = ".where(resolve() is "
	i := strings.LastIndex(part, marker)
	if i < 0 || !strings.HasSuffix(part, ")") {
		return "", "", false
	}
	t := part[i+len(marker) : len(part)-1]
	if !fhir.IsResourceType(t) {
		return "", "", false
	}
	return part[:i], t, true
}

// planType computes the plans of the parameters of one resource type.
func planType(typ string) map[string]paramPlan {
	params := searchparam.ForType(typ)
	plans := make(map[string]paramPlan, len(params))
	own := func(p *searchparam.Param) bool { // indexed under this type
		k, ok := keyFor(typ, p.Code)
		return ok && k.base == typ
	}
	parts := map[string][]string{}
	for _, p := range params {
		if own(p) {
			parts[p.Code] = exprParts(p.Expression)
		}
	}
	// Plain parameters: a parameter is a source candidate when it is kept
	// as it is; the first (by code) of identical ones keeps the rows.
	var plain []*searchparam.Param
	for _, p := range params {
		if own(p) && p.Type != searchparam.TypeComposite {
			plain = append(plain, p)
		}
	}
	isSource := map[string]bool{}
	for _, p := range plain {
		isSource[p.Code] = true
	}
	for _, p := range plain {
		if srcs, ok := unionSources(p, plain, parts); ok {
			plans[p.Code] = paramPlan{sources: srcs}
			isSource[p.Code] = false
		}
	}
	for _, p := range plain {
		if _, done := plans[p.Code]; !done {
			plans[p.Code] = paramPlan{stored: true}
		}
	}
	// A parameter whose sources are not all stored keeps its own rows.
	for changed := true; changed; {
		changed = false
		for _, p := range plain {
			pl := plans[p.Code]
			for _, src := range pl.sources {
				if !plans[src.code].stored {
					plans[p.Code] = paramPlan{stored: true}
					changed = true
					break
				}
			}
		}
	}
	// Composites.
	var comps []*searchparam.Param
	for _, p := range params {
		if own(p) && p.Type == searchparam.TypeComposite {
			comps = append(comps, p)
		}
	}
	for _, p := range comps {
		if virtualComposite(typ, p, parts) {
			plans[p.Code] = paramPlan{virtual: true}
		}
	}
	for _, p := range comps {
		if _, done := plans[p.Code]; done {
			continue
		}
		if cs, ok := unionComposites(p, comps, plans); ok {
			plans[p.Code] = paramPlan{composites: cs}
			continue
		}
		plans[p.Code] = paramPlan{stored: true}
	}
	return plans
}

// unionSources finds the stored parameters whose rows together are p's:
// an identical parameter earlier by code, a "where(resolve() is T)"
// restriction of one, or other parameters whose parts cover p's.
func unionSources(p *searchparam.Param, plain []*searchparam.Param, parts map[string][]string) ([]source, bool) {
	mine := parts[p.Code]
	same := func(q *searchparam.Param) bool { return q.Code != p.Code && q.Type == p.Type }
	// Identical expression: the first by code keeps the rows.
	for _, q := range plain {
		if same(q) && q.Code < p.Code && slices.Equal(parts[q.Code], mine) && !isUnion(q, plain, parts) {
			return []source{{code: q.Code}}, true
		}
	}
	// A restriction of one reference parameter.
	if p.Type == searchparam.TypeReference && len(mine) == 1 {
		if base, target, ok := restricted(mine[0]); ok {
			for _, q := range plain {
				if same(q) && slices.Equal(parts[q.Code], []string{base}) && !isUnion(q, plain, parts) {
					return []source{{code: q.Code, targetType: target}}, true
				}
			}
		}
	}
	// A union of other parameters' parts.
	if len(mine) < 2 {
		return nil, false
	}
	var srcs []source
	covered := map[string]bool{}
	for _, q := range plain {
		qp := parts[q.Code]
		if !same(q) || len(qp) >= len(mine) || isUnion(q, plain, parts) {
			continue
		}
		if !subset(qp, mine) {
			continue
		}
		srcs = append(srcs, source{code: q.Code})
		for _, x := range qp {
			covered[x] = true
		}
	}
	for _, x := range mine {
		if !covered[x] {
			return nil, false
		}
	}
	return srcs, true
}

// isUnion reports whether q is itself kept as a union (so it cannot be a
// source): it has several parts all covered by smaller parameters.
func isUnion(q *searchparam.Param, plain []*searchparam.Param, parts map[string][]string) bool {
	qp := parts[q.Code]
	if len(qp) < 2 {
		return false
	}
	covered := map[string]bool{}
	for _, o := range plain {
		op := parts[o.Code]
		if o.Code == q.Code || o.Type != q.Type || len(op) >= len(qp) || !subset(op, qp) {
			continue
		}
		for _, x := range op {
			covered[x] = true
		}
	}
	for _, x := range qp {
		if !covered[x] {
			return false
		}
	}
	return true
}

func subset(a, b []string) bool {
	for _, x := range a {
		if !slices.Contains(b, x) {
			return false
		}
	}
	return true
}

// virtualComposite reports whether composite p is on the resource itself
// and each component's parameter selects exactly that component.
func virtualComposite(typ string, p *searchparam.Param, parts map[string][]string) bool {
	if p.Expression != typ || len(p.Components) == 0 {
		return false
	}
	for _, c := range p.Components {
		cp, ok := searchparam.Lookup(typ, c.Code)
		if !ok || cp.Type == searchparam.TypeComposite {
			return false
		}
		want := typ + "." + c.Expression
		if !slices.ContainsFunc(exprParts(cp.Expression), func(x string) bool { return strings.EqualFold(x, want) }) {
			return false
		}
	}
	return true
}

// unionComposites finds, for a composite over a union of elements, the
// composites over each part with the same components.
func unionComposites(p *searchparam.Param, comps []*searchparam.Param, plans map[string]paramPlan) ([]string, bool) {
	mine := exprParts(p.Expression)
	if len(mine) < 2 {
		return nil, false
	}
	var out []string
	for _, part := range mine {
		found := ""
		for _, q := range comps {
			if q.Code == p.Code || q.Expression != part || !sameComponents(p, q) {
				continue
			}
			if pl, ok := plans[q.Code]; ok && len(pl.composites) > 0 {
				continue
			}
			found = q.Code
			break
		}
		if found == "" {
			return nil, false
		}
		out = append(out, found)
	}
	return out, true
}

func sameComponents(a, b *searchparam.Param) bool {
	if len(a.Components) != len(b.Components) {
		return false
	}
	for i := range a.Components {
		ca, oka := searchparam.Lookup(a.Base, a.Components[i].Code)
		cb, okb := searchparam.Lookup(b.Base, b.Components[i].Code)
		if !oka || !okb || ca.Type != cb.Type || !strings.EqualFold(a.Components[i].Expression, b.Components[i].Expression) {
			return false
		}
	}
	return true
}
