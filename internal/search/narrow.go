package search

import (
	"net/url"

	"github.com/fhirguard/fhirguard/internal/fhir"
)

// ParseClauses parses filter parameters only (no _sort, _count, _include,
// ...) on one resource type, strictly: the policy engine builds
// Restriction clauses from scope parameters with it
// (patient/Observation.rs?category=laboratory → ParseClauses("Observation",
// {category: [laboratory]}, opts)).
func ParseClauses(typ string, params url.Values, opts Options) ([]Clause, error) {
	if !fhir.IsResourceType(typ) {
		return nil, notSupported("unknown resource type %s", quote(typ))
	}
	opts.Handling = Strict
	p := newParser(opts)
	var out []Clause
	for _, name := range sortedKeys(params) {
		if isResultParam(name) {
			return nil, fhir.Errorf(fhir.IssueInvalid, "parameter %s is not a filter", quote(name))
		}
		for _, raw := range params[name] {
			c, err := p.clauseFor([]string{typ}, name, raw)
			if err != nil {
				return nil, err
			}
			if c != nil {
				out = append(out, *c)
			}
		}
	}
	return out, nil
}

// NewRestriction builds a Restriction on typ from parameter sets (an OR of
// ANDs, as the policy engine expresses granular scopes), parsing each set
// with ParseClauses. An empty anyOf hides the type.
func NewRestriction(typ string, anyOf []url.Values, opts Options) (Restriction, error) {
	r := Restriction{Type: typ, AnyOf: make([][]Clause, 0, len(anyOf))}
	for _, params := range anyOf {
		cs, err := ParseClauses(typ, params, opts)
		if err != nil {
			return Restriction{}, err
		}
		if len(cs) == 0 {
			// An empty parameter set restricts nothing: the whole type is
			// visible, which no other alternative can narrow again.
			return Restriction{Type: typ, AnyOf: [][]Clause{{}}}, nil
		}
		r.AnyOf = append(r.AnyOf, cs)
	}
	return r, nil
}
