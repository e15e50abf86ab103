package fhirpath

import (
	"encoding/json"
	"fmt"
	"math/big"
	"reflect"
	"strings"
)

func newBinary(op string, l, r node) (node, error) {
	switch op {
	case "|", "and", "or", "xor", "implies", "=", "!=", "~", "!~", "<", ">", "<=", ">=", "&":
		return &binary{op: op, left: l, right: r}, nil
	}
	return nil, fmt.Errorf("unsupported operator %q", op)
}

func (b *binary) eval(ec *evalCtx) ([]Node, error) {
	l, err := b.left.eval(ec)
	if err != nil {
		return nil, err
	}
	// and/or short-circuit where three-valued logic allows it.
	switch b.op {
	case "and":
		if lb, ok := toBool(l); ok && !lb {
			return boolean(false), nil
		}
	case "or":
		if lb, ok := toBool(l); ok && lb {
			return boolean(true), nil
		}
	}
	r, err := b.right.eval(ec)
	if err != nil {
		return nil, err
	}
	switch b.op {
	case "|":
		return union(l, r), nil
	case "and", "or", "xor", "implies":
		return logic(b.op, l, r), nil
	case "=", "!=", "~", "!~":
		if len(l) == 0 || len(r) == 0 {
			if b.op == "~" {
				return boolean(len(l) == len(r)), nil
			}
			if b.op == "!~" {
				return boolean(len(l) != len(r)), nil
			}
			return nil, nil
		}
		eq := len(l) == len(r)
		for i := 0; eq && i < len(l); i++ {
			if b.op == "~" || b.op == "!~" {
				eq = equivalent(l[i].Value, r[i].Value)
			} else {
				eq = equal(l[i].Value, r[i].Value)
			}
		}
		if b.op == "!=" || b.op == "!~" {
			eq = !eq
		}
		return boolean(eq), nil
	case "<", ">", "<=", ">=":
		if len(l) != 1 || len(r) != 1 {
			if len(l) == 0 || len(r) == 0 {
				return nil, nil
			}
			return nil, fmt.Errorf("operator %s needs single values", b.op)
		}
		c, ok := compare(l[0].Value, r[0].Value)
		if !ok {
			return nil, nil
		}
		switch b.op {
		case "<":
			return boolean(c < 0), nil
		case ">":
			return boolean(c > 0), nil
		case "<=":
			return boolean(c <= 0), nil
		default:
			return boolean(c >= 0), nil
		}
	case "&":
		ls, _ := singletonString(l)
		rs, _ := singletonString(r)
		return []Node{{Value: ls + rs, Type: "string"}}, nil
	}
	return nil, fmt.Errorf("unsupported operator %q", b.op)
}

func boolean(v bool) []Node { return []Node{{Value: v, Type: "boolean"}} }

// toBool applies FHIRPath singleton evaluation: {} is unknown, a single
// boolean is itself, any other single item is true.
func toBool(c []Node) (value, known bool) {
	if len(c) == 0 {
		return false, false
	}
	if len(c) == 1 {
		if b, ok := c[0].Value.(bool); ok {
			return b, true
		}
	}
	return true, true
}

func logic(op string, l, r []Node) []Node {
	lb, lk := toBool(l)
	rb, rk := toBool(r)
	switch op {
	case "and":
		switch {
		case lk && !lb, rk && !rb:
			return boolean(false)
		case lk && rk:
			return boolean(true)
		}
	case "or":
		switch {
		case lk && lb, rk && rb:
			return boolean(true)
		case lk && rk:
			return boolean(false)
		}
	case "xor":
		if lk && rk {
			return boolean(lb != rb)
		}
	case "implies":
		switch {
		case lk && !lb, rk && rb:
			return boolean(true)
		case lk && rk:
			return boolean(false)
		}
	}
	return nil
}

// union merges two collections, dropping duplicates.
func union(l, r []Node) []Node {
	out := make([]Node, 0, len(l)+len(r))
	for _, c := range [][]Node{l, r} {
		for _, n := range c {
			dup := false
			for _, o := range out {
				if sameItem(o.Value, n.Value) {
					dup = true
					break
				}
			}
			if !dup {
				out = append(out, n)
			}
		}
	}
	return out
}

// sameItem is a cheap identity test for maps (the same decoded element)
// and value equality for primitives.
func sameItem(a, b any) bool {
	am, aok := a.(map[string]any)
	bm, bok := b.(map[string]any)
	if aok || bok {
		return aok && bok && reflect.ValueOf(am).UnsafePointer() == reflect.ValueOf(bm).UnsafePointer()
	}
	return equal(a, b)
}

