package fhirapi

import (
	"fmt"
	"unicode/utf8"
)

// marshalSearchset encodes a searchset Bundle. Its entries' resources are
// JSON this server wrote (stored compact, or shaped by API.shape), so
// they are spliced in as they are: encoding/json would parse and compact
// every json.RawMessage again, which took ≈ 70 µs of a 20-entry page
// (an eighth of the CPU of an HTTP search). The envelope goes through
// encoding/json; the output equals marshalJSON(doc) byte for byte
// (TestMarshalSearchsetEqualsEncodingJSON).
func marshalSearchset(doc searchsetDoc) ([]byte, error) {
	entries := doc.Entry
	doc.Entry = nil
	head, err := marshalJSON(doc)
	if err != nil {
		return nil, err
	}
	if len(entries) == 0 {
		return head, nil
	}
	if len(head) < 2 || head[len(head)-1] != '}' {
		return nil, fmt.Errorf("encode searchset: unexpected envelope %q", head)
	}
	size := len(head) + 16
	for _, e := range entries {
		size += len(e.FullURL) + len(e.Resource) + len(e.Search.Mode) + 48
	}
	buf := make([]byte, 0, size)
	buf = append(buf, head[:len(head)-1]...)
	buf = append(buf, `,"entry":[`...)
	for i, e := range entries {
		if i > 0 {
			buf = append(buf, ',')
		}
		buf = append(buf, '{')
		if e.FullURL != "" {
			buf = append(buf, `"fullUrl":`...)
			buf = appendJSONString(buf, e.FullURL)
			buf = append(buf, ',')
		}
		buf = append(buf, `"resource":`...)
		if len(e.Resource) == 0 {
			buf = append(buf, "null"...)
		} else {
			buf = append(buf, e.Resource...)
		}
		buf = append(buf, `,"search":{"mode":`...)
		buf = appendJSONString(buf, e.Search.Mode)
		buf = append(buf, "}}"...)
	}
	buf = append(buf, "]}"...)
	return buf, nil
}

// appendJSONString appends s as a JSON string the way encoding/json writes
// it without HTML escaping: quotes, backslashes and control characters
// escaped, U+2028 and U+2029 as \u escapes, invalid UTF-8 as U+FFFD.
func appendJSONString(buf []byte, s string) []byte {
	const hex = "0123456789abcdef"
	buf = append(buf, '"')
	start := 0
	for i := 0; i < len(s); {
		if b := s[i]; b < utf8.RuneSelf {
			if b >= 0x20 && b != '"' && b != '\\' {
				i++
				continue
			}
			buf = append(buf, s[start:i]...)
			switch b {
			case '"', '\\':
				buf = append(buf, '\\', b)
			case '\b':
				buf = append(buf, '\\', 'b')
			case '\f':
				buf = append(buf, '\\', 'f')
			case '\n':
				buf = append(buf, '\\', 'n')
			case '\r':
				buf = append(buf, '\\', 'r')
			case '\t':
				buf = append(buf, '\\', 't')
			default:
				buf = append(buf, '\\', 'u', '0', '0', hex[b>>4], hex[b&0xF])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			buf = append(buf, s[start:i]...)
			buf = append(buf, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			buf = append(buf, s[start:i]...)
			buf = append(buf, '\\', 'u', '2', '0', '2', hex[r&0xF])
			i += size
			start = i
			continue
		}
		i += size
	}
	buf = append(buf, s[start:]...)
	return append(buf, '"')
}
