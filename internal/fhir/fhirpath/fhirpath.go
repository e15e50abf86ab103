// Package fhirpath owns fhirguard's FHIRPath evaluator: the subset of
// FHIRPath (http://hl7.org/fhirpath/N1) that the R4 and US Core search
// parameter expressions use, evaluated over resources decoded as
// map[string]any with json.Number numbers.
//
// An expression is compiled once (Compile: lex, parse, check every function
// and operator is supported) and evaluated many times (Expr.Eval, or
// Expr.EvalIn with one Env shared by all the expressions evaluated on a
// resource, which saves allocations). Supported:
// paths with choice types (Observation.value selects valueQuantity,
// valueString, ...), indexers, '|' unions, and/or/xor/implies, = != ~ !~,
// < <= > >=, & string concatenation, is/as, string/number/boolean
// literals, {}, %resource/%rootResource/%context, $this, and the functions
// where, select, exists, empty, not, first, last, tail, count, ofType, as,
// is, resolve, extension, hasValue and children. resolve() does not fetch:
// it yields the contained resource for '#id' and otherwise a node typed by
// the reference's target type (Patient/1, http://x/fhir/Patient/1,
// Patient/1/_history/2), which is what `resolve() is Patient` needs.
package fhirpath

import (
	"encoding/json"
	"fmt"
	"slices"

	"github.com/fhirguard/fhirguard/internal/fhir/searchparam"
)

// Node is one item of a FHIRPath result collection.
type Node struct {
	// Value is a map[string]any (complex value or resource), string, bool
	// or json.Number. Arrays are always flattened into separate nodes.
	Value any
	// Type is the FHIR type when known: the suffix of a choice element
	// (valueQuantity → "Quantity"), a resource's resourceType, a literal's
	// System type ("string", "boolean", "integer", "decimal"), or the target
	// type of a resolve()d reference. Empty when unknown.
	Type string
}

// Expr is a compiled FHIRPath expression, safe for concurrent use.
type Expr struct {
	root node
	src  string
}

// Compile parses src. It fails on syntax errors and on functions, operators
// and variables the evaluator does not support, so an expression that
// compiles can always be evaluated.
func Compile(src string) (*Expr, error) {
	toks, err := lex(src)
	if err != nil {
		return nil, err
	}
	p := &parser{toks: toks, src: src}
	root, err := p.parseExpr(0, 0)
	if err != nil {
		return nil, err
	}
	if t := p.peek(); t.kind != tEOF {
		return nil, p.errf(t, "unexpected %q after the expression", t.text)
	}
	if err := checkVars(root); err != nil {
		return nil, err
	}
	return &Expr{root: root, src: src}, nil
}

// Source returns the text the expression was compiled from.
func (e *Expr) Source() string { return e.src }

// String returns the canonical text of the parsed expression.
func (e *Expr) String() string { return e.root.String() }

// Eval evaluates the expression with resource as the context and %resource.
// The resource's type is its resourceType.
func (e *Expr) Eval(resource map[string]any) ([]Node, error) {
	r := resourceNode(resource)
	return e.EvalNode(r, r)
}

// EvalResource is Eval for a resource whose type is known to the caller
// (resourceType may be absent from the map).
func (e *Expr) EvalResource(typ string, resource map[string]any) ([]Node, error) {
	r := Node{Value: resource, Type: typ}
	return e.EvalNode(r, r)
}

// EvalNode evaluates the expression on the focus ctx (e.g. one node a
// composite parameter's expression selected) with resource as %resource.
func (e *Expr) EvalNode(resource, ctx Node) ([]Node, error) {
	return e.EvalIn(NewEnv(resource), ctx)
}

// Env is an evaluation environment for one resource (%resource), reused
// across the evaluations of many expressions on it to save allocations.
// An Env is not safe for concurrent use.
type Env struct {
	ec      evalCtx
	scratch [1]Node
	// arena hands out small result slices (bump allocation, never
	// reused), replacing many tiny allocations with a few chunks.
	arena []Node
}

// NewEnv returns an environment with resource as %resource.
func NewEnv(resource Node) *Env {
	env := &Env{}
	env.ec = evalCtx{resource: resource, env: env}
	return env
}

// alloc returns an empty slice with capacity n. Slices never overlap, so
// appending past n simply moves to the heap.
func (env *Env) alloc(n int) []Node {
	const maxChunk = 512
	if n > maxChunk/8 {
		return make([]Node, 0, n)
	}
	if len(env.arena)+n > cap(env.arena) {
		size := min(max(2*cap(env.arena), 16), maxChunk)
		env.arena = make([]Node, 0, size)
	}
	l := len(env.arena)
	env.arena = env.arena[:l+n]
	return env.arena[l : l : l+n]
}

