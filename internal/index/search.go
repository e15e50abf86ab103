package index

import (
	"fmt"

	"github.com/fhirguard/fhirguard/internal/fhir"
	"github.com/fhirguard/fhirguard/internal/fhir/fhirpath"
	"github.com/fhirguard/fhirguard/internal/fhir/searchparam"
)

// maxCompositeRows bounds the combinations one composite element yields.
const maxCompositeRows = 64

// compiledParam is a search parameter of one resource type with its
// compiled expression(s).
type compiledParam struct {
	code  string
	typ   searchparam.Type
	expr  *fhirpath.Expr
	comps []compiledComponent
}

type compiledComponent struct {
	code string
	typ  searchparam.Type
	expr *fhirpath.Expr
}

// capHint holds per-type initial capacities of the Rows slices (the number
// of parameters of each type), so extraction rarely regrows them.
type capHint struct{ strings, tokens, refs, dates, numbers, quantities, uris int }

func (h capHint) newRows() *Rows {
	return &Rows{
		Strings:    make([]StringRow, 0, h.strings),
		Tokens:     make([]TokenRow, 0, h.tokens),
		References: make([]ReferenceRow, 0, h.refs),
		Dates:      make([]DateRow, 0, h.dates),
		Numbers:    make([]NumberRow, 0, h.numbers),
		Quantities: make([]QuantityRow, 0, h.quantities),
		URIs:       make([]URIRow, 0, h.uris),
	}
}

func hintsFor(params map[string][]compiledParam) map[string]capHint {
	out := make(map[string]capHint, len(params))
	for typ, ps := range params {
		out[typ] = hintsOf(ps, func(int) bool { return true })
	}
	return out
}

// capped bounds every capacity of h by n: most parameters yield no row on
// a given resource, so a capacity per parameter mostly goes unused.
func (h capHint) capped(n int) capHint {
	return capHint{min(h.strings, n), min(h.tokens, n), min(h.refs, n), min(h.dates, n),
		min(h.numbers, n), min(h.quantities, n), min(h.uris, n)}
}

// hintsOf is the capHint of the parameters ps[i] for which use(i) holds.
func hintsOf(ps []compiledParam, use func(i int) bool) capHint {
	var h capHint
	for i, p := range ps {
		if !use(i) {
			continue
		}
		switch p.typ {
		case searchparam.TypeString:
			h.strings += 2
		case searchparam.TypeToken:
			h.tokens += 2
		case searchparam.TypeReference:
			h.refs++
		case searchparam.TypeDate:
			h.dates++
		case searchparam.TypeNumber:
			h.numbers++
		case searchparam.TypeQuantity:
			h.quantities++
		case searchparam.TypeURI:
			h.uris++
		}
	}
	return h
}

// keptSet is the set of parameter positions a keep function accepted:
// a bit set on the stack for the first 256, a slice beyond.
type keptSet struct {
	bits [4]uint64
	more []bool
}

func keptParams(ps []compiledParam, keep func(code string) bool) keptSet {
	var k keptSet
	if len(ps) > 256 {
		k.more = make([]bool, len(ps)-256)
	}
	for i := range ps {
		if !keep(ps[i].code) {
			continue
		}
		if i < 256 {
			k.bits[i/64] |= 1 << (i % 64)
		} else {
			k.more[i-256] = true
		}
	}
	return k
}

func (k *keptSet) has(i int) bool {
	if i < 256 {
		return k.bits[i/64]&(1<<(i%64)) != 0
	}
	return k.more[i-256]
}

