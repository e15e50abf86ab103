package validate

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"

	"github.com/fhirguard/fhirguard/internal/fhir"
	"github.com/fhirguard/fhirguard/internal/fhir/spec"
)

// value validates one non-null value of element e (an array item or a
// single value).
func (w *walker) value(e elem, val any, contained bool, depth int) bool {
	n := e.n
	switch n.t.Kind {
	case spec.Primitive:
		return w.primitive(e, val)
	case spec.Complex:
		m, ok := val.(map[string]any)
		if !ok {
			return w.fail(fhir.IssueStructure, "Element %s must be an object (%s), not %s", quote(e.el.Name), n.t.Name, kindOf(val))
		}
		return w.object(n, m, false, depth+1)
	case spec.AnyResource:
		m, ok := val.(map[string]any)
		if !ok {
			return w.fail(fhir.IssueStructure, "Element %s must be a resource (JSON object), not %s", quote(e.el.Name), kindOf(val))
		}
		rt, ok := m["resourceType"].(string)
		if !ok {
			return w.fail(fhir.IssueInvalid, "The resource in %s has no resourceType", quote(e.el.Name))
		}
		rn := w.v.nodes[rt]
		if rn == nil {
			return w.fail(fhir.IssueInvalid, "Unknown resource type %s", quote(rt))
		}
		return w.object(rn, m, contained, depth+1)
	}
	return w.fail(fhir.IssueStructure, "Element %s cannot be validated", quote(e.el.Name))
}

// primitive validates a primitive value: JSON type, lexical form, range,
// fixed codes.
func (w *walker) primitive(e elem, val any) bool {
	n := e.n
	var text string
	switch n.t.JSON {
	case spec.JSONBoolean:
		if _, ok := val.(bool); !ok {
			return w.fail(fhir.IssueStructure, "Element %s must be a JSON boolean (true or false), not %s", quote(e.el.Name), kindOf(val))
		}
		return true
	case spec.JSONNumber:
		t, ok := numberText(val)
		if !ok {
			return w.fail(fhir.IssueStructure, "Element %s must be a JSON number (%s), not %s", quote(e.el.Name), n.t.Name, kindOf(val))
		}
		text = t
	default:
		s, ok := val.(string)
		if !ok {
			return w.fail(fhir.IssueStructure, "Element %s must be a JSON string (%s), not %s", quote(e.el.Name), n.t.Name, kindOf(val))
		}
		if s == "" {
			return w.fail(fhir.IssueValue, "Element %s must not be an empty string", quote(e.el.Name))
		}
		text = s
	}
	if n.lex != nil && !n.lex(text) {
		return w.fail(fhir.IssueValue, "Invalid %s value %s", n.t.Name, quote(text))
	}
	if n.int32 && !int32Range(text) {
		return w.fail(fhir.IssueValue, "Value %s is out of range for %s (32-bit)", quote(text), n.t.Name)
	}
	if e.el.Const != "" && text != e.el.Const {
		return w.fail(fhir.IssueValue, "Value %s must be %s", quote(text), quote(e.el.Const))
	}
	if e.el.Enum != nil && !contains(e.el.Enum, text) {
		return w.fail(fhir.IssueCodeInvalid, "Invalid code %s for %s (allowed: %s)", quote(text), quote(e.el.Name), codeList(e.el.Enum))
	}
	return true
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// codeList lists allowed codes for a message, shortened when long.
func codeList(codes []string) string {
	const max = 12
	if len(codes) > max {
		return strings.Join(codes[:max], ", ") + fmt.Sprintf(", … (%d codes)", len(codes))
	}
	return strings.Join(codes, ", ")
}

// numberText returns the JSON text of a number decoded with UseNumber (or,
// for maps built otherwise, a float64 or integer).
func numberText(v any) (string, bool) {
	switch n := v.(type) {
	case json.Number:
		return string(n), true
	case float64:
		return strconv.FormatFloat(n, 'f', -1, 64), true
	case int:
		return strconv.Itoa(n), true
	case int64:
		return strconv.FormatInt(n, 10), true
	case int32:
		return strconv.FormatInt(int64(n), 10), true
	}
	return "", false
}

// typeLabel names a node's type for messages.
func typeLabel(n *node) string {
	if n.t.Kind == spec.AnyResource {
		return "resource"
	}
	return n.t.Name
}

// kindOf names a JSON value's kind for messages.
func kindOf(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case map[string]any:
		return "an object"
	case []any:
		return "an array"
	case string:
		return "a string"
	case json.Number, float64, int, int64, int32:
		return "a number"
	case bool:
		return "a boolean"
	}
	return fmt.Sprintf("a Go %T", v)
}

// quote quotes a client-supplied name or value for a message.
func quote(s string) string { return fhir.QuoteName(s) }
