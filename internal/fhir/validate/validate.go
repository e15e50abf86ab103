// Package validate owns structural validation of FHIR R4 JSON resources:
// the checks of the official R4 JSON schema (known elements, JSON shapes,
// single vs array, primitive lexical patterns, fixed codes, required
// elements), done by walking the generated model in internal/fhir/spec
// rather than a generic JSON-schema engine, plus the FHIR JSON rules the
// schema cannot say (no null or empty values, one variant per choice
// element, aligned primitive-extension arrays, no nested contained).
//
// It checks structure, not terminology bindings, invariants beyond dom-2,
// profiles, or references.
package validate

import (
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/fhirguard/fhirguard/internal/fhir"
	"github.com/fhirguard/fhirguard/internal/fhir/spec"
)

// maxDepth bounds the recursion for maps not built by fhir.ParseResource.
const maxDepth = 128

// Validator checks resources against the R4 structure. It is immutable and
// safe for concurrent use; build one with New and share it.
type Validator struct {
	model   *spec.Model
	nodes   map[string]*node // resource types by name
	element *node            // Element, the type of every "_" sibling
}

// node is the validator's view of one spec type.
type node struct {
	t        *spec.Type
	lex      lexical // primitives
	int32    bool    // integer, positiveInt, unsignedInt
	elems    []elem  // parallel to t.Elements
	required []required
}

type elem struct {
	el *spec.Element
	n  *node
}

// required is one required element: its JSON names (the value and, for a
// primitive, its "_" sibling; every variant for a choice) and how to name
// it in a message.
type required struct {
	names []string
	label string
}

// New loads the generated model and prepares the validator (a few ms).
func New() (*Validator, error) {
	m, err := spec.Load()
	if err != nil {
		return nil, fmt.Errorf("load FHIR structure model: %w", err)
	}
	var prims []string
	for _, t := range m.Types() {
		if t.Kind == spec.Primitive {
			prims = append(prims, t.Name)
		}
	}
	checks, err := compileChecks(m, prims)
	if err != nil {
		return nil, err
	}
	nodes := map[*spec.Type]*node{}
	for _, t := range m.Types() {
		nodes[t] = &node{t: t, lex: checks[t]}
	}
	for t, n := range nodes {
		switch t.Name {
		case "integer", "positiveInt", "unsignedInt":
			n.int32 = true
		}
		n.elems = make([]elem, len(t.Elements))
		for i := range t.Elements {
			n.elems[i] = elem{el: &t.Elements[i], n: nodes[t.Elements[i].Type]}
		}
		for _, r := range t.Required {
			n.required = append(n.required, requiredNames(t, r))
		}
	}
	v := &Validator{model: m, nodes: map[string]*node{}, element: nodes[m.ElementType()]}
	for _, name := range m.ResourceTypes() {
		v.nodes[name] = nodes[m.Resource(name)]
	}
	return v, nil
}

func requiredNames(t *spec.Type, r string) required {
	if base, ok := strings.CutSuffix(r, "[x]"); ok {
		var names []string
		for _, el := range t.Elements {
			if el.Choice == base {
				names = append(names, el.Name)
				if el.Ext {
					names = append(names, "_"+el.Name)
				}
			}
		}
		return required{names: names, label: r}
	}
	names := []string{r}
	if i, _, ok := t.Index(r); ok && t.Elements[i].Ext {
		names = append(names, "_"+r)
	}
	return required{names: names, label: r}
}

// Model returns the structure model the validator uses.
func (v *Validator) Model() *spec.Model { return v.model }

