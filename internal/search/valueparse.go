package search

import (
	"fmt"
	"slices"
	"strings"

	"github.com/fhirguard/fhirguard/internal/fhir"
	"github.com/fhirguard/fhirguard/internal/fhir/searchparam"
)

// value parses one OR-item (still escaped) of clause c on resource type
// typ.
func (p *parser) value(typ string, c *Clause, def *searchparam.Param, name, item string) (Value, error) {
	switch def.Type {
	case searchparam.TypeString:
		text := unescape(item)
		return StringValue{raw: item, Text: text, Norm: NormalizeString(text)}, nil
	case searchparam.TypeToken:
		return p.token(c, name, item)
	case searchparam.TypeReference:
		if c.Modifier == ModIdentifier {
			return parseToken(name, item)
		}
		return p.reference(c, def, name, item)
	case searchparam.TypeDate:
		return p.date(def, name, item)
	case searchparam.TypeNumber:
		pre, rest, err := numberPrefix(def, name, item)
		if err != nil {
			return nil, err
		}
		d, err := ParseDecimal(rest)
		if err != nil {
			return nil, invalidValue(name, item, err.Error())
		}
		return numberValue(item, pre, d), nil
	case searchparam.TypeQuantity:
		return p.quantity(def, name, item)
	case searchparam.TypeURI:
		return URIValue{raw: item, URI: unescape(item)}, nil
	case searchparam.TypeComposite:
		return p.composite(typ, def, name, item)
	case searchparam.TypeSpecial:
		if def.Code == "near" {
			return parseNear(name, item)
		}
	}
	return nil, notSupported("search parameter %s of type %s is not supported", quote(name), def.Type)
}

func (p *parser) token(c *Clause, name, item string) (Value, error) {
	if c.Code == "_id" {
		id := unescape(item)
		if !validID(id) {
			return nil, invalidValue(name, item, "not a valid resource id")
		}
		return TokenValue{raw: item, Mode: SystemAny, Code: id}, nil
	}
	switch c.Modifier {
	case ModIn, ModNotIn:
		return valueSetRef(name, item)
	case ModText:
		return TokenValue{raw: item, Text: NormalizeString(unescape(item))}, nil
	case ModOfType:
		parts := splitEscaped(item, '|')
		if len(parts) != 3 || parts[0] == "" || parts[1] == "" || parts[2] == "" {
			return nil, invalidValue(name, item, "expected type-system|type-code|value")
		}
		return TokenValue{raw: item, Mode: SystemAny, TypeSystem: unescape(parts[0]),
			TypeCode: unescape(parts[1]), Code: unescape(parts[2])}, nil
	}
	return parseToken(name, item)
}

// valueSetRef parses the value of a token :in / :not-in: the ValueSet's
// canonical URL (with an optional |version) or a local ValueSet/id.
func valueSetRef(name, item string) (Value, error) {
	s := unescape(item)
	switch {
	case isAbsoluteRef(s):
	case strings.HasPrefix(s, "ValueSet/") && validID(strings.TrimPrefix(s, "ValueSet/")):
	default:
		return nil, invalidValue(name, item, "expected a ValueSet URL or ValueSet/id")
	}
	return URIValue{raw: item, URI: s}, nil
}

// parseToken parses code, system|code, |code or system|.
func parseToken(name, item string) (TokenValue, error) {
	parts := splitEscaped(item, '|')
	switch len(parts) {
	case 1:
		return TokenValue{raw: item, Mode: SystemAny, Code: unescape(parts[0])}, nil
	case 2:
		sys, code := unescape(parts[0]), unescape(parts[1])
		if sys == "" {
			if code == "" {
				return TokenValue{}, invalidValue(name, item, "empty token")
			}
			return TokenValue{raw: item, Mode: SystemNone, Code: code}, nil
		}
		return TokenValue{raw: item, Mode: SystemGiven, System: sys, Code: code}, nil
	}
	return TokenValue{}, invalidValue(name, item, "a token is [system|]code (escape a literal | as \\|)")
}