// compileParams compiles every indexable parameter of every resource type.
// _text, _content and _query (no expression) have no rows; of the special
// parameters only Location.near (a position) has.
func compileParams() (map[string][]compiledParam, error) {
	out := map[string][]compiledParam{}
	cache := map[string]*fhirpath.Expr{}
	compile := func(src string) (*fhirpath.Expr, error) {
		if e, ok := cache[src]; ok {
			return e, nil
		}
		e, err := fhirpath.Compile(src)
		if err != nil {
			return nil, err
		}
		cache[src] = e
		return e, nil
	}
	for _, typ := range fhir.ResourceTypes() {
		for _, p := range searchparam.ForType(typ) {
			if p.Expression == "" || p.Type == searchparam.TypeSpecial && !geographic(p) {
				continue
			}
			e, err := compile(p.Expression)
			if err != nil {
				return nil, fmt.Errorf("index: compile %s.%s: %w", typ, p.Code, err)
			}
			cp := compiledParam{code: p.Code, typ: p.Type, expr: e}
			for _, c := range p.Components {
				sub, ok := searchparam.Lookup(typ, c.Code)
				if !ok {
					return nil, fmt.Errorf("index: %s.%s: component %s is not a parameter of %s", typ, p.Code, c.Code, typ)
				}
				ce, err := compile(c.Expression)
				if err != nil {
					return nil, fmt.Errorf("index: compile %s.%s component %s: %w", typ, p.Code, c.Code, err)
				}
				cp.comps = append(cp.comps, compiledComponent{code: c.Code, typ: sub.Type, expr: ce})
			}
			out[typ] = append(out[typ], cp)
		}
	}
	return out, nil
}

// Rows computes the typed search-index rows of a resource of type typ for
// every search parameter of that type.
func (ix *Indexer) Rows(typ string, data map[string]any) (*Rows, error) {
	return ix.RowsOnly(typ, data, nil)
}

// RowsOnly is Rows for the parameters keep accepts (nil: all): a store
// that keeps some parameters' rows under others (a union, a restriction)
// need not evaluate their expressions.
func (ix *Indexer) RowsOnly(typ string, data map[string]any, keep func(code string) bool) (*Rows, error) {
	if err := checkType(typ, data); err != nil {
		return nil, err
	}
	root := fhirpath.Node{Value: data, Type: typ}
	env := fhirpath.NewEnv(root)
	params := ix.params[typ]
	var rows *Rows
	var kept keptSet
	if keep == nil {
		rows = ix.hints[typ].newRows()
	} else {
		// Size the rows for the kept parameters only: sized for all of
		// them, the empty slices were most of what an import allocated.
		kept = keptParams(params, keep)
		rows = hintsOf(params, kept.has).capped(4).newRows()
	}
	var cc compCache
	for i := range params {
		p := &params[i]
		if keep != nil && !kept.has(i) {
			continue
		}
		nodes, err := p.expr.EvalIn(env, root)
		if err != nil {
			return nil, fmt.Errorf("index: %s.%s: %w", typ, p.code, err)
		}
		if p.typ == searchparam.TypeComposite {
			for _, n := range nodes {
				if err := ix.composite(rows, p, env, &cc, n); err != nil {
					return nil, fmt.Errorf("index: %s.%s: %w", typ, p.code, err)
				}
			}
			continue
		}
		for _, n := range nodes {
			rows.add(p.code, p.typ, n, true)
		}
	}
	return rows, nil
}

// compCache remembers, within one Rows call, the values a component
// expression yielded on an element, so the composites sharing a component
// (component-code in component-code-value-quantity and
// component-code-value-concept) evaluate it once.
type compCache struct {
	entries []compEntry
}

type compEntry struct {
	expr *fhirpath.Expr
	code string
	node fhirpath.Node
	vals []Value
}

func (c *compCache) get(expr *fhirpath.Expr, code string, n fhirpath.Node) ([]Value, bool) {
	for i := range c.entries {
		e := &c.entries[i]
		if e.expr == expr && e.code == code && fhirpath.Same(e.node, n) {
			return e.vals, true
		}
	}
	return nil, false
}