// Validate checks that data is a structurally valid resource of type typ.
// It returns nil or a *fhir.Error (HTTP 400) naming the first problem and
// its element path as FHIRPath (Observation.component[1].valueQuantity.value).
// When a resource has several problems, the one reported is the first in
// sorted property order, so the answer does not depend on map iteration.
func (v *Validator) Validate(typ string, data map[string]any) error {
	n := v.nodes[typ]
	if n == nil {
		return &fhir.Error{Code: fhir.IssueNotSupported, Status: 400, Diag: fmt.Sprintf("Unknown resource type %s", quote(typ))}
	}
	rt, ok := data["resourceType"].(string)
	if !ok {
		return &fhir.Error{Code: fhir.IssueInvalid, Diag: "The resource has no resourceType", Expr: []string{typ + ".resourceType"}}
	}
	if rt != typ {
		if v.nodes[rt] == nil {
			return &fhir.Error{Code: fhir.IssueInvalid, Diag: fmt.Sprintf("Unknown resource type %s", quote(rt)), Expr: []string{typ + ".resourceType"}}
		}
		return &fhir.Error{Code: fhir.IssueInvalid, Diag: fmt.Sprintf("resourceType %s does not match the expected type %s", quote(rt), quote(typ)), Expr: []string{typ + ".resourceType"}}
	}
	w := walker{v: v, root: typ}
	if w.object(n, data, false, 0) {
		return nil
	}
	// Report deterministically: walk again visiting properties in sorted
	// order and stop at the first problem.
	w = walker{v: v, root: typ, sorted: true}
	w.object(n, data, false, 0)
	return w.err
}

// walker holds the state of one validation.
type walker struct {
	v      *Validator
	root   string
	sorted bool
	path   []seg
	err    *fhir.Error
}

type seg struct {
	name string
	idx  int // -1: no index
}

func (w *walker) push(name string, idx int) { w.path = append(w.path, seg{name, idx}) }
func (w *walker) pop()                      { w.path = w.path[:len(w.path)-1] }

// expr renders the current path as FHIRPath.
func (w *walker) expr() string {
	var b strings.Builder
	b.WriteString(w.root)
	for _, s := range w.path {
		if s.name != "" {
			b.WriteByte('.')
			b.WriteString(s.name)
		}
		if s.idx >= 0 {
			b.WriteByte('[')
			b.WriteString(strconv.Itoa(s.idx))
			b.WriteByte(']')
		}
	}
	return b.String()
}

// fail records a problem at the current path and returns false.
func (w *walker) fail(code fhir.IssueType, format string, args ...any) bool {
	if w.err == nil {
		expr := w.expr()
		w.err = &fhir.Error{Code: code, Diag: fmt.Sprintf(format, args...) + " at " + expr, Expr: []string{expr}}
	}
	return false
}

type choiceSeen struct{ base, name string }

