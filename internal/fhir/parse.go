package fhir

import (
	"encoding/json"
	"fmt"
	"strconv"
	"unicode/utf16"
	"unicode/utf8"
)

// MaxJSONDepth is the deepest nesting of objects and arrays ParseJSON and
// ParseResource accept. R4 resources (including contained resources and
// Bundle entries) stay well below it.
const MaxJSONDepth = 64

// ParseResource strictly parses a FHIR JSON resource body: one JSON object
// with a string resourceType, nothing before or after it. Objects become
// map[string]any, arrays []any and numbers json.Number keeping their exact
// text (1.50 stays 1.50).
//
// Every failure is a *Error (HTTP 400) saying what is wrong and where: an
// empty body, invalid JSON (with the byte offset), invalid UTF-8, a
// duplicate property name, nesting deeper than MaxJSONDepth, trailing data,
// a top level that is not an object, a missing or non-string resourceType.
// It does not check the resource against the FHIR structure; see
// internal/fhir/validate.
func ParseResource(body []byte) (map[string]any, error) {
	v, err := ParseJSON(body)
	if err != nil {
		return nil, err
	}
	obj, ok := v.(map[string]any)
	if !ok {
		return nil, &Error{Code: IssueStructure, Diag: fmt.Sprintf("A FHIR resource must be a JSON object, not %s", jsonKind(v))}
	}
	rt, ok := obj["resourceType"]
	if !ok {
		return nil, &Error{Code: IssueInvalid, Diag: "The resource has no resourceType", Expr: []string{"resourceType"}}
	}
	if s, ok := rt.(string); !ok || s == "" {
		return nil, &Error{Code: IssueInvalid, Diag: fmt.Sprintf("resourceType must be a non-empty string, not %s", jsonKind(rt)), Expr: []string{"resourceType"}}
	}
	return obj, nil
}

// ParseJSON strictly parses one JSON value with the rules of ParseResource
// (duplicate names, depth, UTF-8, trailing data) but any top-level value;
// use it for non-resource FHIR bodies such as a JSON Patch document.
func ParseJSON(body []byte) (any, error) {
	// One copy of the body backs every unescaped string and number of the
	// result, instead of one allocation each.
	p := parser{data: string(body), members: make([]member, 0, 32), items: make([]any, 0, 16)}
	// RFC 8259 §8.1 lets a parser ignore a leading byte order mark.
	if len(p.data) >= 3 && p.data[0] == 0xEF && p.data[1] == 0xBB && p.data[2] == 0xBF {
		p.pos = 3
	}
	p.skipSpace()
	if p.pos == len(p.data) {
		return nil, &Error{Code: IssueStructure, Diag: "The request body is empty"}
	}
	v, err := p.value()
	if err != nil {
		return nil, err
	}
	p.skipSpace()
	if p.pos != len(p.data) {
		return nil, p.fail("unexpected data after the top-level value")
	}
	return v, nil
}

// jsonKind names a decoded JSON value's kind for messages.
func jsonKind(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case map[string]any:
		return "an object"
	case []any:
		return "an array"
	case string:
		return "a string"
	case json.Number:
		return "a number"
	case bool:
		return "a boolean"
	default:
		return fmt.Sprintf("a %T", v)
	}
}

type parser struct {
	data    string
	pos     int
	depth   int
	buf     []byte   // scratch for strings with escapes
	members []member // scratch stack of the open objects' members
	items   []any    // scratch stack of the open arrays' items
}

type member struct {
	key string
	pos int // byte offset of the key, for messages
	val any
}

func (p *parser) fail(what string) *Error {
	return &Error{Code: IssueStructure, Diag: fmt.Sprintf("Invalid JSON at byte offset %d: %s", p.pos, what)}
}

func (p *parser) skipSpace() {
	for p.pos < len(p.data) {
		switch p.data[p.pos] {
		case ' ', '\t', '\n', '\r':
			p.pos++
		default:
			return
		}
	}
}

func (p *parser) value() (any, error) {
	if p.pos >= len(p.data) {
		return nil, p.fail("unexpected end of input")
	}
	switch c := p.data[p.pos]; {
	case c == '{':
		return p.object()
	case c == '[':
		return p.array()
	case c == '"':
		return p.string()
	case c == '-' || (c >= '0' && c <= '9'):
		return p.number()
	case c == 't':
		return p.literal("true", true)
	case c == 'f':
		return p.literal("false", false)
	case c == 'n':
		return p.literal("null", nil)
	default:
		return nil, p.fail("unexpected " + describeByte(p.data, p.pos))
	}
}

func describeByte(data string, pos int) string {
	c := data[pos]
	if c >= 0x80 {
		if r, _ := utf8.DecodeRuneInString(data[pos:]); r == utf8.RuneError {
			return "invalid UTF-8"
		}
		return "non-ASCII character"
	}
	if c < 0x20 || c == 0x7f {
		return fmt.Sprintf("control character 0x%02x", c)
	}
	return strconv.QuoteRune(rune(c))
}

