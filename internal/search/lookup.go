package search

import "github.com/fhirguard/fhirguard/internal/fhir/searchparam"

// ParamLookup finds the definition of a search parameter of a resource
// type. typ "Resource" asks for a parameter every resource type has (_id,
// _lastUpdated, _tag, _profile, _security, _source), used by a system
// search without _type.
type ParamLookup interface {
	Lookup(typ, code string) (*searchparam.Param, bool)
}

// Tables is the ParamLookup over the generated R4 + US Core tables of
// internal/fhir/searchparam; it is the default of Options.Params.
type Tables struct{}

// Lookup implements ParamLookup.
func (Tables) Lookup(typ, code string) (*searchparam.Param, bool) {
	if typ == "Resource" {
		// Binary derives from Resource only, so its common parameters are
		// exactly the resource-independent ones.
		p, ok := searchparam.Lookup("Binary", code)
		if !ok || p.Base != "Resource" {
			return nil, false
		}
		return p, true
	}
	return searchparam.Lookup(typ, code)
}