func equal(a, b any) bool {
	switch x := a.(type) {
	case string:
		y, ok := b.(string)
		return ok && x == y
	case bool:
		y, ok := b.(bool)
		return ok && x == y
	case json.Number:
		y, ok := b.(json.Number)
		if !ok {
			return false
		}
		c, ok := compareNumbers(x, y)
		return ok && c == 0
	case map[string]any:
		return reflect.DeepEqual(a, b)
	}
	return false
}

func equivalent(a, b any) bool {
	if x, ok := a.(string); ok {
		y, ok := b.(string)
		return ok && strings.EqualFold(strings.Join(strings.Fields(x), " "), strings.Join(strings.Fields(y), " "))
	}
	return equal(a, b)
}

func compareNumbers(x, y json.Number) (int, bool) {
	a, ok1 := new(big.Rat).SetString(string(x))
	b, ok2 := new(big.Rat).SetString(string(y))
	if !ok1 || !ok2 {
		return 0, false
	}
	return a.Cmp(b), true
}

// compare orders two numbers or two strings (dates compare as their
// ISO 8601 text).
func compare(a, b any) (int, bool) {
	switch x := a.(type) {
	case json.Number:
		if y, ok := b.(json.Number); ok {
			return compareNumbers(x, y)
		}
	case string:
		if y, ok := b.(string); ok {
			return strings.Compare(x, y), true
		}
	}
	return 0, false
}

func singletonString(c []Node) (string, bool) {
	if len(c) != 1 {
		return "", false
	}
	switch v := c[0].Value.(type) {
	case string:
		return v, true
	case json.Number:
		return string(v), true
	case bool:
		if v {
			return "true", true
		}
		return "false", true
	}
	return "", false
}

func (t *typeOp) eval(ec *evalCtx) ([]Node, error) {
	in, err := t.x.eval(ec)
	if err != nil {
		return nil, err
	}
	if t.op == "as" {
		return filterType(in, t.typ), nil
	}
	if len(in) == 0 {
		return nil, nil
	}
	if len(in) > 1 {
		return nil, fmt.Errorf("'is' needs a single value")
	}
	return boolean(isType(in[0], t.typ)), nil
}

func filterType(in []Node, typ string) []Node {
	var out []Node
	for _, n := range in {
		if isType(n, typ) {
			out = append(out, n)
		}
	}
	return out
}

// primitiveStringTypes are the FHIR primitives represented as JSON strings.
var primitiveStringTypes = map[string]bool{
	"String": true, "Code": true, "Id": true, "Uri": true, "Url": true, "Canonical": true,
	"Oid": true, "Uuid": true, "Markdown": true, "Base64Binary": true, "Date": true,
	"DateTime": true, "Instant": true, "Time": true,
}

// isType reports whether n is of the named type. Names compare with the
// first letter upper-cased (dateTime and DateTime are the same). A node of
// unknown type matches by its JSON kind: strings match the string-based
// primitives, numbers decimal/integer, booleans boolean; an untyped object
// matches no type.
func isType(n Node, typ string) bool {
	if n.Type != "" {
		if typeNameEq(n.Type, typ) {
			return true
		}
		return (typ == "Resource" || typ == "DomainResource") && isResourceMap(n.Value)
	}
	switch n.Value.(type) {
	case string:
		return primitiveStringTypes[upperFirst(typ)]
	case bool:
		return typeNameEq(typ, "Boolean")
	case json.Number:
		return typeNameEq(typ, "Decimal") || typeNameEq(typ, "Integer") || typeNameEq(typ, "PositiveInt") || typeNameEq(typ, "UnsignedInt")
	}
	return false
}

// typeNameEq compares type names ignoring the case of the first letter.
func typeNameEq(a, b string) bool {
	if len(a) != len(b) || a == "" {
		return a == b
	}
	return a[1:] == b[1:] && (a[0] == b[0] || a[0]^0x20 == b[0] && (a[0]|0x20) >= 'a' && (a[0]|0x20) <= 'z')
}

func isResourceMap(v any) bool {
	m, ok := v.(map[string]any)
	if !ok {
		return false
	}
	_, ok = m["resourceType"].(string)
	return ok
}

func upperFirst(s string) string {
	if s != "" && s[0] >= 'a' && s[0] <= 'z' {
		return string(s[0]-'a'+'A') + s[1:]
	}
	return s
}
