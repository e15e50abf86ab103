package search

import (
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/fhirguard/fhirguard/internal/clock"
	"github.com/fhirguard/fhirguard/internal/fhir"
	"github.com/fhirguard/fhirguard/internal/fhir/searchparam"
)

// Handling is the Prefer: handling= mode of a search.
type Handling int

// Strict (the FHIR default) rejects unknown or unsupported parameters;
// Lenient drops them and reports each as an Issue.
const (
	Strict Handling = iota
	Lenient
)

// Defaults and limits (RESIL-03) used when an Options field is zero.
const (
	DefaultCount         = 20
	DefaultMaxCount      = 1000
	DefaultMaxTerms      = 100
	DefaultMaxChainDepth = 4
	DefaultMaxHasDepth   = 3
)

// Options configure parsing. The zero value is strict handling with the
// default limits over the generated parameter tables.
type Options struct {
	Handling Handling
	// DefaultCount is the page size without _count; MaxCount the largest
	// page (a larger _count is clamped, with an informational Issue).
	DefaultCount, MaxCount int
	// MaxTerms bounds the work one search may ask for: every OR value,
	// chain link, _has, _include, _revinclude and sort key counts one.
	// More → 400 too-costly.
	MaxTerms int
	// MaxChainDepth bounds chained references (a.b.c.d.e has depth 4),
	// MaxHasDepth the nesting of _has.
	MaxChainDepth, MaxHasDepth int
	// Params resolves parameter definitions; nil = Tables{}.
	Params ParamLookup
	// Clock gives "now" for the ap prefix on dates; nil = clock.System.
	Clock clock.Clock
	// Location is the time zone of date values given without one; nil =
	// UTC.
	Location *time.Location
	// BaseURL is the server's FHIR base (https://host/fhir): absolute
	// references under it are turned into local Type/id references.
	BaseURL string
}

func (o Options) withDefaults() Options {
	if o.DefaultCount <= 0 {
		o.DefaultCount = DefaultCount
	}
	if o.MaxCount <= 0 {
		o.MaxCount = DefaultMaxCount
	}
	if o.DefaultCount > o.MaxCount {
		o.DefaultCount = o.MaxCount
	}
	if o.MaxTerms <= 0 {
		o.MaxTerms = DefaultMaxTerms
	}
	if o.MaxChainDepth <= 0 {
		o.MaxChainDepth = DefaultMaxChainDepth
	}
	if o.MaxHasDepth <= 0 {
		o.MaxHasDepth = DefaultMaxHasDepth
	}
	if o.Params == nil {
		o.Params = Tables{}
	}
	if o.Clock == nil {
		o.Clock = clock.System{}
	}
	if o.Location == nil {
		o.Location = time.UTC
	}
	o.BaseURL = strings.TrimRight(o.BaseURL, "/")
	return o
}

// Issue is a non-fatal finding: a parameter dropped under lenient
// handling, or an adjusted value. The REST layer reports each in an
// OperationOutcome entry with search.mode=outcome.
type Issue struct {
	Severity string // "warning" or "information"
	Code     fhir.IssueType
	Param    string
	Diag     string
}

// Parse parses the parameters of a type search (GET [type]?... or POST
// [type]/_search). Errors are *fhir.Error: 400 for a bad value, an unknown
// modifier or exceeded limits, and (strict handling only) for unknown or
// unsupported parameters.
func Parse(typ string, params url.Values, opts Options) (*Query, []Issue, error) {
	if !fhir.IsResourceType(typ) {
		return nil, nil, notSupported("unknown resource type %s", quote(typ))
	}
	p := newParser(opts)
	q := &Query{Types: []string{typ}}
	if err := p.parse(q, params, false); err != nil {
		return nil, nil, err
	}
	return q, p.issues, nil
}

// ParseSystem parses a system search ([base]?_type=...): Types come from
// _type (none = every type, which allows only the parameters every
// resource has).
func ParseSystem(params url.Values, opts Options) (*Query, []Issue, error) {
	p := newParser(opts)
	q := &Query{}
	if err := p.parse(q, params, true); err != nil {
		return nil, nil, err
	}
	return q, p.issues, nil
}

