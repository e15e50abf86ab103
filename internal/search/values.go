package search

import (
	"time"

	"github.com/fhirguard/fhirguard/internal/fhir/searchparam"
)

// Value is one typed search value (one element of a comma-separated OR
// list). Its concrete type follows the clause's parameter type:
//
//	string     → StringValue
//	token      → TokenValue (also reference :identifier); URIValue with
//	             :in / :not-in (the ValueSet's URL[|version] or ValueSet/id)
//	reference  → ReferenceValue
//	date       → DateValue
//	number     → NumberValue
//	quantity   → QuantityValue
//	uri        → URIValue
//	composite  → CompositeValue
//	special    → NearValue (Location near)
//
// The set is closed: only this package implements Value.
type Value interface {
	// Raw is the value as sent, still escaped (for links and messages).
	Raw() string
	value()
}

// Prefix is a comparison prefix of a date, number or quantity value.
type Prefix string

// The R4 prefixes. PrefixEq is the default when none is given.
const (
	PrefixEq Prefix = "eq"
	PrefixNe Prefix = "ne"
	PrefixGt Prefix = "gt"
	PrefixLt Prefix = "lt"
	PrefixGe Prefix = "ge"
	PrefixLe Prefix = "le"
	PrefixSa Prefix = "sa"
	PrefixEb Prefix = "eb"
	PrefixAp Prefix = "ap"
)

// StringValue is a string parameter value. Norm is NormalizeString(Text):
// compare it with the normalized index column (prefix match by default,
// substring with :contains, always through EscapeLike). :exact compares
// Text with the exact (unnormalized) index column.
type StringValue struct {
	raw  string
	Text string
	Norm string
}

// SystemMode says how the system part of a token was given.
type SystemMode int

// The token system forms.
const (
	// SystemAny: "code" — the code in any system (or none).
	SystemAny SystemMode = iota
	// SystemNone: "|code" — the code with no system.
	SystemNone
	// SystemGiven: "system|code", or "system|" for any code of System.
	SystemGiven
)

// TokenValue is a token value (also the value of a reference :identifier).
//   - plain / :not: SystemMode with System and Code; Code "" with
//     SystemGiven matches every code of System;
//   - :text: Text is the normalized text to match (prefix, like strings)
//     against the coding display / CodeableConcept.text / Identifier
//     type text;
//   - :of-type: TypeSystem|TypeCode is the Identifier.type coding and Code
//     the Identifier.value.
type TokenValue struct {
	raw        string
	Mode       SystemMode
	System     string
	Code       string
	Text       string
	TypeSystem string
	TypeCode   string
}

// ReferenceValue is a reference parameter value. Exactly one form is set:
//   - local: Type (may be empty for a bare id without :[type]: any target
//     type) and ID, with Version when "/_history/n" was given;
//   - absolute: URL (an absolute reference not under Options.BaseURL, a
//     canonical, or a urn), with CanonicalVersion for "url|version".
type ReferenceValue struct {
	raw              string
	Type             string
	ID               string
	Version          string
	URL              string
	CanonicalVersion string
}

// DatePrecision is the precision a date value was given with.
type DatePrecision int

// The date precisions.
const (
	PrecisionYear DatePrecision = iota + 1
	PrecisionMonth
	PrecisionDay
	PrecisionMinute
	PrecisionSecond
	PrecisionFraction
)

// DateValue is a date parameter value: the half-open instant range
// [Low, High) implied by the precision (2020-03 = [2020-03-01T00:00,
// 2020-04-01T00:00) in the value's time zone or Options.Location), in UTC.
// For PrefixAp, ApLow/ApHigh widen the range by 10% of the distance to
// now (at least one day each side). The package documentation states how
// each prefix compares with an indexed range.
type DateValue struct {
	raw       string
	Prefix    Prefix
	Low       time.Time
	High      time.Time
	Precision DatePrecision
	ApLow     time.Time
	ApHigh    time.Time
}

// NumberValue is a number parameter value. Value is exact; [Low, High) is
// the range implied by its precision (100 → [99.5, 100.5)), used by eq
// and ne. For ap, [Low, High) is widened to ±10% of Value (and never
// narrower than the precision range). gt/lt/ge/le compare with Value.
type NumberValue struct {
	raw    string
	Prefix Prefix
	Value  Decimal
	Low    Decimal
	High   Decimal
}

// QuantityValue is a quantity value: the number part as NumberValue, and
// the unit. With SystemGiven, System|Code must match the quantity's
// system and code; with SystemNone ("5||mg"), Code matches the code or the
// unit; with SystemAny (no unit given) any unit matches.
type QuantityValue struct {
	raw    string
	Number NumberValue
	Mode   SystemMode
	System string
	Code   string
}

// URIValue is a uri parameter value, compared exactly (no normalization);
// :below matches indexed URIs starting with URI, :above indexed URIs that
// URI starts with.
type URIValue struct {
	raw string
	URI string
}

// CompositeValue is a composite value: one part per component of the
// parameter, in order, all of which must match the same composite node.
type CompositeValue struct {
	raw   string
	Parts []CompositePart
}

// CompositePart is one component of a CompositeValue.
type CompositePart struct {
	Code  string
	Type  searchparam.Type
	Value Value
}

// NearValue is the Location near value "lat|long|distance|units".
// Distance is nil when omitted (then DefaultNearKm applies); Units is the
// UCUM unit of Distance, one of NearUnits ("km" when omitted; "mi_i" is
// taken as "[mi_i]").
type NearValue struct {
	raw      string
	Lat      Decimal
	Long     Decimal
	Distance *Decimal
	Units    string
}

// DefaultNearKm is the distance of a near value without one: 5 km, as
// HAPI FHIR answers.
const DefaultNearKm = 5.0

// NearUnits are the distance units a near value accepts, with the
// kilometres in one unit: UCUM km, m and the international mile [mi_i].
var NearUnits = map[string]float64{"km": 1, "m": 0.001, "[mi_i]": 1.609344}

// Kilometres returns the distance of v in kilometres (DefaultNearKm when
// the value gave none).
func (v NearValue) Kilometres() float64 {
	if v.Distance == nil {
		return DefaultNearKm
	}
	per, ok := NearUnits[v.Units]
	if !ok {
		per = 1 // the parser accepts only NearUnits
	}
	return v.Distance.Float64() * per
}

// Raw implements Value.
func (v StringValue) Raw() string { return v.raw }

// Raw implements Value.
func (v TokenValue) Raw() string { return v.raw }

// Raw implements Value.
func (v ReferenceValue) Raw() string { return v.raw }

// Raw implements Value.
func (v DateValue) Raw() string { return v.raw }

// Raw implements Value.
func (v NumberValue) Raw() string { return v.raw }

// Raw implements Value.
func (v QuantityValue) Raw() string { return v.raw }

// Raw implements Value.
func (v URIValue) Raw() string { return v.raw }

// Raw implements Value.
func (v CompositeValue) Raw() string { return v.raw }

// Raw implements Value.
func (v NearValue) Raw() string { return v.raw }

func (StringValue) value()    {}
func (TokenValue) value()     {}
func (ReferenceValue) value() {}
func (DateValue) value()      {}
func (NumberValue) value()    {}
func (QuantityValue) value()  {}
func (URIValue) value()       {}
func (CompositeValue) value() {}
func (NearValue) value()      {}
