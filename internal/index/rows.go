package index

import (
	"time"
)

// Rows are the typed search-index rows of one resource version: one row per
// value a search parameter's expression selects. Param is the parameter
// code (e.g. "code", "_lastUpdated").
type Rows struct {
	Strings    []StringRow
	Tokens     []TokenRow
	References []ReferenceRow
	Dates      []DateRow
	Numbers    []NumberRow
	Quantities []QuantityRow
	URIs       []URIRow
	Composites []CompositeRow
	// Positions are the coordinates of the special parameter
	// Location.near (Location.position).
	Positions []PositionRow
}

// StringRow is one value of a string parameter. HumanName and Address give
// one row per part (family, each given, line, city, ...), plus text.
type StringRow struct {
	Param string
	Norm  string // Normalize(Exact): default and :contains matching
	Exact string // as stored: :exact matching
}

// TokenRow is one value of a token parameter: a Coding (or each coding of a
// CodeableConcept), an Identifier (system|value), a ContactPoint
// (system|value), a code/string/id/uri (code only), a boolean
// ("true"/"false"). A CodeableConcept's text gives a row with Text only.
type TokenRow struct {
	Param  string
	System string
	Code   string
	// Text is the Coding.display or CodeableConcept.text (for :text);
	// TextNorm is its Normalize form.
	Text, TextNorm string
	// TypeSystem/TypeCode: an Identifier's type coding (for :of-type).
	TypeSystem, TypeCode string
}

// ReferenceRow is one value of a reference parameter.
type ReferenceRow struct {
	Param string
	// TargetType/TargetID/Version from a literal reference (relative or
	// absolute, with or without _history) or a canonical shaped like one.
	TargetType, TargetID, Version string
	// URL is the reference as written when absolute (http..., urn:...)
	// or a canonical (without its |version, which goes to Version).
	URL string
	// IdentifierSystem/IdentifierValue: Reference.identifier (for
	// :identifier).
	IdentifierSystem, IdentifierValue string
}

// DateRow is the range of instants a date, dateTime, instant, Period or
// Timing event covers: Low inclusive, High exclusive, both UTC. A value
// without a time zone (a date, or a partial dateTime) is taken as UTC. An
// open Period end is MinDate() or MaxDate().
type DateRow struct {
	Param     string
	Low, High time.Time
}

// MinDate is the Low of a Period without start.
func MinDate() time.Time { return time.Date(1, 1, 1, 0, 0, 0, 0, time.UTC) }

// MaxDate is the High of a Period without end.
func MaxDate() time.Time { return time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC) }

// NumberRow is one value of a number parameter.
type NumberRow struct {
	Param string
	Value string  // exact decimal text
	Float float64 // for range comparisons
}

// QuantityRow is one Quantity (Age, Duration, Distance, Count, Money
// (system urn:iso:std:iso:4217, code = currency)) or Range (Low != High).
type QuantityRow struct {
	Param     string
	Value     string // exact decimal text ("" for a Range)
	Low, High float64
	// HasLow/HasHigh: a Range with an open end has only one of them.
	HasLow, HasHigh bool
	System, Code    string
	Unit            string
}

// URIRow is one value of a uri parameter.
type URIRow struct {
	Param string
	URI   string
}

// PositionRow is one WGS84 position (Location.position) of the special
// parameter near: latitude in [-90, 90] and longitude in [-180, 180]
// degrees.
type PositionRow struct {
	Param    string
	Lat, Lon float64
}

// CompositeRow is one combination of component values of a composite
// parameter, taken from the same element (e.g. one Observation.component's
// code and value).
type CompositeRow struct {
	Param      string
	Components []Value
}

// Value is one component value of a composite row: exactly one field is
// set, matching the component parameter's type.
type Value struct {
	Code      string // the component parameter code
	String    *StringRow
	Token     *TokenRow
	Reference *ReferenceRow
	Date      *DateRow
	Number    *NumberRow
	Quantity  *QuantityRow
	URI       *URIRow
}
