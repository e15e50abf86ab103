package audit

import "unicode/utf8"

// A hand-written JSON writer for the AuditEvent (appendEventTail in
// json_event.go uses these pieces): encoding/json's reflection was a fifth
// of the cost of recording. It writes exactly what encoding/json (with
// HTML escaping off) writes for the same values; the reference shapes in
// reference_test.go, TestAppendTailMatchesEncodingJSON and FuzzAppendTail
// hold it to that.

const hexDigits = "0123456789abcdef"

// appendString appends s as a JSON string, escaped as encoding/json does
// without HTML escaping.
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
			case '\\', '"':
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

// field appends ,"name": (or "name": first) and returns dst.
func field(dst []byte, first *bool, name string) []byte {
	if !*first {
		dst = append(dst, ',')
	}
	*first = false
	dst = append(dst, '"')
	dst = append(dst, name...)
	return append(dst, '"', ':')
}

func strField(dst []byte, first *bool, name, v string, omitEmpty bool) []byte {
	if v == "" && omitEmpty {
		return dst
	}
	return appendString(field(dst, first, name), v)
}

func appendCoding(dst []byte, c Coding) []byte {
	first := true
	dst = append(dst, '{')
	dst = strField(dst, &first, "system", c.System, true)
	dst = strField(dst, &first, "code", c.Code, true)
	dst = strField(dst, &first, "display", c.Display, true)
	return append(dst, '}')
}

func appendCodings(dst []byte, cs []Coding) []byte {
	dst = append(dst, '[')
	for i, c := range cs {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = appendCoding(dst, c)
	}
	return append(dst, ']')
}

func appendStrings(dst []byte, ss []string) []byte {
	dst = append(dst, '[')
	for i, s := range ss {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = appendString(dst, s)
	}
	return append(dst, ']')
}