func isAbsoluteRef(s string) bool {
	return strings.Contains(s, "://") || strings.HasPrefix(s, "urn:")
}

func (p *parser) reference(c *Clause, def *searchparam.Param, name, item string) (Value, error) {
	parts := splitEscaped(item, '|')
	if len(parts) > 2 {
		return nil, invalidValue(name, item, "too many | separators")
	}
	s := unescape(parts[0])
	hier := c.Modifier == ModAbove || c.Modifier == ModBelow
	if isAbsoluteRef(s) {
		base := p.o.BaseURL
		if base == "" || !strings.HasPrefix(s, base+"/") || len(parts) == 2 {
			if hier {
				return nil, invalidValue(name, item, "a hierarchy search (:above/:below) takes a local reference (id or Type/id)")
			}
			rv := ReferenceValue{raw: item, URL: s}
			if len(parts) == 2 {
				rv.CanonicalVersion = unescape(parts[1])
				if rv.CanonicalVersion == "" {
					return nil, invalidValue(name, item, "empty canonical version")
				}
			}
			return rv, nil
		}
		s = s[len(base)+1:]
	} else if len(parts) == 2 {
		return nil, invalidValue(name, item, "only canonical URLs take a |version")
	}
	rv := ReferenceValue{raw: item}
	segs := strings.Split(s, "/")
	switch len(segs) {
	case 1:
		rv.ID, rv.Type = segs[0], c.TargetType
		if rv.Type == "" && len(def.Targets) == 1 {
			rv.Type = def.Targets[0]
		}
	case 2:
		rv.Type, rv.ID = segs[0], segs[1]
	case 4:
		if segs[2] != "_history" || !validID(segs[3]) {
			return nil, invalidValue(name, item, "expected Type/id/_history/version")
		}
		rv.Type, rv.ID, rv.Version = segs[0], segs[1], segs[3]
	default:
		return nil, invalidValue(name, item, "expected id, Type/id or an absolute URL")
	}
	if !validID(rv.ID) {
		return nil, invalidValue(name, item, "not a valid resource id")
	}
	if hier && rv.Version != "" {
		return nil, invalidValue(name, item, "a hierarchy search (:above/:below) takes a reference without a version")
	}
	if len(segs) > 1 {
		if !fhir.IsResourceType(rv.Type) {
			return nil, invalidValue(name, item, fmt.Sprintf("%s is not a resource type", quote(rv.Type)))
		}
		if c.TargetType != "" && rv.Type != c.TargetType {
			return nil, invalidValue(name, item, fmt.Sprintf("the modifier requires a %s reference", c.TargetType))
		}
		if len(def.Targets) > 0 && !slices.Contains(def.Targets, rv.Type) {
			return nil, invalidValue(name, item, fmt.Sprintf("%s is not a target type of this parameter", rv.Type))
		}
	}
	return rv, nil
}

// splitPrefix takes a leading comparison prefix off s (eq when none).
func splitPrefix(s string) (Prefix, string) {
	if len(s) >= 2 {
		switch pre := Prefix(s[:2]); pre {
		case PrefixEq, PrefixNe, PrefixGt, PrefixLt, PrefixGe, PrefixLe, PrefixSa, PrefixEb, PrefixAp:
			return pre, s[2:]
		}
	}
	return PrefixEq, s
}

func checkComparator(def *searchparam.Param, name, item string, pre Prefix) error {
	if len(def.Comparators) > 0 && !def.HasComparator(string(pre)) {
		return invalidValue(name, item, fmt.Sprintf("prefix %s is not allowed on this parameter", pre))
	}
	return nil
}

func (p *parser) date(def *searchparam.Param, name, item string) (Value, error) {
	pre, rest := splitPrefix(item)
	if err := checkComparator(def, name, item, pre); err != nil {
		return nil, err
	}
	lo, hi, prec, err := parseDateRange(rest, p.o.Location)
	if err != nil {
		return nil, invalidValue(name, item, err.Error())
	}
	dv := DateValue{raw: item, Prefix: pre, Low: lo, High: hi, Precision: prec}
	if pre == PrefixAp {
		dv.ApLow, dv.ApHigh = approxDates(lo, hi, p.clockNow())
	}
	return dv, nil
}

