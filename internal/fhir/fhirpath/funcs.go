package fhirpath

import (
	"encoding/json"
	"fmt"
	"strings"
)

// call is a function invocation.
type call struct {
	name string
	args []node
	typ  string // type argument of ofType/as/is
	fn   func(c *call, ec *evalCtx, input []Node) ([]Node, error)
}

type funcSpec struct {
	minArgs, maxArgs int
	typeArg          bool // the single argument is a type specifier
	fn               func(c *call, ec *evalCtx, input []Node) ([]Node, error)
}

// funcTable lists the supported functions. It is an immutable lookup table
// built at compile time of the program, never modified.
var funcTable = map[string]funcSpec{
	"where":     {1, 1, false, fnWhere},
	"select":    {1, 1, false, fnSelect},
	"exists":    {0, 1, false, fnExists},
	"empty":     {0, 0, false, fnEmpty},
	"not":       {0, 0, false, fnNot},
	"first":     {0, 0, false, fnFirst},
	"last":      {0, 0, false, fnLast},
	"tail":      {0, 0, false, fnTail},
	"count":     {0, 0, false, fnCount},
	"ofType":    {1, 1, true, fnOfType},
	"as":        {1, 1, true, fnOfType},
	"is":        {1, 1, true, fnIs},
	"resolve":   {0, 0, false, fnResolve},
	"extension": {1, 1, false, fnExtension},
	"hasValue":  {0, 0, false, fnHasValue},
	"children":  {0, 0, false, fnChildren},
}

func newCall(name string, args []node) (*call, error) {
	spec, ok := funcTable[name]
	if !ok {
		return nil, fmt.Errorf("unsupported function %s()", name)
	}
	if len(args) < spec.minArgs || len(args) > spec.maxArgs {
		return nil, fmt.Errorf("%s() takes %d to %d arguments, got %d", name, spec.minArgs, spec.maxArgs, len(args))
	}
	c := &call{name: name, args: args, fn: spec.fn}
	if spec.typeArg {
		t, ok := typeNameOf(args[0])
		if !ok {
			return nil, fmt.Errorf("%s() needs a type name", name)
		}
		c.typ = t
	}
	return c, nil
}

func (c *call) String() string {
	var b strings.Builder
	b.WriteString(c.name)
	b.WriteByte('(')
	for i, a := range c.args {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(a.String())
	}
	b.WriteByte(')')
	return b.String()
}

func (c *call) eval(ec *evalCtx) ([]Node, error) { return c.fn(c, ec, ec.this) }

func (c *call) invoke(ec *evalCtx, input []Node) ([]Node, error) { return c.fn(c, ec, input) }

func fnWhere(c *call, ec *evalCtx, input []Node) ([]Node, error) {
	var out []Node
	for i := range input {
		r, err := c.args[0].eval(ec.with(input[i : i+1]))
		if err != nil {
			return nil, err
		}
		if b, ok := toBool(r); ok && b {
			out = append(out, input[i])
		}
	}
	return out, nil
}

func fnSelect(c *call, ec *evalCtx, input []Node) ([]Node, error) {
	var out []Node
	for i := range input {
		r, err := c.args[0].eval(ec.with(input[i : i+1]))
		if err != nil {
			return nil, err
		}
		out = append(out, r...)
	}
	return out, nil
}

func fnExists(c *call, ec *evalCtx, input []Node) ([]Node, error) {
	if len(c.args) == 1 {
		w, err := fnWhere(c, ec, input)
		if err != nil {
			return nil, err
		}
		input = w
	}
	return boolean(len(input) > 0), nil
}

func fnEmpty(_ *call, _ *evalCtx, input []Node) ([]Node, error) {
	return boolean(len(input) == 0), nil
}

func fnNot(_ *call, _ *evalCtx, input []Node) ([]Node, error) {
	b, ok := toBool(input)
	if !ok {
		return nil, nil
	}
	return boolean(!b), nil
}

func fnFirst(_ *call, _ *evalCtx, input []Node) ([]Node, error) {
	if len(input) == 0 {
		return nil, nil
	}
	return input[:1], nil
}

func fnLast(_ *call, _ *evalCtx, input []Node) ([]Node, error) {
	if len(input) == 0 {
		return nil, nil
	}
	return input[len(input)-1:], nil
}

func fnTail(_ *call, _ *evalCtx, input []Node) ([]Node, error) {
	if len(input) <= 1 {
		return nil, nil
	}
	return input[1:], nil
}

func fnCount(_ *call, _ *evalCtx, input []Node) ([]Node, error) {
	return []Node{{Value: json.Number(fmt.Sprint(len(input))), Type: "integer"}}, nil
}

func fnOfType(c *call, _ *evalCtx, input []Node) ([]Node, error) {
	return filterType(input, c.typ), nil
}

func fnIs(c *call, _ *evalCtx, input []Node) ([]Node, error) {
	if len(input) == 0 {
		return nil, nil
	}
	if len(input) > 1 {
		return nil, fmt.Errorf("is() needs a single value")
	}
	return boolean(isType(input[0], c.typ)), nil
}

func fnHasValue(_ *call, _ *evalCtx, input []Node) ([]Node, error) {
	if len(input) != 1 {
		return boolean(false), nil
	}
	_, isMap := input[0].Value.(map[string]any)
	return boolean(!isMap), nil
}

func fnChildren(_ *call, _ *evalCtx, input []Node) ([]Node, error) {
	var out []Node
	for _, n := range input {
		if m, ok := n.Value.(map[string]any); ok {
			for k, v := range m {
				if k != "resourceType" && !strings.HasPrefix(k, "_") {
					out = appendValue(out, v, "")
				}
			}
		}
	}
	return out, nil
}

// fnExtension selects the extensions with the given url.
func fnExtension(c *call, ec *evalCtx, input []Node) ([]Node, error) {
	u, err := c.args[0].eval(ec)
	if err != nil {
		return nil, err
	}
	url, ok := singletonString(u)
	if !ok {
		return nil, fmt.Errorf("extension() needs a single url string")
	}
	var out []Node
	for _, n := range input {
		for _, e := range children(nil, n, "extension") {
			if m, ok := e.Value.(map[string]any); ok && m["url"] == url {
				out = append(out, Node{Value: m, Type: "Extension"})
			}
		}
	}
	return out, nil
}

// fnResolve resolves references without I/O: '#id' to the contained
// resource of %resource; any other reference (a Reference's reference, or
// a canonical/uri string) to a node whose Type is the target resource type
// and whose Value is the reference itself.
func fnResolve(_ *call, ec *evalCtx, input []Node) ([]Node, error) {
	var out []Node
	for _, n := range input {
		var ref string
		switch v := n.Value.(type) {
		case map[string]any:
			ref, _ = v["reference"].(string)
		case string:
			ref = v
		}
		if ref == "" {
			continue
		}
		if strings.HasPrefix(ref, "#") {
			if root, ok := ec.resource.Value.(map[string]any); ok {
				for _, c := range children(nil, Node{Value: root}, "contained") {
					if m, ok := c.Value.(map[string]any); ok && m["id"] == ref[1:] {
						out = append(out, c)
						break // a reference resolves to one resource
					}
				}
			}
			continue
		}
		if typ, _, _, ok := ParseReference(ref); ok {
			out = append(out, Node{Value: n.Value, Type: typ})
		}
	}
	return out, nil
}