// object validates obj as an instance of the complex or resource type n.
func (w *walker) object(n *node, obj map[string]any, inContained bool, depth int) bool {
	if depth > maxDepth {
		return w.fail(fhir.IssueStructure, "Nesting deeper than %d levels", maxDepth)
	}
	if len(obj) == 0 {
		return w.fail(fhir.IssueStructure, "Empty object (FHIR JSON objects must have content)")
	}
	var chosenBuf [4]choiceSeen
	chosen := chosenBuf[:0]
	visit := func(key string, val any) bool {
		i, sibling, ok := n.t.Index(key)
		if !ok {
			w.push(key, -1)
			defer w.pop()
			if key == "resourceType" && n.t.Kind != spec.Resource {
				return w.fail(fhir.IssueStructure, "Unexpected resourceType in a %s (not a resource)", n.t.Name)
			}
			return w.fail(fhir.IssueStructure, "Unknown element %s", quote(key))
		}
		e := n.elems[i]
		if e.el.Choice != "" && !sibling {
			for _, c := range chosen {
				if c.base == e.el.Choice {
					w.push(key, -1)
					defer w.pop()
					a, b := c.name, key
					if a > b {
						a, b = b, a
					}
					return w.fail(fhir.IssueStructure, "Only one of %s[x] may be present, found %s and %s", e.el.Choice, a, b)
				}
			}
			chosen = append(chosen, choiceSeen{e.el.Choice, key})
		}
		w.push(e.el.Name, -1)
		defer w.pop()
		if sibling {
			return w.sibling(e, obj, val, depth)
		}
		if key == "contained" && inContained {
			return w.fail(fhir.IssueInvariant, "A contained resource must not contain resources (dom-2)")
		}
		return w.element(e, obj, val, inContained || key == "contained", depth)
	}
	if w.sorted {
		keys := make([]string, 0, len(obj))
		for k := range obj {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for _, k := range keys {
			if !visit(k, obj[k]) {
				return false
			}
		}
	} else {
		for k, val := range obj {
			if !visit(k, val) {
				return false
			}
		}
	}
	for _, r := range n.required {
		present := false
		for _, name := range r.names {
			if _, ok := obj[name]; ok {
				present = true
				break
			}
		}
		if !present {
			return w.fail(fhir.IssueRequired, "Missing required element %s", quote(r.label))
		}
	}
	return true
}

// element validates the value of a (non-sibling) element.
func (w *walker) element(e elem, obj map[string]any, val any, contained bool, depth int) bool {
	if !e.el.Array {
		if _, isArr := val.([]any); isArr {
			return w.fail(fhir.IssueStructure, "Element %s must be a single %s, not an array", quote(e.el.Name), typeLabel(e.n))
		}
		if val == nil {
			return w.fail(fhir.IssueStructure, "Element %s must not be null", quote(e.el.Name))
		}
		return w.value(e, val, contained, depth)
	}
	arr, ok := val.([]any)
	if !ok {
		return w.fail(fhir.IssueStructure, "Element %s must be an array of %s, not %s", quote(e.el.Name), typeLabel(e.n), kindOf(val))
	}
	if len(arr) == 0 {
		return w.fail(fhir.IssueStructure, "Element %s must not be an empty array", quote(e.el.Name))
	}
	last := len(w.path) - 1
	for i, item := range arr {
		w.path[last].idx = i
		if item == nil {
			// Allowed only as a placeholder for an item whose value is
			// given by its "_" sibling's extension.
			if e.el.Ext && siblingItem(obj["_"+e.el.Name], i) {
				continue
			}
			return w.fail(fhir.IssueStructure, "Array item must not be null")
		}
		if !w.value(e, item, contained, depth) {
			return false
		}
	}
	w.path[last].idx = -1
	return true
}

// siblingItem reports whether the "_" sibling array v has a non-null item i.
func siblingItem(v any, i int) bool {
	arr, ok := v.([]any)
	return ok && i < len(arr) && arr[i] != nil
}

// sibling validates a primitive-extension sibling "_name" of element e.
func (w *walker) sibling(e elem, obj map[string]any, val any, depth int) bool {
	if !e.el.Array {
		m, ok := val.(map[string]any)
		if !ok {
			return w.fail(fhir.IssueStructure, "Element %s must be an object (Element), not %s", quote("_"+e.el.Name), kindOf(val))
		}
		return w.object(w.v.element, m, false, depth+1)
	}
	arr, ok := val.([]any)
	if !ok {
		return w.fail(fhir.IssueStructure, "Element %s must be an array, not %s", quote("_"+e.el.Name), kindOf(val))
	}
	if len(arr) == 0 {
		return w.fail(fhir.IssueStructure, "Element %s must not be an empty array", quote("_"+e.el.Name))
	}
	if prim, ok := obj[e.el.Name].([]any); ok && len(prim) != len(arr) {
		return w.fail(fhir.IssueStructure, "Arrays %s and %s must have the same length", quote(e.el.Name), quote("_"+e.el.Name))
	}
	last := len(w.path) - 1
	for i, item := range arr {
		w.path[last].idx = i
		if item == nil {
			prim, _ := obj[e.el.Name].([]any)
			if i < len(prim) && prim[i] != nil {
				continue
			}
			return w.fail(fhir.IssueStructure, "Array item must not be null")
		}
		m, ok := item.(map[string]any)
		if !ok {
			return w.fail(fhir.IssueStructure, "Items of %s must be objects (Element), not %s", quote("_"+e.el.Name), kindOf(item))
		}
		if !w.object(w.v.element, m, false, depth+1) {
			return false
		}
	}
	w.path[last].idx = -1
	return true
}