func numberPrefix(def *searchparam.Param, name, item string) (Prefix, string, error) {
	pre, rest := splitPrefix(item)
	if pre == PrefixSa || pre == PrefixEb {
		return "", "", invalidValue(name, item, fmt.Sprintf("prefix %s does not apply to numbers and quantities", pre))
	}
	if err := checkComparator(def, name, item, pre); err != nil {
		return "", "", err
	}
	return pre, rest, nil
}

func (p *parser) quantity(def *searchparam.Param, name, item string) (Value, error) {
	parts := splitEscaped(item, '|')
	if len(parts) != 1 && len(parts) != 3 {
		return nil, invalidValue(name, item, "expected [prefix]number[|system|code]")
	}
	pre, rest, err := numberPrefix(def, name, parts[0])
	if err != nil {
		return nil, err
	}
	d, err := ParseDecimal(rest)
	if err != nil {
		return nil, invalidValue(name, item, err.Error())
	}
	qv := QuantityValue{raw: item, Number: numberValue(parts[0], pre, d), Mode: SystemAny}
	if len(parts) == 3 {
		qv.System, qv.Code = unescape(parts[1]), unescape(parts[2])
		if qv.Code == "" {
			return nil, invalidValue(name, item, "missing unit code after the system")
		}
		qv.Mode = SystemGiven
		if qv.System == "" {
			qv.Mode = SystemNone
		}
	}
	return qv, nil
}

func (p *parser) composite(typ string, def *searchparam.Param, name, item string) (Value, error) {
	parts := splitEscaped(item, '$')
	if len(parts) != len(def.Components) {
		return nil, invalidValue(name, item, fmt.Sprintf("expected %d components separated by $", len(def.Components)))
	}
	cv := CompositeValue{raw: item}
	for i, comp := range def.Components {
		if parts[i] == "" {
			return nil, invalidValue(name, item, fmt.Sprintf("component %d is empty", i+1))
		}
		cdef, ok := p.o.Params.Lookup(typ, comp.Code)
		if !ok || cdef.Type == searchparam.TypeComposite {
			return nil, notSupported("search parameter %s: component %s is not supported", quote(name), quote(comp.Code))
		}
		sub := &Clause{Name: name, Code: comp.Code, Type: cdef.Type, Param: cdef}
		v, err := p.value(typ, sub, cdef, name, parts[i])
		if err != nil {
			return nil, err
		}
		cv.Parts = append(cv.Parts, CompositePart{Code: comp.Code, Type: cdef.Type, Value: v})
	}
	return cv, nil
}

func parseNear(name, item string) (Value, error) {
	parts := splitEscaped(item, '|')
	if len(parts) < 2 || len(parts) > 4 {
		return nil, invalidValue(name, item, "expected latitude|longitude[|distance[|units]]")
	}
	lat, err := ParseDecimal(parts[0])
	if err != nil || lat.Float64() < -90 || lat.Float64() > 90 {
		return nil, invalidValue(name, item, "latitude must be a number in [-90, 90]")
	}
	long, err := ParseDecimal(parts[1])
	if err != nil || long.Float64() < -180 || long.Float64() > 180 {
		return nil, invalidValue(name, item, "longitude must be a number in [-180, 180]")
	}
	nv := NearValue{raw: item, Lat: lat, Long: long, Units: "km"}
	if len(parts) > 2 && parts[2] != "" {
		d, err := ParseDecimal(parts[2])
		if err != nil || d.Sign() < 0 {
			return nil, invalidValue(name, item, "distance must be a non-negative number")
		}
		nv.Distance = &d
	}
	if len(parts) > 3 && parts[3] != "" {
		nv.Units = unescape(parts[3])
		if nv.Units == "mi_i" {
			nv.Units = "[mi_i]"
		}
		if _, ok := NearUnits[nv.Units]; !ok {
			return nil, invalidValue(name, item, "units must be km, m or [mi_i]")
		}
	}
	return nv, nil
}
