package search

import (
	"github.com/fhirguard/fhirguard/internal/fhir/searchparam"
)

// Query is one parsed FHIR search: the typed model the SQL compiler
// translates and the policy engine narrows. It is built by Parse,
// ParseCompartment or ParseSystem and is safe to read concurrently; callers
// that change it (setting Narrow) own their copy.
type Query struct {
	// Types are the resource types searched: one for a type search, the
	// _type list for a system search (empty = every type), the compartment's
	// member types for a compartment search without a type. Sorted and
	// deduplicated except for a single type search.
	Types []string
	// ExplicitTypes is true when Types came from a _type parameter (system
	// search, or compartment search over every type); Values then renders
	// _type again.
	ExplicitTypes bool
	// Compartment, when non-nil, restricts the results to the members of
	// one compartment (Patient/123/Observation?...).
	Compartment *Compartment
	// Where are the filter clauses; every clause must hold (AND).
	Where []Clause
	// Sort are the _sort keys in order. The compiler always appends the
	// creation-order tiebreak after them (see the package documentation).
	Sort []SortKey
	// Count is the page size (_count), already defaulted and clamped.
	// 0 means "no entries, only the total".
	Count int
	// Total is the requested Bundle.total handling (default accurate).
	Total TotalMode
	// Summary is the _summary mode (default false).
	Summary SummaryMode
	// Elements are the _elements names (top-level element names).
	Elements []string
	// Include and RevInclude are the _include / _revinclude directives.
	Include    []Include
	RevInclude []Include
	// Contained and ContainedType are _contained and _containedType:
	// with true or both the clauses describe contained resources of
	// Types, and the search returns their containers (container, the
	// default) or the contained resources themselves (contained); both
	// adds the resources of Types that match by themselves.
	Contained     ContainedMode
	ContainedType ContainedType
	// Cursor is the raw, still unverified _cursor value of a follow-up
	// page. Verify it with CursorCodec.Decode once Narrow is set.
	Cursor string
	// Narrow holds the predicates the policy engine ANDs onto the search.
	// nil = no narrowing. See Narrowing for what the compiler must do.
	Narrow *Narrowing
}

// Compartment names one compartment instance, e.g. Patient/123.
type Compartment struct {
	Type string
	ID   string
}

// Clause is one occurrence of a search parameter (repeating a parameter
// gives several clauses, ANDed). Exactly one of the following describes
// what it matches, see Kind:
//
//   - Modifier == ModMissing: Missing says whether the resource must lack
//     (true) or have (false) a value for the parameter;
//   - Chain non-empty: the reference parameter points to a resource of
//     Chain[i].Type matching Chain[i].Where, for some i;
//   - Has non-nil: a resource of Has.Type refers to this one through
//     Has.Ref and matches Has.Where;
//   - otherwise Values: at least one of the typed values matches (OR).
type Clause struct {
	// Name is the parameter name as written (with modifier and chain), for
	// messages and for rebuilding links.
	Name string
	// Code is the parameter code ("subject", "_id", "_has" for reverse
	// chains).
	Code string
	// Type is the parameter type (token, string, ...); empty for _has.
	Type searchparam.Type
	// Param is the definition for the first of the searched types (every
	// other searched type has a parameter with the same code and type).
	// nil for _has.
	Param *searchparam.Param
	// Modifier is the modifier (ModNone when absent).
	Modifier Modifier
	// TargetType is the type given by the :[type] modifier of a reference
	// parameter (Modifier == ModType); values are references to that type.
	TargetType string
	// Missing is the :missing value (only with ModMissing).
	Missing bool
	// Values is the OR-list of typed values; each element's concrete type
	// follows Type (see Value).
	Values []Value
	// Chain is set for a chained parameter (subject:Patient.name=x): one
	// Link per possible target type, ORed.
	Chain []Link
	// Has is set for a reverse chain (_has:Observation:patient:code=x).
	Has *Has
}

// ClauseKind says which part of a Clause carries its meaning.
type ClauseKind int

// The clause kinds.
const (
	KindValues ClauseKind = iota
	KindMissing
	KindChain
	KindHas
)

// Kind reports which field of c describes what it matches.
func (c *Clause) Kind() ClauseKind {
	switch {
	case c.Has != nil:
		return KindHas
	case len(c.Chain) > 0:
		return KindChain
	case c.Modifier == ModMissing:
		return KindMissing
	default:
		return KindValues
	}
}

// Link is one step of a chained parameter: the referenced resource is of
// Type and matches Where.
type Link struct {
	Type  string
	Where Clause
}

// Has is a reverse chain: there is a resource of Type whose reference
// parameter Ref points at the resource being searched and which matches
// Where (which may itself be a _has or a chain).
type Has struct {
	Type     string
	Ref      string
	RefParam *searchparam.Param
	Where    Clause
}

