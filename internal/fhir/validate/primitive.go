package validate

import (
	"fmt"
	"regexp"
	"strconv"

	"github.com/fhirguard/fhirguard/internal/fhir/spec"
)

// A lexical check reports whether a primitive's JSON text is valid.
type lexical func(string) bool

// fastCheck returns the hand-written equivalent of a primitive's schema
// pattern (as anchored by the generator), several times faster than the
// regular expression, or nil. TestFastChecksMatchPatterns and
// FuzzFastChecks hold each to its pattern; a primitive without one uses its
// regexp.
func fastCheck(name string) lexical {
	switch name {
	case "string", "markdown":
		return isString
	case "uri", "url", "canonical":
		return noSpace
	case "code":
		return isCode
	case "id":
		return isID
	case "date":
		return isDate
	case "dateTime":
		return isDateTime
	case "instant":
		return isInstant
	case "time":
		return isTime
	case "decimal":
		return isDecimal
	case "integer":
		return isInteger
	case "positiveInt":
		return isPositiveInt
	case "unsignedInt":
		return isUnsignedInt
	case "base64Binary":
		return isBase64
	}
	return nil
}

// compileChecks returns the lexical check of every primitive of m.
func compileChecks(m *spec.Model, names []string) (map[*spec.Type]lexical, error) {
	out := make(map[*spec.Type]lexical, len(names))
	for _, n := range names {
		t := m.Type(n)
		if t == nil || t.Kind != spec.Primitive {
			continue
		}
		if f := fastCheck(n); f != nil {
			out[t] = f
			continue
		}
		if t.Pattern == "" {
			out[t] = func(string) bool { return true }
			continue
		}
		re, err := regexp.Compile(t.Pattern)
		if err != nil {
			return nil, fmt.Errorf("compile %s pattern: %w", n, err)
		}
		out[t] = re.MatchString
	}
	return out, nil
}

// isWS is RE2's \s: [\t\n\f\r ].
func isWS(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\f' || c == '\r' }

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

// isString: [ \r\n\t\S]+ — non-empty, no form feed.
func isString(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] == '\f' {
			return false
		}
	}
	return true
}

// noSpace: \S* (uri, url, canonical).
func noSpace(s string) bool {
	for i := 0; i < len(s); i++ {
		if isWS(s[i]) {
			return false
		}
	}
	return true
}

// isCode: [^\s]+(\s[^\s]+)* — no leading, trailing or doubled whitespace.
func isCode(s string) bool {
	if s == "" || isWS(s[0]) || isWS(s[len(s)-1]) {
		return false
	}
	for i := 1; i < len(s); i++ {
		if isWS(s[i]) && isWS(s[i-1]) {
			return false
		}
	}
	return true
}

// isID: [A-Za-z0-9\-\.]{1,64}.
func isID(s string) bool {
	if len(s) == 0 || len(s) > 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || isDigit(c) || c == '-' || c == '.') {
			return false
		}
	}
	return true
}

// year: four digits, not 0000.
func year(s string) bool {
	return len(s) >= 4 && isDigit(s[0]) && isDigit(s[1]) && isDigit(s[2]) && isDigit(s[3]) && s[:4] != "0000"
}

// twoDigits reports whether s[i:i+2] is a number in [lo, hi].
func twoDigits(s string, i int, lo, hi byte) bool {
	if len(s) < i+2 || !isDigit(s[i]) || !isDigit(s[i+1]) {
		return false
	}
	v := (s[i]-'0')*10 + s[i+1] - '0'
	return v >= lo && v <= hi
}

// fullDate: YYYY-MM-DD (month 01-12, day 01-31).
func fullDate(s string) bool {
	return year(s) && len(s) >= 10 && s[4] == '-' && twoDigits(s, 5, 1, 12) && s[7] == '-' && twoDigits(s, 8, 1, 31)
}

// isDate: YYYY, YYYY-MM or YYYY-MM-DD.
func isDate(s string) bool {
	switch len(s) {
	case 4:
		return year(s)
	case 7:
		return year(s) && s[4] == '-' && twoDigits(s, 5, 1, 12)
	case 10:
		return fullDate(s)
	}
	return false
}