// EvalIn evaluates the expression on the focus ctx within env.
func (e *Expr) EvalIn(env *Env, ctx Node) ([]Node, error) {
	env.scratch[0] = ctx
	env.ec.context = ctx
	env.ec.this = env.scratch[:]
	out, err := e.root.eval(&env.ec)
	if err != nil {
		return nil, fmt.Errorf("fhirpath %s: %w", e.src, err)
	}
	if len(out) > 0 && &out[0] == &env.scratch[0] {
		out = []Node{out[0]} // never hand out the reused focus slot
	}
	return out, nil
}

// resourceNode wraps a resource map, typed by its resourceType.
func resourceNode(m map[string]any) Node {
	t, _ := m["resourceType"].(string)
	return Node{Value: m, Type: t}
}

type evalCtx struct {
	resource Node
	context  Node
	this     []Node
	env      *Env // nil: allocate from the heap
}

func (ec *evalCtx) alloc(n int) []Node {
	if ec.env == nil {
		return make([]Node, 0, n)
	}
	return ec.env.alloc(n)
}

func (ec *evalCtx) with(this []Node) *evalCtx {
	c := *ec
	c.this = this
	return &c
}

func checkVars(n node) error {
	var err error
	walk(n, func(n node) {
		if v, ok := n.(*variable); ok && err == nil {
			switch v.name {
			case "resource", "rootResource", "context", "ucum", "sct", "loinc":
			default:
				err = &SyntaxError{0, fmt.Sprintf("unsupported variable %%%s", v.name)}
			}
		}
	})
	return err
}

func walk(n node, f func(node)) {
	f(n)
	switch x := n.(type) {
	case *paren:
		walk(x.x, f)
	case *term:
		walk(x.inv, f)
	case *dot:
		walk(x.left, f)
		walk(x.right, f)
	case *indexer:
		walk(x.x, f)
		walk(x.idx, f)
	case *typeOp:
		walk(x.x, f)
	case *binary:
		walk(x.left, f)
		walk(x.right, f)
	case *call:
		for _, a := range x.args {
			walk(a, f)
		}
	}
}

func (l *literal) eval(*evalCtx) ([]Node, error) { return l.vals, nil }

func (v *variable) eval(ec *evalCtx) ([]Node, error) {
	switch v.name {
	case "resource", "rootResource":
		return []Node{ec.resource}, nil
	case "context":
		return []Node{ec.context}, nil
	case "ucum":
		return []Node{{Value: "http://unitsofmeasure.org", Type: "string"}}, nil
	case "sct":
		return []Node{{Value: "http://snomed.info/sct", Type: "string"}}, nil
	case "loinc":
		return []Node{{Value: "http://loinc.org", Type: "string"}}, nil
	}
	return nil, fmt.Errorf("unsupported variable %%%s", v.name)
}

func (p *paren) eval(ec *evalCtx) ([]Node, error) { return p.x.eval(ec) }

func (t *term) eval(ec *evalCtx) ([]Node, error) {
	if id, ok := t.inv.(*ident); ok {
		return id.invokeRoot(ec, ec.this), nil
	}
	return t.inv.invoke(ec, ec.this)
}

func (d *dot) eval(ec *evalCtx) ([]Node, error) {
	in, err := d.left.eval(ec)
	if err != nil {
		return nil, err
	}
	return d.right.invoke(ec, in)
}

func (ix *indexer) eval(ec *evalCtx) ([]Node, error) {
	in, err := ix.x.eval(ec)
	if err != nil {
		return nil, err
	}
	idx, err := ix.idx.eval(ec)
	if err != nil {
		return nil, err
	}
	i, ok, err := singletonInt(idx)
	if err != nil || !ok {
		return nil, err
	}
	if i < 0 || i >= len(in) {
		return nil, nil
	}
	return in[i : i+1], nil
}

func (thisInv) eval(ec *evalCtx) ([]Node, error) { return ec.this, nil }

func (thisInv) invoke(_ *evalCtx, input []Node) ([]Node, error) { return input, nil }

func (id *ident) eval(ec *evalCtx) ([]Node, error) { return id.invokeRoot(ec, ec.this), nil }

func (id *ident) invoke(ec *evalCtx, input []Node) ([]Node, error) {
	if len(input) == 1 {
		// The common case: one focus, a plain (non-choice) element.
		if m, ok := input[0].Value.(map[string]any); ok {
			if v, ok := m[id.name]; ok {
				return appendValue(ec.alloc(countValue(v)), v, ""), nil
			}
		}
	}
	var out []Node
	for _, n := range input {
		out = children(out, n, id.name)
	}
	return out, nil
}