// ParseCompartment parses a compartment search ([Compartment]/[id]/[type]?
// ...). typ "" or "*" searches every member type of the compartment
// (narrowed by _type).
func ParseCompartment(c Compartment, typ string, params url.Values, opts Options) (*Query, []Issue, error) {
	if c.Type != "Patient" {
		return nil, nil, notSupported("compartment %s is not supported (only Patient)", quote(c.Type))
	}
	if !validID(c.ID) {
		return nil, nil, fhir.Errorf(fhir.IssueInvalid, "invalid compartment id %s", quote(c.ID))
	}
	members := searchparam.CompartmentTypes(c.Type)
	p := newParser(opts)
	q := &Query{Compartment: &Compartment{Type: c.Type, ID: c.ID}}
	if typ == "" || typ == "*" {
		if err := p.parse(q, params, true); err != nil {
			return nil, nil, err
		}
		if len(q.Types) == 0 {
			q.Types = members
		}
		for _, t := range q.Types {
			if !slices.Contains(members, t) {
				return nil, nil, fhir.Errorf(fhir.IssueInvalid, "resource type %s is not in the %s compartment", quote(t), c.Type)
			}
		}
		return q, p.issues, nil
	}
	if !slices.Contains(members, typ) {
		return nil, nil, fhir.Errorf(fhir.IssueInvalid, "resource type %s is not in the %s compartment", quote(typ), c.Type)
	}
	q.Types = []string{typ}
	if err := p.parse(q, params, false); err != nil {
		return nil, nil, err
	}
	return q, p.issues, nil
}

type parser struct {
	o      Options
	label  string // the parameter being parsed, for messages
	issues []Issue
	terms  int
	now    time.Time
	hasNow bool
}

func newParser(opts Options) *parser { return &parser{o: opts.withDefaults()} }

func (p *parser) clockNow() time.Time {
	if !p.hasNow {
		p.now, p.hasNow = p.o.Clock.Now(), true
	}
	return p.now
}

// charge counts n terms against MaxTerms.
func (p *parser) charge(n int) error {
	p.terms += n
	if p.terms > p.o.MaxTerms {
		return fhir.Errorf(fhir.IssueTooCostly, "search too complex: more than %d values, chain links, includes and sort keys", p.o.MaxTerms)
	}
	return nil
}

// drop handles a droppable error (unknown / unsupported parameter): an
// error under strict handling, an Issue under lenient handling.
func (p *parser) drop(name string, err error) error {
	fe, ok := fhir.AsError(err)
	if !ok || fe.Code != fhir.IssueNotSupported || p.o.Handling != Lenient {
		return err
	}
	p.issues = append(p.issues, Issue{Severity: "warning", Code: fhir.IssueNotSupported, Param: name,
		Diag: fe.Diag + "; ignored"})
	return nil
}