// add appends the rows of one node for a parameter of type t. text=false
// (composite components) skips the :text forms of tokens, which a
// composite never matches.
func (r *Rows) add(code string, t searchparam.Type, n fhirpath.Node, text bool) {
	switch t {
	case searchparam.TypeString:
		r.Strings = stringRows(r.Strings, code, n)
	case searchparam.TypeToken:
		r.Tokens = tokenRows(r.Tokens, code, n, text)
	case searchparam.TypeReference:
		r.References = referenceRows(r.References, code, n)
	case searchparam.TypeDate:
		r.Dates = dateRows(r.Dates, code, n)
	case searchparam.TypeNumber:
		r.Numbers = numberRows(r.Numbers, code, n)
	case searchparam.TypeQuantity:
		r.Quantities = quantityRows(r.Quantities, code, n)
	case searchparam.TypeURI:
		r.URIs = uriRows(r.URIs, code, n)
	case searchparam.TypeSpecial: // near: compileParams keeps no other
		r.Positions = positionRows(r.Positions, code, n)
	}
}

// geographic reports whether p is the special parameter near (a
// Location.position), the one special parameter with rows.
func geographic(p *searchparam.Param) bool {
	return p.Type == searchparam.TypeSpecial && p.Code == "near" && p.Expression != ""
}

// composite adds the rows of one element a composite parameter selected:
// every combination of its components' values (each component evaluated
// on that element), at most maxCompositeRows.
func (ix *Indexer) composite(rows *Rows, p *compiledParam, env *fhirpath.Env, cc *compCache, n fhirpath.Node) error {
	var parts [4][]Value
	vals := parts[:0]
	if len(p.comps) > len(parts) {
		vals = make([][]Value, 0, len(p.comps))
	}
	total := 1
	for _, c := range p.comps {
		v, ok := cc.get(c.expr, c.code, n)
		if !ok {
			nodes, err := c.expr.EvalIn(env, n)
			if err != nil {
				return err
			}
			var tmp Rows
			for _, cn := range nodes {
				tmp.add(c.code, c.typ, cn, false)
			}
			v = tmp.values(c.code)
			cc.entries = append(cc.entries, compEntry{expr: c.expr, code: c.code, node: n, vals: v})
		}
		if len(v) == 0 {
			return nil // a composite needs every component
		}
		vals = append(vals, v)
		total *= len(v)
		if total > maxCompositeRows {
			total = maxCompositeRows
		}
	}
	// Enumerate combinations like an odometer over vals.
	idx := make([]int, len(vals))
	for k := 0; k < total; k++ {
		combo := make([]Value, len(vals))
		for i, v := range vals {
			combo[i] = v[idx[i]]
		}
		rows.Composites = append(rows.Composites, CompositeRow{Param: p.code, Components: combo})
		for i := len(idx) - 1; i >= 0; i-- {
			idx[i]++
			if idx[i] < len(vals[i]) {
				break
			}
			idx[i] = 0
		}
	}
	return nil
}

// values lists every row of r as a composite component Value.
func (r *Rows) values(code string) []Value {
	n := len(r.Strings) + len(r.Tokens) + len(r.References) + len(r.Dates) + len(r.Numbers) + len(r.Quantities) + len(r.URIs)
	if n == 0 {
		return nil
	}
	out := make([]Value, 0, n)
	for i := range r.Strings {
		out = append(out, Value{Code: code, String: &r.Strings[i]})
	}
	for i := range r.Tokens {
		out = append(out, Value{Code: code, Token: &r.Tokens[i]})
	}
	for i := range r.References {
		out = append(out, Value{Code: code, Reference: &r.References[i]})
	}
	for i := range r.Dates {
		out = append(out, Value{Code: code, Date: &r.Dates[i]})
	}
	for i := range r.Numbers {
		out = append(out, Value{Code: code, Number: &r.Numbers[i]})
	}
	for i := range r.Quantities {
		out = append(out, Value{Code: code, Quantity: &r.Quantities[i]})
	}
	for i := range r.URIs {
		out = append(out, Value{Code: code, URI: &r.URIs[i]})
	}
	return out
}