func (p *parser) literal(word string, v any) (any, error) {
	if len(p.data)-p.pos < len(word) || p.data[p.pos:p.pos+len(word)] != word {
		return nil, p.fail("invalid literal (want " + word + ")")
	}
	p.pos += len(word)
	return v, nil
}

func (p *parser) enter() error {
	p.depth++
	if p.depth > MaxJSONDepth {
		return &Error{Code: IssueStructure, Diag: fmt.Sprintf("Invalid JSON at byte offset %d: nesting deeper than %d levels", p.pos, MaxJSONDepth)}
	}
	return nil
}

// Objects and arrays collect their members on the parser's scratch stacks
// and are built once at their closing bracket with their exact size, so
// large objects never rehash and arrays never regrow.

func (p *parser) object() (any, error) {
	if err := p.enter(); err != nil {
		return nil, err
	}
	p.pos++ // '{'
	base := len(p.members)
	p.skipSpace()
	if p.pos < len(p.data) && p.data[p.pos] == '}' {
		p.pos++
		p.depth--
		return map[string]any{}, nil
	}
	for {
		if p.pos >= len(p.data) {
			return nil, p.fail("unexpected end of input in object")
		}
		if p.data[p.pos] != '"' {
			return nil, p.fail("expected a property name in double quotes, found " + describeByte(p.data, p.pos))
		}
		keyPos := p.pos
		key, err := p.string()
		if err != nil {
			return nil, err
		}
		p.skipSpace()
		if p.pos >= len(p.data) || p.data[p.pos] != ':' {
			if p.pos >= len(p.data) {
				return nil, p.fail("unexpected end of input in object")
			}
			return nil, p.fail("expected ':' after a property name, found " + describeByte(p.data, p.pos))
		}
		p.pos++
		p.skipSpace()
		v, err := p.value()
		if err != nil {
			return nil, err
		}
		p.members = append(p.members, member{key: key, pos: keyPos, val: v})
		p.skipSpace()
		if p.pos >= len(p.data) {
			return nil, p.fail("unexpected end of input in object")
		}
		switch p.data[p.pos] {
		case ',':
			p.pos++
			p.skipSpace()
		case '}':
			p.pos++
			p.depth--
			return p.buildObject(base)
		default:
			return nil, p.fail("expected ',' or '}' in object, found " + describeByte(p.data, p.pos))
		}
	}
}

// buildObject turns the members collected since base into a map and
// detects duplicate names.
func (p *parser) buildObject(base int) (any, error) {
	ms := p.members[base:]
	m := make(map[string]any, len(ms))
	for i := range ms {
		m[ms[i].key] = ms[i].val
		if len(m) != i+1 {
			err := &Error{Code: IssueStructure, Diag: fmt.Sprintf("Invalid JSON at byte offset %d: duplicate property %s", ms[i].pos, QuoteName(ms[i].key))}
			p.members = p.members[:base]
			return nil, err
		}
		ms[i] = member{} // drop references held by the scratch stack
	}
	p.members = p.members[:base]
	return m, nil
}

func (p *parser) array() (any, error) {
	if err := p.enter(); err != nil {
		return nil, err
	}
	p.pos++ // '['
	base := len(p.items)
	p.skipSpace()
	if p.pos < len(p.data) && p.data[p.pos] == ']' {
		p.pos++
		p.depth--
		return []any{}, nil
	}
	for {
		v, err := p.value()
		if err != nil {
			return nil, err
		}
		p.items = append(p.items, v)
		p.skipSpace()
		if p.pos >= len(p.data) {
			return nil, p.fail("unexpected end of input in array")
		}
		switch p.data[p.pos] {
		case ',':
			p.pos++
			p.skipSpace()
		case ']':
			p.pos++
			p.depth--
			a := make([]any, len(p.items)-base)
			copy(a, p.items[base:])
			clear(p.items[base:])
			p.items = p.items[:base]
			return a, nil
		default:
			return nil, p.fail("expected ',' or ']' in array, found " + describeByte(p.data, p.pos))
		}
	}
}

// string parses a JSON string at p.pos (which holds '"').
func (p *parser) string() (string, error) {
	p.pos++
	start := p.pos
	ascii := true
	for p.pos < len(p.data) {
		c := p.data[p.pos]
		switch {
		case c == '"':
			s := p.data[start:p.pos]
			if !ascii && !utf8.ValidString(s) {
				return "", p.badUTF8(start)
			}
			p.pos++
			return s, nil
		case c == '\\':
			return p.escapedString(start, ascii)
		case c < 0x20:
			return "", p.fail(fmt.Sprintf("control character 0x%02x in string (must be escaped)", c))
		case c >= 0x80:
			ascii = false
		}
		p.pos++
	}
	return "", p.fail("unterminated string")
}

func (p *parser) badUTF8(start int) error {
	for i := start; i < len(p.data); {
		r, n := utf8.DecodeRuneInString(p.data[i:])
		if r == utf8.RuneError && n <= 1 {
			return &Error{Code: IssueStructure, Diag: fmt.Sprintf("Invalid JSON at byte offset %d: invalid UTF-8 in string", i)}
		}
		i += n
	}
	return p.fail("invalid UTF-8 in string")
}