func sortedKeys(v url.Values) []string {
	keys := make([]string, 0, len(v))
	for k := range v {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func isResultParam(name string) bool {
	base, _, _ := strings.Cut(name, ":")
	switch base {
	case "_sort", "_count", "_total", "_summary", "_elements", "_include", "_revinclude",
		"_contained", "_containedType", "_type", "_cursor", "_format", "_pretty":
		return true
	}
	return false
}

// unsupportedParam returns why a known FHIR parameter fhirguard does not
// implement is refused, or "" for any other name.
func unsupportedParam(code string) string {
	switch code {
	case "_text", "_content":
		return "full-text search (" + code + ") is not supported"
	case "_list", "_filter", "_score":
		return code + " is not supported"
	case "_query":
		return "named queries (_query) are not supported"
	}
	return ""
}

// parse fills q from params. system = the types come from _type.
func (p *parser) parse(q *Query, params url.Values, system bool) error {
	keys := sortedKeys(params)
	q.Count, q.Total, q.Summary, q.Contained = p.o.DefaultCount, TotalAccurate, SummaryFalse, ContainedFalse
	// Result parameters first: _type decides which parameters exist.
	if vals, ok := params["_type"]; ok {
		if !system {
			if err := p.drop("_type", notSupported("_type is only valid in a system or compartment search")); err != nil {
				return err
			}
		} else if err := p.typesParam(q, vals); err != nil {
			return err
		}
	}
	for _, name := range keys {
		if name == "_type" || !isResultParam(name) {
			continue
		}
		if err := p.resultParam(q, name, params[name]); err != nil {
			if err = p.drop(name, err); err != nil {
				return err
			}
		}
	}
	for _, name := range keys {
		if isResultParam(name) {
			continue
		}
		base, _, _ := strings.Cut(name, ":")
		base, _, _ = strings.Cut(base, ".")
		if why := unsupportedParam(base); why != "" {
			if err := p.drop(name, notSupported("%s", why)); err != nil {
				return err
			}
			continue
		}
		for _, raw := range params[name] {
			c, err := p.clauseFor(q.Types, name, raw)
			if err != nil {
				if err = p.drop(name, err); err != nil {
					return err
				}
				break
			}
			if c != nil {
				q.Where = append(q.Where, *c)
			}
		}
	}
	if q.Summary != SummaryFalse && len(q.Elements) > 0 {
		return fhir.Errorf(fhir.IssueInvalid, "_summary and _elements cannot be used together")
	}
	return nil
}

func (p *parser) typesParam(q *Query, vals []string) error {
	if len(vals) > 1 {
		return fhir.Errorf(fhir.IssueInvalid, "parameter \"_type\" may appear only once")
	}
	seen := map[string]bool{}
	for _, t := range strings.Split(vals[0], ",") {
		t = strings.TrimSpace(t)
		if t == "" || seen[t] {
			continue
		}
		if !fhir.IsResourceType(t) {
			return invalidValue("_type", t, "not a resource type")
		}
		if err := p.charge(1); err != nil {
			return err
		}
		seen[t] = true
		q.Types = append(q.Types, t)
	}
	sort.Strings(q.Types)
	q.ExplicitTypes = len(q.Types) > 0
	return nil
}

// resultParam handles one of the parameters that shape the result rather
// than filter it.
func (p *parser) resultParam(q *Query, name string, vals []string) error {
	base, mod, hasMod := strings.Cut(name, ":")
	single := func() (string, error) {
		if hasMod {
			return "", fhir.Errorf(fhir.IssueInvalid, "parameter %s takes no modifier", quote(name))
		}
		if len(vals) != 1 {
			return "", fhir.Errorf(fhir.IssueInvalid, "parameter %s may appear only once", quote(name))
		}
		return strings.TrimSpace(vals[0]), nil
	}
	switch base {
	case "_format", "_pretty":
		return nil // handled by the REST layer
	case "_cursor":
		v, err := single()
		if err != nil {
			return err
		}
		q.Cursor = v
		return nil
	case "_count":
		v, err := single()
		if err != nil || v == "" {
			return err
		}
		n, cerr := strconv.Atoi(v)
		if cerr != nil || n < 0 {
			if len(v) > 0 && allDigits(v) {
				n = p.o.MaxCount + 1 // overflowing integer: clamp like any large count
			} else {
				return invalidValue(name, v, "not a non-negative integer")
			}
		}
		if n > p.o.MaxCount {
			p.issues = append(p.issues, Issue{Severity: "information", Code: fhir.IssueInformational, Param: name,
				Diag: fmt.Sprintf("_count %s exceeds the maximum page size %d; %d used", quote(v), p.o.MaxCount, p.o.MaxCount)})
			n = p.o.MaxCount
		}
		q.Count = n
		return nil
	case "_total":
		v, err := single()
		if err != nil || v == "" {
			return err
		}
		switch t := TotalMode(v); t {
		case TotalNone, TotalEstimate, TotalAccurate:
			q.Total = t
			return nil
		}
		return invalidValue(name, v, "expected none, estimate or accurate")
	case "_summary":
		v, err := single()
		if err != nil || v == "" {
			return err
		}
		switch s := SummaryMode(v); s {
		case SummaryFalse, SummaryTrue, SummaryText, SummaryData, SummaryCount:
			q.Summary = s
			return nil
		}
		return invalidValue(name, v, "expected true, false, text, data or count")
	case "_contained":
		v, err := single()
		if err != nil || v == "" {
			return err
		}
		switch c := ContainedMode(v); c {
		case ContainedFalse, ContainedTrue, ContainedBoth:
			q.Contained = c
			return nil
		}
		return invalidValue(name, v, "expected true, false or both")
	case "_containedType":
		v, err := single()
		if err != nil || v == "" {
			return err
		}
		switch c := ContainedType(v); c {
		case ContainedTypeContainer, ContainedTypeContained:
			q.ContainedType = c
			return nil
		}
		return invalidValue(name, v, "expected container or contained")
	case "_elements":
		v, err := single()
		if err != nil {
			return err
		}
		return p.elements(q, v)
	case "_sort":
		if mod == "asc" || mod == "desc" { // DSTU2/STU3 form: _sort:desc=date
			if len(vals) != 1 || q.Sort != nil {
				return fhir.Errorf(fhir.IssueInvalid, "parameter \"_sort\" may appear only once")
			}
			keys := strings.Split(strings.TrimSpace(vals[0]), ",")
			if mod == "desc" {
				for i, k := range keys {
					if k = strings.TrimSpace(k); k != "" && !strings.HasPrefix(k, "-") {
						keys[i] = "-" + k
					}
				}
			}
			return p.sortParam(q, name, strings.Join(keys, ","))
		}
		v, err := single()
		if err != nil {
			return err
		}
		if q.Sort != nil {
			return fhir.Errorf(fhir.IssueInvalid, "parameter \"_sort\" may appear only once")
		}
		return p.sortParam(q, name, v)
	case "_include", "_revinclude":
		iterate := false
		switch mod {
		case "":
		case "iterate", "recurse":
			iterate = true
		default:
			return fhir.Errorf(fhir.IssueInvalid, "unknown modifier %s on %s", quote(mod), base)
		}
		for _, v := range vals {
			if err := p.include(q, base == "_revinclude", iterate, name, strings.TrimSpace(v)); err != nil {
				return err
			}
		}
		return nil
	}
	return notSupported("unknown parameter %s", quote(name))
}

func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if !isDigit(s[i]) {
			return false
		}
	}
	return true
}