// countValue is the number of nodes appendValue makes of v.
func countValue(v any) int {
	switch x := v.(type) {
	case nil:
		return 0
	case []any:
		return len(x)
	}
	return 1
}

// invokeRoot evaluates an identifier in term position: a type name matching
// the focus (Observation, Resource, DomainResource) selects the focus itself;
// anything else is a child element.
func (id *ident) invokeRoot(ec *evalCtx, input []Node) []Node {
	name := id.name
	if name != "" && name[0] >= 'A' && name[0] <= 'Z' {
		if len(input) == 1 && rootMatches(ec, input[0], name) {
			return input
		}
		var out []Node
		for _, n := range input {
			if rootMatches(ec, n, name) {
				out = append(out, n)
			}
		}
		return out
	}
	out, _ := id.invoke(ec, input) // never fails
	return out
}

// rootMatches reports whether the type name in term position selects n: a
// resource (or %resource itself) of that type, or any resource for Resource
// and DomainResource.
func rootMatches(ec *evalCtx, n Node, name string) bool {
	if _, ok := n.Value.(map[string]any); !ok || n.Type == "" {
		return false
	}
	rt := n.Type
	if rt == name {
		return true
	}
	isRes := isResourceMap(n.Value) || sameItem(n.Value, ec.resource.Value)
	return isRes && (name == "Resource" || name == "DomainResource" && rt != "Bundle" && rt != "Binary" && rt != "Parameters")
}

// children appends the child elements name of n to out, flattening arrays
// and resolving choice elements (name + a FHIR type suffix).
func children(out []Node, n Node, name string) []Node {
	m, ok := n.Value.(map[string]any)
	if !ok {
		return out
	}
	if v, ok := m[name]; ok {
		return appendValue(out, v, "")
	}
	if !searchparam.IsChoiceElement(name) {
		return out
	}
	for k, v := range m {
		if len(k) > len(name) && k[:len(name)] == name {
			if suffix := k[len(name):]; choiceTypes[suffix] {
				out = appendValue(out, v, suffix)
			}
		}
	}
	return out
}

func appendValue(out []Node, v any, typ string) []Node {
	switch x := v.(type) {
	case nil:
	case []any:
		out = slices.Grow(out, len(x))
		for _, e := range x {
			out = appendValue(out, e, typ)
		}
	case map[string]any:
		if typ == "" {
			typ, _ = x["resourceType"].(string)
		}
		out = append(out, Node{Value: x, Type: typ})
	default:
		out = append(out, Node{Value: x, Type: typ})
	}
	return out
}

// choiceTypes are the type suffixes of R4 choice elements (value[x] ...).
var choiceTypes = map[string]bool{
	"Base64Binary": true, "Boolean": true, "Canonical": true, "Code": true, "Date": true,
	"DateTime": true, "Decimal": true, "Id": true, "Instant": true, "Integer": true,
	"Markdown": true, "Oid": true, "PositiveInt": true, "String": true, "Time": true,
	"UnsignedInt": true, "Uri": true, "Url": true, "Uuid": true,
	"Address": true, "Age": true, "Annotation": true, "Attachment": true,
	"CodeableConcept": true, "Coding": true, "ContactPoint": true, "Count": true,
	"Distance": true, "Duration": true, "HumanName": true, "Identifier": true,
	"Money": true, "Period": true, "Quantity": true, "Range": true, "Ratio": true,
	"Reference": true, "SampledData": true, "Signature": true, "Timing": true,
	"ContactDetail": true, "Contributor": true, "DataRequirement": true,
	"Expression": true, "ParameterDefinition": true, "RelatedArtifact": true,
	"TriggerDefinition": true, "UsageContext": true, "Dosage": true, "Meta": true,
}

func singletonInt(c []Node) (int, bool, error) {
	if len(c) == 0 {
		return 0, false, nil
	}
	if len(c) > 1 {
		return 0, false, fmt.Errorf("index is not a single value")
	}
	n, ok := c[0].Value.(json.Number)
	if !ok {
		return 0, false, fmt.Errorf("index is not an integer")
	}
	i, err := n.Int64()
	if err != nil {
		return 0, false, fmt.Errorf("index is not an integer")
	}
	return int(i), true, nil
}

// Same reports whether a and b are the same item: the same decoded object
// (identity, not deep equality) or equal primitives.
func Same(a, b Node) bool { return sameItem(a.Value, b.Value) }
