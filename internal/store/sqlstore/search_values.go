package sqlstore

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/fhirguard/fhirguard/internal/fhir"
	"github.com/fhirguard/fhirguard/internal/fhir/searchparam"
	"github.com/fhirguard/fhirguard/internal/search"
)

// builder assembles one SQL statement: the text, with numbered
// placeholders, and its arguments. Request values only ever become
// arguments.
type builder struct {
	d      *paramDict
	args   []any
	alias  int
	narrow *search.Narrowing
	// depth counts nested resource filters (chains, _has, narrowing
	// restrictions inside them), bounding the statement's size.
	depth int
	// nul is set when a bound string holds a NUL character, which no
	// stored FHIR string has and which SQLite's LIKE would read as the
	// end of the pattern.
	nul bool
}

// check reports a statement that must not run.
func (b *builder) check() error {
	if b.nul {
		return &fhir.Error{Code: fhir.IssueInvalid, Diag: "search values cannot contain NUL characters"}
	}
	return nil
}

// maxFilterDepth bounds the nesting of resource filters in one statement.
const maxFilterDepth = 12

// arg binds v and returns its placeholder.
func (b *builder) arg(v any) string {
	if s, ok := v.(string); ok && strings.IndexByte(s, 0) >= 0 {
		b.nul = true
	}
	b.args = append(b.args, v)
	return "$" + strconv.Itoa(len(b.args))
}

// list binds vs and returns "($1, $2, ...)".
func list[T any](b *builder, vs []T) string {
	var s strings.Builder
	s.WriteByte('(')
	for i, v := range vs {
		if i > 0 {
			s.WriteString(", ")
		}
		s.WriteString(b.arg(v))
	}
	s.WriteByte(')')
	return s.String()
}

// in returns "col = $n" for one value, "col IN (...)" for several, and a
// false condition for none.
func in[T any](b *builder, col string, vs []T) string {
	switch len(vs) {
	case 0:
		return "1 = 0"
	case 1:
		return col + " = " + b.arg(vs[0])
	}
	return col + " IN " + list(b, vs)
}

// pidCond restricts the value-table alias x to the rows of refs. probe
// writes "+x.pid": the statement reads one resource's rows (by rid) and
// must not walk the value index of the whole parameter instead.
func (b *builder) pidCond(x string, refs []pidRef, probe bool) string {
	col := x + ".pid"
	if probe {
		col = "+" + col
	}
	var plain []int64
	for _, r := range refs {
		if r.target == "" {
			plain = append(plain, r.pid)
		}
	}
	var ors []string
	if len(plain) > 0 {
		ors = append(ors, in(b, col, plain))
	}
	for _, r := range refs {
		if r.target != "" {
			ors = append(ors, col+" = "+b.arg(r.pid)+" AND "+x+".target_type = "+b.arg(r.target))
		}
	}
	switch len(ors) {
	case 0:
		return "1 = 0"
	case 1:
		return ors[0]
	}
	return "((" + strings.Join(ors, ") OR (") + "))"
}

// newAlias returns a table alias unique in the statement.
func (b *builder) newAlias(prefix string) string {
	b.alias++
	return prefix + strconv.Itoa(b.alias)
}

// maxRune is appended to a prefix to bound a range scan: every string
// starting with the prefix sorts below prefix+maxRune (binary collation).
const maxRune = "\U0010FFFF"

// prefixRange returns the condition "col starts with p" as an index range.
func (b *builder) prefixRange(col, p string) string {
	if p == "" {
		return "1 = 1"
	}
	return col + " >= " + b.arg(p) + " AND " + col + " < " + b.arg(p+maxRune)
}

// tableFor returns the value table of a parameter type.
func tableFor(t searchparam.Type) (spTable, bool) {
	switch t {
	case searchparam.TypeString:
		return tString, true
	case searchparam.TypeToken:
		return tToken, true
	case searchparam.TypeReference:
		return tRef, true
	case searchparam.TypeDate:
		return tDate, true
	case searchparam.TypeNumber:
		return tNumber, true
	case searchparam.TypeQuantity:
		return tQuantity, true
	case searchparam.TypeURI:
		return tURI, true
	case searchparam.TypeSpecial: // near, the one indexed special parameter
		return tGeo, true
	}
	return 0, false
}