// Modifier is a search parameter modifier.
type Modifier string

// The modifiers fhirguard understands. ModType stands for the :[type]
// modifier of reference parameters (Clause.TargetType holds the type).
const (
	ModNone       Modifier = ""
	ModMissing    Modifier = "missing"
	ModExact      Modifier = "exact"
	ModContains   Modifier = "contains"
	ModText       Modifier = "text"
	ModNot        Modifier = "not"
	ModAbove      Modifier = "above"
	ModBelow      Modifier = "below"
	ModOfType     Modifier = "of-type"
	ModIdentifier Modifier = "identifier"
	ModIn         Modifier = "in"
	ModNotIn      Modifier = "not-in"
	ModType       Modifier = "type"
)

// SortKey is one _sort key.
type SortKey struct {
	Code       string
	Type       searchparam.Type
	Param      *searchparam.Param
	Descending bool
}

// Include is one _include or _revinclude directive
// (SourceType:Param[:TargetType], with :iterate).
type Include struct {
	SourceType string
	// Param is the reference parameter code on SourceType, or "*" for
	// every reference parameter of SourceType.
	Param string
	// TargetType restricts the referenced type; empty = any.
	TargetType string
	Iterate    bool
}

// TotalMode is the _total parameter.
type TotalMode string

// The _total values.
const (
	TotalNone     TotalMode = "none"
	TotalEstimate TotalMode = "estimate"
	TotalAccurate TotalMode = "accurate"
)

// SummaryMode is the _summary parameter.
type SummaryMode string

// The _summary values.
const (
	SummaryFalse SummaryMode = "false"
	SummaryTrue  SummaryMode = "true"
	SummaryText  SummaryMode = "text"
	SummaryData  SummaryMode = "data"
	SummaryCount SummaryMode = "count"
)

// ContainedMode is the _contained parameter.
type ContainedMode string

// The _contained values.
const (
	ContainedFalse ContainedMode = "false"
	ContainedTrue  ContainedMode = "true"
	ContainedBoth  ContainedMode = "both"
)

// ContainedType is the _containedType parameter.
type ContainedType string

// The _containedType values.
const (
	ContainedTypeContainer ContainedType = "container"
	ContainedTypeContained ContainedType = "contained"
)

// Narrowing are the predicates the policy engine ANDs onto a search. The
// zero value narrows nothing. Every field restricts; none widens.
//
// The compiler MUST apply the same narrowing, as SQL predicates, to:
// the matched resources, Bundle.total (every _total mode), every paging
// step, the resources added by _include and _revinclude (including
// :iterate rounds), the targets a chained parameter may match (so a chain
// cannot test hidden resources), the resources a _has subquery may match,
// and the compartment search. A hidden resource must never influence a
// result, a count or a link. The cursor fingerprint covers the narrowing,
// so a cursor is useless under any other narrowing.
type Narrowing struct {
	// RestrictPatients limits resources of the Patient compartment's member
	// types (searchparam.CompartmentTypes("Patient"), Patient included) to
	// those in the compartment of one of Patients. Resources of other types
	// are not affected by it (use RestrictTypes). With RestrictPatients and
	// no Patients, no compartment member is visible.
	RestrictPatients bool
	Patients         []string
	// RestrictTypes limits every resource to the AllowedTypes (an empty
	// list with RestrictTypes allows nothing).
	RestrictTypes bool
	AllowedTypes  []string
	// Restrictions filter resources of one type each (e.g. Observation
	// with category=laboratory from a granular SMART scope); see
	// Restriction. Several Restrictions on the same type are ANDed.
	Restrictions []Restriction
	// ExcludeLabels hides every resource carrying one of these
	// meta.security codings.
	ExcludeLabels []Coding
	// ExcludeIDs hides these resources ("Type/id").
	ExcludeIDs []string
}

// IsZero reports whether n narrows nothing (a zero Narrowing and a nil
// one are the same search).
func (n *Narrowing) IsZero() bool {
	return !n.RestrictPatients && len(n.Patients) == 0 && !n.RestrictTypes && len(n.AllowedTypes) == 0 &&
		len(n.Restrictions) == 0 && len(n.ExcludeLabels) == 0 && len(n.ExcludeIDs) == 0
}

// Restriction limits the resources of Type to those matching every clause
// of at least one of AnyOf (an OR of ANDs, as several granular scopes on
// one type combine). A Restriction with an empty AnyOf hides the type; an
// empty clause list inside AnyOf matches every resource of the type.
// Resources of other types are not affected. Build the clauses with
// ParseClauses so they are validated like client parameters.
type Restriction struct {
	Type  string
	AnyOf [][]Clause
}

// Coding is a system|code pair (a security label).
type Coding struct {
	System string
	Code   string
}
