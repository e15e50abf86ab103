package fhir

import (
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"strconv"
	"unicode/utf8"
)

// AppendJSON appends the JSON encoding of v to dst. v is a value as
// ParseResource produces it (map[string]any, []any, string, json.Number,
// bool, nil; float64 and int are accepted too). The output equals
// encoding/json with SetEscapeHTML(false) and without the trailing newline:
// object keys sorted, no HTML escaping, json.Number verbatim. It exists
// because the resource write path serializes every body, and the
// reflection-based encoder costs several times more.
func AppendJSON(dst []byte, v any) ([]byte, error) {
	return appendValue(dst, v, 0)
}

// AppendResourceJSON is AppendJSON for a resource object, with the
// resourceType element first (the order FHIR JSON examples use) and the other
// elements sorted.
func AppendResourceJSON(dst []byte, typ string, data map[string]any) ([]byte, error) {
	dst = append(dst, `{"resourceType":`...)
	dst = appendString(dst, typ)
	var kb [32]string
	keys := sortedKeys(kb[:0], data)
	var err error
	for _, k := range keys {
		if k == "resourceType" {
			continue
		}
		dst = append(dst, ',')
		dst = appendString(dst, k)
		dst = append(dst, ':')
		if dst, err = appendValue(dst, data[k], 1); err != nil {
			return nil, err
		}
	}
	return append(dst, '}'), nil
}

func appendValue(dst []byte, v any, depth int) ([]byte, error) {
	if depth > 1000 {
		return nil, fmt.Errorf("fhir: encode: nesting deeper than 1000")
	}
	var err error
	switch x := v.(type) {
	case nil:
		return append(dst, "null"...), nil
	case string:
		return appendString(dst, x), nil
	case json.Number:
		if !validNumber(string(x)) {
			return nil, fmt.Errorf("fhir: encode: invalid number literal %q", string(x))
		}
		return append(dst, x...), nil
	case bool:
		return strconv.AppendBool(dst, x), nil
	case float64:
		if math.IsInf(x, 0) || math.IsNaN(x) {
			return nil, fmt.Errorf("fhir: encode: unsupported number %v", x)
		}
		b, err := json.Marshal(x) // rare (values built in Go); keeps encoding/json's float format
		if err != nil {
			return nil, fmt.Errorf("fhir: encode: %w", err)
		}
		return append(dst, b...), nil
	case int:
		return strconv.AppendInt(dst, int64(x), 10), nil
	case int64:
		return strconv.AppendInt(dst, x, 10), nil
	case []any:
		dst = append(dst, '[')
		for i, e := range x {
			if i > 0 {
				dst = append(dst, ',')
			}
			if dst, err = appendValue(dst, e, depth+1); err != nil {
				return nil, err
			}
		}
		return append(dst, ']'), nil
	case map[string]any:
		dst = append(dst, '{')
		var kb [24]string
		for i, k := range sortedKeys(kb[:0], x) {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = appendString(dst, k)
			dst = append(dst, ':')
			if dst, err = appendValue(dst, x[k], depth+1); err != nil {
				return nil, err
			}
		}
		return append(dst, '}'), nil
	default:
		b, err := json.Marshal(x) // values built in Go code with other types
		if err != nil {
			return nil, fmt.Errorf("fhir: encode: %w", err)
		}
		return append(dst, b...), nil
	}
}

// sortedKeys appends the keys of m to buf, sorted.
func sortedKeys(buf []string, m map[string]any) []string {
	for k := range m {
		buf = append(buf, k)
	}
	slices.Sort(buf)
	return buf
}

// validNumber reports whether s is a JSON number literal.
func validNumber(s string) bool {
	i := 0
	if i < len(s) && s[i] == '-' {
		i++
	}
	switch {
	case i < len(s) && s[i] == '0':
		i++
	case i < len(s) && s[i] >= '1' && s[i] <= '9':
		for i < len(s) && s[i] >= '0' && s[i] <= '9' {
			i++
		}
	default:
		return false
	}
	if i < len(s) && s[i] == '.' {
		i++
		start := i
		for i < len(s) && s[i] >= '0' && s[i] <= '9' {
			i++
		}
		if i == start {
			return false
		}
	}
	if i < len(s) && (s[i] == 'e' || s[i] == 'E') {
		i++
		if i < len(s) && (s[i] == '+' || s[i] == '-') {
			i++
		}
		start := i
		for i < len(s) && s[i] >= '0' && s[i] <= '9' {
			i++
		}
		if i == start {
			return false
		}
	}
	return i == len(s)
}

const hexDigits = "0123456789abcdef"

// appendString appends s as a JSON string exactly as encoding/json does with
// HTML escaping off: ", \ and control characters escaped (\n, \r, \t, \b,
// \f by name), U+2028/U+2029
// escaped, invalid UTF-8 replaced by U+FFFD.
func appendString(dst []byte, s string) []byte {
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		b := s[i]
		if b < utf8.RuneSelf {
			if b >= 0x20 && b != '"' && b != '\\' {
				i++
				continue
			}
			dst = append(dst, s[start:i]...)
			switch b {
			case '"', '\\':
				dst = append(dst, '\\', b)
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			case '\b':
				dst = append(dst, '\\', 'b')
			case '\f':
				dst = append(dst, '\\', 'f')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hexDigits[b>>4], hexDigits[b&0xF])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			dst = append(dst, s[start:i]...)
			dst = append(dst, '\\', 'u', '2', '0', '2', hexDigits[r&0xF])
			i += size
			start = i
			continue
		}
		i += size
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}