func (p *parser) elements(q *Query, v string) error {
	seen := map[string]bool{}
	for _, e := range strings.Split(v, ",") {
		e = strings.TrimSpace(e)
		if e == "" || seen[e] {
			continue
		}
		if !validElement(e) {
			return invalidValue("_elements", e, "not an element name")
		}
		if err := p.charge(1); err != nil {
			return err
		}
		seen[e] = true
		q.Elements = append(q.Elements, e)
	}
	return nil
}

func validElement(e string) bool {
	if len(e) > 64 {
		return false
	}
	for i := 0; i < len(e); i++ {
		c := e[i]
		ok := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || i > 0 && (isDigit(c) || c == '_')
		if !ok {
			return false
		}
	}
	return e != ""
}

// lookupAll finds code on every searched type (on "Resource" for a system
// search over all types) and checks the definitions agree on the type.
func (p *parser) lookupAll(types []string, code string) (*searchparam.Param, error) {
	if len(types) == 0 {
		types = []string{"Resource"}
	}
	var first *searchparam.Param
	for _, t := range types {
		def, ok := p.o.Params.Lookup(t, code)
		if !ok {
			return nil, unknownParam(code, t)
		}
		if first == nil {
			first = def
		} else if def.Type != first.Type {
			return nil, notSupported("parameter %s has different types on %s and %s", quote(code), types[0], t)
		}
	}
	return first, nil
}

func (p *parser) sortParam(q *Query, name, v string) error {
	q.Sort = []SortKey{}
	for _, k := range strings.Split(v, ",") {
		k = strings.TrimSpace(k)
		if k == "" {
			continue
		}
		desc := strings.HasPrefix(k, "-")
		code := strings.TrimPrefix(k, "-")
		def, err := p.lookupAll(q.Types, code)
		if err != nil {
			return err
		}
		switch def.Type {
		case searchparam.TypeComposite, searchparam.TypeSpecial:
			return invalidValue(name, k, fmt.Sprintf("cannot sort by a %s parameter", def.Type))
		}
		for _, s := range q.Sort {
			if s.Code == code {
				return invalidValue(name, k, "sort key given twice")
			}
		}
		if err := p.charge(1); err != nil {
			return err
		}
		q.Sort = append(q.Sort, SortKey{Code: code, Type: def.Type, Param: def, Descending: desc})
	}
	return nil
}

