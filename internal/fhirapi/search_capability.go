package fhirapi

import (
	"github.com/fhirguard/fhirguard/internal/fhir/searchparam"
)

// The CapabilityStatement's search part (owned by the search area).

type capSearchParam struct {
	Name          string `json:"name"`
	Definition    string `json:"definition,omitempty"`
	Type          string `json:"type"`
	Documentation string `json:"documentation,omitempty"`
}

// searchCapability adds search-type, the conditional interactions and the
// type's search parameters, includes and reverse includes.
func searchCapability(r *capResource) {
	r.Interaction = append(r.Interaction, capCode{Code: "search-type"})
	r.ConditionalCreate = true
	r.ConditionalUpdate = true
	r.ConditionalDelete = "single"
	r.SearchInclude = []string{r.Type + ":*"}
	r.SearchRevInclude = []string{"*"}
	for _, p := range searchparam.ForType(r.Type) {
		if p.Base != r.Type || !searchable(p) {
			continue
		}
		r.SearchParam = append(r.SearchParam, capSearchParam{Name: p.Code, Definition: p.URL, Type: string(p.Type)})
		if p.Type == searchparam.TypeReference {
			r.SearchInclude = append(r.SearchInclude, r.Type+":"+p.Code)
		}
	}
}

// searchable reports whether fhirguard answers searches on p: every
// parameter with an expression but Location.near (geographic search).
func searchable(p *searchparam.Param) bool {
	return p.Expression != "" && p.Type != searchparam.TypeSpecial
}

// commonSearchParams are the parameters of every resource type (_id,
// _lastUpdated, _tag, _profile, _security, _source), for system search.
func commonSearchParams() []capSearchParam {
	var out []capSearchParam
	for _, p := range searchparam.ForType("Binary") {
		if p.Base == "Resource" && searchable(p) {
			out = append(out, capSearchParam{Name: p.Code, Definition: p.URL, Type: string(p.Type)})
		}
	}
	return out
}
