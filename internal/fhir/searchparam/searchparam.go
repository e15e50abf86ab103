// Package searchparam owns the FHIR R4 search-parameter and Patient
// compartment tables of fhirguard, generated from the official definitions
// (the R4 SearchParameter Bundle plus the US Core parameters) by ./gen and
// committed as tables_gen.go and params*_gen.go, so the project builds without the source files.
//
// Every parameter is listed once per resource type it applies to, with its
// FHIRPath expression restricted to that type (the spec's unions over many
// bases are split). Resource-independent parameters (_id, _lastUpdated,
// _profile, _security, _source, _tag on Resource; _text on DomainResource)
// are found for every type they apply to. The tables are immutable: callers
// must not modify a returned Param or its slices.
package searchparam

//go:generate go run ./gen -src ../../../../shared/fhir-r4 -dir .

import (
	"sort"

	"github.com/fhirguard/fhirguard/internal/fhir"
)

// Type is a search parameter type.
type Type string

// The R4 search parameter types.
const (
	TypeString    Type = "string"
	TypeToken     Type = "token"
	TypeReference Type = "reference"
	TypeDate      Type = "date"
	TypeNumber    Type = "number"
	TypeQuantity  Type = "quantity"
	TypeURI       Type = "uri"
	TypeComposite Type = "composite"
	TypeSpecial   Type = "special"
)

// Param is one search parameter as it applies to one resource type.
type Param struct {
	// Base is the resource type ("Resource" / "DomainResource" for the
	// resource-independent parameters).
	Base string
	Code string
	Type Type
	// URL is the canonical URL of the SearchParameter (US Core parameters
	// keep their http://hl7.org/fhir/us/core/... URL).
	URL string
	// Expression is the FHIRPath expression restricted to Base; empty for
	// _text, _content and _query, which have none.
	Expression string
	// Targets are the resource types a reference parameter may point to.
	Targets []string
	// Components are the parts of a composite parameter, in order.
	Components []Component
	// MultipleOr / MultipleAnd: whether several values may be or'ed in one
	// parameter / the parameter repeated (true unless the definition says
	// false).
	MultipleOr, MultipleAnd bool
	// Modifiers allowed (from the definition, else the R4 modifiers of the
	// parameter type).
	Modifiers []string
	// Comparators allowed for date, number and quantity parameters.
	Comparators []string
}

// Component is one part of a composite parameter.
type Component struct {
	// Code is the code of the parameter Definition points to.
	Code string
	// Definition is the canonical URL of the component's SearchParameter.
	Definition string
	// Expression is evaluated relative to each node the composite's own
	// Expression selects.
	Expression string
}

// HasModifier reports whether m is an allowed modifier of p.
func (p *Param) HasModifier(m string) bool {
	for _, x := range p.Modifiers {
		if x == m {
			return true
		}
	}
	return false
}

// HasComparator reports whether c (eq, ne, gt, ...) is an allowed
// comparator of p.
func (p *Param) HasComparator(c string) bool {
	for _, x := range p.Comparators {
		if x == c {
			return true
		}
	}
	return false
}

type typeSpan struct {
	base   string
	params []Param // sorted by code
}

type compartmentEntry struct {
	typ    string
	params []string
}

func span(base string) []Param {
	i := sort.Search(len(typeSpans), func(i int) bool { return typeSpans[i].base >= base })
	if i < len(typeSpans) && typeSpans[i].base == base {
		return typeSpans[i].params
	}
	return nil
}

func find(list []Param, code string) *Param {
	i := sort.Search(len(list), func(i int) bool { return list[i].Code >= code })
	if i < len(list) && list[i].Code == code {
		return &list[i]
	}
	return nil
}

// IsDomainResource reports whether typ is an R4 resource type derived from
// DomainResource: all but Binary, Bundle and Parameters.
func IsDomainResource(typ string) bool {
	return fhir.IsResourceType(typ) && typ != "Binary" && typ != "Bundle" && typ != "Parameters"
}

// IsChoiceElement reports whether name is the name of an R4 choice element
// (value for value[x], onset for onset[x], ...) in some type.
func IsChoiceElement(name string) bool {
	i := sort.SearchStrings(choiceElements[:], name)
	return i < len(choiceElements) && choiceElements[i] == name
}

// common returns the resource-independent parameters that apply to typ.
func common(typ string) [][]Param {
	out := [][]Param{span("Resource")}
	if IsDomainResource(typ) {
		out = append(out, span("DomainResource"))
	}
	return out
}

// Lookup returns the parameter code of resource type typ, including the
// resource-independent ones (_id, _lastUpdated, ...).
func Lookup(typ, code string) (*Param, bool) {
	if !fhir.IsResourceType(typ) {
		return nil, false
	}
	if p := find(span(typ), code); p != nil {
		return p, true
	}
	for _, c := range common(typ) {
		if p := find(c, code); p != nil {
			return p, true
		}
	}
	return nil, false
}

// ForType returns every parameter of resource type typ: its own, sorted by
// code, then the resource-independent ones. Nil for an unknown type.
func ForType(typ string) []*Param {
	if !fhir.IsResourceType(typ) {
		return nil
	}
	own := span(typ)
	out := make([]*Param, 0, len(own)+8)
	for i := range own {
		out = append(out, &own[i])
	}
	for _, c := range common(typ) {
		for i := range c {
			out = append(out, &c[i])
		}
	}
	return out
}

// All returns every parameter of the tables (each (base, code) once),
// sorted by base then code.
func All() []*Param {
	var out []*Param
	for _, s := range typeSpans {
		for i := range s.params {
			out = append(out, &s.params[i])
		}
	}
	return out
}

// CompartmentParams returns the codes of the reference parameters of typ
// that place a resource in the named compartment ("Patient" is the only one
// fhirguard has), or nil when typ is not in it. A Patient is also in its own
// compartment by identity, which the "link" parameter does not express.
func CompartmentParams(compartment, typ string) []string {
	if compartment != "Patient" {
		return nil
	}
	i := sort.Search(len(patientCompartment), func(i int) bool { return patientCompartment[i].typ >= typ })
	if i < len(patientCompartment) && patientCompartment[i].typ == typ {
		out := make([]string, len(patientCompartment[i].params))
		copy(out, patientCompartment[i].params)
		return out
	}
	return nil
}

// CompartmentTypes returns the resource types with at least one parameter in
// the named compartment, sorted.
func CompartmentTypes(compartment string) []string {
	if compartment != "Patient" {
		return nil
	}
	out := make([]string, len(patientCompartment))
	for i, e := range patientCompartment {
		out[i] = e.typ
	}
	return out
}