// include parses one _include / _revinclude value
// (SourceType:param[:TargetType], param may be *).
func (p *parser) include(q *Query, rev, iterate bool, name, v string) error {
	if v == "" {
		return nil
	}
	parts := strings.Split(v, ":")
	if len(parts) < 2 || len(parts) > 3 || parts[1] == "" {
		return invalidValue(name, v, "expected SourceType:parameter[:TargetType]")
	}
	inc := Include{SourceType: parts[0], Param: parts[1], Iterate: iterate}
	if len(parts) == 3 {
		inc.TargetType = parts[2]
		if !fhir.IsResourceType(inc.TargetType) {
			return invalidValue(name, v, fmt.Sprintf("%s is not a resource type", quote(inc.TargetType)))
		}
	}
	if !fhir.IsResourceType(inc.SourceType) {
		return invalidValue(name, v, fmt.Sprintf("%s is not a resource type", quote(inc.SourceType)))
	}
	// With _contained=true|both and _containedType=container (parsed
	// before, in name order) the matches are containers of any type.
	anyType := (q.Contained == ContainedTrue || q.Contained == ContainedBoth) && q.ContainedType != ContainedTypeContained
	searched := func(t string) bool { return anyType || len(q.Types) == 0 || slices.Contains(q.Types, t) }
	if !rev && !iterate && !searched(inc.SourceType) {
		return invalidValue(name, v, fmt.Sprintf("%s is not a searched type", inc.SourceType))
	}
	if rev && !iterate && inc.TargetType != "" && !searched(inc.TargetType) {
		return invalidValue(name, v, fmt.Sprintf("%s is not a searched type", inc.TargetType))
	}
	if inc.Param != "*" {
		def, ok := p.o.Params.Lookup(inc.SourceType, inc.Param)
		if !ok {
			return invalidValue(name, v, fmt.Sprintf("%s has no search parameter %s", inc.SourceType, quote(inc.Param)))
		}
		if def.Type != searchparam.TypeReference {
			return invalidValue(name, v, fmt.Sprintf("%s is not a reference parameter", quote(inc.Param)))
		}
		if inc.TargetType != "" && len(def.Targets) > 0 && !slices.Contains(def.Targets, inc.TargetType) {
			return invalidValue(name, v, fmt.Sprintf("%s cannot refer to %s", inc.Param, inc.TargetType))
		}
		if rev && !iterate && !anyType && inc.TargetType == "" && len(q.Types) > 0 && len(def.Targets) > 0 &&
			!slices.ContainsFunc(q.Types, func(t string) bool { return slices.Contains(def.Targets, t) }) {
			return invalidValue(name, v, fmt.Sprintf("%s cannot refer to the searched type", inc.Param))
		}
	}
	if err := p.charge(1); err != nil {
		return err
	}
	list := &q.Include
	if rev {
		list = &q.RevInclude
	}
	for _, x := range *list {
		if x == inc {
			return nil
		}
	}
	*list = append(*list, inc)
	return nil
}

// quote renders a client-supplied string for a message: quoted, escaped,
// and cut to 100 bytes.
func quote(s string) string {
	if len(s) > 100 {
		s = strings.ToValidUTF8(s[:100], "") + "…"
	}
	return strconv.Quote(s)
}

func invalidValue(name, v, why string) *fhir.Error {
	return fhir.Errorf(fhir.IssueInvalid, "invalid value %s for search parameter %s: %s", quote(v), quote(name), why)
}

func unknownParam(code, typ string) *fhir.Error {
	where := "resource type " + typ
	if typ == "Resource" {
		where = "every resource type (use _type)"
	}
	return notSupported("unknown search parameter %s for %s", quote(code), where)
}

// notSupported is the 400 for a parameter (or form) fhirguard does not
// implement; under lenient handling such parameters are dropped instead.
func notSupported(format string, args ...any) *fhir.Error {
	return &fhir.Error{Code: fhir.IssueNotSupported, Status: http.StatusBadRequest, Diag: fmt.Sprintf(format, args...)}
}