// errNoText refuses a string value with nothing left to search for once
// normalized (only white space or control characters): it would match
// every value.
func errNoText(name string) *fhir.Error {
	return &fhir.Error{Code: fhir.IssueInvalid, Diag: fmt.Sprintf("search parameter %q: the value has no characters to search for", name)}
}

func errNotSupported(format string, args ...any) *fhir.Error {
	return &fhir.Error{Code: fhir.IssueNotSupported, Status: 400, Diag: fmt.Sprintf(format, args...)}
}

// valueCond returns the condition one value puts on a row (alias x) of the
// table of parameter type t, without the pid.
func (b *builder) valueCond(x string, t searchparam.Type, c *search.Clause, v search.Value) (string, error) {
	switch v := v.(type) {
	case search.StringValue:
		if v.Norm == "" && c.Modifier != search.ModExact {
			return "", errNoText(c.Name)
		}
		switch c.Modifier {
		case search.ModExact:
			return x + ".norm = " + b.arg(v.Norm) + " AND " + x + ".exact = " + b.arg(v.Text), nil
		case search.ModContains:
			return x + ".norm LIKE " + b.arg("%"+search.EscapeLike(v.Norm)+"%") + ` ESCAPE '\'`, nil
		}
		return b.prefixRange(x+".norm", v.Norm), nil
	case search.TokenValue:
		if t == searchparam.TypeReference { // :identifier
			return b.tokenCond(x+".ident_system", x+".ident_value", v), nil
		}
		switch c.Modifier {
		case search.ModText:
			if v.Text == "" {
				return "", errNoText(c.Name)
			}
			return b.prefixRange(x+".text_norm", v.Text), nil
		case search.ModOfType:
			return x + ".code = " + b.arg(v.Code) + " AND " + x + ".type_system = " + b.arg(v.TypeSystem) +
				" AND " + x + ".type_code = " + b.arg(v.TypeCode), nil
		}
		return b.tokenCond(x+".system", x+".code", v), nil
	case search.ReferenceValue:
		if c.Modifier == search.ModAbove || c.Modifier == search.ModBelow {
			return b.hierarchyCond(x, c, v)
		}
		var s string
		if v.URL != "" {
			s = x + ".url = " + b.arg(v.URL)
			if v.CanonicalVersion != "" {
				s += " AND " + x + ".version = " + b.arg(v.CanonicalVersion)
			}
			return s, nil
		}
		s = x + ".target_id = " + b.arg(v.ID)
		if v.Type != "" {
			s += " AND " + x + ".target_type = " + b.arg(v.Type)
		}
		if v.Version != "" {
			s += " AND " + x + ".version = " + b.arg(v.Version)
		}
		return s, nil
	case search.DateValue:
		return b.dateCond(x+".lo", x+".hi", v), nil
	case search.NumberValue:
		return b.numberCond(x+".val", v), nil
	case search.QuantityValue:
		s := b.quantityCond(x+".lo", x+".hi", v.Number)
		switch v.Mode {
		case search.SystemGiven:
			s += " AND " + x + ".system = " + b.arg(v.System) + " AND " + x + ".code = " + b.arg(v.Code)
		case search.SystemNone:
			s += " AND (" + x + ".code = " + b.arg(v.Code) + " OR " + x + ".unit = " + b.arg(v.Code) + ")"
		}
		return s, nil
	case search.URIValue:
		switch c.Modifier {
		case search.ModBelow:
			return b.prefixRange(x+".uri", v.URI), nil
		case search.ModAbove:
			return in(b, x+".uri", uriPrefixes(v.URI)), nil
		}
		return x + ".uri = " + b.arg(v.URI), nil
	case search.NearValue:
		return b.nearCond(x, v), nil
	}
	return "", errNotSupported("search parameter %q: this kind of value is not supported", c.Name)
}

// tokenCond matches a system|code pair held in columns sys and code.
func (b *builder) tokenCond(sys, code string, v search.TokenValue) string {
	switch v.Mode {
	case search.SystemNone:
		return code + " = " + b.arg(v.Code) + " AND " + sys + " = ''"
	case search.SystemGiven:
		if v.Code == "" {
			return sys + " = " + b.arg(v.System) + " AND " + code + " <> ''"
		}
		return code + " = " + b.arg(v.Code) + " AND " + sys + " = " + b.arg(v.System)
	}
	return code + " = " + b.arg(v.Code)
}