// escapedString continues a string from its first backslash.
func (p *parser) escapedString(start int, ascii bool) (string, error) {
	b := append(p.buf[:0], p.data[start:p.pos]...)
	for p.pos < len(p.data) {
		c := p.data[p.pos]
		switch {
		case c == '"':
			if !ascii && !utf8.Valid(b) {
				return "", p.badUTF8(start)
			}
			p.pos++
			p.buf = b
			return string(b), nil
		case c == '\\':
			if p.pos+1 >= len(p.data) {
				return "", p.fail("unterminated string")
			}
			e := p.data[p.pos+1]
			switch e {
			case '"', '\\', '/':
				b = append(b, e)
			case 'b':
				b = append(b, '\b')
			case 'f':
				b = append(b, '\f')
			case 'n':
				b = append(b, '\n')
			case 'r':
				b = append(b, '\r')
			case 't':
				b = append(b, '\t')
			case 'u':
				r, n, err := p.unicodeEscape()
				if err != nil {
					return "", err
				}
				b = utf8.AppendRune(b, r)
				p.pos += n
				continue
			default:
				return "", p.fail(fmt.Sprintf("invalid escape \\%s in string", describeByte(p.data, p.pos+1)))
			}
			p.pos += 2
		case c < 0x20:
			return "", p.fail(fmt.Sprintf("control character 0x%02x in string (must be escaped)", c))
		default:
			if c >= 0x80 {
				ascii = false
			}
			b = append(b, c)
			p.pos++
		}
	}
	return "", p.fail("unterminated string")
}

// unicodeEscape decodes \uXXXX (and a following low surrogate) at p.pos and
// returns the rune and the number of input bytes it used. Unpaired
// surrogates are rejected: they cannot be represented in UTF-8.
func (p *parser) unicodeEscape() (rune, int, error) {
	r1, ok := hex4(p.data, p.pos+2)
	if !ok {
		return 0, 0, p.fail(`invalid \u escape in string`)
	}
	if !utf16.IsSurrogate(r1) {
		return r1, 6, nil
	}
	if r1 < 0xDC00 && p.pos+12 <= len(p.data) && p.data[p.pos+6] == '\\' && p.data[p.pos+7] == 'u' {
		if r2, ok := hex4(p.data, p.pos+8); ok {
			if r := utf16.DecodeRune(r1, r2); r != utf8.RuneError {
				return r, 12, nil
			}
		}
	}
	return 0, 0, p.fail(`unpaired UTF-16 surrogate in \u escape`)
}

func hex4(b string, at int) (rune, bool) {
	if at+4 > len(b) {
		return 0, false
	}
	var r rune
	for i := at; i < at+4; i++ {
		c := b[i]
		switch {
		case c >= '0' && c <= '9':
			r = r<<4 | rune(c-'0')
		case c >= 'a' && c <= 'f':
			r = r<<4 | rune(c-'a'+10)
		case c >= 'A' && c <= 'F':
			r = r<<4 | rune(c-'A'+10)
		default:
			return 0, false
		}
	}
	return r, true
}

func (p *parser) number() (any, error) {
	start := p.pos
	d := p.data
	if d[p.pos] == '-' {
		p.pos++
	}
	switch {
	case p.pos < len(d) && d[p.pos] == '0':
		p.pos++
	case p.pos < len(d) && d[p.pos] >= '1' && d[p.pos] <= '9':
		p.digits()
	default:
		return nil, p.fail("invalid number")
	}
	if p.pos < len(d) && d[p.pos] == '.' {
		p.pos++
		if p.digits() == 0 {
			return nil, p.fail("invalid number: digits expected after '.'")
		}
	}
	if p.pos < len(d) && (d[p.pos] == 'e' || d[p.pos] == 'E') {
		p.pos++
		if p.pos < len(d) && (d[p.pos] == '+' || d[p.pos] == '-') {
			p.pos++
		}
		if p.digits() == 0 {
			return nil, p.fail("invalid number: digits expected in exponent")
		}
	}
	return json.Number(d[start:p.pos]), nil
}

func (p *parser) digits() int {
	n := 0
	for p.pos < len(p.data) && p.data[p.pos] >= '0' && p.data[p.pos] <= '9' {
		p.pos++
		n++
	}
	return n
}

// QuoteName quotes a client-supplied name or value for a client message,
// shortened so a huge value cannot bloat the response.
func QuoteName(s string) string {
	const max = 64
	suffix := ""
	if len(s) > max {
		cut := max
		for cut > 0 && !utf8.RuneStart(s[cut]) {
			cut--
		}
		s, suffix = s[:cut], "…"
	}
	for _, r := range s {
		if r == '\'' || r == '\\' || !strconv.IsPrint(r) {
			return strconv.Quote(s) + suffix
		}
	}
	return "'" + s + suffix + "'"
}
