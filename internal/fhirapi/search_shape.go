package fhirapi

import (
	"encoding/json"
	"fmt"
	"strings"

	"github.com/fhirguard/fhirguard/internal/fhir"
	"github.com/fhirguard/fhirguard/internal/fhir/searchparam"
	"github.com/fhirguard/fhirguard/internal/fhir/spec"
	"github.com/fhirguard/fhirguard/internal/search"
)

// _summary and _elements (owned by the search area). The R4 JSON schema
// fhirguard is built from does not carry the spec's isSummary flags, so
// _summary=true keeps the elements a search parameter of the type reads
// (identifiers, status, codes, subjects, dates, ... — in practice the
// summary elements), the required elements and id, meta, implicitRules
// and modifierExtension. _summary=text keeps text and the required
// elements, _summary=data drops text, _elements keeps the named elements
// and the required ones. Every reduced resource is tagged SUBSETTED.

// subsettedTag is the meta.tag of a resource returned incomplete.
func subsettedTag() map[string]any {
	return map[string]any{
		"system": "http://terminology.hl7.org/CodeSystem/v3-ObservationValue",
		"code":   "SUBSETTED", "display": "subsetted",
	}
}

// shaper knows, per resource type, the elements of _summary=true.
type shaper struct {
	model   *spec.Model
	summary map[string]map[string]bool
}

func newShaper() (*shaper, error) {
	m, err := spec.Load()
	if err != nil {
		return nil, fmt.Errorf("load the structure model: %w", err)
	}
	s := &shaper{model: m, summary: map[string]map[string]bool{}}
	for _, typ := range fhir.ResourceTypes() {
		set := map[string]bool{"id": true, "meta": true, "implicitRules": true, "modifierExtension": true}
		for _, p := range searchparam.ForType(typ) {
			for _, name := range rootElements(typ, p.Expression) {
				set[name] = true
			}
		}
		s.summary[typ] = set
	}
	return s, nil
}

// rootElements lists the top-level element names expression e reads on typ
// ("Observation.value.ofType(Quantity)" → value).
func rootElements(typ, e string) []string {
	var out []string
	prefix := typ + "."
	for i := strings.Index(e, prefix); i >= 0; i = strings.Index(e, prefix) {
		if i > 0 && isIdent(e[i-1]) {
			e = e[i+len(prefix):]
			continue
		}
		e = e[i+len(prefix):]
		j := 0
		for j < len(e) && isIdent(e[j]) {
			j++
		}
		if j > 0 {
			out = append(out, e[:j])
		}
	}
	return out
}

func isIdent(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_'
}

// shape returns the body of r as the query's _summary/_elements ask
// (_elements only for matches).
func (a *API) shape(sq *search.Query, r *fhir.Resource, match bool) (json.RawMessage, error) {
	mode := sq.Summary
	elems := sq.Elements
	if !match {
		elems = nil
	}
	if (mode == "" || mode == search.SummaryFalse) && len(elems) == 0 {
		return r.Body, nil
	}
	t := a.shaper.model.Resource(r.Type)
	if t == nil {
		return r.Body, nil
	}
	data, err := fhir.ParseResource(r.Body)
	if err != nil {
		return nil, fmt.Errorf("shape %s/%s: %w", r.Type, r.ID, err)
	}
	required := map[string]bool{}
	for _, name := range t.Required {
		required[strings.TrimSuffix(name, "[x]")] = true
	}
	want := map[string]bool{}
	for _, e := range elems {
		want[e] = true
	}
	keep := func(key string) bool {
		switch key {
		case "resourceType", "id", "meta":
			return true
		}
		base := strings.TrimPrefix(key, "_")
		if el, _, ok := t.Lookup(key); ok {
			base = el.Name
			if el.Choice != "" {
				base = el.Choice
			}
		}
		if required[base] {
			return true
		}
		switch {
		case len(elems) > 0:
			return want[base] || want[key]
		case mode == search.SummaryText:
			return base == "text"
		case mode == search.SummaryData:
			return base != "text"
		}
		return a.shaper.summary[r.Type][base]
	}
	for k := range data {
		if !keep(k) {
			delete(data, k)
		}
	}
	meta, _ := data["meta"].(map[string]any)
	if meta == nil {
		meta = map[string]any{}
		data["meta"] = meta
	}
	tags, _ := meta["tag"].([]any)
	meta["tag"] = append(tags, subsettedTag())
	body, err := fhir.AppendResourceJSON(nil, r.Type, data)
	if err != nil {
		return nil, fmt.Errorf("shape %s/%s: %w", r.Type, r.ID, err)
	}
	return body, nil
}