// uriPrefixes lists the prefixes of u that end a path segment (and u
// itself): the URIs :above matches.
func uriPrefixes(u string) []string {
	var out []string
	start := 0
	if i := strings.Index(u, "://"); i >= 0 {
		start = i + 3
	}
	for i := start; i < len(u); i++ {
		if u[i] == '/' && i > start {
			out = append(out, u[:i])
		}
	}
	return append(out, u)
}

func millis(t time.Time) int64 { return t.UnixMilli() }

// ceilMillis is t in milliseconds, rounded up.
func ceilMillis(t time.Time) int64 {
	ms := t.UnixMilli()
	if t.Sub(time.UnixMilli(ms)) > 0 {
		ms++
	}
	return ms
}

// dateCond compares an indexed range [lo, hi) with a date value (see the
// internal/search package documentation). Redundant terms give the
// planner an index range on lo or hi.
func (b *builder) dateCond(lo, hi string, v search.DateValue) string {
	l, h := millis(v.Low), ceilMillis(v.High)
	switch v.Prefix {
	case search.PrefixNe:
		return "NOT (" + lo + " >= " + b.arg(l) + " AND " + hi + " <= " + b.arg(h) + ")"
	case search.PrefixGt:
		return hi + " > " + b.arg(h)
	case search.PrefixLt:
		return lo + " < " + b.arg(l)
	case search.PrefixGe:
		return hi + " > " + b.arg(l) + " AND (" + hi + " > " + b.arg(h) + " OR " + lo + " >= " + b.arg(l) + ")"
	case search.PrefixLe:
		return lo + " < " + b.arg(h) + " AND (" + lo + " < " + b.arg(l) + " OR " + hi + " <= " + b.arg(h) + ")"
	case search.PrefixSa:
		return lo + " >= " + b.arg(h)
	case search.PrefixEb:
		return hi + " <= " + b.arg(l)
	case search.PrefixAp:
		return lo + " < " + b.arg(ceilMillis(v.ApHigh)) + " AND " + hi + " > " + b.arg(millis(v.ApLow))
	}
	return lo + " >= " + b.arg(l) + " AND " + lo + " < " + b.arg(h) + " AND " + hi + " <= " + b.arg(h)
}

// numberCond compares an indexed number column with a number value.
func (b *builder) numberCond(col string, v search.NumberValue) string {
	val, low, high := v.Value.Float64(), v.Low.Float64(), v.High.Float64()
	switch v.Prefix {
	case search.PrefixNe:
		return "NOT (" + col + " >= " + b.arg(low) + " AND " + col + " < " + b.arg(high) + ")"
	case search.PrefixGt, search.PrefixSa:
		return col + " > " + b.arg(val)
	case search.PrefixLt, search.PrefixEb:
		return col + " < " + b.arg(val)
	case search.PrefixGe:
		return col + " >= " + b.arg(val)
	case search.PrefixLe:
		return col + " <= " + b.arg(val)
	}
	return col + " >= " + b.arg(low) + " AND " + col + " < " + b.arg(high)
}

// quantityCond compares an indexed quantity [lo, hi] (a point has lo = hi;
// NULL = an open Range end) with a number value.
func (b *builder) quantityCond(lo, hi string, v search.NumberValue) string {
	val, low, high := v.Value.Float64(), v.Low.Float64(), v.High.Float64()
	switch v.Prefix {
	case search.PrefixNe:
		return "NOT (" + lo + " IS NOT NULL AND " + hi + " IS NOT NULL AND " + lo + " >= " + b.arg(low) +
			" AND " + hi + " < " + b.arg(high) + ")"
	case search.PrefixGt, search.PrefixSa:
		return "(" + hi + " IS NULL OR " + hi + " > " + b.arg(val) + ")"
	case search.PrefixLt, search.PrefixEb:
		return "(" + lo + " IS NULL OR " + lo + " < " + b.arg(val) + ")"
	case search.PrefixGe:
		return "(" + hi + " IS NULL OR " + hi + " >= " + b.arg(val) + ")"
	case search.PrefixLe:
		return "(" + lo + " IS NULL OR " + lo + " <= " + b.arg(val) + ")"
	case search.PrefixAp:
		return "(" + lo + " IS NULL OR " + lo + " < " + b.arg(high) + ") AND (" + hi + " IS NULL OR " + hi + " >= " + b.arg(low) + ")"
	}
	return lo + " >= " + b.arg(low) + " AND " + hi + " < " + b.arg(high)
}