// clock checks hh:mm:ss(.f+)? at the start of s and returns its length.
func clock(s string) (int, bool) {
	if !twoDigits(s, 0, 0, 23) || len(s) < 8 || s[2] != ':' || !twoDigits(s, 3, 0, 59) || s[5] != ':' || !twoDigits(s, 6, 0, 60) {
		return 0, false
	}
	n := 8
	if n < len(s) && s[n] == '.' {
		n++
		start := n
		for n < len(s) && isDigit(s[n]) {
			n++
		}
		if n == start {
			return 0, false
		}
	}
	return n, true
}

// zone: Z, or ±hh:mm with hh 00-13 (any minutes) or exactly 14:00.
func zone(s string) bool {
	if s == "Z" {
		return true
	}
	if len(s) != 6 || (s[0] != '+' && s[0] != '-') || s[3] != ':' {
		return false
	}
	if s[1:] == "14:00" {
		return true
	}
	return twoDigits(s, 1, 0, 13) && twoDigits(s, 4, 0, 59)
}

// isTime: hh:mm:ss(.f+)?.
func isTime(s string) bool {
	n, ok := clock(s)
	return ok && n == len(s)
}

// isDateTime: a date, or a full date with Thh:mm:ss(.f+)? and a zone.
func isDateTime(s string) bool {
	if len(s) <= 10 {
		return isDate(s)
	}
	return isInstant(s)
}

// isInstant: YYYY-MM-DDThh:mm:ss(.f+)? with a zone.
func isInstant(s string) bool {
	if len(s) < 20 || !fullDate(s) || s[10] != 'T' {
		return false
	}
	n, ok := clock(s[11:])
	return ok && zone(s[11+n:])
}

// digitsFrom returns the index after a run of digits starting at i.
func digitsFrom(s string, i int) int {
	for i < len(s) && isDigit(s[i]) {
		i++
	}
	return i
}

// intPart: 0|[1-9][0-9]* at s[i:], returning the index after it.
func intPart(s string, i int) (int, bool) {
	if i >= len(s) || !isDigit(s[i]) {
		return 0, false
	}
	if s[i] == '0' {
		return i + 1, true
	}
	return digitsFrom(s, i), true
}

// isDecimal: -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?.
func isDecimal(s string) bool {
	i := 0
	if i < len(s) && s[i] == '-' {
		i++
	}
	i, ok := intPart(s, i)
	if !ok {
		return false
	}
	if i < len(s) && s[i] == '.' {
		j := digitsFrom(s, i+1)
		if j == i+1 {
			return false
		}
		i = j
	}
	if i < len(s) && (s[i] == 'e' || s[i] == 'E') {
		i++
		if i < len(s) && (s[i] == '+' || s[i] == '-') {
			i++
		}
		j := digitsFrom(s, i)
		if j == i {
			return false
		}
		i = j
	}
	return i == len(s)
}

// isInteger: -?([0]|([1-9][0-9]*)).
func isInteger(s string) bool {
	i := 0
	if i < len(s) && s[i] == '-' {
		i++
	}
	i, ok := intPart(s, i)
	return ok && i == len(s)
}

// isPositiveInt: [1-9][0-9]*.
func isPositiveInt(s string) bool {
	return s != "" && s[0] >= '1' && s[0] <= '9' && digitsFrom(s, 1) == len(s)
}

// isUnsignedInt: [0]|([1-9][0-9]*).
func isUnsignedInt(s string) bool { return s == "0" || isPositiveInt(s) }

// isBase64: (\s*([0-9a-zA-Z\+/=]){4}\s*)+ — groups of four alphabet
// characters, whitespace only between groups, at least one group.
func isBase64(s string) bool {
	n := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case isWS(c):
			if n%4 != 0 {
				return false
			}
		case c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || isDigit(c) || c == '+' || c == '/' || c == '=':
			n++
		default:
			return false
		}
	}
	return n > 0 && n%4 == 0
}

// int32Range reports whether an integer-typed value fits FHIR's 32-bit
// integer (integer, positiveInt and unsignedInt are all 32-bit in R4).
func int32Range(s string) bool {
	_, err := strconv.ParseInt(s, 10, 32)
	return err == nil
}
