package fhirapi

import (
	"strconv"

	"github.com/fhirguard/fhirguard/internal/fhir/searchparam"
	"github.com/fhirguard/fhirguard/internal/search"
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
		sp := capSearchParam{Name: p.Code, Definition: p.URL, Type: string(p.Type)}
		if p.Type == searchparam.TypeSpecial && p.Code == "near" {
			sp.Documentation = nearDoc()
		}
		r.SearchParam = append(r.SearchParam, sp)
		if p.Type == searchparam.TypeReference {
			r.SearchInclude = append(r.SearchInclude, r.Type+":"+p.Code)
		}
	}
}

// nearDoc documents the near parameter's server choices.
func nearDoc() string {
	return "latitude|longitude[|distance[|units]]: the great-circle distance on a sphere of the mean Earth radius; " +
		"units km (default), m or [mi_i]; default distance " + strconv.FormatFloat(search.DefaultNearKm, 'g', -1, 64) +
		" km; results are not sorted by distance"
}

// searchable reports whether fhirguard answers searches on p: every
// parameter with an expression (Location.near included).
func searchable(p *searchparam.Param) bool {
	return p.Expression != ""
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
